//! The engine: starts the actors and services on a store and hands out an
//! [`EngineHandle`] with typed async methods for every command and query. `serve` and
//! the HTTP layer use only this.

use super::consumers::{self, AlarmChannel, ConsumerConfig, ConsumerHandle, StoreChannel};
use super::document::DocumentIssuer;
use super::enrollment::{Op, Outcome};
use super::feed::{EventFeed, FeedEvent};
use super::payment::{
    GatewayConfig, PaymentClient, PaymentProvider, SimulatedProvider, Simulation,
};
use super::registry::Registry;
use super::timers;
use crate::domain::catalog::{Catalog, CatalogError};
use crate::domain::customer::{Customer, NewCustomer};
use crate::domain::enrollment::{
    Command, CustomerNo, DocumentRef, DomainError, Enrollment, EnrollmentId, Event, PaymentFailure,
    PaymentMethod, PlanTerms, ProductDocument,
};
use crate::domain::money::Won;
use crate::domain::period::{CoveragePeriod, PaymentCycle, Years};
use crate::domain::premium::{PricedProduct, QuoteInput, Refusal};
use crate::domain::product::ProductSpec;
use crate::store::{Alarm, EventEnvelope, EventLog, MyPageView, Store, StoreError, ViewFilter};
use actix::{Actor, Addr};
use actix_rt::{Arbiter, ArbiterHandle};
use chrono::{DateTime, Utc};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::watch;

#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Arbiters (threads) the enrollment actors are spread over; default one per core.
    /// 0: no threads of its own; the actors, the payment gateway and the document issuer
    /// run on the arbiter of the actix System the engine is started in.
    pub arbiters: usize,
    /// How long document issuance takes (상품설명서 발행).
    pub document_delay: Duration,
    /// How long a saved plan stays valid before it expires.
    pub plan_ttl: Duration,
    /// How long after the proposal a customer may withdraw (청약철회 기간).
    pub withdrawal_period: Duration,
    /// An enrollment actor idle this long is passivated.
    pub passivate_after: Duration,
    /// How often the timer store is polled for due timers.
    pub timer_poll: Duration,
    /// How long a claimed timer is leased before it comes due again.
    pub timer_lease: Duration,
    /// First refund retry delay; doubles per attempt up to `refund_backoff_max`.
    pub refund_backoff_initial: Duration,
    pub refund_backoff_max: Duration,
    pub payment: GatewayConfig,
    /// Settings of the simulated payment provider used when none is given.
    pub simulation: Simulation,
    /// Both consumers' settings; `consumers.linger` is the Notifier's, the MyPage
    /// projector's is `projector_linger` ([`EngineConfig::consumer_config`]).
    pub consumers: ConsumerConfig,
    /// After a read that found less than a full batch, how long the MyPage projector lets
    /// events gather before reading again. A view is written once for all the events of an
    /// enrollment in a batch, so lingering writes fewer views (`ezenroll serve` lingers
    /// 20 ms by default, see `--mypage-linger`); views lag by up to this much more.
    pub projector_linger: Duration,
    /// Run the Notifier and MyPage projector in this process.
    pub run_notifier: bool,
    pub run_projector: bool,
    /// Unique per process: consumer names and logs.
    pub instance: String,
    /// Store the demo products when the store has none.
    pub seed_demo_products: bool,
    /// How often the product catalog is reloaded from the store, so products registered
    /// by another process sharing the store become visible here (an unknown product code
    /// also triggers a reload).
    pub catalog_refresh: Duration,
    /// Events a subscriber of the live feed may fall behind before it loses the oldest.
    pub event_feed_capacity: usize,
}

