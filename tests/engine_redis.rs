//! The engine suite (tests/common/engine_suite.rs) on the Redis backend: the very checks
//! the memory backend passes, each on its own redis-server started for it (or, with
//! `REDIS_URL`, on that server under a key prefix of its own).

#[macro_use]
#[path = "common/engine_suite.rs"]
mod engine_suite;
#[path = "common/redis.rs"]
mod redis_fixture;

use ezenroll::store::Store;
use ezenroll::store::redis::RedisStore;
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
        let client = redis::Client::open(url).expect("url");
        let mut con = client
            .get_multiplexed_async_connection()
            .await
            .expect("connect");
        let _: () = redis::cmd("HSET")
            .arg(keys.enrollment_key(id))
            .arg("s")
            .arg(&b"\x01garbage"[..])
            .query_async(&mut con)
            .await
            .expect("HSET");
    })
    .await;
}

/// The product document is kept apart from the snapshot (`d`, written once when issued;
/// `s` is format 2 without it), and a record from before that (format 1: the document in
/// the snapshot, no `d`) goes on: it loads with its document, and its next transition
/// writes the document apart.
#[actix_rt::test]
async fn the_document_is_kept_apart_and_old_records_go_on() {
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
    let field_len = |key: String, field: &'static str| {
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
    let fresh =
        drive_to_document_issued(&h.engine, term_plan(customer.customer_no, 100_000_000)).await;
    let old =
        drive_to_document_issued(&h.engine, term_plan(customer.customer_no, 100_000_000)).await;
    let body_len = fresh
        .state
        .document
        .as_ref()
        .expect("a document")
        .body
        .len();
    assert!(body_len > 500, "a real document: {body_len} bytes");

    // Issued: the document is in `d`, the snapshot is small and says "format 2".
    let key = store.enrollment_key(fresh.state.id);
    assert!(field_len(key.clone(), "d").await >= body_len);
    assert!(field_len(key.clone(), "s").await < body_len);
    let s: Vec<u8> = redis::cmd("HGET")
        .arg(&key)
        .arg("s")
        .query_async(&mut con)
        .await
        .expect("HGET s");
    assert_eq!(s[0], codec::SPLIT_SNAPSHOT_FORMAT);

    // The other one as an older build wrote it: format 1, no `d`.
    let old_key = store.enrollment_key(old.state.id);
    let format1 = codec::encode_snapshot(&old.state).expect("encodes");
    let _: () = redis::pipe()
        .cmd("HSET")
        .arg(&old_key)
        .arg("s")
        .arg(format1)
        .ignore()
        .cmd("HDEL")
        .arg(&old_key)
        .arg("d")
        .ignore()
        .query_async(&mut con)
        .await
        .expect("rewrite as format 1");
    h.engine.shutdown().await;

    // A new engine (nothing cached) reads both with their documents and carries both on.
    let h = start_default(Arc::clone(&store) as Arc<dyn Store>).await;
    for before in [&fresh, &old] {
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
            "stored with its document"
        );
    }
    // The old record now keeps its document apart too, and both snapshots stayed small.
    assert!(field_len(old_key.clone(), "d").await >= body_len);
    assert!(field_len(old_key, "s").await < body_len);
    assert!(field_len(key, "s").await < body_len);

    // A plan re-saved after issuance has no document: `d` goes with it.
    let resaved =
        drive_to_document_issued(&h.engine, term_plan(customer.customer_no, 100_000_000)).await;
    let resaved_key = store.enrollment_key(resaved.state.id);
    assert!(field_len(resaved_key.clone(), "d").await >= body_len);
    let again = h
        .engine
        .resave_plan(
            resaved.state.id,
            term_plan(customer.customer_no, 150_000_000),
        )
        .await
        .expect("re-saved");
    assert_eq!(again.state.document, None);
    assert_eq!(
        field_len(resaved_key, "d").await,
        0,
        "the document is dropped"
    );
    h.engine.shutdown().await;
}
