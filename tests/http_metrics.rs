//! The metrics suite (tests/common/http_metrics_suite.rs) on the memory backend.
//! tests/http_redis.rs runs the same checks on Redis.

#[path = "common/http.rs"]
mod app;
#[macro_use]
#[path = "common/http_metrics_suite.rs"]
mod http_metrics_suite;

use ezenroll::store::Store;
use ezenroll::store::memory::MemoryStore;
use std::sync::Arc;

fn memory() -> Arc<dyn Store> {
    Arc::new(MemoryStore::new(4))
}

http_metrics_suite!(http_metrics_suite, memory());