impl EngineConfig {
    /// The settings the consumer of `group` runs with: [`EngineConfig::consumers`], with
    /// the MyPage projector's own linger.
    pub fn consumer_config(&self, group: &str) -> ConsumerConfig {
        let mut config = self.consumers.clone();
        if group == consumers::PROJECTOR_GROUP {
            config.linger = self.projector_linger;
        }
        config
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            arbiters: std::thread::available_parallelism().map_or(2, usize::from),
            document_delay: Duration::from_secs(3),
            plan_ttl: Duration::from_secs(30 * 24 * 3600),
            withdrawal_period: Duration::from_secs(30 * 24 * 3600),
            passivate_after: Duration::from_secs(300),
            timer_poll: Duration::from_millis(100),
            timer_lease: Duration::from_secs(30),
            refund_backoff_initial: Duration::from_secs(1),
            refund_backoff_max: Duration::from_secs(300),
            payment: GatewayConfig::default(),
            simulation: Simulation::default(),
            consumers: ConsumerConfig::default(),
            projector_linger: consumers::DEFAULT_LINGER,
            run_notifier: true,
            run_projector: true,
            // Short: Redis writes the consumer name (`<instance>-<group>`) into the AOF
            // with every entry a group reads (an XCLAIM each), ten per enrollment. The
            // pid and 32 random bits tell processes apart.
            instance: format!(
                "{}-{:08x}",
                std::process::id(),
                uuid::Uuid::new_v4().as_u128() as u32
            ),
            seed_demo_products: true,
            catalog_refresh: Duration::from_secs(5),
            event_feed_capacity: 4096,
        }
    }
}

fn chrono_of(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl EngineConfig {
    pub fn document_delay_chrono(&self) -> chrono::Duration {
        chrono_of(self.document_delay)
    }

    pub fn withdrawal_period_chrono(&self) -> chrono::Duration {
        chrono_of(self.withdrawal_period)
    }

    /// Delay before refund attempt `attempt` (1-based): exponential, capped.
    pub fn refund_backoff(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(20));
        self.refund_backoff_initial
            .saturating_mul(factor)
            .min(self.refund_backoff_max)
    }
}

/// Why an engine call did not do what was asked. Business refusals (`Domain`,
/// `Underwriting`, `LimitExceeded`, `Payment`) never share a variant with infrastructure
/// failures (`Store`, `Internal`).
#[derive(Debug, Clone, thiserror::Error)]
pub enum EngineError {
    #[error("no such {0}")]
    NotFound(&'static str),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error("underwriting refused the plan: {0}")]
    Underwriting(Refusal),
    #[error(
        "the customer already holds {held} of the product; adding {requested} passes the cumulative limit {limit}"
    )]
    LimitExceeded {
        held: Won,
        limit: Won,
        requested: Won,
    },
    #[error("the first premium was not paid: {failure:?}")]
    Payment {
        failure: PaymentFailure,
        version: u64,
        state: Arc<Enrollment>,
    },
    #[error("the refund did not go through yet (attempt {attempt}); it is retried at {retry_at}")]
    RefundPending {
        attempt: u32,
        retry_at: DateTime<Utc>,
    },
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("internal error: {0}")]
    Internal(String),
    #[error("the engine is shutting down")]
    Stopping,
}

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
    pub waiters: dashmap::DashMap<EnrollmentId, Vec<Waiter>, crate::domain::enrollment::IdHash>,
    /// Readers take a snapshot (an `Arc` clone) and never hold the lock while pricing.
    catalog: RwLock<Arc<Catalog>>,
}

