//! The metrics suite (tests/suite/http/metrics.rs) on the memory backend.
//! tests/suite/redis_backend/http.rs runs the same checks on Redis.

use crate::http::metrics as http_metrics_suite;

use ezenroll::store::Store;
use ezenroll::store::memory::MemoryStore;
use std::sync::Arc;

fn memory() -> Arc<dyn Store> {
    Arc::new(MemoryStore::new(4))
}

http_metrics_suite!(http_metrics_suite, memory());
