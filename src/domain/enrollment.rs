//! The enrollment aggregate (가입): one customer's journey for one product, as pure
//! functions. `handle(&state, command)` decides (events or a refusal), `apply(state,
//! &event)` folds. Everything a decision needs (the quote, the time, deadlines) is in the
//! command, so every rule is testable without a runtime.
//!
//! ```text
//! Planned ──request document──▶ DocumentRequested ──issued──▶ DocumentIssued
//!    ▲  └─ re-save plan ─┘                                          │ submit proposal
//!    └──────────── re-save plan (before proposal) ──────────────────┤
//!                      PaymentFailed ◀─declined─ Proposed ─paid─▶ Contracted
//!                          └──── retry payment ─────┘                 │ withdraw
//!            Withdrawn ◀── refund confirmed ── WithdrawalRequested ◀──┘
//!            (from Proposed/PaymentFailed a withdrawal needs no refund)
//! Planned / DocumentRequested / DocumentIssued ──plan expired──▶ Expired
//! ```

pub use super::document::{DocumentRef, ProductDocument};
pub use super::events::{Command, DomainError, Event, PaymentFailure, PaymentMethod};
pub use super::ids::{CustomerNo, EnrollmentId, IdHash, IdHasher};
pub use super::plan::PlanTerms;
pub use super::status::Status;

use super::money::Won;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The state of one enrollment, rebuilt by folding its events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Enrollment {
    pub id: EnrollmentId,
    pub customer_no: CustomerNo,
    pub status: Status,
    /// Shared, like the document: the state is copied on every command.
    pub plan: std::sync::Arc<PlanTerms>,
    /// 1 for the first save, +1 on each re-save; a document names the revision it shows.
    pub plan_revision: u32,
    #[serde(with = "super::time::utc")]
    pub plan_expires_at: DateTime<Utc>,
    /// The issued document for the current plan revision, by reference (its text is kept
    /// apart). Shared: the state is copied on every command.
    pub document: Option<std::sync::Arc<DocumentRef>>,
    pub payment_method: Option<PaymentMethod>,
    /// The first premium the proposal asks for; a payment of any other amount is refused.
    pub amount_due: Option<Won>,
    #[serde(with = "super::time::utc_opt")]
    pub proposed_at: Option<DateTime<Utc>>,
    #[serde(with = "super::time::utc_opt")]
    pub withdrawal_deadline: Option<DateTime<Utc>>,
    pub payment_attempts: u32,
    pub last_payment_failure: Option<PaymentFailure>,
    pub payment_id: Option<String>,
    pub paid_amount: Option<Won>,
    pub contract_no: Option<String>,
    pub refund_due: Option<Won>,
    pub refund_id: Option<String>,
    #[serde(with = "super::time::utc")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "super::time::utc")]
    pub updated_at: DateTime<Utc>,
}

fn illegal(command: &Command, status: Status) -> DomainError {
    DomainError::IllegalTransition {
        command: command.name(),
        status,
    }
}

/// Decides: the events a command produces in a state, or why it is refused.
pub fn handle(state: Option<&Enrollment>, command: &Command) -> Result<Vec<Event>, DomainError> {
    let Some(state) = state else {
        return match command {
            Command::SavePlan {
                customer_no,
                plan,
                expires_at,
                ..
            } => Ok(vec![Event::PlanSaved {
                customer_no: *customer_no,
                plan: plan.clone(),
                expires_at: *expires_at,
            }]),
            other => Err(DomainError::NotStarted {
                command: other.name(),
            }),
        };
    };
    let status = state.status;
    let refuse = || Err(illegal(command, status));
    let expired = |now: &DateTime<Utc>| {
        (status.is_pre_proposal() && *now >= state.plan_expires_at).then_some(
            DomainError::PlanExpired {
                expires_at: state.plan_expires_at,
            },
        )
    };
    match command {
        Command::SavePlan { .. } => Err(DomainError::AlreadyStarted),
        Command::ResavePlan {
            plan,
            expires_at,
            now,
        } => {
            if !status.is_pre_proposal() {
                return refuse();
            }
            if let Some(e) = expired(now) {
                return Err(e);
            }
            Ok(vec![Event::PlanResaved {
                plan: plan.clone(),
                revision: state.plan_revision + 1,
                expires_at: *expires_at,
            }])
        }
        Command::RequestDocument { now } => match status {
            Status::Planned => match expired(now) {
                Some(e) => Err(e),
                None => Ok(vec![Event::DocumentRequested {
                    plan_revision: state.plan_revision,
                }]),
            },
            _ => refuse(),
        },
        Command::IssueDocument { document, now } => match status {
            Status::DocumentRequested if expired(now).is_some() => Err(DomainError::PlanExpired {
                expires_at: state.plan_expires_at,
            }),
            Status::DocumentRequested if document.plan_revision == state.plan_revision => {
                Ok(vec![Event::DocumentIssued {
                    document: std::sync::Arc::new(document.reference()),
                }])
            }
            Status::DocumentRequested => Err(DomainError::StaleDocument {
                document_revision: document.plan_revision,
                current_revision: state.plan_revision,
            }),
            _ => refuse(),
        },
        Command::SubmitProposal {
            method,
            now,
            withdrawal_deadline,
        } => match status {
            Status::DocumentIssued => match expired(now) {
                Some(e) => Err(e),
                None => Ok(vec![Event::ProposalSubmitted {
                    method: *method,
                    amount: state.plan.quote.installment,
                    withdrawal_deadline: *withdrawal_deadline,
                }]),
            },
            _ => refuse(),
        },
        Command::RecordPaymentSucceeded {
            payment_id,
            amount,
            contract_no,
            ..
        } => match status {
            Status::Proposed if state.amount_due.is_some_and(|due| due != *amount) => {
                Err(DomainError::AmountMismatch {
                    due: state.amount_due.unwrap_or_default(),
                    paid: *amount,
                })
            }
            Status::Proposed => Ok(vec![Event::PaymentSucceeded {
                payment_id: payment_id.clone(),
                amount: *amount,
                contract_no: contract_no.clone(),
            }]),
            _ => refuse(),
        },
        Command::RecordPaymentFailed { failure, .. } => match status {
            Status::Proposed => Ok(vec![Event::PaymentFailed {
                failure: failure.clone(),
            }]),
            _ => refuse(),
        },
        Command::RetryPayment { .. } => match status {
            Status::PaymentFailed => Ok(vec![Event::PaymentRetried {
                attempt: state.payment_attempts + 1,
            }]),
            _ => refuse(),
        },
        Command::RequestWithdrawal { now } => match status {
            Status::Contracted => match state.withdrawal_deadline {
                Some(deadline) if *now > deadline => {
                    Err(DomainError::WithdrawalPeriodOver { deadline })
                }
                _ => Ok(vec![Event::WithdrawalRequested {
                    refund_due: state.paid_amount,
                }]),
            },
            // Nothing was paid: withdrawn at once, no refund to wait for.
            Status::Proposed | Status::PaymentFailed => Ok(vec![
                Event::WithdrawalRequested { refund_due: None },
                Event::Withdrawn {},
            ]),
            _ => refuse(),
        },
        Command::ConfirmRefund { refund_id, .. } => match (status, state.refund_due) {
            (Status::WithdrawalRequested, Some(amount)) => Ok(vec![
                Event::RefundConfirmed {
                    refund_id: refund_id.clone(),
                    amount,
                },
                Event::Withdrawn {},
            ]),
            _ => refuse(),
        },
        Command::ExpirePlan { now } => {
            if !status.is_pre_proposal() {
                return refuse();
            }
            if *now < state.plan_expires_at {
                return Err(DomainError::NotExpired {
                    expires_at: state.plan_expires_at,
                });
            }
            Ok(vec![Event::PlanExpired {}])
        }
    }
}