impl Deps {
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
    async fn reload_catalog(&self) {
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

    fn set_catalog(&self, catalog: Catalog) {
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

pub struct Engine;

impl Engine {
    /// Starts the engine on `store` with the simulated payment provider. Must be called
    /// inside an actix `System`.
    pub async fn start(
        config: EngineConfig,
        store: Arc<dyn Store>,
    ) -> Result<EngineHandle, EngineError> {
        Engine::start_with(config, store, Extensions::default()).await
    }

    pub async fn start_with(
        config: EngineConfig,
        store: Arc<dyn Store>,
        ext: Extensions,
    ) -> Result<EngineHandle, EngineError> {
        let catalog = load_catalog(store.as_ref(), config.seed_demo_products).await?;
        let provider = ext.payment_provider.unwrap_or_else(|| {
            Arc::new(SimulatedProvider::new(config.simulation, 0x5EED)) as Arc<dyn PaymentProvider>
        });
        let arbiters: Vec<Arbiter> = (0..config.arbiters).map(|_| Arbiter::new()).collect();
        // No arbiters of its own: everything runs on the System's arbiter, the thread
        // that runs the System (`serve --threads 1`).
        let handles: Vec<ArbiterHandle> = if arbiters.is_empty() {
            match actix_rt::System::try_current() {
                Some(system) => vec![system.arbiter().clone()],
                None => {
                    return Err(EngineError::Internal(
                        "an engine without arbiters needs a running actix System".to_owned(),
                    ));
                }
            }
        } else {
            arbiters.iter().map(Arbiter::handle).collect()
        };
        // The gateway and the issuer live on arbiters too, not on the caller's thread.
        let payment = PaymentClient::start(provider, config.payment, handles.first());
        let registry = Registry::new(handles.clone());
        let deps = Arc::new(Deps {
            store: Arc::clone(&store),
            config: config.clone(),
            payment,
            stats: EngineStats::default(),
            chaos: ext.chaos,
            timer_wake: tokio::sync::Notify::new(),
            waiters: dashmap::DashMap::default(),
            catalog: RwLock::new(Arc::new(catalog)),
        });
        let registry = Arc::new(registry);
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let issuer = {
            let (deps, registry) = (Arc::clone(&deps), Arc::clone(&registry));
            let arbiter = &handles[handles.len() - 1];
            DocumentIssuer::start_in_arbiter(arbiter, move |_| DocumentIssuer::new(deps, registry))
        };

        let tasks = vec![
            tokio::spawn(timers::run(
                Arc::clone(&deps),
                Arc::clone(&registry),
                issuer.clone(),
                shutdown_rx.clone(),
            )),
            tokio::spawn(passivation(
                Arc::clone(&deps),
                Arc::clone(&registry),
                shutdown_rx.clone(),
            )),
            tokio::spawn(refresh_catalog(Arc::clone(&deps), shutdown_rx.clone())),
        ];
        let mut consumers_running = Vec::new();
        if config.run_notifier {
            let channel = ext
                .alarm_channel
                .unwrap_or_else(|| Arc::new(StoreChannel) as Arc<dyn AlarmChannel>);
            consumers_running.push(
                consumers::start_notifier(
                    Arc::clone(&store),
                    config.consumer_config(consumers::NOTIFIER_GROUP),
                    &config.instance,
                    channel,
                )
                .await?,
            );
        }
        if config.run_projector {
            consumers_running.push(
                consumers::start_projector(
                    Arc::clone(&store),
                    config.consumer_config(consumers::PROJECTOR_GROUP),
                    &config.instance,
                )
                .await?,
            );
        }
        let feed = EventFeed::new(
            Arc::clone(&store) as Arc<dyn EventLog>,
            config.event_feed_capacity,
            shutdown_rx.clone(),
        );
        tracing::info!(backend = store.backend(), arbiters = config.arbiters, instance = %config.instance, "engine started");
        Ok(EngineHandle {
            inner: Arc::new(Inner {
                deps,
                registry,
                issuer,
                arbiters: Mutex::new(arbiters),
                shutdown: shutdown_tx,
                tasks: Mutex::new(tasks),
                consumers: Mutex::new(consumers_running),
                product_writes: tokio::sync::Mutex::new(()),
                feed,
            }),
        })
    }
}

async fn load_catalog(store: &dyn Store, seed_demo: bool) -> Result<Catalog, EngineError> {
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

/// Housekeeping now and then: reloads the catalog (another process may have registered a
/// product) and drops log entries every consumer group has acknowledged.
async fn refresh_catalog(deps: Arc<Deps>, mut shutdown: watch::Receiver<bool>) {
    let every = deps.config.catalog_refresh.max(Duration::from_millis(100));
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tokio::time::sleep(every) => {
                deps.reload_catalog().await;
                match deps.store.compact().await {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(entries = n, "compacted the event log"),
                    Err(e) => tracing::warn!(error = %e, "cannot compact the event log"),
                }
            }
        }
    }
}

async fn passivation(
    deps: Arc<Deps>,
    registry: Arc<Registry>,
    mut shutdown: watch::Receiver<bool>,
) {
    let idle = deps.config.passivate_after;
    let every = (idle / 4).clamp(Duration::from_millis(10), Duration::from_secs(30));
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tokio::time::sleep(every) => {
                let n = registry.passivate_idle(idle);
                deps.stats.passivated.fetch_add(n as u64, Ordering::Relaxed);
            }
        }
    }
}

