//! What an abuse probe sends: arrays for objects, numbers and dates out of range, control
//! characters, huge strings, deep nesting, duplicate keys, bodies that are not JSON,
//! queries out of range. Each is a 4xx problem naming what was wrong, and the store is
//! left as it was: no event appended, no product, no customer number taken.

use crate::support::app::*;
use ezenroll::domain::enrollment::CustomerNo;
use ezenroll::store::Store;
use serde_json::{Value, json};
use std::sync::Arc;

/// The store's state that any write would change.
#[derive(Debug, PartialEq)]
struct Mark {
    log_end: Vec<String>,
    products: usize,
}

async fn mark(app: &TestApp) -> Mark {
    Mark {
        log_end: app.store.log_end().await.expect("the log's end"),
        products: app.store.products().await.expect("the products").len(),
    }
}

/// Asserts nothing was written since `before`, and that the next customer registered
/// takes the number after `last_customer` (a refused registration took none).
async fn assert_nothing_stored(app: &TestApp, before: &Mark, last_customer: &str) {
    assert_eq!(
        &mark(app).await,
        before,
        "a refused request wrote to the store"
    );
    let last = CustomerNo::parse(last_customer).expect("a customer number");
    let next = CustomerNo::new(last.get() + 1);
    assert!(
        app.store.customer(next).await.expect("a read").is_none(),
        "{next} was registered by a refused request"
    );
}

/// Arrays where objects belong, at the top and nested, on every route that takes a body:
/// 400 naming the place and saying that an object was expected.
pub async fn arrays_for_objects_are_400_naming_the_place(store: Arc<dyn Store>) {
    let mut app = spawn_app(store).await;
    let customer_no = app.customer("배열검사").await;
    let id = app.plan(&customer_no).await;
    let product = app.get("/products/EZ-TERM").await.body;
    let before = mark(&app).await;

    let mut sult_as_array = product.clone();
    sult_as_array["rateBasis"]["mortality"] = json!(["sult"]);
    let mut table_as_array = product.clone();
    table_as_array["rateBasis"]["mortality"] = json!({"table": "custom", "male": [0, [0.1, 1.0]], "female": {"startAge": 0, "qx": [0.1, 1.0]}});
    let mut range_as_array = product.clone();
    range_as_array["underwriting"]["entryAge"] = json!([20, 60]);
    let mut quote_insured = quote_body();
    quote_insured["insured"] = json!(["1986-05-01", "male"]);
    let mut inline = quote_body();
    inline.as_object_mut().map(|o| o.remove("productCode"));
    inline["product"] = json!(["EZ-X", "x", 1, "term"]);

    let plan_path = format!("/enrollments/{id}/plan");
    let proposal_path = format!("/enrollments/{id}/proposal");
    let cases: Vec<(&str, &str, Value, &str)> = vec![
        (
            "POST",
            "/customers",
            json!(["배열", "1986-05-01", "male", "010-1234-5678"]),
            "",
        ),
        (
            "POST",
            "/enrollments",
            json!([customer_no, "EZ-TERM", 100_000_000u64, 20, 20, "monthly"]),
            "",
        ),
        (
            "PUT",
            &plan_path,
            json!([customer_no, "EZ-TERM", 100_000_000u64, 20, 20, "monthly"]),
            "",
        ),
        ("POST", &proposal_path, json!(["card"]), ""),
        ("POST", "/products", json!([product.clone()]), ""),
        (
            "PUT",
            "/products/EZ-TERM",
            sult_as_array,
            "rateBasis.mortality",
        ),
        (
            "POST",
            "/products",
            table_as_array,
            "rateBasis.mortality.male",
        ),
        ("POST", "/products", range_as_array, "underwriting.entryAge"),
        ("POST", "/quotes", quote_insured.clone(), "insured"),
        ("POST", "/quotes", json!([quote_insured]), "[0].insured"),
        ("POST", "/quotes", json!([[quote_body()]]), "[0]"),
        ("POST", "/quotes", inline, "product"),
    ];
    for (method, path, body, at) in cases {
        let request = match method {
            "PUT" => app.client.put(app.url(path)),
            _ => app.client.post(app.url(path)),
        };
        let a = app.send(request.json(&body)).await;
        let what = format!("{method} {path} {body}");
        let problem = a.assert_problem(400, "malformed-request");
        let detail = problem["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains("expected a JSON object"),
            "{what}: {}",
            a.text
        );
        if at.is_empty() {
            assert!(problem.get("path").is_none(), "{what}: {}", a.text);
        } else {
            assert_eq!(problem["path"], at, "{what}: {}", a.text);
        }
    }
    assert_nothing_stored(&app, &before, &customer_no).await;
    let state = app.get(&format!("/enrollments/{id}")).await;
    assert_eq!(
        (
            state.body["status"].as_str(),
            state.body["version"].as_u64()
        ),
        (Some("Planned"), Some(1)),
        "{}",
        state.text
    );
    app.stop().await;
}

