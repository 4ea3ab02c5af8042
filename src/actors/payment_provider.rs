//! The payment provider (PG사) behind the gateway: what a charge asks and answers, the
//! [`PaymentProvider`] trait a real provider implements, and the [`SimulatedProvider`]
//! that stands in for tests, benchmarks and local runs.

use crate::domain::money::Won;
use async_trait::async_trait;
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
#[derive(Debug)]
pub struct SimulatedProvider {
    latency_us: AtomicU64,
    decline_ppm: AtomicU64,
    failure_ppm: AtomicU64,
    state: AtomicU64,
    charges: AtomicU64,
    refunds: AtomicU64,
    /// Refunds are idempotent per payment, as PGs' cancel-by-original-transaction is: a
    /// refund retried after a crash returns the first refund instead of paying twice.
    refunded: std::sync::Mutex<std::collections::HashMap<String, String>>,
    /// Approved charges by reference (payment id), for idempotency and lookups.
    approved: std::sync::Mutex<std::collections::HashMap<String, String>>,
}

impl SimulatedProvider {
    pub fn new(sim: Simulation, seed: u64) -> SimulatedProvider {
        let p = SimulatedProvider {
            latency_us: AtomicU64::new(0),
            decline_ppm: AtomicU64::new(0),
            failure_ppm: AtomicU64::new(0),
            state: AtomicU64::new(seed),
            charges: AtomicU64::new(0),
            refunds: AtomicU64::new(0),
            refunded: std::sync::Mutex::default(),
            approved: std::sync::Mutex::default(),
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

    /// Charges approved so far (the number of payments a bank would see).
    pub fn approved_charges(&self) -> u64 {
        self.charges.load(Ordering::Relaxed)
    }

    /// Distinct payments refunded (a repeated refund of one payment counts once).
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
        let mut approved = self
            .approved
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(payment_id) = approved.get(&request.reference) {
            return Ok(ChargeOutcome::Approved {
                payment_id: payment_id.clone(),
            });
        }
        let n = self.charges.fetch_add(1, Ordering::Relaxed) + 1;
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
        approved.insert(request.reference.clone(), payment_id.clone());
        Ok(ChargeOutcome::Approved { payment_id })
    }

    async fn charge_status(&self, reference: &str) -> Result<Option<ChargeOutcome>, ProviderError> {
        self.wait().await;
        if self.draw_ppm() < self.failure_ppm.load(Ordering::Relaxed) {
            return Err(ProviderError("simulated lookup failure".to_owned()));
        }
        let approved = self
            .approved
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(approved
            .get(reference)
            .map(|payment_id| ChargeOutcome::Approved {
                payment_id: payment_id.clone(),
            }))
    }

    async fn refund(&self, payment_id: &str, _amount: Won) -> Result<String, ProviderError> {
        self.wait().await;
        if self.draw_ppm() < self.failure_ppm.load(Ordering::Relaxed) {
            return Err(ProviderError("simulated refund failure".to_owned()));
        }
        let mut refunded = self
            .refunded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(first) = refunded.get(payment_id) {
            return Ok(first.clone());
        }
        self.refunds.fetch_add(1, Ordering::Relaxed);
        let refund_id = format!("REF-{payment_id}");
        refunded.insert(payment_id.to_owned(), refund_id.clone());
        Ok(refund_id)
    }
}
