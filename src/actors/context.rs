//! What every actor of the engine shares: the store, the settings, the payment client,
//! the catalog snapshot and the waiters ([`Deps`]), and the parts a caller may plug in
//! ([`Extensions`]).

use super::config::EngineConfig;
use super::error::EngineError;
use super::notifier::AlarmChannel;
use super::payment::{PaymentClient, PaymentProvider};
use crate::domain::catalog::Catalog;
use crate::domain::enrollment::{Command, Enrollment, EnrollmentId, IdHash};
use crate::store::{Store, StoreError};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, RwLock};

/// A test hook run inside the enrollment's `catch_unwind` before each domain decision, so
/// recovery tests can make one enrollment's handling panic.
pub type ChaosHook = Arc<dyn Fn(EnrollmentId, &Command) + Send + Sync>;

#[derive(Debug, Default)]
pub struct EngineStats {
    pub restarts: AtomicU64,
    pub passivated: AtomicU64,
}

/// Woken with the enrollment's new version and state after an append.
pub type Waiter = tokio::sync::oneshot::Sender<(u64, Arc<Enrollment>)>;

/// What every actor of the engine shares.
pub struct Deps {
    pub store: Arc<dyn Store>,
    pub config: EngineConfig,
    pub payment: PaymentClient,
    pub stats: EngineStats,
    pub chaos: Option<ChaosHook>,
    /// Wakes the timer loop when a timer is set that is due before its next poll.
    pub timer_wake: tokio::sync::Notify,
    /// Callers waiting for an enrollment to change (see `wait_for`), woken after each
    /// operation that appended to that enrollment in this process, with its final state.
    pub waiters: dashmap::DashMap<EnrollmentId, Vec<Waiter>, IdHash>,
    /// Which partitions this copy owns, and their fencing numbers for appends.
    pub ownership: Arc<super::ownership::Ownership>,
    /// Readers take a snapshot (an `Arc` clone) and never hold the lock while pricing.
    catalog: RwLock<Arc<Catalog>>,
}

impl Deps {
    /// The shared context over `store`, pricing against `catalog` until it is reloaded.
    pub(super) fn new(
        store: Arc<dyn Store>,
        config: EngineConfig,
        payment: PaymentClient,
        chaos: Option<ChaosHook>,
        catalog: Catalog,
        ownership: Arc<super::ownership::Ownership>,
    ) -> Deps {
        Deps {
            store,
            config,
            payment,
            stats: EngineStats::default(),
            chaos,
            timer_wake: tokio::sync::Notify::new(),
            waiters: dashmap::DashMap::default(),
            ownership,
            catalog: RwLock::new(Arc::new(catalog)),
        }
    }

    /// Wakes the callers waiting for this enrollment (`wait_for`) with its new state.
    /// Called by its actor once an operation is done and its state committed.
    pub fn wake_waiters(&self, id: EnrollmentId, version: u64, state: Arc<Enrollment>) {
        if !self.waiters.is_empty()
            && let Some((_, waiting)) = self.waiters.remove(&id)
        {
            for waiter in waiting {
                let _ = waiter.send((version, Arc::clone(&state)));
            }
        }
    }

    pub fn catalog(&self) -> Arc<Catalog> {
        match self.catalog.read() {
            Ok(c) => Arc::clone(&c),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Reloads the catalog from the store if it holds product versions this one lacks.
    /// A store error is logged and the current catalog kept.
    pub(super) async fn reload_catalog(&self) {
        match self.store.products().await {
            Ok(specs) if specs.len() != self.catalog().versions() => {
                let mut catalog = Catalog::new();
                for spec in specs {
                    let code = spec.code.clone();
                    if let Err(e) = catalog.register(spec) {
                        tracing::error!(product = %code, error = %e, "a stored product does not load");
                        return;
                    }
                }
                self.set_catalog(catalog);
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot reload the product catalog"),
        }
    }

    pub(super) fn set_catalog(&self, catalog: Catalog) {
        let catalog = Arc::new(catalog);
        match self.catalog.write() {
            Ok(mut c) => *c = catalog,
            Err(poisoned) => *poisoned.into_inner() = catalog,
        }
    }
}

/// Optional parts to plug in instead of the defaults.
#[derive(Default, Clone)]
pub struct Extensions {
    pub payment_provider: Option<Arc<dyn PaymentProvider>>,
    pub alarm_channel: Option<Arc<dyn AlarmChannel>>,
    pub chaos: Option<ChaosHook>,
}

/// The catalog of the products in `store`; with `seed_demo`, an empty store is given the
/// demo products first.
pub(super) async fn load_catalog(
    store: &dyn Store,
    seed_demo: bool,
) -> Result<Catalog, EngineError> {
    let mut specs = store.products().await?;
    if specs.is_empty() && seed_demo {
        for mut spec in crate::domain::catalog::demo_specs() {
            spec.version = Some(1);
            match store.put_product(&spec).await {
                // Another process seeded it first: fine, read theirs below.
                Ok(()) | Err(StoreError::Conflict { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        specs = store.products().await?;
    }
    let mut catalog = Catalog::new();
    for spec in specs {
        let code = spec.code.clone();
        catalog.register(spec).map_err(|e| {
            EngineError::Internal(format!("stored product {code} does not load: {e}"))
        })?;
    }
    Ok(catalog)
}
