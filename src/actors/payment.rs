//! PaymentGateway: the actor in front of the payment provider. At most `max_in_flight`
//! provider calls run at once; behind them, the bounded mailbox is the circuit breaker
//! against overload: callers `try_send`, and a full mailbox is answered at once with
//! "payment busy, retry after N s" instead of queuing without bound. Consecutive provider
//! failures open a breaker (closed → open → half-open with one trial call → closed).

use crate::domain::money::Won;
use actix::prelude::*;
use async_trait::async_trait;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GatewayConfig {
    /// Payments waiting for a provider call before callers are answered busy.
    pub mailbox_capacity: usize,
    /// Provider calls in flight at once (a PG answers in tens to hundreds of ms; one at a
    /// time would cap payments at a few dozen a second).
    pub max_in_flight: usize,
    /// What a busy answer tells the caller to wait.
    pub busy_retry_after: Duration,
    /// Consecutive provider failures that open the breaker.
    pub breaker_threshold: u32,
    /// How long the breaker stays open before one trial call (half-open).
    pub breaker_cooldown: Duration,
    /// A provider call that takes longer fails (and counts against the breaker).
    pub call_timeout: Duration,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            mailbox_capacity: 256,
            max_in_flight: 64,
            busy_retry_after: Duration::from_secs(1),
            breaker_threshold: 5,
            breaker_cooldown: Duration::from_secs(10),
            call_timeout: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

/// The breaker's bookkeeping; pure, so its transitions are unit-tested on their own.
#[derive(Debug, Clone)]
pub struct Breaker {
    threshold: u32,
    cooldown: Duration,
    failures: u32,
    open_until: Option<Instant>,
    state: BreakerState,
    /// Half-open lets one trial call through; the others wait for its outcome.
    trial_in_flight: bool,
}

impl Breaker {
    pub fn new(threshold: u32, cooldown: Duration) -> Breaker {
        Breaker {
            threshold: threshold.max(1),
            cooldown,
            failures: 0,
            open_until: None,
            state: BreakerState::Closed,
            trial_in_flight: false,
        }
    }

    /// Whether a call may go to the provider now; `Err(wait)` while open.
    pub fn admit(&mut self, now: Instant) -> Result<(), Duration> {
        match (self.state, self.open_until) {
            (BreakerState::Open, Some(until)) if now < until => Err(until - now),
            (BreakerState::Open, _) => {
                self.state = BreakerState::HalfOpen;
                self.trial_in_flight = true;
                Ok(())
            }
            (BreakerState::HalfOpen, _) if self.trial_in_flight => Err(Duration::from_secs(1)),
            (BreakerState::HalfOpen, _) => {
                self.trial_in_flight = true;
                Ok(())
            }
            (BreakerState::Closed, _) => Ok(()),
        }
    }

    pub fn success(&mut self) {
        self.trial_in_flight = false;
        self.failures = 0;
        self.open_until = None;
        self.state = BreakerState::Closed;
    }

    pub fn failure(&mut self, now: Instant) {
        self.trial_in_flight = false;
        self.failures += 1;
        if self.state == BreakerState::HalfOpen || self.failures >= self.threshold {
            self.state = BreakerState::Open;
            self.open_until = Some(now + self.cooldown);
        }
    }

    pub fn state(&self) -> BreakerState {
        self.state
    }
}

/// What a payment call answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentAnswer {
    Approved {
        payment_id: String,
    },
    Declined {
        reason: String,
    },
    /// Mailbox full, breaker open, or the provider failed: try again after a while.
    Unavailable {
        reason: String,
        retry_after: Duration,
    },
}

#[derive(Message)]
#[rtype(result = "()")]
struct Charge {
    request: ChargeRequest,
    reply: oneshot::Sender<PaymentAnswer>,
}

#[derive(Message)]
#[rtype(result = "()")]
struct Refund {
    payment_id: String,
    amount: Won,
    reply: oneshot::Sender<Result<String, PaymentAnswer>>,
}

