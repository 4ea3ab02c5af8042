//! The payment provider (PG사) behind the gateway: what a charge asks and answers, the
//! [`PaymentProvider`] trait a real provider implements, and the [`SimulatedProvider`]
//! that stands in for tests, benchmarks and local runs.

use crate::domain::money::Won;
use crate::store::{PaymentLedger, StoreError};
use async_trait::async_trait;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A first-premium charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeRequest {
    pub reference: String,
    pub amount: Won,
    pub method: crate::domain::enrollment::PaymentMethod,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChargeOutcome {
    Approved { payment_id: String },
    Declined { reason: String },
}

/// The provider did not answer properly (network, timeout, 5xx): counts against the breaker.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("payment provider error: {0}")]
pub struct ProviderError(pub String);

/// The payment provider (PG사). Real ones speak HTTP; [`SimulatedProvider`] stands in
/// for tests, benchmarks and local runs.
///
/// Charges are idempotent per `reference` (the merchant order id, here the enrollment):
/// charging a reference that was already approved answers that approval again, so a
/// retry after a crash can never take the first premium twice.
#[async_trait]
pub trait PaymentProvider: Send + Sync + 'static {
    async fn charge(&self, request: &ChargeRequest) -> Result<ChargeOutcome, ProviderError>;
    /// Refunds a payment in full; returns the refund id.
    async fn refund(&self, payment_id: &str, amount: Won) -> Result<String, ProviderError>;
    /// The approved charge of a reference, if any (for reconciling after a crash).
    async fn charge_status(&self, reference: &str) -> Result<Option<ChargeOutcome>, ProviderError>;
}

/// Settings of the simulated provider; all can be changed while it runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Simulation {
    pub latency: Duration,
    /// Share of charges the issuer declines, 0..=1.
    pub decline_rate: f64,
    /// Share of calls (charges and refunds) that fail with a provider error, 0..=1.
    pub failure_rate: f64,
}

impl Default for Simulation {
    fn default() -> Self {
        Simulation {
            latency: Duration::from_millis(20),
            decline_rate: 0.0,
            failure_rate: 0.0,
        }
    }
}

/// A provider that answers after a latency, declining or failing a configurable share of
/// calls (deterministically from a seed, so runs repeat).
///
/// Its ledger is the store's [`PaymentLedger`], as a real PG keeps its own books apart
/// from any merchant process: every copy of ezenroll on one store charges through one
/// ledger, which survives a copy killed mid-payment, so a copy that takes over an
/// enrollment can ask `charge_status` of what another one charged. Refunds are idempotent
/// per payment there, as PGs' cancel-by-original-transaction is: a refund retried after a
/// crash returns the first refund instead of paying twice.
pub struct SimulatedProvider {
    latency_us: AtomicU64,
    decline_ppm: AtomicU64,
    failure_ppm: AtomicU64,
    state: AtomicU64,
    /// Numbers this provider's payment ids; every copy counts from 1, and the reference in
    /// the id keeps them unique.
    next_payment: AtomicU64,
    charges: AtomicU64,
    refunds: AtomicU64,
    ledger: Arc<dyn PaymentLedger>,
}

impl std::fmt::Debug for SimulatedProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimulatedProvider")
            .field("charges", &self.charges)
            .field("refunds", &self.refunds)
            .finish_non_exhaustive()
    }
}

/// A ledger that did not answer is the provider not answering: it counts against the
/// breaker.
fn ledger_error(e: StoreError) -> ProviderError {
    ProviderError(format!("simulated provider's ledger: {e}"))
}

impl SimulatedProvider {
    /// A provider keeping its ledger in `ledger` (the engine's store).
    pub fn new(sim: Simulation, seed: u64, ledger: Arc<dyn PaymentLedger>) -> SimulatedProvider {
        let p = SimulatedProvider {
            latency_us: AtomicU64::new(0),
            decline_ppm: AtomicU64::new(0),
            failure_ppm: AtomicU64::new(0),
            state: AtomicU64::new(seed),
            next_payment: AtomicU64::new(0),
            charges: AtomicU64::new(0),
            refunds: AtomicU64::new(0),
            ledger,
        };
        p.set(sim);
        p
    }

