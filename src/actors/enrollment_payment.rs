//! The payment steps of an enrollment: proposing (with the customer's cumulative limit),
//! paying the first premium, reconciling a payment a crash interrupted, and refunding
//! after a withdrawal. Each ends in a plain command step ([`super::enrollment_step`]).

use super::context::Deps;
use super::enrollment_step::{After, Loaded, Outcome, Step, execute, failed, unchanged};
use super::error::EngineError;
use super::payment::{ChargeOutcome, ChargeRequest, PaymentAnswer};
use crate::domain::enrollment::{
    self, Command, Enrollment, EnrollmentId, PaymentFailure, PaymentMethod, Status,
};
use crate::store::{Timer, TimerKind};
use chrono::{DateTime, Utc};

/// Submits the proposal, reserving the customer's cumulative limit first, then pays.
pub(super) async fn propose(
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
pub(super) async fn pay(
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
pub(super) async fn reconcile(deps: &Deps, id: EnrollmentId, loaded: Loaded) -> Loaded {
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
        Ok(Some(ChargeOutcome::Approved { payment_id })) => Command::RecordPaymentSucceeded {
            payment_id,
            amount,
            contract_no: contract_no(id, now),
            now,
        },
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

/// Gives back the customer's cumulative-limit reservation of the enrollment.
pub(super) async fn release_limit(deps: &Deps, state: &Enrollment) {
    if let Err(e) = deps
        .store
        .release_limit(state.customer_no, &state.plan.product_code, state.id)
        .await
    {
        tracing::warn!(enrollment = %state.id, error = %e, "could not release the cumulative-limit reservation");
    }
}

/// Tries the refund of a withdrawal; a failure is retried from a durable timer, backing off.
pub(super) async fn refund(deps: &Deps, id: EnrollmentId, loaded: Loaded, attempt: u32) -> Step {
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
