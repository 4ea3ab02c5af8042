//! EnrollmentActor: one per enrollment, supervised. It serializes the enrollment's
//! commands (async persistence runs inside `AtomicResponse`, so two commands never
//! interleave), runs the pure domain under `catch_unwind`, and appends the resulting
//! events, snapshot and timers in one atomic store write. A failure (a panic in domain
//! code, a version conflict, an undecodable snapshot) answers the caller with an error
//! and stops the actor; its `Supervisor` restarts it and `restarting()` reloads the state
//! from the store. Other enrollments never notice.

use super::context::Deps;
use super::error::EngineError;
use super::payment::{ChargeRequest, PaymentAnswer};
use crate::domain::enrollment::{
    self, Command, Enrollment, EnrollmentId, Event, PaymentFailure, PaymentMethod, Status,
};
use crate::store::{Append, EventEnvelope, StoreError, Timer, TimerKind, TimerOp};
use actix::prelude::*;
use chrono::{DateTime, Utc};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

/// What the actor knows of its enrollment.
#[derive(Debug, Clone, Default)]
pub enum Loaded {
    /// Not read from the store yet (just started, or restarted after a failure).
    #[default]
    Unknown,
    /// The store has no such enrollment.
    Missing,
    Present {
        version: u64,
        state: Arc<Enrollment>,
    },
}

impl Loaded {
    fn parts(&self) -> (u64, Option<&Enrollment>) {
        match self {
            Loaded::Present { version, state } => (*version, Some(state)),
            _ => (0, None),
        }
    }
}

/// An operation on one enrollment. Plain commands are decided and persisted; the others
/// also talk to the payment gateway or the customer's limits.
#[derive(Debug, Clone)]
pub enum Op {
    Execute(Command),
    /// Submit the proposal and pay the first premium synchronously.
    Propose {
        method: PaymentMethod,
        now: DateTime<Utc>,
    },
    /// Pay again after a failed payment.
    RetryPayment {
        now: DateTime<Utc>,
    },
    /// Withdraw (청약철회); a paid premium is refunded in the background.
    Withdraw {
        now: DateTime<Utc>,
    },
    /// Try the refund of a withdrawal (from its durable timer, or right after the request).
    AttemptRefund {
        attempt: u32,
    },
    /// Render and issue the requested product document for the current plan revision
    /// (from the issuance timer, through the DocumentIssuer). A no-op unless the
    /// enrollment is waiting for a document.
    IssueDocument,
    /// Read the current state.
    Get,
}

/// The enrollment after an operation, and the events it produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub version: u64,
    pub state: Arc<Enrollment>,
    pub events: Vec<Arc<EventEnvelope>>,
}

#[derive(Message)]
#[rtype(result = "Result<Outcome, EngineError>")]
pub struct Do(pub Op);

/// The last state an enrollment's actor committed, readable without a message (see
/// [`Registry::peek`](super::registry::Registry::peek)). `None` while the actor does not
/// know its state (starting, restarting after a failure, or after an unclear store error).
pub type Committed = std::sync::Mutex<Option<(u64, Arc<Enrollment>)>>;

pub struct EnrollmentActor {
    id: EnrollmentId,
    deps: Arc<Deps>,
    state: Loaded,
    committed: Arc<Committed>,
}

impl EnrollmentActor {
    pub fn new(id: EnrollmentId, deps: Arc<Deps>, committed: Arc<Committed>) -> EnrollmentActor {
        EnrollmentActor {
            id,
            deps,
            state: Loaded::Unknown,
            committed,
        }
    }

    /// The actor of an enrollment that does not exist yet: nothing to load.
    pub fn new_enrollment(
        id: EnrollmentId,
        deps: Arc<Deps>,
        committed: Arc<Committed>,
    ) -> EnrollmentActor {
        EnrollmentActor {
            id,
            deps,
            state: Loaded::Missing,
            committed,
        }
    }

