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
