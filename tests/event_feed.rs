//! The event-feed suite (tests/common/event_feed_suite.rs) on the memory backend.
//! tests/http_redis.rs runs the same checks on Redis.

#[allow(dead_code, unused_macros)]
#[path = "common/store_contract.rs"]
mod store_contract;
#[macro_use]
#[path = "common/event_feed_suite.rs"]
mod event_feed_suite;

use ezenroll::store::Store;
use ezenroll::store::memory::MemoryStore;
use std::sync::Arc;

fn memory() -> Arc<dyn Store> {
    Arc::new(MemoryStore::new(4))
}

event_feed_suite!(event_feed_suite, memory());
