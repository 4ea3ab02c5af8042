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

async fn redis() -> Arc<dyn Store> {
    static N: AtomicU64 = AtomicU64::new(0);
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into());
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