    /// Keeps what the actor knows and what it shows to readers the same.
    fn set_state(&mut self, loaded: Loaded) {
        let shown = match &loaded {
            Loaded::Present { version, state } => Some((*version, Arc::clone(state))),
            Loaded::Unknown | Loaded::Missing => None,
        };
        *self.committed.lock().unwrap_or_else(|e| e.into_inner()) = shown;
        self.state = loaded;
    }
}

impl Actor for EnrollmentActor {
    type Context = Context<Self>;
}

impl Supervised for EnrollmentActor {
    /// Forget what the failed incarnation knew and reload before the next message.
    fn restarting(&mut self, ctx: &mut Context<Self>) {
        self.set_state(Loaded::Unknown);
        self.deps
            .stats
            .restarts
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (deps, id) = (Arc::clone(&self.deps), self.id);
        ctx.wait(
            async move {
                match load(&deps, id).await {
                    Ok(loaded) => Ok(reconcile(&deps, id, loaded).await),
                    Err(e) => Err(e),
                }
            }
            .into_actor(self)
            .map(|loaded, act, _| {
                // A failed reload stays Unknown: the next message tries again.
                act.set_state(loaded.unwrap_or_default());
            }),
        );
    }
}

/// What the handler does to the actor once the future is done.
#[derive(Debug, Default, Clone, Copy)]
struct After {
    /// Stop (and be restarted by the supervisor, reloading from the store).
    fail: bool,
    /// Try the refund right away instead of waiting for the timer.
    refund_now: bool,
}

impl Handler<Do> for EnrollmentActor {
    type Result = AtomicResponse<Self, Result<Outcome, EngineError>>;

    fn handle(&mut self, Do(op): Do, _: &mut Context<Self>) -> Self::Result {
        // A copy (an Arc clone), not a take: should anything ever run beside this future,
        // it sees the last committed state and the store's version check catches it.
        let loaded = self.state.clone();
        let before = loaded.parts().0;
        let (deps, id) = (Arc::clone(&self.deps), self.id);
        AtomicResponse::new(Box::pin(
            async move { run(&deps, id, loaded, op).await }
                .into_actor(self)
                .map(move |(loaded, result, after), act, ctx| {
                    // Before the answer goes out and before waiters wake: whoever is told
                    // "done" then reads (`Registry::peek`) at least this state. A failing
                    // actor is restarted and reloads (and reconciles) first, so readers
                    // must wait for that, not see what it knew before.
                    if after.fail {
                        act.set_state(Loaded::Unknown);
                    } else {
                        let changed = match &loaded {
                            Loaded::Present { version, state } if *version != before => {
                                Some((*version, Arc::clone(state)))
                            }
                            _ => None,
                        };
                        act.set_state(loaded);
                        if let Some((version, state)) = changed {
                            act.deps.wake_waiters(act.id, version, state);
                        }
                    }
                    if after.refund_now {
                        // Through the mailbox, never ctx.notify: actix polls notified
                        // items without checking for a running AtomicResponse, so a
                        // notified message could interleave with a queued one.
                        ctx.address().do_send(Do(Op::AttemptRefund { attempt: 0 }));
                    }
                    if after.fail {
                        ctx.stop();
                    }
                    result
                }),
        ))
    }
}

async fn load(deps: &Deps, id: EnrollmentId) -> Result<Loaded, EngineError> {
    match deps.store.load(id).await? {
        Some((version, state)) => Ok(Loaded::Present { version, state }),
        None => Ok(Loaded::Missing),
    }
}

type Step = (Loaded, Result<Outcome, EngineError>, After);

fn failed(loaded: Loaded, error: EngineError) -> Step {
    let fail = matches!(
        error,
        EngineError::Internal(_)
            | EngineError::Store(StoreError::Conflict { .. } | StoreError::Corrupt { .. })
    );
    // After an unclear store failure the write may or may not have happened: reload.
    let loaded = match error {
        EngineError::Store(_) => Loaded::Unknown,
        _ => loaded,
    };
    (
        loaded,
        Err(error),
        After {
            fail,
            ..After::default()
        },
    )
}

