//! The engine suite (tests/suite/engine) on the memory backend.

use crate::engine as engine_suite;

use ezenroll::store::Store;
use ezenroll::store::memory::MemoryStore;
use std::sync::Arc;

fn memory() -> Arc<dyn Store> {
    Arc::new(MemoryStore::new(4))
}

engine_suite!(engine_suite, memory());

#[actix_rt::test]
async fn a_corrupt_snapshot_fails_only_its_enrollment() {
    let store = Arc::new(MemoryStore::new(4));
    let corrupted = Arc::clone(&store);
    engine_suite::a_corrupt_snapshot_fails_only_its_enrollment(store, |id| async move {
        assert!(corrupted.corrupt_snapshot_for_test(id));
    })
    .await;
}
