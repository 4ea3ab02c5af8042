//! The graceful-shutdown suite (tests/suite/shutdown.rs) on the memory backend.
//! tests/suite/redis_backend/http.rs runs the same checks on Redis.

use crate::shutdown as shutdown_suite;

use ezenroll::store::Store;
use ezenroll::store::memory::MemoryStore;
use std::sync::Arc;

fn memory() -> Arc<dyn Store> {
    Arc::new(MemoryStore::new(4))
}

shutdown_suite!(shutdown_suite, memory());