async fn run(deps: &Deps, id: EnrollmentId, loaded: Loaded, op: Op) -> Step {
    let loaded = match loaded {
        Loaded::Unknown => match load(deps, id).await {
            Ok(l) => match reconcile(deps, id, l).await {
                Loaded::Unknown => {
                    let e = EngineError::Internal(
                        "an interrupted payment could not be reconciled yet".to_owned(),
                    );
                    return (Loaded::Unknown, Err(e), After::default());
                }
                l => l,
            },
            Err(e) => return failed(Loaded::Unknown, e),
        },
        known => known,
    };
    match op {
        Op::Get => unchanged(loaded),
        Op::Execute(command) => execute_fresh(deps, id, loaded, &command).await,
        Op::Propose { method, now } => propose(deps, id, loaded, method, now).await,
        Op::RetryPayment { now } => {
            let (loaded, result, after) =
                execute(deps, id, loaded, &Command::RetryPayment { now }).await;
            match result {
                Ok(outcome) => {
                    let method = outcome.state.payment_method.unwrap_or(PaymentMethod::Card);
                    pay(deps, id, loaded, outcome, method).await
                }
                Err(e) => (loaded, Err(e), after),
            }
        }
        Op::Withdraw { now } => {
            let (loaded, result, mut after) =
                execute(deps, id, loaded, &Command::RequestWithdrawal { now }).await;
            if let Ok(outcome) = &result {
                if outcome
                    .events
                    .iter()
                    .any(|e| matches!(e.event, Event::Withdrawn {}))
                {
                    release_limit(deps, &outcome.state).await;
                }
                after.refund_now = outcome.state.refund_due.is_some();
            }
            (loaded, result, after)
        }
        Op::AttemptRefund { attempt } => refund(deps, id, loaded, attempt).await,
        Op::IssueDocument => {
            let document = match loaded.parts().1 {
                Some(state) if state.status == Status::DocumentRequested => {
                    let catalog = deps.catalog();
                    let product =
                        catalog.version(&state.plan.product_code, state.plan.product_version);
                    Arc::new(crate::domain::document::render(
                        id,
                        &state.plan,
                        state.plan_revision,
                        product.map(|p| p.product()),
                        crate::domain::time::now(),
                    ))
                }
                // Re-saved, expired or already issued: nothing to issue.
                _ => return unchanged(loaded),
            };
            let now = document.issued_at;
            execute(deps, id, loaded, &Command::IssueDocument { document, now }).await
        }
    }
}

/// [`execute`], and once more on fresh state if the store says another process wrote
/// the enrollment since this actor loaded it (several servers on one Redis): the
/// optimistic-concurrency retry. Only for plain commands; payments never repeat here.
async fn execute_fresh(deps: &Deps, id: EnrollmentId, loaded: Loaded, command: &Command) -> Step {
    let step = execute(deps, id, loaded, command).await;
    if !matches!(step.1, Err(EngineError::Store(StoreError::Conflict { .. }))) {
        return step;
    }
    match load(deps, id).await {
        Ok(fresh) => {
            tracing::debug!(enrollment = %id, command = command.name(), "written elsewhere meanwhile; deciding again on fresh state");
            execute(deps, id, fresh, command).await
        }
        Err(_) => step,
    }
}

