//! The whole journey over HTTP, health, bursts, and a graceful stop.

use crate::support::app::*;
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