struct Inner {
    deps: Arc<Deps>,
    registry: Arc<Registry>,
    issuer: Addr<DocumentIssuer>,
    arbiters: Mutex<Vec<Arbiter>>,
    shutdown: watch::Sender<bool>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    consumers: Mutex<Vec<ConsumerHandle>>,
    /// Product versions are numbered by the catalog: one writer at a time per process.
    product_writes: tokio::sync::Mutex<()>,
    feed: Arc<EventFeed>,
}

/// A plan as a customer asks for it: the insured comes from the customer record and the
/// quote is dated today (in Korea).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanRequest<'a> {
    pub customer_no: CustomerNo,
    pub product_code: &'a str,
    pub sum_insured: Won,
    pub coverage_period: CoveragePeriod,
    pub payment_period: Years,
    pub payment_cycle: PaymentCycle,
}

/// The enrollment and its version after a command.
#[derive(Debug, Clone)]
pub struct EnrollmentSnapshot {
    pub version: u64,
    pub state: Arc<Enrollment>,
    pub events: Vec<Arc<EventEnvelope>>,
}

impl From<Outcome> for EnrollmentSnapshot {
    fn from(o: Outcome) -> Self {
        EnrollmentSnapshot {
            version: o.version,
            state: o.state,
            events: o.events,
        }
    }
}

pub use crate::domain::time::korean_date as korean_today;

/// A cheap clone; every method is safe to call from any task.
#[derive(Clone)]
pub struct EngineHandle {
    inner: Arc<Inner>,
}