/// Decides with the pure domain (under `catch_unwind`) and appends atomically.
async fn execute(deps: &Deps, id: EnrollmentId, loaded: Loaded, command: &Command) -> Step {
    let (version, state) = loaded.parts();
    let now = command.at();
    let decided = catch_unwind(AssertUnwindSafe(|| {
        if let Some(chaos) = &deps.chaos {
            chaos(id, command);
        }
        let events = enrollment::handle(state, command)?;
        let customer_no = match (state, command) {
            (Some(s), _) => s.customer_no,
            (None, Command::SavePlan { customer_no, .. }) => *customer_no,
            (None, _) => {
                return Err(enrollment::DomainError::NotStarted {
                    command: command.name(),
                });
            }
        };
        let mut next = state.cloned();
        let mut envelopes = Vec::with_capacity(events.len());
        for (i, event) in events.into_iter().enumerate() {
            next = enrollment::apply(next, id, &event, now);
            envelopes.push(EventEnvelope::new(
                event,
                id,
                customer_no,
                version + 1 + i as u64,
                now,
            ));
        }
        Ok((next, envelopes))
    }));
    let (next, envelopes) = match decided {
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".to_owned());
            tracing::error!(enrollment = %id, command = command.name(), %message, "domain code panicked; restarting the enrollment");
            return failed(
                loaded,
                EngineError::Internal(format!("handling {} failed: {message}", command.name())),
            );
        }
        Ok(Err(domain)) => return (loaded, Err(EngineError::Domain(domain)), After::default()),
        Ok(Ok((Some(next), envelopes))) => (next, envelopes),
        Ok(Ok((None, _))) => {
            return failed(
                loaded,
                EngineError::Internal("the events do not fold into a state".to_owned()),
            );
        }
    };
    let timers = timer_ops(deps, id, &envelopes, now);
    let state = Arc::new(next);
    let envelopes: Vec<Arc<EventEnvelope>> = envelopes.into_iter().map(Arc::new).collect();
    let append = Append {
        id,
        expected_version: version,
        state: &state,
        events: &envelopes,
        timers: &timers,
        document: match command {
            Command::IssueDocument { document, .. } => Some(document),
            _ => None,
        },
    };
    match deps.store.append(append).await {
        Ok(new_version) => {
            let soon = crate::domain::time::now()
                + chrono::Duration::from_std(deps.config.timer_poll).unwrap_or_default();
            if timers
                .iter()
                .any(|t| matches!(t, TimerOp::Set(t) if t.due <= soon))
            {
                deps.timer_wake.notify_one();
            }
            let outcome = Outcome {
                version: new_version,
                state: Arc::clone(&state),
                events: envelopes,
            };
            (
                Loaded::Present {
                    version: new_version,
                    state,
                },
                Ok(outcome),
                After::default(),
            )
        }
        Err(e) => failed(loaded, EngineError::Store(e)),
    }
}

/// The durable timers the events start or make moot, written with them atomically.
fn timer_ops(
    deps: &Deps,
    id: EnrollmentId,
    events: &[EventEnvelope],
    now: DateTime<Utc>,
) -> Vec<TimerOp> {
    let set = |kind, due| {
        TimerOp::Set(Timer {
            enrollment_id: id,
            kind,
            due,
            attempt: 0,
        })
    };
    let mut ops = Vec::new();
    for e in events {
        match &e.event {
            Event::PlanSaved { expires_at, .. } => {
                ops.push(set(TimerKind::ExpirePlan, *expires_at))
            }
            Event::PlanResaved { expires_at, .. } => {
                ops.push(set(TimerKind::ExpirePlan, *expires_at));
                ops.push(TimerOp::Cancel(TimerKind::IssueDocument));
            }
            Event::DocumentRequested { .. } => {
                ops.push(set(
                    TimerKind::IssueDocument,
                    now + deps.config.document_delay_chrono(),
                ));
            }
            Event::DocumentIssued { .. } => ops.push(TimerOp::Cancel(TimerKind::IssueDocument)),
            Event::ProposalSubmitted { .. } => ops.push(TimerOp::Cancel(TimerKind::ExpirePlan)),
            Event::PlanExpired {} => {
                ops.push(TimerOp::Cancel(TimerKind::ExpirePlan));
                ops.push(TimerOp::Cancel(TimerKind::IssueDocument));
            }
            Event::WithdrawalRequested {
                refund_due: Some(_),
            } => ops.push(set(TimerKind::Refund, now)),
            Event::RefundConfirmed { .. } => ops.push(TimerOp::Cancel(TimerKind::Refund)),
            _ => {}
        }
    }
    ops
}

