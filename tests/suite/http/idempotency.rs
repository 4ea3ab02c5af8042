//! Idempotency keys: the first answer replayed, the action done once, also across two
//! servers on one store.

use crate::support::app::*;
use ezenroll::actors::consumers::PROJECTOR_GROUP;
use ezenroll::domain::enrollment::CustomerNo;
use ezenroll::store::Store;
use serde_json::{Value, json};
use std::sync::Arc;

pub async fn a_repeated_idempotency_key_answers_the_first_response_and_acts_once(
    store: Arc<dyn Store>,
) {
    let mut app = spawn_app(store).await;
    let customer_no = app.customer("오세훈").await;
    let send = || {
        app.send(
            app.client
                .post(app.url("/enrollments"))
                .header("Idempotency-Key", "plan-1")
                .json(&plan_body(&customer_no)),
        )
    };
    let first = send().await;
    assert_eq!(first.status, 201, "{}", first.text);
    let first_plan = first.text.clone();
    let second = send().await;
    assert_eq!(second.status, 201);
    assert_eq!(second.text, first.text);
    assert_eq!(second.headers["location"], first.headers["location"]);
    assert_eq!(second.headers["idempotent-replayed"], "true");

    // Concurrent repeats too.
    let (a, b) = tokio::join!(send(), send());
    assert_eq!(a.text, first.text);
    assert_eq!(b.text, first.text);

    // A different key is a different request.
    let other = app
        .send(
            app.client
                .post(app.url("/enrollments"))
                .header("Idempotency-Key", "plan-2")
                .json(&plan_body(&customer_no)),
        )
        .await;
    assert_eq!(other.status, 201);
    assert_ne!(other.body["id"], first.body["id"]);

    let views = app
        .eventually("both enrollments in the read model", || async {
            let a = app.get(&format!("/mypage?customerNo={customer_no}")).await;
            a.body.as_array().filter(|v| v.len() >= 2).map(|v| v.len())
        })
        .await;
    assert_eq!(views, 2, "exactly two enrollments were created");

    // Refusals are kept as well: the same key answers the same problem.
    let key = "bad-plan";
    let mut bad = plan_body(&customer_no);
    bad["coveragePeriod"] = json!(7);
    let refuse = || {
        app.send(
            app.client
                .post(app.url("/enrollments"))
                .header("Idempotency-Key", key)
                .json(&bad),
        )
    };
    let first = refuse().await;
    first.assert_problem(422, "underwriting");
    let again = refuse().await;
    assert_eq!(again.text, first.text);
    assert_eq!(again.content_type(), "application/problem+json");

    // The same key with another body is another request: refused, nothing done, and the
    // first answer still kept for the first body.
    let mut other_terms = plan_body(&customer_no);
    other_terms["sumInsured"] = json!(50_000_000);
    let reused = post_keyed(&app, "/enrollments", "plan-1", &other_terms).await;
    let problem = reused.assert_problem(422, "idempotency-key-reused");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("another body")),
        "{}",
        reused.text
    );
    assert!(!reused.headers.contains_key("idempotent-replayed"));
    let again = send().await;
    assert_eq!(again.text, first_plan);
    let mypage = app.get(&format!("/mypage?customerNo={customer_no}")).await;
    assert_eq!(
        mypage.body.as_array().map(Vec::len),
        Some(2),
        "{}",
        mypage.text
    );

    let bad_key = app
        .send(
            app.client
                .post(app.url("/customers"))
                .header("Idempotency-Key", "")
                .json(&json!({})),
        )
        .await;
    bad_key.assert_problem(400, "malformed-header");
    app.stop().await;
}

/// `POST path` with an `Idempotency-Key`.
async fn post_keyed(caller: &Caller, path: &str, key: &str, body: &Value) -> Answer {
    caller
        .send(
            caller
                .client
                .post(caller.url(path))
                .header("Idempotency-Key", key)
                .json(body),
        )
        .await
}

/// The same keyed request sent to two servers at once: exactly one of them does the work
/// (a 201 that is not a replay); the other answers the kept first answer or, while the first
/// is still working, 409 `idempotency-key-in-use` with `Retry-After`. Retried after the
/// first finished, it gets the replay on either server. Returns the first answer.
async fn race(a: &Caller, b: &Caller, path: &str, key: &str, body: &Value) -> Answer {
    let (on_a, on_b) = tokio::join!(
        post_keyed(a, path, key, body),
        post_keyed(b, path, key, body)
    );
    let is_original =
        |x: &Answer| x.status == 201 && !x.headers.contains_key("idempotent-replayed");
    assert_eq!(
        usize::from(is_original(&on_a)) + usize::from(is_original(&on_b)),
        1,
        "exactly one server does {key}: A {on_a:?}, B {on_b:?}"
    );
    let (first, other) = if is_original(&on_a) {
        (on_a, on_b)
    } else {
        (on_b, on_a)
    };
    match other.status {
        201 => {
            assert_eq!(other.headers["idempotent-replayed"], "true", "{other:?}");
            assert_eq!(other.text, first.text);
            assert_eq!(other.headers["location"], first.headers["location"]);
        }
        409 => {
            other.assert_problem(409, "idempotency-key-in-use");
            let retry_after: u64 = other.headers["retry-after"]
                .to_str()
                .expect("a header")
                .parse()
                .expect("seconds");
            assert!(retry_after >= 1, "{other:?}");
        }
        _ => panic!("neither the replay nor 409 for {key}: {other:?} (first: {first:?})"),
    }
    // The first one has answered, so its answer is kept: a retry anywhere replays it.
    for server in [a, b] {
        let again = post_keyed(server, path, key, body).await;
        assert_eq!(again.status, 201, "{}", again.text);
        assert_eq!(again.headers["idempotent-replayed"], "true", "{again:?}");
        assert_eq!(again.text, first.text);
        assert_eq!(again.headers["location"], first.headers["location"]);
    }
    first
}

