//! Every class of error a client can meet, as problem details with the right status.

use crate::support::app::*;
use ezenroll::actors::payment::Simulation;
use ezenroll::http::HttpConfig;
use ezenroll::store::Store;
use serde_json::json;
use std::sync::Arc;

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

    // Nobody is registered before being born, nor under a name that shows nothing or
    // reads backwards; nothing is registered by such a request.
    let someone = |name: &str, born: &str| json!({"name": name, "birthDate": born, "gender": "female", "mobilePhone": "010-1111-2222"});
    for born in ["2099-01-01", "9999-12-31"] {
        let a = app.post("/customers", &someone("미래인", born)).await;
        let problem = a.assert_problem(422, "invalid-request");
        let detail = problem["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains("birthDate") && detail.contains(born),
            "{detail}"
        );
    }
    for name in ["\u{200b}\u{200b}", "\u{202e}evil\u{202c}"] {
        let a = app.post("/customers", &someone(name, "1990-01-01")).await;
        a.assert_problem(400, "malformed-request");
        assert_eq!(a.body["path"], "name", "{}", a.text);
    }
    let next = app.customer("다음고객").await;
    assert_eq!(
        next.trim_start_matches('C').parse::<u64>().ok(),
        customer_no
            .trim_start_matches('C')
            .parse::<u64>()
            .ok()
            .map(|n| n + 1),
        "the refused registrations took no number: {customer_no} then {next}"
    );
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

/// The `Allow` table describes the routes: every other method on a route's path is 405
/// naming exactly the table's methods, every listed one is not 405, and `HEAD` answers
/// what `GET` does, without a body.
pub async fn every_route_answers_its_methods_and_names_them_in_allow(store: Arc<dyn Store>) {
    use ezenroll::http::allow::{ROUTES, allow};
    let mut app = spawn_app(store).await;
    // The published contract is served as `ezenroll openapi` prints it (its unit tests
    // hold it to this table).
    let contract = app.get("/openapi.json").await;
    assert_eq!(contract.status, 200);
    assert_eq!(contract.content_type(), "application/json");
    assert_eq!(contract.text, ezenroll::http::openapi::document());
    let all = ["GET", "POST", "PUT", "DELETE", "PATCH"];
    for (pattern, methods) in ROUTES {
        let path = pattern.replace('*', "01900000-0000-7000-8000-000000000000");
        for method in all {
            // The event stream never ends; its GET is covered by its own suite.
            if path == "/events/stream" && method == "GET" {
                continue;
            }
            let m = reqwest::Method::from_bytes(method.as_bytes()).expect("a method");
            let a = app.send(app.client.request(m, app.url(&path))).await;
            if methods.contains(&method) {
                assert_ne!(a.status, 405, "{method} {path}: {}", a.text);
            } else {
                a.assert_problem(405, "method-not-allowed");
                let named = a.headers.get("allow").and_then(|v| v.to_str().ok());
                assert_eq!(named, allow(&path).as_deref(), "{method} {path}");
            }
        }
        if methods.contains(&"GET") && path != "/events/stream" {
            let get = app.send(app.client.get(app.url(&path))).await;
            let head = app.send(app.client.head(app.url(&path))).await;
            assert_eq!(head.status, get.status, "HEAD {path}");
            assert!(
                head.text.is_empty(),
                "HEAD {path} has a body: {}",
                head.text
            );
        }
    }
    app.stop().await;
}

/// A body must come as JSON: text/plain or no Content-Type is 415 naming what was sent,
/// and nothing is done; an empty body needs no type, and JSON with a charset is JSON.
pub async fn bodies_not_sent_as_json_are_415(store: Arc<dyn Store>) {
    let mut app = spawn_app(store).await;
    let customer =
        r#"{"name":"형식","birthDate":"1986-05-01","gender":"male","mobilePhone":"010-1234-5678"}"#;
    let plain = app
        .send(
            app.client
                .post(app.url("/customers"))
                .header("content-type", "text/plain")
                .body(customer),
        )
        .await;
    let p = plain.assert_problem(415, "unsupported-media-type");
    assert!(
        p["detail"]
            .as_str()
            .is_some_and(|d| d.contains("text/plain")),
        "{p}"
    );
    let untyped = app
        .send(app.client.post(app.url("/customers")).body(customer))
        .await;
    let p = untyped.assert_problem(415, "unsupported-media-type");
    assert!(
        p["detail"]
            .as_str()
            .is_some_and(|d| d.contains("no Content-Type")),
        "{p}"
    );
    // Nothing was registered by the refused requests: the next one is the first customer.
    let typed = app
        .send(
            app.client
                .post(app.url("/customers"))
                .header("content-type", "application/json; charset=utf-8")
                .body(customer),
        )
        .await;
    assert_eq!(typed.status, 201, "{}", typed.text);
    assert_eq!(typed.body["customerNo"], "C000000001");
    // A command without a body needs no Content-Type.
    let id = app.plan("C000000001").await;
    let document = app
        .send(
            app.client
                .post(app.url(&format!("/enrollments/{id}/document"))),
        )
        .await;
    assert_eq!(document.status, 202, "{}", document.text);
    app.stop().await;
}