async fn propose(
    deps: &Deps,
    id: EnrollmentId,
    loaded: Loaded,
    method: PaymentMethod,
    now: DateTime<Utc>,
) -> Step {
    let command = Command::SubmitProposal {
        method,
        now,
        withdrawal_deadline: now + deps.config.withdrawal_period_chrono(),
    };
    // Refuse before reserving anything if the proposal is not allowed now.
    if let Err(e) = enrollment::handle(loaded.parts().1, &command) {
        return (loaded, Err(EngineError::Domain(e)), After::default());
    }
    let Some(state) = loaded.parts().1.cloned() else {
        return (
            loaded,
            Err(EngineError::NotFound("enrollment")),
            After::default(),
        );
    };
    let limit = deps
        .catalog()
        .version(&state.plan.product_code, state.plan.product_version)
        .and_then(|p| p.product().underwriting().max_cumulative_sum_insured);
    if let Some(limit) = limit {
        match deps
            .store
            .reserve_limit(
                state.customer_no,
                &state.plan.product_code,
                id,
                state.plan.sum_insured,
                limit,
            )
            .await
        {
            Ok(crate::store::Reservation::Reserved { .. }) => {}
            Ok(crate::store::Reservation::Exceeded { held, limit }) => {
                return (
                    loaded,
                    Err(EngineError::LimitExceeded {
                        held,
                        limit,
                        requested: state.plan.sum_insured,
                    }),
                    After::default(),
                );
            }
            Err(e) => return failed(loaded, EngineError::Store(e)),
        }
    }
    let (loaded, result, after) = execute(deps, id, loaded, &command).await;
    match result {
        Ok(outcome) => pay(deps, id, loaded, outcome, method).await,
        Err(e) => {
            if limit.is_some() {
                release_limit(deps, &state).await;
            }
            (loaded, Err(e), after)
        }
    }
}

/// Pays the first premium of a proposed enrollment and records the result.
async fn pay(
    deps: &Deps,
    id: EnrollmentId,
    loaded: Loaded,
    proposed: Outcome,
    method: PaymentMethod,
) -> Step {
    let amount = proposed.state.plan.quote.installment;
    let reference = payment_reference(id);
    let answer = deps
        .payment
        .charge(ChargeRequest {
            reference,
            amount,
            method,
        })
        .await;
    let now = crate::domain::time::now();
    let command = match &answer {
        PaymentAnswer::Approved { payment_id } => Command::RecordPaymentSucceeded {
            payment_id: payment_id.clone(),
            amount,
            contract_no: contract_no(id, now),
            now,
        },
        PaymentAnswer::Declined { reason } => Command::RecordPaymentFailed {
            failure: PaymentFailure::Declined {
                reason: reason.clone(),
            },
            now,
        },
        PaymentAnswer::Unavailable {
            reason,
            retry_after,
        } => Command::RecordPaymentFailed {
            failure: PaymentFailure::Unavailable {
                reason: reason.clone(),
                retry_after_secs: u32::try_from(retry_after.as_secs().max(1)).unwrap_or(u32::MAX),
            },
            now,
        },
    };
    let (loaded, result, after) = execute(deps, id, loaded, &command).await;
    match (result, command) {
        (Ok(outcome), Command::RecordPaymentFailed { failure, .. }) => (
            loaded,
            Err(EngineError::Payment {
                failure,
                version: outcome.version,
                state: outcome.state,
            }),
            after,
        ),
        (result, _) => (loaded, result, after),
    }
}

/// The merchant order id of an enrollment's first premium: the provider charges a
/// reference at most once, however often it is retried.
fn payment_reference(id: EnrollmentId) -> String {
    id.as_uuid().simple().to_string()
}

