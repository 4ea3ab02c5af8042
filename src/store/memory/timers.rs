//! Durable timers: each partition keeps those of its enrollments, indexed by due time.

use super::store::MemoryStore;
use crate::domain::enrollment::EnrollmentId;
use crate::store::error::StoreResult;
use crate::store::timers::{Timer, TimerKind, TimerStore, claim_order, lease_end};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::sync::atomic::Ordering;
use std::time::Duration;

#[async_trait]
impl TimerStore for MemoryStore {
    async fn claim_due_timers_in(
        &self,
        now: DateTime<Utc>,
        lease: Duration,
        max: usize,
        partitions: Option<&[u16]>,
    ) -> StoreResult<Vec<Timer>> {
        let until = lease_end(now, lease);
        let n = self.partitions.len();
        let start = self.timer_turn.fetch_add(1, Ordering::Relaxed) % n;
        let mut out = Vec::new();
        for p in claim_order(n, start, partitions) {
            let room = max.saturating_sub(out.len());
            if room == 0 {
                break;
            }
            self.partition(p).timers.claim(now, until, room, &mut out);
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
