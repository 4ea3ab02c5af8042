//! Shared fixtures for engine tests: an engine on a store given as `Arc<dyn Store>` (so the
//! engine suite, tests/suite/engine, runs on the memory backend and on Redis),
//! short delays, a simulated payment provider the test controls, customers, plan requests,
//! and helpers that drive an enrollment forward or wait for eventually-consistent things.
//!
//! The engine suite re-exports it as `engine::fixtures`.

#![allow(dead_code)]

use async_trait::async_trait;
use ezenroll::actors::consumers::ConsumerConfig;
use ezenroll::actors::payment::{
    ChargeOutcome, ChargeRequest, PaymentProvider, ProviderError, SimulatedProvider, Simulation,
};
use ezenroll::actors::{ChaosHook, EnrollmentSnapshot};
use ezenroll::actors::{Engine, EngineConfig, EngineHandle, Extensions, PlanRequest};
use ezenroll::domain::customer::{
    BirthDate, Customer, CustomerName, Gender, MobilePhone, NewCustomer,
};
use ezenroll::domain::enrollment::{CustomerNo, Enrollment, EnrollmentId, Status};
use ezenroll::domain::money::Won;
use ezenroll::domain::period::{CoveragePeriod, PaymentCycle, Years};
use ezenroll::store::memory::MemoryStore;
use ezenroll::store::{PaymentLedger, Reservation, Store, codec};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How long anything eventually-consistent (timers, consumers, payments) may take. Far
/// above what it needs; only a broken engine reaches it.
pub const WAIT: Duration = Duration::from_secs(15);

pub const TERM: &str = "EZ-TERM";
pub const ENDOWMENT: &str = "EZ-ENDOW";

/// A fresh memory store; keep the concrete `Arc` for memory-only helpers
/// (`corrupt_snapshot_for_test`) and hand [`shared`] of it to the engine.
pub fn memory_store() -> Arc<MemoryStore> {
    Arc::new(MemoryStore::new(4))
}

pub fn shared(store: &Arc<MemoryStore>) -> Arc<dyn Store> {
    Arc::clone(store) as Arc<dyn Store>
}

/// Short delays everywhere, no sweeper interference, few threads.
pub fn test_config() -> EngineConfig {
    EngineConfig {
        arbiters: 2,
        document_delay: Duration::from_millis(30),
        plan_ttl: Duration::from_secs(3600),
        withdrawal_period: Duration::from_secs(24 * 3600),
        passivate_after: Duration::from_secs(600),
        timer_poll: Duration::from_millis(20),
        timer_lease: Duration::from_secs(1),
        refund_backoff_initial: Duration::from_millis(20),
        refund_backoff_max: Duration::from_millis(200),
        consumers: ConsumerConfig {
            block: Duration::from_millis(50),
            claim_idle: Duration::from_millis(500),
            claim_every: Duration::from_millis(100),
            ..ConsumerConfig::default()
        },
        ..EngineConfig::default()
    }
}

/// A provider that approves everything after a short latency, its ledger in `store`
/// (the store its engine runs on, as the engine's own provider has it).
pub fn healthy_provider(store: &Arc<dyn Store>) -> Arc<SimulatedProvider> {
    provider(
        store,
        Simulation {
            latency: Duration::from_millis(2),
            decline_rate: 0.0,
            failure_rate: 0.0,
        },
    )
}

pub fn provider(store: &Arc<dyn Store>, simulation: Simulation) -> Arc<SimulatedProvider> {
    let ledger = Arc::clone(store) as Arc<dyn PaymentLedger>;
    Arc::new(SimulatedProvider::new(simulation, 7, ledger))
}

/// Wraps the simulated provider and counts the calls that reach it (whatever they answer),
/// so a test can tell a refusal by the gateway from one by the provider.
pub struct CountingProvider {
    inner: Arc<SimulatedProvider>,
    charges: AtomicU64,
    refunds: AtomicU64,
    /// Charges at the provider right now, and the most there ever were at once.
    in_flight: AtomicU64,
    most_in_flight: AtomicU64,
}