/// An enrollment found `Proposed` when loaded was interrupted between taking the payment
/// and recording it (a crash, a failed append). Ask the provider: an approved charge is
/// recorded as paid; otherwise the payment is recorded as failed so the customer may
/// retry, which cannot charge twice (charges are idempotent per reference).
async fn reconcile(deps: &Deps, id: EnrollmentId, loaded: Loaded) -> Loaded {
    let Some(state) = loaded.parts().1 else {
        return loaded;
    };
    if state.status != Status::Proposed {
        return loaded;
    }
    let amount = state.amount_due.unwrap_or(state.plan.quote.installment);
    let now = crate::domain::time::now();
    let interrupted = |reason: &str| Command::RecordPaymentFailed {
        failure: PaymentFailure::Unavailable {
            reason: reason.to_owned(),
            retry_after_secs: 1,
        },
        now,
    };
    let command = match deps.payment.charge_status(payment_reference(id)).await {
        Ok(Some(super::payment::ChargeOutcome::Approved { payment_id })) => {
            Command::RecordPaymentSucceeded {
                payment_id,
                amount,
                contract_no: contract_no(id, now),
                now,
            }
        }
        Ok(_) => interrupted("the payment was interrupted before it was taken; retry it"),
        Err(_) => {
            interrupted("the payment was interrupted and could not be checked; retrying is safe")
        }
    };
    tracing::warn!(enrollment = %id, command = command.name(), "reconciling an interrupted payment");
    let (loaded, result, _) = execute(deps, id, loaded, &command).await;
    if let Err(e) = result {
        tracing::warn!(enrollment = %id, error = %e, "could not record the reconciled payment");
    }
    loaded
}

fn contract_no(id: EnrollmentId, now: DateTime<Utc>) -> String {
    format!(
        "CT-{}-{}",
        crate::domain::document::yyyymmdd(now.date_naive()),
        id.short()
    )
}

async fn release_limit(deps: &Deps, state: &Enrollment) {
    if let Err(e) = deps
        .store
        .release_limit(state.customer_no, &state.plan.product_code, state.id)
        .await
    {
        tracing::warn!(enrollment = %state.id, error = %e, "could not release the cumulative-limit reservation");
    }
}

/// The current state as the outcome of an operation that changed nothing.
fn unchanged(loaded: Loaded) -> Step {
    match &loaded {
        Loaded::Present { version, state } => {
            let outcome = Outcome {
                version: *version,
                state: Arc::clone(state),
                events: Vec::new(),
            };
            (loaded, Ok(outcome), After::default())
        }
        _ => (
            loaded,
            Err(EngineError::NotFound("enrollment")),
            After::default(),
        ),
    }
}

async fn refund(deps: &Deps, id: EnrollmentId, loaded: Loaded, attempt: u32) -> Step {
    let target = match loaded.parts().1 {
        Some(s) if s.status == Status::WithdrawalRequested => {
            s.refund_due.zip(s.payment_id.clone())
        }
        _ => None,
    };
    let Some((amount, payment_id)) = target else {
        // Nothing (left) to refund: the timer is moot.
        if let Err(e) = deps.store.cancel_timer(id, TimerKind::Refund).await {
            tracing::warn!(enrollment = %id, error = %e, "could not cancel a moot refund timer");
        }
        return unchanged(loaded);
    };
    match deps.payment.refund(payment_id, amount).await {
        Ok(refund_id) => {
            let now = crate::domain::time::now();
            let (loaded, result, after) =
                execute(deps, id, loaded, &Command::ConfirmRefund { refund_id, now }).await;
            if let Ok(outcome) = &result {
                release_limit(deps, &outcome.state).await;
            }
            (loaded, result, after)
        }
        Err(answer) => {
            let next = attempt.saturating_add(1);
            let delay = deps.config.refund_backoff(next);
            let due = crate::domain::time::now()
                + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::seconds(1));
            tracing::warn!(enrollment = %id, attempt = next, ?answer, "refund failed; retrying later");
            let timer = Timer {
                enrollment_id: id,
                kind: TimerKind::Refund,
                due,
                attempt: next,
            };
            if let Err(e) = deps.store.set_timer(timer).await {
                return failed(loaded, EngineError::Store(e));
            }
            let error = EngineError::RefundPending {
                attempt: next,
                retry_at: due,
            };
            (loaded, Err(error), After::default())
        }
    }
}
