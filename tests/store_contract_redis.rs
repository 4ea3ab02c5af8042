//! The store contract (tests/common/store_contract.rs) against the Redis backend: the very
//! checks the memory backend passes, each on its own redis-server (or, with `REDIS_URL`, on
//! that server under a key prefix of its own).

#[macro_use]
#[path = "common/store_contract.rs"]
mod store_contract;

use ezenroll::store::Store;
use ezenroll::store::redis::{RedisConfig, RedisStore};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

fn url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into())
}

async fn redis() -> Arc<dyn Store> {
    redis_store().await
}

async fn redis_store() -> Arc<RedisStore> {
    static N: AtomicU64 = AtomicU64::new(0);
    let url = url();
    let prefix = format!(
        "t{}-{}-{}:",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        uuid::Uuid::new_v4().simple()
    );
    let store = RedisStore::connect(RedisConfig::new(url).with_prefix(prefix).with_partitions(4))
        .await
        .expect("connect to redis");
    Arc::new(store)
}

store_contract_suite!(store_contract, redis().await);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn corrupt_snapshot_is_an_error() {
    let store = redis_store().await;
    let keys = Arc::clone(&store);
    let url = url();
    store_contract::corrupt_snapshot_is_an_error(store, |id| async move {
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
