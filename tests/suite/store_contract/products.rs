//! Product definitions: versions per code, conflicts.

use ezenroll::store::{Store, StoreError};
use std::sync::Arc;

use super::fixtures::*;

pub async fn products_conflict_and_list_by_code_then_version(store: Arc<dyn Store>) {
    let spec = |code: &str, version: u32| {
        let mut spec = CATALOG
            .latest(code)
            .expect("demo product")
            .product()
            .spec()
            .clone();
        spec.version = Some(version);
        spec
    };
    // Stored out of order; 10 sorts after 2 (numbers, not text).
    for (code, version) in [
        ("EZ-WL", 1),
        ("EZ-TERM", 10),
        ("EZ-TERM", 1),
        ("EZ-TERM", 2),
    ] {
        store.put_product(&spec(code, version)).await.expect("put");
    }
    let mut changed = spec("EZ-TERM", 2);
    changed.name = "바뀐 이름".to_owned();
    assert!(matches!(
        store.put_product(&changed).await,
        Err(StoreError::Conflict { .. })
    ));
    let mut unversioned = spec("EZ-ENDOW", 1);
    unversioned.version = None;
    assert!(store.put_product(&unversioned).await.is_err());

    let listed = store.products().await.expect("products");
    let keys: Vec<(&str, Option<u32>)> = listed
        .iter()
        .map(|s| (s.code.as_str(), s.version))
        .collect();
    assert_eq!(
        keys,
        [
            ("EZ-TERM", Some(1)),
            ("EZ-TERM", Some(2)),
            ("EZ-TERM", Some(10)),
            ("EZ-WL", Some(1)),
        ]
    );
    assert_eq!(listed[1], spec("EZ-TERM", 2), "the first write is kept");
}
