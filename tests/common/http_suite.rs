//! The HTTP gateway as a client sees it: a real server on port 0, a real HTTP client,
//! every route of the enrollment journey and every class of error. Eventually-consistent
//! things (document issuance, read model, alarms, refunds) are polled for, never timed.
//!
//! Every check takes nothing but an `Arc<dyn Store>` (fresh and empty), so the memory
//! backend (tests/http.rs) and Redis (tests/http_redis.rs) run the very same suite. A runner
//! mounts this file as a module named `http_suite` and expands [`http_suite!`] with an
//! expression that makes a store (it may `.await`). The fixtures it shares with other
//! suites are the runner's to mount, at its root: `common/http.rs` as `app` (so a binary
//! running several suites, as tests/http_redis.rs does, holds one copy of them):
//!
//! ```ignore
//! #[path = "common/http.rs"]
//! mod app;
//! #[macro_use]
//! #[path = "common/http_suite.rs"]
//! mod http_suite;
//! http_suite!(http_suite, Arc::new(MemoryStore::new(4)));
//! ```

/// One `#[actix_rt::test]` per check. `$module` is the name this file is mounted under;
/// `$make` makes a fresh store and may `.await`.
macro_rules! http_suite {
    ($module:ident, $make:expr) => {
        http_suite!(
            @each $module, $make;
            health_endpoints_answer,
            the_whole_journey_from_product_to_withdrawal,
            a_quote_burst_answers_in_order,
            malformed_bodies_are_400_naming_the_field,
            unknown_things_are_404_and_wrong_methods_405,
            illegal_transitions_are_409_with_the_current_status,
            underwriting_refusals_are_422_with_every_violation,
            product_writes_version_and_refuse_bad_definitions,
            a_declined_payment_is_402_and_a_retry_can_succeed,
            an_unavailable_payment_is_503_with_retry_after,
            bodies_over_the_limit_are_413,
            a_repeated_idempotency_key_answers_the_first_response_and_acts_once,
            two_servers_on_one_store_do_a_keyed_request_once_and_share_data,
            graceful_shutdown_stops_accepting,
            a_long_poll_answers_when_the_document_is_issued,
            documents_are_served_by_number_with_their_digest_as_etag,
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

use crate::app::*;
use ezenroll::actors::consumers::PROJECTOR_GROUP;
use ezenroll::actors::payment::Simulation;
use ezenroll::domain::enrollment::CustomerNo;
use ezenroll::http::HttpConfig;
use ezenroll::store::Store;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

pub async fn health_endpoints_answer(store: Arc<dyn Store>) {
    let backend = store.backend();
    let mut app = spawn_app(store).await;
    let live = app.get("/livez").await;
    assert_eq!(live.status, 200);
    assert_eq!(live.body["status"], "ok");
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status, 200);
    assert_eq!(ready.body["store"], backend);
    app.stop().await;
}

pub async fn the_whole_journey_from_product_to_withdrawal(store: Arc<dyn Store>) {
    let mut app = spawn_app(store).await;

    let products = app.get("/products").await;
    assert_eq!(products.status, 200);
    let codes: Vec<&str> = products
        .body
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|p| p["code"].as_str())
        .collect();
    assert!(codes.contains(&"EZ-TERM"), "{codes:?}");
    let term = app.get("/products/EZ-TERM").await;
    assert_eq!(term.status, 200);
    assert_eq!(term.body["version"], 1);

    let customer_no = app.customer("홍길동").await;
    let customer = app.get(&format!("/customers/{customer_no}")).await;
    assert_eq!(customer.status, 200);
    assert_eq!(customer.body["name"], "홍길동");

    let quote = app.post("/quotes", &quote_body()).await;
    assert_eq!(quote.status, 200, "{}", quote.text);
    assert_eq!(quote.body["insuranceAge"], 41);

    let planned = app.post("/enrollments", &plan_body(&customer_no)).await;
    assert_eq!(planned.status, 201, "{}", planned.text);
    assert_eq!(planned.body["status"], "Planned");
    assert_eq!(planned.body["productVersion"], 1);
    assert!(planned.body["quote"]["installment"].as_u64().unwrap_or(0) > 0);
    let id = planned.body["id"].as_str().expect("an id").to_owned();
    assert_eq!(
        planned.headers["location"].to_str().expect("a location"),
        format!("/enrollments/{id}")
    );

    // Re-save with a bigger sum insured: a new quote, still Planned.
    let mut bigger = plan_body(&customer_no);
    bigger["sumInsured"] = json!(200_000_000u64);
    let resaved = app.put(&format!("/enrollments/{id}/plan"), &bigger).await;
    assert_eq!(resaved.status, 200, "{}", resaved.text);
    assert_eq!(resaved.body["planRevision"], 2);
    assert!(
        resaved.body["quote"]["installment"].as_u64()
            > planned.body["quote"]["installment"].as_u64()
    );

    let requested = app.post_empty(&format!("/enrollments/{id}/document")).await;
    assert_eq!(requested.status, 202, "{}", requested.text);
    assert_eq!(requested.body["status"], "DocumentRequested");
    let issued = app.wait_status(&id, "DocumentIssued").await;
    let document = app.get(&format!("/enrollments/{id}/document")).await;
    assert_eq!(document.status, 200, "{}", document.text);
    assert_eq!(document.body["planRevision"], 2);
    // The enrollment names its document and the digest of its text; the text is served
    // by the document resource only.
    let named = &issued["document"];
    assert_eq!(named["documentNo"], document.body["documentNo"]);
    assert_eq!(named["title"], document.body["title"]);
    assert!(
        named.get("body").is_none(),
        "no text in the enrollment: {named}"
    );
    let text = document.body["body"].as_str().expect("the text");
    assert!(text.contains("이지 정기보험"), "{text}");
    let digest = {
        use sha2::Digest;
        sha2::Sha256::digest(text.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    assert_eq!(named["bodySha256"], digest.as_str());

    let proposed = app
        .post(
            &format!("/enrollments/{id}/proposal"),
            &json!({"paymentMethod": "card"}),
        )
        .await;
    assert_eq!(proposed.status, 200, "{}", proposed.text);
    assert_eq!(proposed.body["status"], "Contracted");
    assert!(proposed.body["contractNo"].is_string());

    let view = app
        .eventually("the mypage view to show the contract", || async {
            let a = app.get(&format!("/mypage/{id}")).await;
            (a.status == 200 && a.body["status"] == "Contracted").then_some(a.body)
        })
        .await;
    assert_eq!(view["customerNo"], customer_no.as_str());
    let list = app
        .get(&format!(
            "/mypage?customerNo={customer_no}&status=Contracted"
        ))
        .await;
    assert_eq!(list.status, 200, "{}", list.text);
    assert_eq!(list.body.as_array().map(Vec::len), Some(1));

    app.eventually("an alarm for the contract", || async {
        let a = app.get(&format!("/alarms?customerNo={customer_no}")).await;
        let found = a.body.as_array().is_some_and(|alarms| {
            alarms
                .iter()
                .any(|x| x["status"] == "Contracted" && x["enrollmentId"] == id.as_str())
        });
        found.then_some(())
    })
    .await;

    let withdrawal = app
        .post_empty(&format!("/enrollments/{id}/withdrawal"))
        .await;
    assert_eq!(withdrawal.status, 202, "{}", withdrawal.text);
    let withdrawn = app.wait_status(&id, "Withdrawn").await;
    assert!(withdrawn["refundId"].is_string(), "{withdrawn}");

    let events = app.get(&format!("/enrollments/{id}/events")).await;
    assert_eq!(events.status, 200);
    let types: Vec<&str> = events
        .body
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|e| e["type"].as_str())
        .collect();
    assert_eq!(types.first(), Some(&"PlanSaved"));
    assert!(types.len() >= 6, "{types:?}");
    app.stop().await;
}

pub async fn a_quote_burst_answers_in_order(store: Arc<dyn Store>) {
    let mut app = spawn_app(store).await;
    let mut burst = Vec::new();
    for i in 0..50u64 {
        let mut q = quote_body();
        q["sumInsured"] = json!(100_000_000 + i * 10_000_000);
        burst.push(q);
    }
    // One refused in the middle keeps its place.
    burst[7]["coveragePeriod"] = json!(7);
    let a = app.post("/quotes", &Value::Array(burst)).await;
    assert_eq!(a.status, 200, "{}", a.text);
    let answers = a.body.as_array().expect("an array");
    assert_eq!(answers.len(), 50);
    assert!(answers[7]["violations"].is_array());
    let installments: Vec<u64> = answers
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 7)
        .map(|(_, q)| q["installment"].as_u64().expect("an installment"))
        .collect();
    assert!(installments.windows(2).all(|w| w[0] < w[1]));

    let unknown = app
        .post("/quotes", &json!([quote_body(), {"productCode": "NOPE", "insured": {"birthDate": "1986-05-01", "gender": "male"}, "sumInsured": 1, "coveragePeriod": 20, "paymentPeriod": 20, "paymentCycle": "monthly"}]))
        .await;
    unknown.assert_problem(422, "unknown-product");
    assert_eq!(unknown.body["path"], "[1].productCode");
    app.stop().await;
}

pub async fn malformed_bodies_are_400_naming_the_field(store: Arc<dyn Store>) {
    let mut app = spawn_app(store).await;
    let customer_no = app.customer("김철수").await;

    let not_json = app.post_raw("/enrollments", "{not json").await;
    not_json.assert_problem(400, "malformed-request");

    let mut wrong_type = plan_body(&customer_no);
    wrong_type["sumInsured"] = json!("a lot");
    let a = app.post("/enrollments", &wrong_type).await;
    a.assert_problem(400, "malformed-request");
    assert_eq!(a.body["path"], "sumInsured");
    assert!(
        a.body["detail"]
            .as_str()
            .unwrap_or("")
            .contains("sumInsured")
    );

    let mut unknown = plan_body(&customer_no);
    unknown["discount"] = json!(true);
    let a = app.post("/enrollments", &unknown).await;
    a.assert_problem(400, "malformed-request");
    assert!(a.body["detail"].as_str().unwrap_or("").contains("discount"));

    let a = app
        .post(
            "/customers",
            &json!({"name": "이영희", "birthDate": "1986-13-01", "gender": "female", "mobilePhone": "010-1111-2222"}),
        )
        .await;
    a.assert_problem(400, "malformed-request");
    assert_eq!(a.body["path"], "birthDate");

    let a = app
        .post_raw("/quotes", r#"{"productCode": "EZ-TERM", "insured": 5}"#)
        .await;
    a.assert_problem(400, "malformed-request");
    assert_eq!(a.body["path"], "insured");

    let a = app.get("/mypage?status=Sleeping").await;
    a.assert_problem(400, "malformed-query");
    app.stop().await;
}

pub async fn unknown_things_are_404_and_wrong_methods_405(store: Arc<dyn Store>) {
    let mut app = spawn_app(store).await;
    let nobody = "C999999999";
    app.get(&format!("/customers/{nobody}"))
        .await
        .assert_problem(404, "not-found");
    app.get("/customers/not-a-number")
        .await
        .assert_problem(404, "not-found");
    let ghost = "01900000-0000-7000-8000-000000000000";
    app.get(&format!("/enrollments/{ghost}"))
        .await
        .assert_problem(404, "not-found");
    app.get("/enrollments/xyz")
        .await
        .assert_problem(404, "not-found");
    app.post_empty(&format!("/enrollments/{ghost}/document"))
        .await
        .assert_problem(404, "not-found");
    app.get(&format!("/mypage/{ghost}"))
        .await
        .assert_problem(404, "not-found");
    app.get("/products/NOPE")
        .await
        .assert_problem(404, "not-found");
    app.get("/products/EZ-TERM?version=9")
        .await
        .assert_problem(404, "not-found");
    app.get("/no/such/route")
        .await
        .assert_problem(404, "not-found");
    app.post("/enrollments", &plan_body(nobody))
        .await
        .assert_problem(404, "not-found");
    app.send(app.client.delete(app.url("/products")))
        .await
        .assert_problem(405, "method-not-allowed");
    app.stop().await;
}

pub async fn illegal_transitions_are_409_with_the_current_status(store: Arc<dyn Store>) {
    let mut app = spawn_app(store).await;
    let customer_no = app.customer("박민수").await;
    let id = app.plan(&customer_no).await;
    // A proposal needs an issued document.
    let a = app
        .post(
            &format!("/enrollments/{id}/proposal"),
            &json!({"paymentMethod": "bankTransfer"}),
        )
        .await;
    a.assert_problem(409, "illegal-transition");
    assert_eq!(a.body["currentStatus"], "Planned");
    // Nothing was paid, so there is nothing to retry.
    let a = app.post_empty(&format!("/enrollments/{id}/payment")).await;
    a.assert_problem(409, "illegal-transition");
    assert_eq!(a.body["currentStatus"], "Planned");
    app.stop().await;
}

pub async fn underwriting_refusals_are_422_with_every_violation(store: Arc<dyn Store>) {
    let mut app = spawn_app(store).await;
    let customer_no = app.customer("최지우").await;
    let mut bad = plan_body(&customer_no);
    bad["sumInsured"] = json!(1_234u64);
    bad["coveragePeriod"] = json!(7);
    let a = app.post("/enrollments", &bad).await;
    a.assert_problem(422, "underwriting");
    let violations = a.body["violations"].as_array().expect("violations");
    assert!(violations.len() >= 2, "{}", a.text);
    assert!(violations.iter().all(|v| v["code"].is_string()));
    app.stop().await;
}

pub async fn product_writes_version_and_refuse_bad_definitions(store: Arc<dyn Store>) {
    let mut app = spawn_app(store).await;
    let mut spec = app.get("/products/EZ-TERM").await.body;
    let spec_obj = spec.as_object_mut().expect("a product object");
    spec_obj.remove("version");
    spec_obj.insert("code".to_owned(), json!("EZ-NEW"));
    spec_obj.insert("name".to_owned(), json!("새 정기보험"));

    let created = app.post("/products", &spec).await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.body["version"], 1);
    app.post("/products", &spec)
        .await
        .assert_problem(409, "conflict");

    let next = app.put("/products/EZ-NEW", &spec).await;
    assert_eq!(next.status, 201, "{}", next.text);
    assert_eq!(next.body["version"], 2);
    let v1 = app.get("/products/EZ-NEW?version=1").await;
    assert_eq!(v1.body["version"], 1);
    app.put("/products/EZ-GHOST", &{
        let mut s = spec.clone();
        s["code"] = json!("EZ-GHOST");
        s
    })
    .await
    .assert_problem(404, "not-found");

    let mut broken = spec.clone();
    broken["code"] = json!("EZ-BROKEN");
    broken["rateBasis"]["interest"] = json!(-0.5);
    broken["underwriting"]["entryAge"] = json!({"min": 60, "max": 20});
    let a = app.post("/products", &broken).await;
    a.assert_problem(422, "invalid-product");
    assert!(
        a.body["reasons"].as_array().map_or(0, Vec::len) >= 2,
        "{}",
        a.text
    );
    app.stop().await;
}

pub async fn a_declined_payment_is_402_and_a_retry_can_succeed(store: Arc<dyn Store>) {
    let sim = Simulation {
        decline_rate: 1.0,
        ..healthy()
    };
    let mut app = spawn_app_with(store, engine_config(), sim, http_config()).await;
    let customer_no = app.customer("정하늘").await;
    let id = app.issued(&customer_no).await;
    let a = app
        .post(
            &format!("/enrollments/{id}/proposal"),
            &json!({"paymentMethod": "card"}),
        )
        .await;
    a.assert_problem(402, "payment-declined");
    assert_eq!(a.body["currentStatus"], "PaymentFailed");

    app.provider.set_decline_rate(0.0);
    let paid = app.post_empty(&format!("/enrollments/{id}/payment")).await;
    assert_eq!(paid.status, 200, "{}", paid.text);
    assert_eq!(paid.body["status"], "Contracted");
    app.stop().await;
}

pub async fn an_unavailable_payment_is_503_with_retry_after(store: Arc<dyn Store>) {
    let sim = Simulation {
        failure_rate: 1.0,
        ..healthy()
    };
    let mut app = spawn_app_with(store, engine_config(), sim, http_config()).await;
    let customer_no = app.customer("한겨울").await;
    let id = app.issued(&customer_no).await;
    let a = app
        .post(
            &format!("/enrollments/{id}/proposal"),
            &json!({"paymentMethod": "card"}),
        )
        .await;
    a.assert_problem(503, "payment-unavailable");
    let retry_after: u64 = a.headers["retry-after"]
        .to_str()
        .expect("a header")
        .parse()
        .expect("seconds");
    assert!(retry_after >= 1);
    assert_eq!(a.body["currentStatus"], "PaymentFailed");
    app.stop().await;
}

pub async fn bodies_over_the_limit_are_413(store: Arc<dyn Store>) {
    let http = HttpConfig {
        body_limit: 1024,
        ..http_config()
    };
    let mut app = spawn_app_with(store, engine_config(), healthy(), http).await;
    let big = format!(r#"{{"name": "{}"}}"#, "가".repeat(2000));
    app.post_raw("/customers", &big)
        .await
        .assert_problem(413, "payload-too-large");
    // Chunked, no Content-Length: cut off as it passes the limit.
    let chunks: Vec<Result<String, std::io::Error>> = (0..8).map(|_| Ok("x".repeat(512))).collect();
    let stream = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    app.send(app.client.post(app.url("/quotes")).body(stream))
        .await
        .assert_problem(413, "payload-too-large");
    // Under the limit is fine.
    let ok = app.post("/quotes", &quote_body()).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    app.stop().await;
}

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

pub async fn graceful_shutdown_stops_accepting(store: Arc<dyn Store>) {
    let mut app = spawn_app(store).await;
    assert_eq!(app.get("/livez").await.status, 200);
    let addr = app.addr;
    app.stop().await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("a client");
    let refused = client.get(format!("http://{addr}/livez")).send().await;
    assert!(refused.is_err(), "the stopped server still answered");
}

/// `GET /enrollments/{id}?waitWhileStatus=DocumentRequested` waits for the document (one
/// request instead of a poll loop); bad wait parameters are 400 and change nothing.
pub async fn a_long_poll_answers_when_the_document_is_issued(store: Arc<dyn Store>) {
    let config = ezenroll::actors::EngineConfig {
        document_delay: Duration::from_millis(400),
        ..engine_config()
    };
    let mut app = spawn_app_with(store, config, healthy(), http_config()).await;
    let customer_no = app.customer("최장기").await;
    let id = app.plan(&customer_no).await;

    let planned = app
        .get(&format!(
            "/enrollments/{id}?waitWhileStatus=DocumentRequested"
        ))
        .await;
    assert_eq!(planned.status, 200, "{}", planned.text);
    assert_eq!(
        planned.body["status"], "Planned",
        "not in the status to wait on: answered at once"
    );

    for bad in [
        "waitWhileStatus=Sleeping",
        "waitWhileStatus=DocumentRequested&waitSeconds=31",
        "waitWhileStatus=DocumentRequested&waitSeconds=soon",
        "waitFor=DocumentIssued",
    ] {
        let problem = app.get(&format!("/enrollments/{id}?{bad}")).await;
        let detail = problem.assert_problem(400, "malformed-query")["detail"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let field = bad.split('=').next().unwrap_or_default();
        let named = if bad.contains("waitSeconds") {
            "waitSeconds"
        } else {
            field
        };
        assert!(detail.contains(named), "{bad}: {detail}");
    }

    let requested = app.post_empty(&format!("/enrollments/{id}/document")).await;
    assert_eq!(requested.status, 202, "{}", requested.text);
    let started = std::time::Instant::now();
    let issued = app
        .get(&format!(
            "/enrollments/{id}?waitWhileStatus=DocumentRequested&waitSeconds=10"
        ))
        .await;
    assert_eq!(issued.status, 200, "{}", issued.text);
    assert_eq!(
        issued.body["status"], "DocumentIssued",
        "the one request waited for the document"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "it answered when the document came, not at the end of the wait"
    );

    // Still requested when the wait ends: the current state, not an error.
    let other = app.plan(&customer_no).await;
    assert_eq!(
        app.post_empty(&format!("/enrollments/{other}/document"))
            .await
            .status,
        202
    );
    let unchanged = app
        .get(&format!(
            "/enrollments/{other}?waitWhileStatus=DocumentRequested&waitSeconds=0"
        ))
        .await;
    assert_eq!(unchanged.status, 200, "{}", unchanged.text);
    assert_eq!(unchanged.body["status"], "DocumentRequested");
    app.stop().await;
}

/// The enrollment names its document; the text is served with the SHA-256 the name gives
/// as its ETag, so a client that holds it revalidates with `If-None-Match` (304, no body).
/// Every document issued stays readable by number, one a re-saved plan superseded too.
pub async fn documents_are_served_by_number_with_their_digest_as_etag(store: Arc<dyn Store>) {
    let mut app = spawn_app(store).await;
    let customer_no = app.customer("문서번호").await;
    let id = app.issued(&customer_no).await;
    let first = app.get(&format!("/enrollments/{id}")).await.body["document"].clone();
    let first_no = first["documentNo"].as_str().expect("a number").to_owned();
    let tag = format!("\"{}\"", first["bodySha256"].as_str().expect("a digest"));
    let header = |a: &Answer, name: &str| {
        a.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let conditional = |path: String, candidates: &'static str| {
        let app = &app;
        let tag = tag.clone();
        async move {
            let value = candidates.replace("TAG", &tag);
            app.send(
                app.client
                    .get(app.url(&path))
                    .header("if-none-match", value),
            )
            .await
        }
    };

    let current = app.get(&format!("/enrollments/{id}/document")).await;
    assert_eq!(current.status, 200, "{}", current.text);
    assert_eq!(header(&current, "etag"), tag);
    assert_eq!(header(&current, "cache-control"), "private, no-cache");
    assert_eq!(current.body["documentNo"], first_no.as_str());
    let path = format!("/enrollments/{id}/document");
    for held in ["TAG", "W/TAG", "\"other\", TAG", "*"] {
        let again = conditional(path.clone(), held).await;
        assert_eq!(again.status, 304, "If-None-Match: {held}: {}", again.text);
        assert!(again.text.is_empty(), "no body: {}", again.text);
        assert_eq!(header(&again, "etag"), tag);
    }
    let changed = conditional(path, "\"0000\"").await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    assert_eq!(changed.body, current.body);

    // Re-saved: no current document, the first one still readable by number.
    let resaved = app
        .put(&format!("/enrollments/{id}/plan"), &plan_body(&customer_no))
        .await;
    assert_eq!(resaved.status, 200, "{}", resaved.text);
    assert!(resaved.body["document"].is_null(), "{}", resaved.text);
    app.get(&format!("/enrollments/{id}/document"))
        .await
        .assert_problem(404, "not-found");
    let by_number = format!("/enrollments/{id}/documents/{first_no}");
    let old = app.get(&by_number).await;
    assert_eq!(old.status, 200, "{}", old.text);
    assert_eq!(old.body, current.body);
    assert_eq!(header(&old, "etag"), tag);
    assert_eq!(conditional(by_number, "TAG").await.status, 304);

    // The next document has a number of its own; both are there.
    let requested = app.post_empty(&format!("/enrollments/{id}/document")).await;
    assert_eq!(requested.status, 202, "{}", requested.text);
    let issued = app.wait_status(&id, "DocumentIssued").await;
    let second_no = issued["document"]["documentNo"]
        .as_str()
        .expect("a number")
        .to_owned();
    assert_ne!(second_no, first_no);
    let second = app
        .get(&format!("/enrollments/{id}/documents/{second_no}"))
        .await;
    assert_eq!(second.status, 200, "{}", second.text);
    assert_eq!(second.body["planRevision"], 2);
    assert_ne!(header(&second, "etag"), tag);
    app.get(&format!("/enrollments/{id}/documents/DOC-none"))
        .await
        .assert_problem(404, "not-found");
    app.get(&format!(
        "/enrollments/{}/documents/{first_no}",
        uuid::Uuid::now_v7()
    ))
    .await
    .assert_problem(404, "not-found");
    app.stop().await;
}
