//! The HTTP suites on the Redis backend: the very checks the memory backend passes in
//! tests/suite/memory (http, http_auth, http_metrics, http_sse, shutdown, event_feed), one
//! module per suite, each check on its own redis-server started for it (or, with
//! `REDIS_URL`, on that server under a key prefix of its own).

use crate::event_feed as event_feed_suite;
use crate::http as http_suite;
use crate::http::auth as http_auth_suite;
use crate::http::metrics as http_metrics_suite;
use crate::http::sse as http_sse_suite;
use crate::shutdown as shutdown_suite;
use crate::support::app;
use crate::support::redis_fixture;

use ezenroll::store::Store;
use std::sync::Arc;

/// A store on a fresh Redis; the server lives as long as the store.
async fn redis() -> Arc<dyn Store> {
    redis_fixture::ezenroll_store(4).await.0
}

mod gateway {
    use super::{http_suite, redis};
    http_suite!(http_suite, redis().await);
}

mod auth {
    use super::{http_auth_suite, redis};
    http_auth_suite!(http_auth_suite, redis().await);
}

mod metrics {
    use super::{http_metrics_suite, redis};
    http_metrics_suite!(http_metrics_suite, redis().await);
}

mod sse {
    use super::{http_sse_suite, redis};
    http_sse_suite!(http_sse_suite, redis().await);
}

mod shutdown {
    use super::{redis, shutdown_suite};
    shutdown_suite!(shutdown_suite, redis().await);
}

mod event_feed {
    use super::{event_feed_suite, redis};
    event_feed_suite!(event_feed_suite, redis().await);
}

/// What a server that died between saving a plan and keeping its answer leaves in Redis:
/// the enrollment, and no kept answer once the claim's lease ran out. Dropping the kept
/// answer after a first try makes that state; the retry with the same key must find the
/// enrollment the first try saved, not start a second one.
mod lost_answer {
    use super::{app, redis_fixture};
    use serde_json::json;

    async fn drop_kept_answers(url: &str, key: &str) {
        let client = redis::Client::open(url).expect("the test's Redis URL");
        let mut con = client
            .get_multiplexed_async_connection()
            .await
            .expect("connect to the test's redis-server");
        let kept: Vec<String> = redis::cmd("KEYS")
            .arg(format!("*idem:*:{key}"))
            .query_async(&mut con)
            .await
            .expect("KEYS");
        assert_eq!(kept.len(), 1, "one kept answer for {key}: {kept:?}");
        let _: () = redis::cmd("DEL")
            .arg(&kept)
            .query_async(&mut con)
            .await
            .expect("DEL");
    }

    #[actix_rt::test]
    async fn a_keyed_plan_retried_after_its_answer_was_lost_is_saved_once() {
        let (store, url) = redis_fixture::ezenroll_store(4).await;
        let mut app = app::spawn_app(store).await;
        let customer_no = app.customer("유실된응답").await;
        let key = format!("lost-{}", uuid::Uuid::new_v4());
        let send = |customer_no: &str| {
            app.send(
                app.client
                    .post(app.url("/enrollments"))
                    .header("Idempotency-Key", &key)
                    .json(&app::plan_body(customer_no)),
            )
        };
        let first = send(&customer_no).await;
        assert_eq!(first.status, 201, "{}", first.text);

        drop_kept_answers(&url, &key).await;
        let retry = send(&customer_no).await;
        assert_eq!(retry.status, 201, "{}", retry.text);
        assert_eq!(retry.headers["location"], first.headers["location"]);
        assert_eq!(retry.body["id"], first.body["id"]);
        assert_eq!(retry.body["version"], first.body["version"]);
        assert!(
            retry.headers.get("idempotent-replayed").is_none(),
            "the kept answer was gone; this one was made again"
        );

        // Exactly one enrollment: the read model never sees a second.
        let views = app
            .eventually("the enrollment in the read model", || async {
                let a = app.get(&format!("/mypage?customerNo={customer_no}")).await;
                a.body.as_array().filter(|v| !v.is_empty()).cloned()
            })
            .await;
        assert_eq!(views.len(), 1, "{views:?}");
        assert_eq!(views[0]["enrollmentId"], first.body["id"]);

        // The same key for another customer, its answer lost again: refused, not the
        // first customer's enrollment handed out as the other's.
        let other = app.customer("다른고객").await;
        drop_kept_answers(&url, &key).await;
        let reused = send(&other).await;
        reused.assert_problem(422, "idempotency-key-reused");
        assert!(reused.text.contains(&customer_no), "{}", reused.text);
        let none = app.get(&format!("/mypage?customerNo={other}")).await;
        assert_eq!(none.body, json!([]), "{}", none.text);
        app.stop().await;
    }

    #[actix_rt::test]
    async fn a_keyed_registration_retried_after_its_answer_was_lost_is_made_once() {
        let (store, url) = redis_fixture::ezenroll_store(4).await;
        let mut app = app::spawn_app(store).await;
        let key = format!("lost-{}", uuid::Uuid::new_v4());
        let body = |name: &str| {
            json!({"name": name, "birthDate": "1986-05-01", "gender": "male",
                   "mobilePhone": "010-1234-5678"})
        };
        let send = |name: &str| {
            app.send(
                app.client
                    .post(app.url("/customers"))
                    .header("Idempotency-Key", &key)
                    .json(&body(name)),
            )
        };
        let first = send("유실된등록").await;
        assert_eq!(first.status, 201, "{}", first.text);

        drop_kept_answers(&url, &key).await;
        let retry = send("유실된등록").await;
        assert_eq!(retry.status, 201, "{}", retry.text);
        assert_eq!(retry.body["customerNo"], first.body["customerNo"]);
        assert_eq!(retry.headers["location"], first.headers["location"]);
        assert!(
            retry.headers.get("idempotent-replayed").is_none(),
            "the kept answer was gone; this one was made again"
        );
        // No second customer: the next registration gets the next number.
        let next = app.customer("다음고객").await;
        let number = |no: &str| no.trim_start_matches('C').parse::<u64>().expect("a number");
        let first_no = first.body["customerNo"]
            .as_str()
            .expect("a customer number");
        assert_eq!(number(&next), number(first_no) + 1);

        // The same key with other details, its answer lost again: refused.
        drop_kept_answers(&url, &key).await;
        let reused = send("다른고객").await;
        reused.assert_problem(422, "idempotency-key-reused");
        assert!(reused.text.contains(first_no), "{}", reused.text);
        app.stop().await;
    }
}
