//! Products: one hash of every version's JSON.

use super::encoding::{decode_json, encode_json};
use super::store::RedisStore;
use crate::domain::product::ProductSpec;
use crate::store::error::StoreResult;
use crate::store::products::{ProductStore, product_conflict, stored_version};
use async_trait::async_trait;

#[async_trait]
impl ProductStore for RedisStore {
    async fn put_product(&self, spec: &ProductSpec) -> StoreResult<()> {
        let version = stored_version(spec)?;
        let key = self.key("products");
        let field = format!("{}:{version}", spec.code);
        let json = encode_json(&field, spec)?;
        let stored: bool = self
            .query(redis::cmd("HSETNX").arg(&key).arg(&field).arg(json))
            .await?;
        if stored {
            return Ok(());
        }
        let latest = self
            .products()
            .await?
            .iter()
            .filter(|p| p.code == spec.code)
            .filter_map(|p| p.version)
            .max()
            .unwrap_or(version);
        Err(product_conflict(&spec.code, version, latest))
    }

    async fn products(&self) -> StoreResult<Vec<ProductSpec>> {
        let key = self.key("products");
        let all: Vec<Vec<u8>> = self.query(redis::cmd("HVALS").arg(&key)).await?;
        let mut products = all
            .iter()
            .map(|json| decode_json::<ProductSpec>(&key, json))
            .collect::<StoreResult<Vec<_>>>()?;
        products.sort_by(|a, b| (&a.code, a.version).cmp(&(&b.code, b.version)));
        Ok(products)
    }
}
