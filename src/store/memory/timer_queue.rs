//! The durable timers of one partition's enrollments, indexed by due time.

use crate::domain::enrollment::EnrollmentId;
use crate::store::timers::{Timer, TimerKind};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap};

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