    pub fn set(&self, sim: Simulation) {
        let ppm = |rate: f64| (rate.clamp(0.0, 1.0) * 1e6) as u64;
        self.latency_us.store(
            sim.latency.as_micros().min(u128::from(u64::MAX)) as u64,
            Ordering::Relaxed,
        );
        self.decline_ppm
            .store(ppm(sim.decline_rate), Ordering::Relaxed);
        self.failure_ppm
            .store(ppm(sim.failure_rate), Ordering::Relaxed);
    }

    pub fn set_failure_rate(&self, rate: f64) {
        self.failure_ppm
            .store((rate.clamp(0.0, 1.0) * 1e6) as u64, Ordering::Relaxed);
    }

    pub fn set_decline_rate(&self, rate: f64) {
        self.decline_ppm
            .store((rate.clamp(0.0, 1.0) * 1e6) as u64, Ordering::Relaxed);
    }

    /// Charges this provider took money for: approvals it recorded first in the ledger
    /// (one answered from the ledger, made here or by another copy, is not counted again).
    pub fn approved_charges(&self) -> u64 {
        self.charges.load(Ordering::Relaxed)
    }

    /// Payments this provider refunded first (a repeated refund of one payment, here or by
    /// another copy, is not counted again).
    pub fn refunds(&self) -> u64 {
        self.refunds.load(Ordering::Relaxed)
    }

    /// splitmix64 over an atomic counter: a uniform draw in parts per million.
    fn draw_ppm(&self) -> u64 {
        let mut z = self
            .state
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % 1_000_000
    }

    async fn wait(&self) {
        let us = self.latency_us.load(Ordering::Relaxed);
        if us > 0 {
            tokio::time::sleep(Duration::from_micros(us)).await;
        }
    }
}

#[async_trait]
impl PaymentProvider for SimulatedProvider {
    async fn charge(&self, request: &ChargeRequest) -> Result<ChargeOutcome, ProviderError> {
        self.wait().await;
        if self.draw_ppm() < self.failure_ppm.load(Ordering::Relaxed) {
            return Err(ProviderError("simulated gateway failure".to_owned()));
        }
        if self.draw_ppm() < self.decline_ppm.load(Ordering::Relaxed) {
            return Ok(ChargeOutcome::Declined {
                reason: "카드사 승인 거절 (simulated)".to_owned(),
            });
        }
        let n = self.next_payment.fetch_add(1, Ordering::Relaxed) + 1;
        // PAY-0000000042-<reference>, built without core::fmt (once per enrollment).
        let mut payment_id = crate::domain::text::Text::with_capacity(16 + request.reference.len());
        let mut digits = itoa::Buffer::new();
        let digits = digits.format(n);
        payment_id
            .s("PAY-")
            .s(&"0000000000"[digits.len().min(10)..])
            .s(digits)
            .s("-")
            .s(&request.reference);
        let payment_id = payment_id.into_string();
        // First wins in the ledger: a retry, or another copy racing on the reference, gets
        // the approval that holds and takes no money.
        let held = self
            .ledger
            .record_approval(&request.reference, &payment_id)
            .await
            .map_err(ledger_error)?;
        if held.first {
            self.charges.fetch_add(1, Ordering::Relaxed);
        }
        Ok(ChargeOutcome::Approved {
            payment_id: held.id,
        })
    }

    async fn charge_status(&self, reference: &str) -> Result<Option<ChargeOutcome>, ProviderError> {
        self.wait().await;
        if self.draw_ppm() < self.failure_ppm.load(Ordering::Relaxed) {
            return Err(ProviderError("simulated lookup failure".to_owned()));
        }
        let approved = self
            .ledger
            .approval(reference)
            .await
            .map_err(ledger_error)?;
        Ok(approved.map(|payment_id| ChargeOutcome::Approved { payment_id }))
    }

    async fn refund(&self, payment_id: &str, _amount: Won) -> Result<String, ProviderError> {
        self.wait().await;
        if self.draw_ppm() < self.failure_ppm.load(Ordering::Relaxed) {
            return Err(ProviderError("simulated refund failure".to_owned()));
        }
        let held = self
            .ledger
            .record_refund(payment_id, &format!("REF-{payment_id}"))
            .await
            .map_err(ledger_error)?;
        if held.first {
            self.refunds.fetch_add(1, Ordering::Relaxed);
        }
        Ok(held.id)
    }
}
