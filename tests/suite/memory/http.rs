//! The HTTP suite (tests/suite/http) on the memory backend.
//! tests/suite/redis_backend/http.rs runs the same checks on Redis.

use crate::http as http_suite;

use ezenroll::store::Store;
use ezenroll::store::memory::MemoryStore;
use std::sync::Arc;

fn memory() -> Arc<dyn Store> {
    Arc::new(MemoryStore::new(4))
}

http_suite!(http_suite, memory());
