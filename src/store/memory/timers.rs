//! Durable timers: each partition keeps those of its enrollments, indexed by due time.

use super::store::MemoryStore;
use crate::domain::enrollment::EnrollmentId;
use crate::store::error::StoreResult;
use crate::store::timers::{Timer, TimerKind, TimerStore, lease_end};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Durable timers of the enrollments of one partition.
#[derive(Default)]
pub(super) struct Timers {
    pub(super) by_key: HashMap<(EnrollmentId, TimerKind), Timer>,
    /// Due-time index; the value is the kind (which has no order of its own).
    pub(super) by_due: BTreeMap<(DateTime<Utc>, EnrollmentId, u8), TimerKind>,
}

pub(super) fn kind_rank(kind: TimerKind) -> u8 {
    match kind {
        TimerKind::IssueDocument => 0,
        TimerKind::ExpirePlan => 1,
        TimerKind::Refund => 2,
    }
}

impl Timers {
    pub(super) fn set(&mut self, timer: Timer) {
        if let Some(old) = self.by_key.insert((timer.enrollment_id, timer.kind), timer) {
            self.by_due
                .remove(&(old.due, old.enrollment_id, kind_rank(old.kind)));
        }
        self.by_due.insert(
            (timer.due, timer.enrollment_id, kind_rank(timer.kind)),
            timer.kind,
        );
    }

    pub(super) fn cancel(&mut self, id: EnrollmentId, kind: TimerKind) {
        if let Some(old) = self.by_key.remove(&(id, kind)) {
            self.by_due.remove(&(old.due, id, kind_rank(kind)));
        }
    }

    /// Claims up to `budget` timers due at `now`, moving each to `until`.
    pub(super) fn claim(
        &mut self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        budget: usize,
        out: &mut Vec<Timer>,
    ) {
        let due: Vec<_> = self
            .by_due
            .iter()
            .take_while(|((due, _, _), _)| *due <= now)
            .take(budget)
            .map(|(key, kind)| (*key, *kind))
            .collect();
        for (key, kind) in due {
            self.by_due.remove(&key);
            let (_, id, rank) = key;
            if let Some(timer) = self.by_key.get_mut(&(id, kind)) {
                out.push(*timer);
                timer.due = until;
                self.by_due.insert((until, id, rank), kind);
            }
        }
    }
}

#[async_trait]
impl TimerStore for MemoryStore {
    async fn claim_due_timers(
        &self,
        now: DateTime<Utc>,
        lease: Duration,
        max: usize,
    ) -> StoreResult<Vec<Timer>> {
        let until = lease_end(now, lease);
        let n = self.partitions.len();
        let start = self.timer_turn.fetch_add(1, Ordering::Relaxed) % n;
        let mut out = Vec::new();
        for k in 0..n {
            let room = max.saturating_sub(out.len());
            if room == 0 {
                break;
            }
            self.partition((start + k) % n)
                .timers
                .claim(now, until, room, &mut out);
        }
        Ok(out)
    }

    async fn set_timer(&self, timer: Timer) -> StoreResult<()> {
        self.partition(self.partition_of(timer.enrollment_id))
            .timers
            .set(timer);
        Ok(())
    }

    async fn cancel_timer(&self, id: EnrollmentId, kind: TimerKind) -> StoreResult<()> {
        self.partition(self.partition_of(id))
            .timers
            .cancel(id, kind);
        Ok(())
    }
}