#[derive(Message)]
#[rtype(result = "()")]
struct Lookup {
    reference: String,
    reply: oneshot::Sender<Result<Option<ChargeOutcome>, PaymentAnswer>>,
}

/// Shared counters the gateway and its client keep for metrics.
#[derive(Debug, Default)]
pub struct GatewayStats {
    /// Payments accepted and not yet answered (waiting or at the provider).
    pub depth: AtomicUsize,
    pub busy: AtomicU64,
    /// 0 closed, 1 open, 2 half-open.
    pub breaker: AtomicUsize,
}

impl GatewayStats {
    pub fn breaker_state(&self) -> BreakerState {
        match self.breaker.load(Ordering::Relaxed) {
            1 => BreakerState::Open,
            2 => BreakerState::HalfOpen,
            _ => BreakerState::Closed,
        }
    }
}

pub struct PaymentGateway {
    provider: Arc<dyn PaymentProvider>,
    permits: Arc<tokio::sync::Semaphore>,
    breaker: Breaker,
    config: GatewayConfig,
    stats: Arc<GatewayStats>,
}

impl Actor for PaymentGateway {
    type Context = Context<Self>;
}

impl PaymentGateway {
    fn publish_breaker(&self) {
        let v = match self.breaker.state() {
            BreakerState::Closed => 0,
            BreakerState::Open => 1,
            BreakerState::HalfOpen => 2,
        };
        self.stats.breaker.store(v, Ordering::Relaxed);
    }

    /// `Err(answer)` when the breaker refuses the call (which is then done with).
    fn admit(&mut self) -> Result<(), PaymentAnswer> {
        let admitted = self.breaker.admit(Instant::now());
        self.publish_breaker();
        admitted.map_err(|wait| {
            self.stats.depth.fetch_sub(1, Ordering::AcqRel);
            PaymentAnswer::Unavailable {
                reason: "payment is temporarily unavailable (circuit open)".to_owned(),
                retry_after: wait.max(Duration::from_secs(1)),
            }
        })
    }

    fn record(&mut self, ok: bool) {
        if ok {
            self.breaker.success();
        } else {
            self.breaker.failure(Instant::now());
        }
        self.publish_breaker();
    }
}

impl PaymentGateway {
    /// Runs one provider call once one of the `max_in_flight` permits is free, within the
    /// call timeout, feeding the breaker, and answers `reply` with `answer(result)`. The
    /// payment then leaves the gateway's count, making room for one more caller.
    fn call<T, R>(
        &mut self,
        call: std::pin::Pin<Box<dyn Future<Output = Result<T, ProviderError>> + Send>>,
        reply: oneshot::Sender<R>,
        answer: impl FnOnce(Result<T, ProviderError>, Duration) -> R + 'static,
    ) -> ResponseActFuture<Self, ()>
    where
        T: 'static,
        R: Send + 'static,
    {
        let timeout = self.config.call_timeout;
        let retry_after = self.config.busy_retry_after;
        let permits = Arc::clone(&self.permits);
        Box::pin(
            async move {
                let Ok(_permit) = permits.acquire_owned().await else {
                    return Err(ProviderError("the gateway is stopping".to_owned()));
                };
                tokio::time::timeout(timeout, call)
                    .await
                    .unwrap_or_else(|_| Err(ProviderError("timed out".to_owned())))
            }
            .into_actor(self)
            .map(move |result, act, _| {
                // A decline is the provider working as it should: only errors count.
                act.record(result.is_ok());
                act.stats.depth.fetch_sub(1, Ordering::AcqRel);
                let _ = reply.send(answer(result, retry_after));
            }),
        )
    }
}

fn unavailable(e: ProviderError, retry_after: Duration) -> PaymentAnswer {
    PaymentAnswer::Unavailable {
        reason: e.to_string(),
        retry_after,
    }
}