/// Two copies of the service (two engines, two listeners) on one store, as behind a load
/// balancer: a keyed request sent to both at once is done once, because the key is claimed
/// in the store and not in a process; and what one server writes, the other reads.
pub async fn two_servers_on_one_store_do_a_keyed_request_once_and_share_data(
    store: Arc<dyn Store>,
) {
    let mut a = spawn_app(Arc::clone(&store)).await;
    let mut b = spawn_app(Arc::clone(&store)).await;

    // Customer registrations, raced a few times (either outcome of a race is fine, two
    // registrations are not): the numbers handed out are consecutive, one per key.
    let mut numbers = Vec::new();
    for round in 0..4 {
        let body = json!({"name": format!("경합{round}"), "birthDate": "1986-05-01",
                          "gender": "female", "mobilePhone": "010-2222-3333"});
        let first = race(&a, &b, "/customers", &format!("customer-{round}"), &body).await;
        let no = first.body["customerNo"]
            .as_str()
            .expect("a customer number");
        numbers.push(CustomerNo::parse(no).expect("a customer number").get());
    }
    let after = b.customer("나중").await;
    numbers.push(CustomerNo::parse(&after).expect("a customer number").get());
    assert!(
        numbers.windows(2).all(|w| w[1] == w[0] + 1),
        "one customer per key, none twice: {numbers:?}"
    );

    // Registered through A, readable through B (and the same through both).
    let customer_no = a.customer("공유고객").await;
    let on_a = a.get(&format!("/customers/{customer_no}")).await;
    let on_b = b.get(&format!("/customers/{customer_no}")).await;
    assert_eq!(on_b.status, 200, "{}", on_b.text);
    assert_eq!(on_b.body, on_a.body);
    assert_eq!(on_b.body["name"], "공유고객");

    // A plan save raced the same way creates one enrollment, which both servers show.
    let planned = race(
        &a,
        &b,
        "/enrollments",
        "plan-on-two",
        &plan_body(&customer_no),
    )
    .await;
    let id = planned.body["id"].as_str().expect("an id").to_owned();
    for server in [&a, &b] {
        let got = server.get(&format!("/enrollments/{id}")).await;
        assert_eq!(got.status, 200, "{}", got.text);
        assert_eq!(got.body["status"], "Planned");
        assert_eq!(got.body["customerNo"], customer_no.as_str());
    }
    // Once the read model has handled everything in the log, it holds that one enrollment
    // and no other.
    let views = a
        .eventually("the read model to catch up", || async {
            let lag = store.lag(PROJECTOR_GROUP).await.expect("lag");
            let listed = b.get(&format!("/mypage?customerNo={customer_no}")).await;
            let views = listed.body.as_array().cloned().unwrap_or_default();
            (lag == 0 && !views.is_empty()).then_some(views)
        })
        .await;
    assert_eq!(views.len(), 1, "{views:?}");
    assert_eq!(views[0]["enrollmentId"], id.as_str(), "{views:?}");

    a.stop().await;
    b.stop().await;
}

/// One key on one resource is one request, however the path spells the enrollment's id:
/// in capitals, without dashes or with a trailing slash, the repeat gets the first answer
/// and the plan is re-saved once.
pub async fn a_key_names_the_resource_however_its_path_spells_it(store: Arc<dyn Store>) {
    let mut app = spawn_app(store).await;
    let customer = app.customer("표기").await;
    let id = app.plan(&customer).await;
    let body = plan_body(&customer);
    let spellings = [
        format!("/enrollments/{id}/plan"),
        format!("/enrollments/{}/plan", id.to_uppercase()),
        format!("/enrollments/{}/plan", id.replace('-', "")),
        format!("/enrollments/{id}/plan/"),
    ];
    for (i, path) in spellings.iter().enumerate() {
        let a = app
            .send(
                app.client
                    .put(app.url(path))
                    .header("idempotency-key", "resave-once")
                    .json(&body),
            )
            .await;
        assert_eq!(a.status, 200, "{path}: {}", a.text);
        let replayed = a.headers.get("idempotent-replayed").is_some();
        assert_eq!(replayed, i > 0, "{path}");
    }
    let events = app.get(&format!("/enrollments/{id}/events")).await;
    let resaved = events
        .body
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["type"] == "PlanResaved")
        .count();
    assert_eq!(resaved, 1);
    app.stop().await;
}
