//! The backend-agnostic suites on the Redis backend, each check on its own redis-server
//! started for it (or, with `REDIS_URL`, on that server under a key prefix of its own),
//! plus what only that backend has.

mod engine;
mod http;
mod payment_ledger;
mod retention;
mod store_contract;

/// Writes garbage where the enrollment hash `key` keeps its snapshot (field `s`).
async fn corrupt_snapshot(url: &str, key: &str) {
    let client = redis::Client::open(url).expect("url");
    let mut con = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let _: () = redis::cmd("HSET")
        .arg(key)
        .arg("s")
        .arg(&b"\x01garbage"[..])
        .query_async(&mut con)
        .await
        .expect("HSET");
}