impl CountingProvider {
    pub fn charge_calls(&self) -> u64 {
        self.charges.load(Ordering::SeqCst)
    }

    pub fn most_charges_at_once(&self) -> u64 {
        self.most_in_flight.load(Ordering::SeqCst)
    }

    pub fn refund_calls(&self) -> u64 {
        self.refunds.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl PaymentProvider for CountingProvider {
    async fn charge(&self, request: &ChargeRequest) -> Result<ChargeOutcome, ProviderError> {
        self.charges.fetch_add(1, Ordering::SeqCst);
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_in_flight.fetch_max(now, Ordering::SeqCst);
        let outcome = self.inner.charge(request).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        outcome
    }

    async fn refund(&self, payment_id: &str, amount: Won) -> Result<String, ProviderError> {
        self.refunds.fetch_add(1, Ordering::SeqCst);
        self.inner.refund(payment_id, amount).await
    }

    async fn charge_status(&self, reference: &str) -> Result<Option<ChargeOutcome>, ProviderError> {
        self.inner.charge_status(reference).await
    }
}

/// A running engine and the provider behind its payment gateway.
pub struct Harness {
    pub engine: EngineHandle,
    /// Change its rates and latency while the engine runs; read what it approved.
    pub provider: Arc<SimulatedProvider>,
    /// Calls that reached the provider.
    pub calls: Arc<CountingProvider>,
}

pub async fn start(
    store: Arc<dyn Store>,
    config: EngineConfig,
    provider: Arc<SimulatedProvider>,
) -> Harness {
    start_with_chaos(store, config, provider, None).await
}

pub async fn start_with_chaos(
    store: Arc<dyn Store>,
    config: EngineConfig,
    provider: Arc<SimulatedProvider>,
    chaos: Option<ChaosHook>,
) -> Harness {
    let calls = Arc::new(CountingProvider {
        inner: Arc::clone(&provider),
        charges: AtomicU64::new(0),
        refunds: AtomicU64::new(0),
        in_flight: AtomicU64::new(0),
        most_in_flight: AtomicU64::new(0),
    });
    let ext = Extensions {
        payment_provider: Some(Arc::clone(&calls) as Arc<dyn PaymentProvider>),
        chaos,
        ..Extensions::default()
    };
    let engine = Engine::start_with(config, store, ext)
        .await
        .expect("the engine starts");
    Harness {
        engine,
        provider,
        calls,
    }
}

/// An engine with [`test_config`] and a [`healthy_provider`].
pub async fn start_default(store: Arc<dyn Store>) -> Harness {
    let provider = healthy_provider(&store);
    start(store, test_config(), provider).await
}

pub fn new_customer(name: &str) -> NewCustomer {
    NewCustomer {
        name: CustomerName::parse(name).expect("a valid name"),
        birth_date: BirthDate::parse("1986-05-01").expect("a valid birth date"),
        gender: Gender::Male,
        mobile_phone: MobilePhone::parse("010-1234-5678").expect("a valid phone"),
    }
}

pub async fn register_customer(engine: &EngineHandle, name: &str) -> Customer {
    engine
        .register_customer(new_customer(name))
        .await
        .expect("the customer is registered")
}

pub fn years(n: u64) -> Years {
    Years::new(n).expect("a valid period")
}

/// EZ-TERM, 20 years cover, 20 years of monthly payments.
pub fn term_plan(customer_no: CustomerNo, sum_insured: u64) -> PlanRequest<'static> {
    PlanRequest {
        customer_no,
        product_code: TERM,
        sum_insured: Won::new(sum_insured),
        coverage_period: CoveragePeriod::Years(years(20)),
        payment_period: years(20),
        payment_cycle: PaymentCycle::Monthly,
    }
}

/// EZ-ENDOW, 20 years cover, 20 years of monthly payments.
pub fn endowment_plan(customer_no: CustomerNo, sum_insured: u64) -> PlanRequest<'static> {
    PlanRequest {
        product_code: ENDOWMENT,
        ..term_plan(customer_no, sum_insured)
    }
}

