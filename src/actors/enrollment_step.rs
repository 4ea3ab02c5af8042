//! One step of an operation on an enrollment: the state its actor knows ([`Loaded`]),
//! deciding a command with the pure domain under `catch_unwind`, and appending the events,
//! snapshot and timers in one atomic store write. The actor ([`super::enrollment`]) and
//! the payment steps ([`super::enrollment_payment`]) are built from these.

use super::context::Deps;
use super::error::EngineError;
use crate::domain::enrollment::{self, Command, Enrollment, EnrollmentId, Event};
use crate::store::{Append, EventEnvelope, StoreError, Timer, TimerKind, TimerOp};
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
    pub(super) fn parts(&self) -> (u64, Option<&Enrollment>) {
        match self {
            Loaded::Present { version, state } => (*version, Some(state)),
            _ => (0, None),
        }
    }
}

/// The enrollment after an operation, and the events it produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub version: u64,
    pub state: Arc<Enrollment>,
    pub events: Vec<Arc<EventEnvelope>>,
}

/// What the handler does to the actor once the future is done.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct After {
    /// Stop (and be restarted by the supervisor, reloading from the store).
    pub(super) fail: bool,
    /// Try the refund right away instead of waiting for the timer.
    pub(super) refund_now: bool,
}

/// What the store holds of the enrollment.
pub(super) async fn load(deps: &Deps, id: EnrollmentId) -> Result<Loaded, EngineError> {
    match deps.store.load(id).await? {
        Some((version, state)) => Ok(Loaded::Present { version, state }),
        None => Ok(Loaded::Missing),
    }
}

/// What an operation step leaves: the state now known, the answer, and what the actor
/// does next.
pub(super) type Step = (Loaded, Result<Outcome, EngineError>, After);

/// The step that failed with `error`: the actor stops (and reloads) when the failure
/// leaves its state in doubt.
pub(super) fn failed(loaded: Loaded, error: EngineError) -> Step {
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

/// [`execute`], and once more on fresh state if the store says another process wrote
/// the enrollment since this actor loaded it (several servers on one Redis): the
/// optimistic-concurrency retry. Only for plain commands; payments never repeat here.
pub(super) async fn execute_fresh(
    deps: &Deps,
    id: EnrollmentId,
    loaded: Loaded,
    command: &Command,
) -> Step {
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
pub(super) async fn execute(
    deps: &Deps,
    id: EnrollmentId,
    loaded: Loaded,
    command: &Command,
) -> Step {
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
        let request = super::request::current();
        for (i, event) in events.into_iter().enumerate() {
            next = enrollment::apply(next, id, &event, now);
            let mut envelope =
                EventEnvelope::new(event, id, customer_no, version + 1 + i as u64, now);
            envelope.request.clone_from(&request);
            envelopes.push(envelope);
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
        fence: super::ownership::append_fence(&deps.ownership, id),
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

/// The current state as the outcome of an operation that changed nothing.
pub(super) fn unchanged(loaded: Loaded) -> Step {
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
