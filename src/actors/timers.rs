//! Durable timers: document issuance, plan expiry and refund retries are rows in the
//! store, written atomically with the events that start them. This loop claims due ones
//! (with a lease, so a crash between claiming and finishing loses nothing) and hands each
//! to the actor that does the work. An engine started on a store with timers left over
//! finishes them.

use super::context::Deps;
use super::document::{DocumentIssuer, Issue};
use super::enrollment::Op;
use super::error::EngineError;
use super::registry::Registry;
use crate::domain::enrollment::{Command, DomainError};
use crate::store::{Timer, TimerKind};
use actix::Addr;
use std::sync::Arc;
use tokio::sync::watch;

pub async fn run(
    deps: Arc<Deps>,
    registry: Arc<Registry>,
    issuer: Addr<DocumentIssuer>,
    mut shutdown: watch::Receiver<bool>,
) {
    let poll = deps.config.timer_poll;
    loop {
        // Only the partitions this copy owns: their actors live here.
        let owned = deps.ownership.owned_partitions();
        match deps
            .store
            .claim_due_timers_in(
                crate::domain::time::now(),
                deps.config.timer_lease,
                1024,
                owned.as_deref(),
            )
            .await
        {
            Ok(timers) => {
                for timer in timers {
                    dispatch(&deps, &registry, &issuer, timer);
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot read due timers; retrying"),
        }
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tokio::time::sleep(poll) => {}
            // An actor set a timer that is due before the next poll.
            _ = deps.timer_wake.notified() => {}
        }
    }
}

fn dispatch(
    deps: &Arc<Deps>,
    registry: &Arc<Registry>,
    issuer: &Addr<DocumentIssuer>,
    timer: Timer,
) {
    let id = timer.enrollment_id;
    let (deps, registry) = (Arc::clone(deps), Arc::clone(registry));
    match timer.kind {
        TimerKind::IssueDocument => issuer.do_send(Issue { id }),
        TimerKind::ExpirePlan => {
            tokio::spawn(async move {
                let expire = Op::Execute(Command::ExpirePlan {
                    now: crate::domain::time::now(),
                });
                match registry.call(id, &deps, expire).await {
                    // A plan that moved on (proposed, withdrawn) has nothing to expire.
                    Err(EngineError::Domain(DomainError::IllegalTransition { .. })) => {
                        if let Err(e) = deps.store.cancel_timer(id, TimerKind::ExpirePlan).await {
                            tracing::warn!(enrollment = %id, error = %e, "cannot cancel a moot expiry timer");
                        }
                    }
                    Ok(_) | Err(EngineError::Domain(_)) => {}
                    Err(e) => {
                        tracing::warn!(enrollment = %id, error = %e, "plan expiry failed; it is retried when its lease ends")
                    }
                }
            });
        }
        TimerKind::Refund => {
            tokio::spawn(async move {
                let attempt = Op::AttemptRefund {
                    attempt: timer.attempt,
                };
                match registry.call(id, &deps, attempt).await {
                    Ok(_) | Err(EngineError::RefundPending { .. }) => {}
                    Err(e) => tracing::warn!(enrollment = %id, error = %e, "refund attempt failed"),
                }
            });
        }
    }
}
