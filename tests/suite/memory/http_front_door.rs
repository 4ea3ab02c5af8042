//! The front-door suite (tests/suite/http/front_door.rs) on the memory backend; it does
//! not depend on the store, so Redis does not run it again.

use crate::http::front_door as http_front_door_suite;

use ezenroll::store::Store;
use ezenroll::store::memory::MemoryStore;
use std::sync::Arc;

fn memory() -> Arc<dyn Store> {
    Arc::new(MemoryStore::new(4))
}

http_front_door_suite!(http_front_door_suite, memory());
