//! Durable timers: document issuance, plan expiry and refund retries are rows in the
//! store, written atomically with the events that start them. This loop claims due ones
//! (with a lease, so a crash between claiming and finishing loses nothing) and hands each
//! to the actor that does the work. An engine started on a store with timers left over
//! finishes them.

use super::document::{DocumentIssuer, Issue};
use super::engine::{Deps, EngineError};
use super::enrollment::{Do, Op};
use super::registry::Registry;
use crate::domain::enrollment::{Command, DomainError};
use crate::store::{Timer, TimerKind};
use actix::Addr;
use chrono::Utc;
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
        match deps
            .store
            .claim_due_timers(Utc::now(), deps.config.timer_lease, 1024)
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
    match timer.kind {
        TimerKind::IssueDocument => issuer.do_send(Issue { id }),
        TimerKind::ExpirePlan => {
            let (deps, addr) = (Arc::clone(deps), registry.addr(id, deps));
            tokio::spawn(async move {
                let expire = Op::Execute(Command::ExpirePlan { now: Utc::now() });
                match addr.send(Do(expire)).await {
                    // A plan that moved on (proposed, withdrawn) has nothing to expire.
                    Ok(Err(EngineError::Domain(DomainError::IllegalTransition { .. }))) => {
                        if let Err(e) = deps.store.cancel_timer(id, TimerKind::ExpirePlan).await {
                            tracing::warn!(enrollment = %id, error = %e, "cannot cancel a moot expiry timer");
                        }
                    }
                    Ok(Ok(_) | Err(EngineError::Domain(_))) => {}
                    Ok(Err(e)) => {
                        tracing::warn!(enrollment = %id, error = %e, "plan expiry failed; it is retried when its lease ends")
                    }
                    Err(e) => {
                        tracing::warn!(enrollment = %id, error = %e, "plan expiry not delivered")
                    }
                }
            });
        }
        TimerKind::Refund => {
            let addr = registry.addr(id, deps);
            tokio::spawn(async move {
                match addr
                    .send(Do(Op::AttemptRefund {
                        attempt: timer.attempt,
                    }))
                    .await
                {
                    Ok(Ok(_)) | Ok(Err(EngineError::RefundPending { .. })) => {}
                    Ok(Err(e)) => {
                        tracing::warn!(enrollment = %id, error = %e, "refund attempt failed")
                    }
                    Err(e) => {
                        tracing::warn!(enrollment = %id, error = %e, "refund attempt not delivered")
                    }
                }
            });
        }
    }
}
