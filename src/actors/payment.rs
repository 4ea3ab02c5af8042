//! PaymentGateway: the actor in front of the payment provider. At most `max_in_flight`
//! provider calls run at once; behind them, the bounded mailbox is the circuit breaker
//! against overload: callers `try_send`, and a full mailbox is answered at once with
//! "payment busy, retry after N s" instead of queuing without bound. Consecutive provider
//! failures open a breaker (closed → open → half-open with one trial call → closed).
//! The provider and the breaker have modules of their own ([`super::payment_provider`],
//! [`super::breaker`]); their types are re-exported here, where callers look for them.

pub use super::breaker::{Breaker, BreakerState};
pub use super::payment_provider::{
    ChargeOutcome, ChargeRequest, PaymentProvider, ProviderError, SimulatedProvider, Simulation,
};

use crate::domain::money::Won;
use actix::prelude::*;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GatewayConfig {
    /// Payments waiting for a provider call before callers are answered busy.
    pub mailbox_capacity: usize,
    /// Provider calls in flight at once: a PG answers slowly, so calls one at a time
    /// would cap the payment rate at one per round trip.
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
