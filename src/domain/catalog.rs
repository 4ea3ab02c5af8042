//! The product catalog: every version of every product, priced (joined to its shared
//! commutation columns) once when it is registered, so quotes only read.

use super::premium::{PricedProduct, TableCache};
use super::product::{InvalidProduct, Product, ProductSpec};
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    #[error(transparent)]
    Invalid(#[from] InvalidProduct),
    #[error("product {code} is at version {current}; the next version is {next}, not {given}")]
    VersionConflict {
        code: String,
        current: u32,
        next: u32,
        given: u32,
    },
}

/// Cheap to clone (the products and columns are shared), so a copy can be changed and
/// swapped in while readers keep the snapshot they hold.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// Versions of a product in order; version v is at index v − 1.
    products: BTreeMap<String, Vec<Arc<PricedProduct>>>,
    tables: TableCache,
}

impl Catalog {
    pub fn new() -> Catalog {
        Catalog::default()
    }

    /// The built-in demo products: 이지 정기보험 (EZ-TERM), 이지 종신보험 (EZ-WL) and
    /// 이지 양로보험 (EZ-ENDOW), on the SULT at Korean-market interest rates.
    pub fn demo() -> Catalog {
        let mut catalog = Catalog::new();
        for spec in demo_specs() {
            // The demo products are compiled in, not input: a refusal is a bug in
            // demo_catalog.json, caught by the tests, and must not start an empty catalog.
            #[allow(clippy::expect_used)]
            catalog
                .register(spec)
                .expect("every demo product is a valid definition");
        }
        catalog
    }

    /// Adds a product, or a new version of one. A spec that names a version must name
    /// the next one (a stale writer gets a conflict, not an overwrite).
    pub fn register(&mut self, spec: ProductSpec) -> Result<Arc<PricedProduct>, CatalogError> {
        let given = spec.version;
        let product = Product::new(spec)?;
        let versions = self
            .products
            .get(product.code().as_str())
            .map_or(0, Vec::len);
        let current = u32::try_from(versions).unwrap_or(u32::MAX);
        let next = current.saturating_add(1);
        if let Some(given) = given
            && given != next
        {
            return Err(CatalogError::VersionConflict {
                code: product.code().to_string(),
                current,
                next,
                given,
            });
        }
        let product = product.with_version(next);
        let priced = Arc::new(PricedProduct::new(product, &mut self.tables));
        self.products
            .entry(priced.product().code().to_string())
            .or_default()
            .push(Arc::clone(&priced));
        Ok(priced)
    }

    /// Prices a product that is not registered (a quote that brings its own definition),
    /// sharing this catalog's columns where the table and interest are the same.
    pub fn price_unregistered(&self, spec: ProductSpec) -> Result<PricedProduct, InvalidProduct> {
        let mut tables = self.tables.clone();
        Ok(PricedProduct::new(Product::new(spec)?, &mut tables))
    }

    pub fn latest(&self, code: &str) -> Option<&Arc<PricedProduct>> {
        self.products.get(code).and_then(|v| v.last())
    }

    pub fn version(&self, code: &str, version: u32) -> Option<&Arc<PricedProduct>> {
        let index = usize::try_from(version.checked_sub(1)?).ok()?;
        self.products.get(code).and_then(|v| v.get(index))
    }

    /// The latest version of every product, by code.
    pub fn latest_all(&self) -> impl Iterator<Item = &Arc<PricedProduct>> {
        self.products.values().filter_map(|v| v.last())
    }

    pub fn len(&self) -> usize {
        self.products.len()
    }

    pub fn is_empty(&self) -> bool {
        self.products.is_empty()
    }

    /// Product versions held, all products together.
    pub fn versions(&self) -> usize {
        self.products.values().map(Vec::len).sum()
    }

    /// Distinct commutation column sets held (products on the same basis share one).
    pub fn column_sets(&self) -> usize {
        self.tables.len()
    }
}

/// The demo product definitions, as JSON a user could POST.
pub fn demo_specs() -> Vec<ProductSpec> {
    #[allow(clippy::expect_used)]
    serde_json::from_str(include_str!("demo_catalog.json"))
        .expect("demo_catalog.json is a list of product definitions")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_catalog_registers_every_product() {
        let specs = demo_specs();
        assert_eq!(specs.len(), 3);
        let catalog = Catalog::demo();
        assert_eq!(catalog.len(), 3);
        for code in ["EZ-TERM", "EZ-WL", "EZ-ENDOW"] {
            let p = catalog.latest(code).expect("demo product");
            assert_eq!(p.product().version(), 1);
        }
        // Three SULT products at three interest rates: three column sets.
        assert_eq!(catalog.column_sets(), 3);
    }

    #[test]
    fn versions_are_numbered_and_kept() {
        let mut catalog = Catalog::demo();
        let mut spec = demo_specs().remove(0);
        spec.rate_basis.interest = 0.02;
        let v2 = catalog.register(spec.clone()).expect("v2");
        assert_eq!(v2.product().version(), 2);
        assert_eq!(
            catalog.latest("EZ-TERM").map(|p| p.product().version()),
            Some(2)
        );
        let v1 = catalog.version("EZ-TERM", 1).expect("v1 kept");
        assert!((v1.product().interest() - 0.025).abs() < 1e-12);
        assert!(catalog.version("EZ-TERM", 0).is_none());
        assert!(catalog.version("EZ-TERM", 3).is_none());

        spec.version = Some(2);
        match catalog.register(spec) {
            Err(CatalogError::VersionConflict {
                current: 2,
                next: 3,
                given: 2,
                ..
            }) => {}
            other => panic!("expected a version conflict, got {other:?}"),
        }
    }
}
