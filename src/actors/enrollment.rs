//! EnrollmentActor: one per enrollment, supervised. It serializes the enrollment's
//! commands (async persistence runs inside `AtomicResponse`, so two commands never
//! interleave), runs the pure domain under `catch_unwind`, and appends the resulting
//! events, snapshot and timers in one atomic store write. A failure (a panic in domain
//! code, a version conflict, an undecodable snapshot) answers the caller with an error
//! and stops the actor; its `Supervisor` restarts it and `restarting()` reloads the state
//! from the store. Other enrollments never notice.
//!
//! This module holds the actor and what each [`Op`] does; the steps it is built from are
//! in [`super::enrollment_step`] (decide and append) and [`super::enrollment_payment`]
//! (propose, pay, reconcile, refund).

pub use super::enrollment_step::{Loaded, Outcome};

use super::context::Deps;
use super::enrollment_payment::{pay, propose, reconcile, refund, release_limit};
use super::enrollment_step::{After, Step, execute, execute_fresh, failed, load, unchanged};
use super::error::EngineError;
use crate::domain::enrollment::{Command, Enrollment, EnrollmentId, Event, PaymentMethod, Status};
use actix::prelude::*;
use chrono::{DateTime, Utc};
use std::sync::Arc;

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

#[derive(Message)]
#[rtype(result = "Result<Outcome, EngineError>")]
pub struct Do {
    pub op: Op,
    /// The request it comes from ([`super::request`]), named by the events it appends.
    pub request: Option<Arc<str>>,
}

impl Do {
    pub fn new(op: Op) -> Do {
        Do { op, request: None }
    }
}

/// The last state an enrollment's actor committed, readable without a message (see
/// [`Registry::peek`](super::registry::Registry::peek)). `None` while the actor does not
/// know its state (starting, restarting after a failure, or after an unclear store error).
pub type Committed = std::sync::Mutex<Option<(u64, Arc<Enrollment>)>>;

pub struct EnrollmentActor {
    id: EnrollmentId,
    /// The lease it runs under, fixed at its start (see [`super::ownership::with_fence`]).
    fence: Option<u64>,
    deps: Arc<Deps>,
    state: Loaded,
    committed: Arc<Committed>,
}

impl EnrollmentActor {
    pub fn new(id: EnrollmentId, deps: Arc<Deps>, committed: Arc<Committed>) -> EnrollmentActor {
        EnrollmentActor {
            id,
            fence: deps.ownership.fence(id),
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
            fence: deps.ownership.fence(id),
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
        let fence = self.fence;
        ctx.wait(
            super::ownership::with_fence(fence, async move {
                match load(&deps, id).await {
                    Ok(loaded) => Ok(reconcile(&deps, id, loaded).await),
                    Err(e) => Err(e),
                }
            })
            .into_actor(self)
            .map(|loaded, act, _| {
                // A failed reload stays Unknown: the next message tries again.
                act.set_state(loaded.unwrap_or_default());
            }),
        );
    }
}

impl Handler<Do> for EnrollmentActor {
    type Result = AtomicResponse<Self, Result<Outcome, EngineError>>;

    fn handle(&mut self, Do { op, request }: Do, _: &mut Context<Self>) -> Self::Result {
        // A copy (an Arc clone), not a take: should anything ever run beside this future,
        // it sees the last committed state and the store's version check catches it.
        let loaded = self.state.clone();
        let before = loaded.parts().0;
        let (deps, id, fence) = (Arc::clone(&self.deps), self.id, self.fence);
        AtomicResponse::new(Box::pin(
            async move {
                let work = super::request::scope(request, run(&deps, id, loaded, op));
                super::ownership::with_fence(fence, work).await
            }
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
                    ctx.address()
                        .do_send(Do::new(Op::AttemptRefund { attempt: 0 }));
                }
                if after.fail {
                    ctx.stop();
                }
                result
            }),
        ))
    }
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