/// Query parameters out of range or of the wrong kind: 400 `malformed-query` naming the
/// parameter, whatever the route. Ids in a path are 404, as ids that name nothing are.
pub async fn bad_queries_are_400_naming_the_parameter(store: Arc<dyn Store>) {
    let mut app = spawn_app(store).await;
    let customer_no = app.customer("질의검사").await;
    let id = app.plan(&customer_no).await;
    let long = "A".repeat(10_000);
    let one = format!("/enrollments/{id}");
    let cases: Vec<(String, &str)> = vec![
        ("/enrollments?limit=0".into(), "limit"),
        ("/enrollments?limit=1001".into(), "limit"),
        ("/enrollments?limit=-1".into(), "limit"),
        ("/enrollments?limit=99999999999999999999999".into(), "limit"),
        ("/enrollments?limit=1&limit=2".into(), "limit"),
        ("/enrollments?cursor=%00%01".into(), "cursor"),
        ("/enrollments?cursor=%EA%B0%80".into(), "cursor"),
        ("/enrollments?productCode=ez-term".into(), "productCode"),
        ("/enrollments?productCode=%00".into(), "productCode"),
        (format!("/enrollments?productCode={long}"), "productCode"),
        (format!("/enrollments?customerNo={long}"), "customerNo"),
        ("/enrollments?status=".into(), "status"),
        ("/enrollments?sort=name".into(), "sort"),
        ("/mypage?limit=0".into(), "limit"),
        ("/mypage?limit=5000".into(), "limit"),
        ("/mypage?customerNo=C1".into(), "customerNo"),
        ("/mypage?status=Sleeping".into(), "status"),
        ("/alarms?limit=99999".into(), "limit"),
        ("/alarms?customerNo=%00".into(), "customerNo"),
        ("/alarms?x=1".into(), "x"),
        ("/events/stream?enrollmentId=xyz".into(), "enrollmentId"),
        ("/events/stream?customerNo=xyz".into(), "customerNo"),
        ("/events/stream?nope=1".into(), "nope"),
        (format!("{one}?waitSeconds=31"), "waitSeconds"),
        (format!("{one}?waitSeconds=-1"), "waitSeconds"),
        (format!("{one}?waitSeconds=1e3"), "waitSeconds"),
        (format!("{one}?waitSeconds="), "waitSeconds"),
        (format!("{one}?waitSeconds={long}"), "waitSeconds"),
        (format!("{one}?waitWhileStatus=Bogus"), "waitWhileStatus"),
        (format!("{one}?bogus=1"), "bogus"),
        ("/products/EZ-TERM?version=-1".into(), "version"),
        ("/products/EZ-TERM?version=4294967296".into(), "version"),
        ("/products/EZ-TERM?v=1".into(), "v"),
    ];
    for (path, names) in &cases {
        let a = if path.starts_with("/events/stream") {
            match app.open_stream(path).await {
                Ok(_) => panic!("{path} opened a stream"),
                Err(a) => a,
            }
        } else {
            app.get(path).await
        };
        let what = &path[..path.len().min(120)];
        let problem = a.assert_problem(400, "malformed-query");
        let detail = problem["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(names), "{what}: {detail}");
        // A refused value is named, not sent back whole.
        assert!(
            detail.len() < 400,
            "{what}: a detail of {} bytes",
            detail.len()
        );
    }
    // In range, the same parameters answer.
    for path in [
        "/enrollments?limit=1".to_owned(),
        "/enrollments?limit=1000&productCode=EZ-TERM".to_owned(),
        "/mypage?limit=1000".to_owned(),
        "/alarms?limit=1".to_owned(),
        format!("{one}?waitSeconds=0&waitWhileStatus=Planned"),
    ] {
        let a = app.get(&path).await;
        assert_eq!(a.status, 200, "{path}: {}", a.text);
    }
    for path in [
        "/enrollments/not-an-id".to_owned(),
        format!("/enrollments/{id}x"),
        "/customers/C1".to_owned(),
        format!("/customers/{long}"),
        "/mypage/%00".to_owned(),
        format!("/enrollments/{id}/documents/%00"),
    ] {
        app.get(&path).await.assert_problem(404, "not-found");
    }
    app.stop().await;
}
