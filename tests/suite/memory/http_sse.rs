//! The event-stream suite (tests/suite/http/sse.rs) on the memory backend.
//! tests/suite/redis_backend/http.rs runs the same checks on Redis.

use crate::http::sse as http_sse_suite;

use ezenroll::store::Store;
use ezenroll::store::memory::MemoryStore;
use std::sync::Arc;

fn memory() -> Arc<dyn Store> {
    Arc::new(MemoryStore::new(4))
}

http_sse_suite!(http_sse_suite, memory());
