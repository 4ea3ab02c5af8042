//! Durable timers: one per (enrollment, kind), set or cancelled with an append or on
//! their own, claimed when due under a lease.

use super::error::StoreResult;
use crate::domain::enrollment::EnrollmentId;
use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Durable timers: one per (enrollment, kind); setting one again moves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TimerKind {
    /// Issue the product document (the issuance delay has passed).
    IssueDocument,
    /// Expire the plan if it is still before a proposal.
    ExpirePlan,
    /// Try (again) to refund the first premium of a withdrawn contract.
    Refund,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Timer {
    pub enrollment_id: EnrollmentId,
    pub kind: TimerKind,
    pub due: DateTime<Utc>,
    /// How many times it has fired before (for backoff).
    pub attempt: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerOp {
    Set(Timer),
    Cancel(TimerKind),
}

#[async_trait]
pub trait TimerStore: Send + Sync {
    /// Timers due at `now`, at most `max`, leased for `lease`: a claimed timer that is
    /// neither cancelled nor set again comes due again when the lease runs out (so a crash
    /// between claiming and finishing loses nothing).
    async fn claim_due_timers(
        &self,
        now: DateTime<Utc>,
        lease: Duration,
        max: usize,
    ) -> StoreResult<Vec<Timer>> {
        self.claim_due_timers_in(now, lease, max, None).await
    }
    /// [`claim_due_timers`](Self::claim_due_timers) of the given partitions only (those
    /// this copy owns), or of all with `None`. A partition out of range is ignored.
    async fn claim_due_timers_in(
        &self,
        now: DateTime<Utc>,
        lease: Duration,
        max: usize,
        partitions: Option<&[u16]>,
    ) -> StoreResult<Vec<Timer>>;
    async fn set_timer(&self, timer: Timer) -> StoreResult<()>;
    async fn cancel_timer(&self, id: EnrollmentId, kind: TimerKind) -> StoreResult<()>;
}

/// The partitions a claim covers, in the order to take them: `only` (those in range), or
/// all of them starting at `start`, so no partition always goes last.
pub(crate) fn claim_order(count: usize, start: usize, only: Option<&[u16]>) -> Vec<usize> {
    match only {
        Some(only) => only
            .iter()
            .map(|&p| usize::from(p))
            .filter(|&p| p < count)
            .collect(),
        None => (0..count).map(|k| (start + k) % count.max(1)).collect(),
    }
}

/// When a timer claimed at `now` for `lease` comes due again: `now + lease`, saturating
/// at the end of representable time (a lease too long to represent never runs out).
pub(crate) fn lease_end(now: DateTime<Utc>, lease: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(lease)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}