/// Waits (woken by the engine) until the enrollment is in `status`.
pub async fn wait_status(
    engine: &EngineHandle,
    id: EnrollmentId,
    status: Status,
) -> EnrollmentSnapshot {
    match engine.wait_for(id, WAIT, |e| e.status == status).await {
        Ok(Some(snapshot)) => snapshot,
        Ok(None) => {
            let now = engine.enrollment(id).await.map(|s| s.state.status);
            panic!("enrollment {id} did not reach {status} in {WAIT:?}; it is {now:?}")
        }
        Err(e) => panic!("waiting for enrollment {id} to reach {status} failed: {e}"),
    }
}

/// Saves the plan, requests the document and waits until it is issued.
pub async fn drive_to_document_issued(
    engine: &EngineHandle,
    request: PlanRequest<'_>,
) -> EnrollmentSnapshot {
    let planned = engine.save_plan(request).await.expect("the plan is saved");
    assert_eq!(planned.state.status, Status::Planned);
    let id = planned.state.id;
    let requested = engine
        .request_document(id)
        .await
        .expect("the document is requested");
    assert_eq!(requested.state.status, Status::DocumentRequested);
    let issued = wait_status(engine, id, Status::DocumentIssued).await;
    assert!(
        issued.state.document.is_some(),
        "an issued enrollment has its document"
    );
    issued
}

/// Polls `probe` until it answers `Some`, or panics after [`WAIT`].
pub async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {WAIT:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The product's per-customer cumulative limit.
pub fn cumulative_limit(engine: &EngineHandle, product_code: &str) -> Won {
    engine
        .catalog()
        .latest(product_code)
        .expect("the product is in the catalog")
        .product()
        .underwriting()
        .max_cumulative_sum_insured
        .expect("the product has a cumulative limit")
}

/// What the customer holds of the product's cumulative limit, as the store reports it:
/// a probe enrollment tries to reserve the whole limit (and gives it back at once).
pub async fn held_of_limit(
    engine: &EngineHandle,
    customer_no: CustomerNo,
    product_code: &str,
) -> Won {
    let limit = cumulative_limit(engine, product_code);
    let probe = EnrollmentId::new();
    let store = engine.store();
    match store
        .reserve_limit(customer_no, product_code, probe, limit, limit)
        .await
        .expect("the store answers")
    {
        Reservation::Reserved { .. } => {
            store
                .release_limit(customer_no, product_code, probe)
                .await
                .expect("the probe is released");
            Won::ZERO
        }
        Reservation::Exceeded { held, .. } => held,
    }
}

/// Whether the text is Korean (has Hangul syllables).
pub fn has_hangul(text: &str) -> bool {
    text.chars().any(|c| ('\u{AC00}'..='\u{D7A3}').contains(&c))
}

/// The enrollment's version and snapshot, read straight from the store (no actor).
pub async fn stored(store: &Arc<dyn Store>, id: EnrollmentId) -> (u64, Enrollment) {
    let (version, state) = store
        .load(id)
        .await
        .expect("the store answers")
        .expect("the enrollment exists");
    (version, Arc::unwrap_or_clone(state))
}

/// Asserts two states are the same as far as the store can tell: a live actor's state has
/// its times to the nanosecond, one reloaded from a snapshot to the store's precision.
pub fn assert_same_state(actual: &Enrollment, expected: &Enrollment) {
    let encoded = |state| codec::encode_snapshot(state).expect("the state encodes");
    if encoded(actual) != encoded(expected) {
        assert_eq!(actual, expected, "the enrollment states differ");
    }
}