/// An answer sent at once: the breaker refused the call.
fn refused() -> ResponseActFuture<PaymentGateway, ()> {
    Box::pin(actix::fut::ready(()))
}

impl Handler<Charge> for PaymentGateway {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, msg: Charge, _: &mut Context<Self>) -> Self::Result {
        if let Err(answer) = self.admit() {
            let _ = msg.reply.send(answer);
            return refused();
        }
        let provider = Arc::clone(&self.provider);
        let request = msg.request;
        let call = Box::pin(async move { provider.charge(&request).await });
        self.call(call, msg.reply, |result, retry_after| match result {
            Ok(ChargeOutcome::Approved { payment_id }) => PaymentAnswer::Approved { payment_id },
            Ok(ChargeOutcome::Declined { reason }) => PaymentAnswer::Declined { reason },
            Err(e) => unavailable(e, retry_after),
        })
    }
}

impl Handler<Lookup> for PaymentGateway {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, msg: Lookup, _: &mut Context<Self>) -> Self::Result {
        if let Err(answer) = self.admit() {
            let _ = msg.reply.send(Err(answer));
            return refused();
        }
        let provider = Arc::clone(&self.provider);
        let reference = msg.reference;
        let call = Box::pin(async move { provider.charge_status(&reference).await });
        self.call(call, msg.reply, |result, retry_after| {
            result.map_err(|e| unavailable(e, retry_after))
        })
    }
}

impl Handler<Refund> for PaymentGateway {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, msg: Refund, _: &mut Context<Self>) -> Self::Result {
        if let Err(answer) = self.admit() {
            let _ = msg.reply.send(Err(answer));
            return refused();
        }
        let provider = Arc::clone(&self.provider);
        let (payment_id, amount) = (msg.payment_id, msg.amount);
        let call = Box::pin(async move { provider.refund(&payment_id, amount).await });
        self.call(call, msg.reply, |result, retry_after| {
            result.map_err(|e| unavailable(e, retry_after))
        })
    }
}

/// How the engine reaches the gateway: `try_send` into the bounded mailbox, behind an
/// exact admission count. actix's own bound is loose (a sender may push one message past
/// a full mailbox before it is parked, and is unparked as soon as the actor takes any
/// message), and the gateway takes messages as fast as they come to run them
/// concurrently; so the client counts payments accepted and not yet answered, and answers
/// busy at once when `max_in_flight + mailbox_capacity` are.
pub struct PaymentClient {
    addr: Addr<PaymentGateway>,
    stats: Arc<GatewayStats>,
    capacity: usize,
    busy_retry_after: Duration,
}

impl PaymentClient {
    /// Starts the gateway actor on `arbiter` (or the current one).
    pub fn start(
        provider: Arc<dyn PaymentProvider>,
        config: GatewayConfig,
        arbiter: Option<&actix_rt::ArbiterHandle>,
    ) -> PaymentClient {
        let stats = Arc::new(GatewayStats::default());
        let gateway = PaymentGateway {
            provider,
            permits: Arc::new(tokio::sync::Semaphore::new(config.max_in_flight.max(1))),
            breaker: Breaker::new(config.breaker_threshold, config.breaker_cooldown),
            config,
            stats: Arc::clone(&stats),
        };
        let make = move |ctx: &mut Context<PaymentGateway>| {
            ctx.set_mailbox_capacity(config.mailbox_capacity);
            gateway
        };
        let addr = match arbiter {
            Some(arbiter) => PaymentGateway::start_in_arbiter(arbiter, make),
            None => PaymentGateway::create(make),
        };
        PaymentClient {
            addr,
            stats,
            capacity: config.mailbox_capacity + config.max_in_flight.max(1),
            busy_retry_after: config.busy_retry_after,
        }
    }

    pub fn stats(&self) -> &Arc<GatewayStats> {
        &self.stats
    }

