//! Product documents: the long poll that waits for one, and serving them by number.

use crate::support::app::*;
use ezenroll::store::Store;
use std::sync::Arc;
use std::time::Duration;

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
