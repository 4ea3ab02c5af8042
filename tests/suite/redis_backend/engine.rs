//! The engine suite (tests/suite/engine) on the Redis backend: the very checks
//! the memory backend passes, each on its own redis-server started for it (or, with
//! `REDIS_URL`, on that server under a key prefix of its own).

use crate::engine as engine_suite;
use crate::support::old_formats;
use crate::support::redis_fixture;

use ezenroll::store::redis::RedisStore;
use ezenroll::store::{EnrollmentStore, Store};
use std::sync::Arc;

/// A store on a fresh Redis, and the URL to reach that Redis.
async fn redis_store() -> (Arc<RedisStore>, String) {
    redis_fixture::ezenroll_store(4).await
}

async fn redis() -> Arc<dyn Store> {
    redis_store().await.0
}

engine_suite!(engine_suite, redis().await);

/// The snapshot is the `s` field of the enrollment's hash; garbage there does not decode.
#[actix_rt::test]
async fn a_corrupt_snapshot_fails_only_its_enrollment() {
    let (store, url) = redis_store().await;
    let keys = Arc::clone(&store);
    engine_suite::a_corrupt_snapshot_fails_only_its_enrollment(store, |id| async move {
        super::corrupt_snapshot(&url, &keys.enrollment_key(id)).await;
    })
    .await;
}

/// The product document's text is kept once, apart (`doc:<number>`, written by the append
/// that issued it); the snapshot (format 3) and the events only name it. Records in older
/// formats go on: format 1 (the document whole in the snapshot) and format 2 (its text in
/// `d`) load with their documents, their text moves to `doc:<number>`, and their next
/// transition writes a format-3 snapshot without losing it.
#[actix_rt::test]
async fn the_document_text_is_kept_apart_and_old_records_go_on() {
    use engine_suite::fixtures::*;
    use ezenroll::domain::enrollment::{PaymentMethod, Status};
    use ezenroll::store::codec;

    let (store, url) = redis_store().await;
    let client = redis::Client::open(url).expect("url");
    let mut con = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let reader = con.clone();
    let field_len = |key: String, field: String| {
        let mut con = reader.clone();
        async move {
            let len: usize = redis::cmd("HSTRLEN")
                .arg(key)
                .arg(field)
                .query_async(&mut con)
                .await
                .expect("HSTRLEN");
            len
        }
    };

    let h = start_default(Arc::clone(&store) as Arc<dyn Store>).await;
    let customer = register_customer(&h.engine, "문서분리").await;
    let mut issued = Vec::new();
    for _ in 0..3 {
        issued.push(
            drive_to_document_issued(&h.engine, term_plan(customer.customer_no, 100_000_000)).await,
        );
    }
    let [fresh, old1, old2] = [0, 1, 2].map(|i| issued[i].clone());
    let mut texts = Vec::new();
    for e in &issued {
        texts.push(h.engine.document(e.state.id).await.expect("the text"));
    }
    let body_len = texts[0].body.len();
    assert!(body_len > 500, "a real document: {body_len} bytes");
    let doc_field = |i: usize| format!("doc:{}", texts[i].document_no);

    // Issued: the text is in its field, the snapshot is small and says "format 3".
    let key = store.enrollment_key(fresh.state.id);
    assert!(field_len(key.clone(), doc_field(0)).await >= body_len);
    assert!(field_len(key.clone(), "s".into()).await < body_len);
    let s: Vec<u8> = redis::cmd("HGET")
        .arg(&key)
        .arg("s")
        .query_async(&mut con)
        .await
        .expect("HGET s");
    assert_eq!(s[0], codec::SNAPSHOT_FORMAT);
    // The history and the stream name the document; its text is in neither.
    let history: Vec<String> = redis::cmd("LRANGE")
        .arg(key.replace(":enr:", ":hist:"))
        .arg(0)
        .arg(-1)
        .query_async(&mut con)
        .await
        .expect("LRANGE");
    let issued_event = history
        .iter()
        .find(|e| e.contains("\"DocumentIssued\""))
        .expect("the event in the history");
    assert!(
        issued_event.contains(&texts[0].document_no),
        "{issued_event}"
    );
    assert!(issued_event.len() < body_len, "{issued_event}");

    // The other two in older formats: format 1 (no text apart) and format 2
    // (the text in `d`).
    let old1_key = store.enrollment_key(old1.state.id);
    let old2_key = store.enrollment_key(old2.state.id);
    let _: () = redis::pipe()
        .cmd("HSET")
        .arg(&old1_key)
        .arg("s")
        .arg(old_formats::format1(&old1.state, Some(&texts[1])))
        .ignore()
        .cmd("HDEL")
        .arg(&old1_key)
        .arg(doc_field(1))
        .ignore()
        .cmd("HSET")
        .arg(&old2_key)
        .arg("s")
        .arg(old_formats::format2(&old2.state, true))
        .arg("d")
        .arg(codec::encode_document(old2.state.id, &texts[2]).expect("encodes"))
        .ignore()
        .cmd("HDEL")
        .arg(&old2_key)
        .arg(doc_field(2))
        .ignore()
        .query_async(&mut con)
        .await
        .expect("rewrite in formats 1 and 2");
    h.engine.shutdown().await;

    // A new engine (nothing cached) reads all three with their documents and carries
    // them on.
    let h = start_default(Arc::clone(&store) as Arc<dyn Store>).await;
    for (i, before) in issued.iter().enumerate() {
        let id = before.state.id;
        let loaded = h.engine.enrollment(id).await.expect("loads");
        assert_eq!(loaded.state.document, before.state.document);
        let done = h
            .engine
            .submit_proposal(id, PaymentMethod::Card)
            .await
            .expect("contracted");
        assert_eq!(done.state.status, Status::Contracted);
        assert_eq!(done.state.document, before.state.document);
        let (_, stored) = stored(&(Arc::clone(&store) as Arc<dyn Store>), id).await;
        assert_eq!(
            stored.document, before.state.document,
            "stored with its reference"
        );
        assert_eq!(
            h.engine.document(id).await.expect("the text"),
            texts[i],
            "the text, {i}"
        );
        let key = store.enrollment_key(id);
        assert!(
            field_len(key.clone(), doc_field(i)).await >= body_len,
            "{i}"
        );
        assert!(field_len(key, "s".into()).await < body_len, "{i}");
    }

    // A plan re-saved after issuance names no document; the superseded text stays.
    let resaved =
        drive_to_document_issued(&h.engine, term_plan(customer.customer_no, 100_000_000)).await;
    let text = h.engine.document(resaved.state.id).await.expect("the text");
    let again = h
        .engine
        .resave_plan(
            resaved.state.id,
            term_plan(customer.customer_no, 150_000_000),
        )
        .await
        .expect("re-saved");
    assert_eq!(again.state.document, None);
    assert!(h.engine.document(resaved.state.id).await.is_err());
    assert_eq!(
        store
            .document(resaved.state.id, &text.document_no)
            .await
            .expect("read"),
        Some(text),
        "the superseded text stays"
    );
    h.engine.shutdown().await;
}
