//! Products: every version of every product spec, stored once each.

use super::error::{StoreError, StoreResult, rejected};
use crate::domain::product::ProductSpec;
use async_trait::async_trait;

#[async_trait]
pub trait ProductStore: Send + Sync {
    /// Stores one version of a product (its spec carries the version). Storing a version
    /// that exists is a conflict.
    async fn put_product(&self, spec: &ProductSpec) -> StoreResult<()>;
    /// Every stored version of every product, by code then version.
    async fn products(&self) -> StoreResult<Vec<ProductSpec>>;
}

/// The version a product spec is stored under; a spec without one is refused (the catalog
/// numbers versions before storing).
pub(crate) fn stored_version(spec: &ProductSpec) -> StoreResult<u32> {
    spec.version.ok_or_else(|| {
        rejected(format!(
            "product {} carries no version; the catalog numbers versions before storing",
            spec.code
        ))
    })
}

/// The conflict of storing version `version` of product `code` again; `latest` is the
/// newest version stored.
pub(crate) fn product_conflict(code: &str, version: u32, latest: u32) -> StoreError {
    StoreError::Conflict {
        key: format!("product:{code}:{version}"),
        expected: u64::from(version),
        actual: u64::from(latest),
    }
}