/// Folds one event into the state. `at` is the event's time. Returns `None` only for a
/// first event that does not start an enrollment (a corrupt history).
pub fn apply(
    state: Option<Enrollment>,
    id: EnrollmentId,
    event: &Event,
    at: DateTime<Utc>,
) -> Option<Enrollment> {
    let mut s = match (state, event) {
        (
            None,
            Event::PlanSaved {
                customer_no,
                plan,
                expires_at,
            },
        ) => {
            return Some(Enrollment {
                id,
                customer_no: *customer_no,
                status: Status::Planned,
                plan: std::sync::Arc::clone(plan),
                plan_revision: 1,
                plan_expires_at: *expires_at,
                document: None,
                payment_method: None,
                amount_due: None,
                proposed_at: None,
                withdrawal_deadline: None,
                payment_attempts: 0,
                last_payment_failure: None,
                payment_id: None,
                paid_amount: None,
                contract_no: None,
                refund_due: None,
                refund_id: None,
                created_at: at,
                updated_at: at,
            });
        }
        (None, _) => return None,
        (Some(s), _) => s,
    };
    s.status = event.status_after(Some(s.status));
    s.updated_at = at;
    match event {
        Event::PlanSaved {
            plan, expires_at, ..
        } => {
            s.plan = std::sync::Arc::clone(plan);
            s.plan_expires_at = *expires_at;
        }
        Event::PlanResaved {
            plan,
            revision,
            expires_at,
        } => {
            s.plan = std::sync::Arc::clone(plan);
            s.plan_revision = *revision;
            s.plan_expires_at = *expires_at;
            s.document = None;
        }
        Event::DocumentRequested { .. } => {}
        Event::DocumentIssued { document } => s.document = Some(std::sync::Arc::clone(document)),
        Event::ProposalSubmitted {
            method,
            amount,
            withdrawal_deadline,
        } => {
            s.payment_method = Some(*method);
            s.amount_due = Some(*amount);
            s.proposed_at = Some(at);
            s.withdrawal_deadline = Some(*withdrawal_deadline);
            s.payment_attempts = 1;
        }
        Event::PaymentSucceeded {
            payment_id,
            amount,
            contract_no,
        } => {
            s.payment_id = Some(payment_id.clone());
            s.paid_amount = Some(*amount);
            s.contract_no = Some(contract_no.clone());
            s.last_payment_failure = None;
        }
        Event::PaymentFailed { failure } => s.last_payment_failure = Some(failure.clone()),
        Event::PaymentRetried { attempt } => {
            s.payment_attempts = *attempt;
            s.last_payment_failure = None;
        }
        Event::WithdrawalRequested { refund_due } => s.refund_due = *refund_due,
        Event::RefundConfirmed { refund_id, .. } => s.refund_id = Some(refund_id.clone()),
        Event::Withdrawn {} | Event::PlanExpired {} => {}
    }
    Some(s)
}

/// Folds a whole history; `None` if it is empty or does not start with a saved plan.
pub fn replay<'a>(
    id: EnrollmentId,
    events: impl IntoIterator<Item = (&'a Event, DateTime<Utc>)>,
) -> Option<Enrollment> {
    let mut state = None;
    for (event, at) in events {
        state = Some(apply(state, id, event, at)?);
    }
    state
}
