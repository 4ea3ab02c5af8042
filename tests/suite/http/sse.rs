//! `GET /events/stream` as a client sees it: a real server on port 0, the response body
//! read incrementally, message by message, with a timeout on every read.
//!
//! Every check takes a fresh `Arc<dyn Store>`, so the memory backend
//! (tests/suite/memory/http_sse.rs) and Redis (tests/suite/redis_backend/http.rs) run the
//! same suite by expanding [`http_sse_suite!`] with an expression making a store (it may
//! `.await`).

/// One `#[actix_rt::test]` per check. `$module` is the name the suite is in scope under;
/// `$make` makes a fresh store and may `.await`.
macro_rules! http_sse_suite {
    ($module:ident, $make:expr) => {
        http_sse_suite!(
            @each $module, $make;
            an_admin_stream_shows_each_change_of_an_enrollment_created_after_connecting,
            a_customer_sees_only_its_own_enrollments,
            an_admin_may_narrow_the_stream_to_a_customer_or_an_enrollment,
            the_stream_needs_a_token,
            an_idle_stream_gets_keep_alive_comments,
            a_graceful_shutdown_ends_open_streams,
        );
    };
    (@each $module:ident, $make:expr; $($check:ident),* $(,)?) => {
        $(
            #[actix_rt::test]
            async fn $check() {
                let store: ::std::sync::Arc<dyn ::ezenroll::store::Store> = $make;
                $module::$check(store).await;
            }
        )*
    };
}

use crate::support::app::*;
use ezenroll::http::HttpConfig;
use ezenroll::store::Store;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

fn types(messages: &[SseMessage]) -> Vec<&str> {
    messages.iter().filter_map(|m| m.event.as_deref()).collect()
}

pub async fn an_admin_stream_shows_each_change_of_an_enrollment_created_after_connecting(
    store: Arc<dyn Store>,
) {
    let mut app = spawn_app(store).await;
    let customer_no = app.customer("김스트림").await;
    let mut stream = app.open_stream("/events/stream").await.expect("a stream");

    let id = app.plan(&customer_no).await;
    let requested = app.post_empty(&format!("/enrollments/{id}/document")).await;
    assert_eq!(requested.status, 202, "{}", requested.text);
    let seen: Vec<SseMessage> = stream
        .until_event(&id, "DocumentIssued")
        .await
        .into_iter()
        .filter(|m| m.json()["enrollmentId"] == id.as_str())
        .collect();
    assert_eq!(
        types(&seen),
        ["PlanSaved", "DocumentRequested", "DocumentIssued"]
    );

    // Each message is the envelope `GET /enrollments/{id}/events` lists, under its id and type.
    let history = app.get(&format!("/enrollments/{id}/events")).await;
    assert_eq!(history.status, 200, "{}", history.text);
    let listed = history.body.as_array().expect("a list");
    assert_eq!(listed.len(), seen.len());
    for (m, item) in seen.iter().zip(listed) {
        assert_eq!(&m.json(), item, "the same JSON as the events list");
        assert_eq!(m.id.as_deref(), item["id"].as_str(), "id: is the event id");
        assert_eq!(
            m.event.as_deref(),
            item["type"].as_str(),
            "event: is its type"
        );
    }
    app.stop().await;
}

pub async fn a_customer_sees_only_its_own_enrollments(store: Arc<dyn Store>) {
    let mut app = spawn_app(store).await;
    let mine = app.customer("이고객").await;
    let theirs = app.customer("박타인").await;
    let me = app.as_customer(&mine);
    let mut admin = app.open_stream("/events/stream").await.expect("a stream");
    let mut own = me.open_stream("/events/stream").await.expect("a stream");

    // Theirs first; once the admin has seen it, every later event of mine reaches my
    // stream after it (one ordered feed), so my stream has had its chance to show it.
    let their_plan = app.plan(&theirs).await;
    admin.until_event(&their_plan, "PlanSaved").await;
    let my_plan = me.plan(&mine).await;
    let a = me
        .post_empty(&format!("/enrollments/{my_plan}/document"))
        .await;
    assert_eq!(a.status, 202, "{}", a.text);
    let seen = own.until_event(&my_plan, "DocumentRequested").await;
    assert_eq!(types(&seen), ["PlanSaved", "DocumentRequested"], "{seen:?}");
    for m in &seen {
        assert_eq!(m.json()["customerNo"], mine.as_str(), "{m:?}");
    }

    // A customer may name itself, never anyone else (404, as if it did not exist).
    assert!(
        me.open_stream(&format!("/events/stream?customerNo={mine}"))
            .await
            .is_ok()
    );
    me.open_stream(&format!("/events/stream?customerNo={theirs}"))
        .await
        .err()
        .expect("refused")
        .assert_problem(404, "not-found");
    me.open_stream(&format!("/events/stream?enrollmentId={their_plan}"))
        .await
        .err()
        .expect("refused")
        .assert_problem(404, "not-found");
    app.stop().await;
}

