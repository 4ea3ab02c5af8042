//! The store contract (tests/common/store_contract.rs) against the Redis backend: the very
//! checks the memory backend passes, each on its own redis-server started for it (or, with
//! `REDIS_URL`, on that server under a key prefix of its own).

#[macro_use]
#[path = "common/store_contract.rs"]
mod store_contract;
#[path = "common/redis.rs"]
mod redis_fixture;

use ezenroll::store::Store;
use ezenroll::store::redis::{RedisConfig, RedisStore};
use redis_fixture::TestRedis;
use std::sync::Arc;

/// A store on a fresh Redis; the server lives as long as the store.
async fn redis_store() -> (Arc<RedisStore>, String) {
    let redis = TestRedis::new();
    let url = redis.url();
    let config = RedisConfig::new(url.clone())
        .with_prefix(redis.prefix())
        .with_partitions(4);
    let store = RedisStore::connect(config)
        .await
        .expect("connect to the test's redis-server")
        .with_guard(redis);
    (Arc::new(store), url)
}

async fn redis() -> Arc<dyn Store> {
    redis_store().await.0
}

store_contract_suite!(store_contract, redis().await);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn corrupt_snapshot_is_an_error() {
    let (store, url) = redis_store().await;
    let keys = Arc::clone(&store);
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

/// Partitioning changes nothing: the log checks again with one partition and with many.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_log_contract_holds_for_any_partition_count() {
    for partitions in [1, 7] {
        let make = || async move {
            let redis = TestRedis::new();
            let config = RedisConfig::new(redis.url())
                .with_prefix(redis.prefix())
                .with_partitions(partitions);
            let store = RedisStore::connect(config)
                .await
                .expect("connect")
                .with_guard(redis);
            Arc::new(store) as Arc<dyn Store>
        };
        store_contract::events_reach_their_partition_once(make().await).await;
        store_contract::consumers_of_a_group_share_entries(make().await).await;
        store_contract::lag_counts_unread_and_pending(make().await).await;
        store_contract::timers_claim_lease_move_and_cancel(make().await).await;
    }
}
