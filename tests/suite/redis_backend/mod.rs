//! The backend-agnostic suites on the Redis backend, each check on its own redis-server
//! started for it (or, with `REDIS_URL`, on that server under a key prefix of its own),
//! plus what only that backend has.

mod engine;
mod http;
mod retention;
mod store_contract;