    fn busy(&self) -> PaymentAnswer {
        self.stats.busy.fetch_add(1, Ordering::Relaxed);
        PaymentAnswer::Unavailable {
            reason: "payment is busy".to_owned(),
            retry_after: self.busy_retry_after,
        }
    }

    fn enqueue<M>(&self, msg: M) -> Result<(), PaymentAnswer>
    where
        M: Message<Result = ()> + Send + 'static,
        PaymentGateway: Handler<M>,
    {
        if self.stats.depth.fetch_add(1, Ordering::AcqRel) >= self.capacity {
            self.stats.depth.fetch_sub(1, Ordering::AcqRel);
            return Err(self.busy());
        }
        match self.addr.try_send(msg) {
            Ok(()) => Ok(()),
            Err(SendError::Full(_)) => {
                self.stats.depth.fetch_sub(1, Ordering::AcqRel);
                Err(self.busy())
            }
            Err(SendError::Closed(_)) => {
                self.stats.depth.fetch_sub(1, Ordering::AcqRel);
                Err(PaymentAnswer::Unavailable {
                    reason: "the payment gateway is stopped".to_owned(),
                    retry_after: self.busy_retry_after,
                })
            }
        }
    }

    /// Charges the first premium; a full mailbox answers `Unavailable` at once.
    pub async fn charge(&self, request: ChargeRequest) -> PaymentAnswer {
        let (reply, answer) = oneshot::channel();
        if let Err(busy) = self.enqueue(Charge { request, reply }) {
            return busy;
        }
        answer.await.unwrap_or_else(|_| PaymentAnswer::Unavailable {
            reason: "the payment gateway stopped before answering".to_owned(),
            retry_after: self.busy_retry_after,
        })
    }

    /// The approved charge of a reference, if the provider has one.
    pub async fn charge_status(
        &self,
        reference: String,
    ) -> Result<Option<ChargeOutcome>, PaymentAnswer> {
        let (reply, answer) = oneshot::channel();
        self.enqueue(Lookup { reference, reply })?;
        answer.await.unwrap_or_else(|_| {
            Err(PaymentAnswer::Unavailable {
                reason: "the payment gateway stopped before answering".to_owned(),
                retry_after: self.busy_retry_after,
            })
        })
    }

    /// Refunds a payment; `Err` says why not (busy, open, provider error).
    pub async fn refund(&self, payment_id: String, amount: Won) -> Result<String, PaymentAnswer> {
        let (reply, answer) = oneshot::channel();
        self.enqueue(Refund {
            payment_id,
            amount,
            reply,
        })?;
        answer.await.unwrap_or_else(|_| {
            Err(PaymentAnswer::Unavailable {
                reason: "the payment gateway stopped before answering".to_owned(),
                retry_after: self.busy_retry_after,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breaker_opens_after_consecutive_failures_and_closes_after_a_good_trial() {
        let t0 = Instant::now();
        let mut b = Breaker::new(3, Duration::from_secs(10));
        b.failure(t0);
        b.failure(t0);
        b.success();
        b.failure(t0);
        b.failure(t0);
        assert_eq!(
            b.state(),
            BreakerState::Closed,
            "a success resets the count"
        );
        b.failure(t0);
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(
            b.admit(t0 + Duration::from_secs(4)),
            Err(Duration::from_secs(6))
        );
        assert_eq!(b.admit(t0 + Duration::from_secs(10)), Ok(()));
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert!(
            b.admit(t0 + Duration::from_secs(10)).is_err(),
            "half-open lets one trial through at a time"
        );
        b.failure(t0 + Duration::from_secs(10));
        assert_eq!(
            b.state(),
            BreakerState::Open,
            "a failed trial opens it again"
        );
        assert!(b.admit(t0 + Duration::from_secs(11)).is_err());
        assert_eq!(b.admit(t0 + Duration::from_secs(20)), Ok(()));
        b.success();
        assert_eq!(b.state(), BreakerState::Closed);
    }
}
