//! The event-feed suite (tests/common/event_feed_suite.rs) on the memory backend.
//! tests/http_redis.rs runs the same checks on Redis.

use crate::event_feed as event_feed_suite;

use ezenroll::store::Store;
use ezenroll::store::memory::MemoryStore;
use std::sync::Arc;

fn memory() -> Arc<dyn Store> {
    Arc::new(MemoryStore::new(4))
}

event_feed_suite!(event_feed_suite, memory());
