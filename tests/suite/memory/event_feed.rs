//! The event-feed suite (tests/suite/event_feed.rs) on the memory backend.
//! tests/suite/redis_backend/http.rs runs the same checks on Redis.

use crate::event_feed as event_feed_suite;

use ezenroll::store::Store;
use ezenroll::store::memory::MemoryStore;
use std::sync::Arc;

fn memory() -> Arc<dyn Store> {
    Arc::new(MemoryStore::new(4))
}

event_feed_suite!(event_feed_suite, memory());