impl EngineHandle {
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.deps.store
    }

    pub fn config(&self) -> &EngineConfig {
        &self.inner.deps.config
    }

    /// The current catalog snapshot; quotes price against it without any actor.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.inner.deps.catalog()
    }

    pub fn stats(&self) -> &EngineStats {
        &self.inner.deps.stats
    }

    pub fn payment_stats(&self) -> &Arc<super::payment::GatewayStats> {
        self.inner.deps.payment.stats()
    }

    /// Live enrollment actors.
    pub fn active_actors(&self) -> usize {
        self.inner.registry.active()
    }

    /// Passivates every actor idle for at least `idle` now (instead of waiting for the
    /// sweeper); returns how many.
    pub fn passivate_idle(&self, idle: Duration) -> usize {
        let n = self.inner.registry.passivate_idle(idle);
        self.stats()
            .passivated
            .fetch_add(n as u64, Ordering::Relaxed);
        n
    }

    // ---- products

    /// Registers a product or a new version of one: stored first, then visible to quotes.
    pub async fn register_product(
        &self,
        spec: ProductSpec,
    ) -> Result<Arc<PricedProduct>, EngineError> {
        let _one_writer = self.inner.product_writes.lock().await;
        let mut next = (*self.catalog()).clone();
        let priced = next.register(spec)?;
        let stored = priced.product().spec().clone();
        match self.store().put_product(&stored).await {
            Ok(()) => {
                self.inner.deps.set_catalog(next);
                Ok(priced)
            }
            Err(e @ StoreError::Conflict { .. }) => {
                // Another process registered this version meanwhile: catch up, refuse.
                let fresh = load_catalog(self.store().as_ref(), false).await?;
                self.inner.deps.set_catalog(fresh);
                Err(e.into())
            }
            Err(e) => Err(e.into()),
        }
    }

    // ---- customers

    pub async fn register_customer(&self, new: NewCustomer) -> Result<Customer, EngineError> {
        Ok(self
            .store()
            .create_customer(new, crate::domain::time::now())
            .await?)
    }

    /// [`register_customer`](Self::register_customer) once per request (see
    /// [`CustomerStore::create_customer_for`](crate::store::CustomerStore::create_customer_for)).
    pub async fn register_customer_for(
        &self,
        request: &str,
        new: NewCustomer,
        keep: std::time::Duration,
    ) -> Result<Customer, EngineError> {
        Ok(self
            .store()
            .create_customer_for(request, new, crate::domain::time::now(), keep)
            .await?)
    }

    pub async fn customer(&self, no: CustomerNo) -> Result<Customer, EngineError> {
        self.store()
            .customer(no)
            .await?
            .ok_or(EngineError::NotFound("customer"))
    }

    // ---- enrollments

    async fn plan_terms(
        &self,
        request: &PlanRequest<'_>,
        now: DateTime<Utc>,
    ) -> Result<PlanTerms, EngineError> {
        let customer = self.customer(request.customer_no).await?;
        let mut catalog = self.catalog();
        if catalog.latest(request.product_code).is_none() {
            // Perhaps registered by another process moments ago.
            self.inner.deps.reload_catalog().await;
            catalog = self.catalog();
        }
        let product = catalog
            .latest(request.product_code)
            .ok_or(EngineError::NotFound("product"))?;
        let input = QuoteInput {
            insured: customer.insured(),
            quote_date: korean_today(now),
            sum_insured: request.sum_insured,
            coverage: request.coverage_period,
            payment_period: request.payment_period,
            cycle: request.payment_cycle,
        };
        PlanTerms::quote(product, &input).map_err(EngineError::Underwriting)
    }

    fn plan_expiry(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now + chrono_of(self.config().plan_ttl)
    }

    async fn send(&self, id: EnrollmentId, op: Op) -> Result<EnrollmentSnapshot, EngineError> {
        self.inner
            .registry
            .call(id, &self.inner.deps, op)
            .await
            .map(EnrollmentSnapshot::from)
    }

    /// 가입설계 저장: quotes and saves a new plan; the enrollment starts `Planned`.
    pub async fn save_plan(
        &self,
        request: PlanRequest<'_>,
    ) -> Result<EnrollmentSnapshot, EngineError> {
        self.save_plan_as(EnrollmentId::new(), request).await
    }

    /// [`save_plan`](Self::save_plan) under an id the caller chose (one derived from an
    /// idempotency key). If that enrollment exists already the answer is
    /// `DomainError::AlreadyStarted` and nothing is written.
    pub async fn save_plan_as(
        &self,
        id: EnrollmentId,
        request: PlanRequest<'_>,
    ) -> Result<EnrollmentSnapshot, EngineError> {
        let now = crate::domain::time::now();
        let plan = self.plan_terms(&request, now).await?;
        let command = Command::SavePlan {
            id,
            customer_no: request.customer_no,
            plan: Arc::new(plan),
            now,
            expires_at: self.plan_expiry(now),
        };
        self.inner
            .registry
            .call_new(id, &self.inner.deps, Op::Execute(command))
            .await
            .map(EnrollmentSnapshot::from)
    }

    /// Re-saves the plan with a new quote (before a proposal).
    pub async fn resave_plan(
        &self,
        id: EnrollmentId,
        request: PlanRequest<'_>,
    ) -> Result<EnrollmentSnapshot, EngineError> {
        let current = self.enrollment(id).await?;
        if current.state.customer_no != request.customer_no {
            return Err(EngineError::Domain(DomainError::WrongCustomer {
                expected: current.state.customer_no,
                given: request.customer_no,
            }));
        }
        let now = crate::domain::time::now();
        let plan = self.plan_terms(&request, now).await?;
        let command = Command::ResavePlan {
            plan: Arc::new(plan),
            now,
            expires_at: self.plan_expiry(now),
        };
        self.send(id, Op::Execute(command)).await
    }

    /// 상품설명서 발행 요청: issued after the configured delay, also across restarts.
    pub async fn request_document(
        &self,
        id: EnrollmentId,
    ) -> Result<EnrollmentSnapshot, EngineError> {
        self.send(
            id,
            Op::Execute(Command::RequestDocument {
                now: crate::domain::time::now(),
            }),
        )
        .await
    }

    /// 청약: submits the proposal and pays the first premium. `Ok` is `Contracted`; a
    /// payment that did not go through is `Err(Payment)` with the enrollment left in
    /// `PaymentFailed` (retry allowed).
    pub async fn submit_proposal(
        &self,
        id: EnrollmentId,
        method: PaymentMethod,
    ) -> Result<EnrollmentSnapshot, EngineError> {
        self.send(
            id,
            Op::Propose {
                method,
                now: crate::domain::time::now(),
            },
        )
        .await
    }

    pub async fn retry_payment(&self, id: EnrollmentId) -> Result<EnrollmentSnapshot, EngineError> {
        self.send(
            id,
            Op::RetryPayment {
                now: crate::domain::time::now(),
            },
        )
        .await
    }

    /// 청약철회: the paid premium is refunded in the background, retried until confirmed.
    pub async fn request_withdrawal(
        &self,
        id: EnrollmentId,
    ) -> Result<EnrollmentSnapshot, EngineError> {
        self.send(
            id,
            Op::Withdraw {
                now: crate::domain::time::now(),
            },
        )
        .await
    }

    /// Expires a plan whose time has come (the durable timer does this by itself).
    pub async fn expire_plan(&self, id: EnrollmentId) -> Result<EnrollmentSnapshot, EngineError> {
        self.send(
            id,
            Op::Execute(Command::ExpirePlan {
                now: crate::domain::time::now(),
            }),
        )
        .await
    }

    /// The enrollment's current state: what its live actor last committed, read without
    /// a message when it has one (the common case: a client polling the enrollment it is
    /// working on), else from the actor, which is activated and loads it.
    pub async fn enrollment(&self, id: EnrollmentId) -> Result<EnrollmentSnapshot, EngineError> {
        if let Some((version, state)) = self.inner.registry.peek(id) {
            return Ok(EnrollmentSnapshot {
                version,
                state,
                events: Vec::new(),
            });
        }
        self.send(id, Op::Get).await
    }

    /// Waits until the enrollment satisfies `done` (e.g. its document is issued), or
    /// `timeout` passes (`Ok(None)`). Woken with the new state whenever an operation on
    /// the enrollment finishes in this process (a state that an operation passes through,
    /// e.g. `ProposalSubmitted` on the way to `Contracted`, may go unseen); it also
    /// re-reads every 100 ms, for changes made by another process on a shared store.
    pub async fn wait_for(
        &self,
        id: EnrollmentId,
        timeout: Duration,
        done: impl Fn(&Enrollment) -> bool,
    ) -> Result<Option<EnrollmentSnapshot>, EngineError> {
        let deadline = tokio::time::Instant::now() + timeout;
        // The state a wake-up brought along, so it need not be read again.
        let mut known: Option<EnrollmentSnapshot> = None;
        loop {
            let (tx, rx) = tokio::sync::oneshot::channel();
            self.inner.deps.waiters.entry(id).or_default().push(tx);
            let current = match known.take() {
                Some(c) => Ok(c),
                None => self.enrollment(id).await,
            };
            let finished = match &current {
                Ok(c) => done(&c.state),
                Err(_) => true,
            };
            let slice = (deadline - tokio::time::Instant::now()).min(Duration::from_millis(100));
            if finished || slice.is_zero() {
                // Withdraw our registration (and any other that was given up).
                drop(rx);
                self.inner.deps.waiters.remove_if_mut(&id, |_, v| {
                    v.retain(|w| !w.is_closed());
                    v.is_empty()
                });
                return match current {
                    Ok(c) if finished => Ok(Some(c)),
                    Ok(_) => Ok(None),
                    Err(e) => Err(e),
                };
            }
            if let Ok(Ok((version, state))) = tokio::time::timeout(slice, rx).await {
                known = Some(EnrollmentSnapshot {
                    version,
                    state,
                    events: Vec::new(),
                });
            }
        }
    }

    /// Every event of the enrollment, oldest first.
    pub async fn history(&self, id: EnrollmentId) -> Result<Vec<EventEnvelope>, EngineError> {
        let events = self.store().history(id).await?;
        if events.is_empty() {
            return Err(EngineError::NotFound("enrollment"));
        }
        Ok(events)
    }

    /// The text of the enrollment's current document: the state names it, the store keeps
    /// it. A stored text that is missing or does not match the recorded digest is an
    /// error, never a different document.
    pub async fn document(&self, id: EnrollmentId) -> Result<ProductDocument, EngineError> {
        let reference = self
            .enrollment(id)
            .await?
            .state
            .document
            .clone()
            .ok_or(EngineError::NotFound("document"))?;
        self.stored_document(id, &reference).await
    }

    /// The text of document `document_no` of the enrollment: its current one, or one that
    /// a re-saved plan superseded, named by a `DocumentIssued` event of its history.
    pub async fn document_by_number(
        &self,
        id: EnrollmentId,
        document_no: &str,
    ) -> Result<ProductDocument, EngineError> {
        let history = self.history(id).await?;
        let reference = history
            .iter()
            .rev()
            .find_map(|envelope| match &envelope.event {
                Event::DocumentIssued { document } if document.document_no == document_no => {
                    Some(Arc::clone(document))
                }
                _ => None,
            })
            .ok_or(EngineError::NotFound("document"))?;
        self.stored_document(id, &reference).await
    }

    async fn stored_document(
        &self,
        id: EnrollmentId,
        reference: &DocumentRef,
    ) -> Result<ProductDocument, EngineError> {
        let corrupt = |reason: String| {
            EngineError::Store(StoreError::Corrupt {
                key: format!("enrollment {id} document {}", reference.document_no),
                reason,
            })
        };
        match self.store().document(id, &reference.document_no).await? {
            Some(document) if document.is_named_by(reference) => Ok(document),
            Some(_) => Err(corrupt(
                "the stored text is not the one the DocumentIssued event names (SHA-256)"
                    .to_owned(),
            )),
            None => Err(corrupt("the text is not in the store".to_owned())),
        }
    }

    // ---- read model

    pub async fn mypage(
        &self,
        filter: ViewFilter,
        limit: usize,
    ) -> Result<Vec<MyPageView>, EngineError> {
        Ok(self.store().views(filter, limit).await?)
    }

    pub async fn mypage_view(&self, id: EnrollmentId) -> Result<MyPageView, EngineError> {
        self.store()
            .view(id)
            .await?
            .ok_or(EngineError::NotFound("enrollment"))
    }

    pub async fn alarms(
        &self,
        customer: Option<CustomerNo>,
        limit: usize,
    ) -> Result<Vec<Alarm>, EngineError> {
        Ok(self.store().alarms(customer, limit).await?)
    }

    pub fn document_issuer(&self) -> &Addr<DocumentIssuer> {
        &self.inner.issuer
    }

    // ---- live feed

    /// Every event appended to the store's log from now on, by this process or any other
    /// on the same store, each enrollment's in order (see [`super::feed`]). A receiver
    /// more than `event_feed_capacity` behind loses the oldest events and is told how
    /// many; it is closed when the engine stops.
    pub async fn subscribe(
        &self,
    ) -> Result<tokio::sync::broadcast::Receiver<FeedEvent>, EngineError> {
        self.inner.feed.subscribe().await
    }

    /// Receivers of the live feed now.
    pub async fn feed_subscribers(&self) -> usize {
        self.inner.feed.subscribers().await
    }

    /// Stops the timers and the sweeper, ends the live feed (closing its receivers), lets
    /// the consumers handle what the log holds (up to their flush timeout) and stops them,
    /// then the enrollment actors and their arbiters. Call it after the HTTP server has
    /// answered its requests in flight, so their events are in the log. Durable work left
    /// (timers, unacknowledged events) is picked up by the next engine on the same store.
    pub async fn shutdown(&self) {
        let _ = self.inner.shutdown.send(true);
        let tasks: Vec<_> = match self.inner.tasks.lock() {
            Ok(mut t) => t.drain(..).collect(),
            Err(p) => p.into_inner().drain(..).collect(),
        };
        for t in tasks {
            let _ = t.await;
        }
        self.inner.feed.stop().await;
        let consumers: Vec<_> = match self.inner.consumers.lock() {
            Ok(mut c) => c.drain(..).collect(),
            Err(p) => p.into_inner().drain(..).collect(),
        };
        for c in &consumers {
            c.signal_stop();
        }
        for c in consumers {
            c.stop().await;
        }
        self.inner.registry.clear();
        let arbiters: Vec<_> = match self.inner.arbiters.lock() {
            Ok(mut a) => a.drain(..).collect(),
            Err(p) => p.into_inner().drain(..).collect(),
        };
        for a in arbiters {
            a.stop();
            let _ = tokio::task::spawn_blocking(move || a.join()).await;
        }
        tracing::info!("engine stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_projector_lingers_on_its_own_setting_and_the_notifier_on_the_shared_one() {
        let config = EngineConfig {
            consumers: ConsumerConfig {
                linger: Duration::from_millis(3),
                batch: 77,
                ..ConsumerConfig::default()
            },
            projector_linger: Duration::from_millis(20),
            ..EngineConfig::default()
        };
        let notifier = config.consumer_config(consumers::NOTIFIER_GROUP);
        let projector = config.consumer_config(consumers::PROJECTOR_GROUP);
        assert_eq!(notifier.linger, Duration::from_millis(3));
        assert_eq!(projector.linger, Duration::from_millis(20));
        assert_eq!((notifier.batch, projector.batch), (77, 77));
    }
}
