//! Products: every stored version, by code then version.

use super::store::MemoryStore;
use crate::domain::product::ProductSpec;
use crate::store::error::StoreResult;
use crate::store::locks::lock;
use crate::store::products::{ProductStore, product_conflict, stored_version};
use async_trait::async_trait;

#[async_trait]
impl ProductStore for MemoryStore {
    async fn put_product(&self, spec: &ProductSpec) -> StoreResult<()> {
        let version = stored_version(spec)?;
        let mut products = lock(&self.products);
        let key = (spec.code.clone(), version);
        if products.contains_key(&key) {
            let latest = products
                .range((spec.code.clone(), 0)..=(spec.code.clone(), u32::MAX))
                .next_back()
                .map_or(version, |((_, v), _)| *v);
            return Err(product_conflict(&spec.code, version, latest));
        }
        products.insert(key, spec.clone());
        Ok(())
    }

    async fn products(&self) -> StoreResult<Vec<ProductSpec>> {
        Ok(lock(&self.products).values().cloned().collect())
    }
}