pub async fn an_admin_may_narrow_the_stream_to_a_customer_or_an_enrollment(store: Arc<dyn Store>) {
    let mut app = spawn_app(store).await;
    let one = app.customer("최하나").await;
    let two = app.customer("정둘").await;
    let first = app.plan(&one).await;
    let second = app.plan(&two).await;
    let mut all = app.open_stream("/events/stream").await.expect("a stream");
    let mut of_two = app
        .open_stream(&format!("/events/stream?customerNo={two}"))
        .await
        .expect("a stream");
    let mut of_first = app
        .open_stream(&format!("/events/stream?enrollmentId={first}"))
        .await
        .expect("a stream");

    // One's change, seen by the unfiltered stream, then two's: the filtered streams'
    // first messages must be the ones they want.
    let a = app
        .post_empty(&format!("/enrollments/{first}/document"))
        .await;
    assert_eq!(a.status, 202, "{}", a.text);
    all.until_event(&first, "DocumentRequested").await;
    let a = app
        .post_empty(&format!("/enrollments/{second}/document"))
        .await;
    assert_eq!(a.status, 202, "{}", a.text);

    let m = of_two.next_event().await.expect("an event");
    assert_eq!(m.json()["enrollmentId"], second.as_str(), "{m:?}");
    assert_eq!(m.event.as_deref(), Some("DocumentRequested"));
    let m = of_first.next_event().await.expect("an event");
    assert_eq!(m.json()["enrollmentId"], first.as_str(), "{m:?}");
    assert_eq!(m.event.as_deref(), Some("DocumentRequested"));

    let ghost = "01900000-0000-7000-8000-000000000000";
    app.open_stream(&format!("/events/stream?enrollmentId={ghost}"))
        .await
        .err()
        .expect("refused")
        .assert_problem(404, "not-found");
    app.open_stream("/events/stream?customerNo=nobody")
        .await
        .err()
        .expect("refused")
        .assert_problem(400, "malformed-query");
    app.open_stream("/events/stream?since=yesterday")
        .await
        .err()
        .expect("refused")
        .assert_problem(400, "malformed-query");
    app.stop().await;
}

pub async fn the_stream_needs_a_token(store: Arc<dyn Store>) {
    let mut app = spawn_app(store).await;
    let refused = app
        .anonymous()
        .open_stream("/events/stream")
        .await
        .err()
        .expect("refused");
    refused.assert_problem(401, "unauthorized");
    assert!(refused.headers.contains_key("www-authenticate"));
    app.with_token("not-a-token")
        .open_stream("/events/stream")
        .await
        .err()
        .expect("refused")
        .assert_problem(401, "unauthorized");
    app.stop().await;
}

pub async fn an_idle_stream_gets_keep_alive_comments(store: Arc<dyn Store>) {
    let http = HttpConfig {
        sse_keep_alive: Duration::from_millis(100),
        ..http_config()
    };
    let mut app = spawn_app_with(store, engine_config(), healthy(), http).await;
    let mut stream = app.open_stream("/events/stream").await.expect("a stream");
    for _ in 0..2 {
        let m = stream.next_message().await.expect("a keep-alive");
        assert!(m.comment.is_some(), "{m:?}");
        assert_eq!((m.event, m.data), (None, String::new()));
    }
    app.stop().await;
}

pub async fn a_graceful_shutdown_ends_open_streams(store: Arc<dyn Store>) {
    let mut app = spawn_app(store).await;
    let customer_no = app.customer("한종료").await;
    let mut stream = app.open_stream("/events/stream").await.expect("a stream");
    let id = app.plan(&customer_no).await;
    stream.until_event(&id, "PlanSaved").await;
    assert_eq!(app.engine.feed_subscribers().await, 1);

    // A client that never hangs up must not hold the shutdown up.
    tokio::time::timeout(WAIT, app.stop())
        .await
        .expect("the server stops with a stream open");
    let rest: Option<Value> = stream.next_event().await.map(|m| m.json());
    assert_eq!(rest, None, "the stream ended");
}
