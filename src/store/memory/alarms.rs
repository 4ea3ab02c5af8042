//! Alarms: each customer's newest, and everyone's newest, within the retention.

use crate::domain::enrollment::{CustomerNo, IdHash};
use crate::store::read_model::{Alarm, AlarmRetention};
use chrono::{DateTime, Utc};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use uuid::Uuid;

/// Alarms in the order `(sent_at, arrival)`; read backwards for newest first. A sorted
/// vector, not a tree: alarms arrive in (nearly) the order they were sent, so an insert
/// is a push at the end, or a short shift when two threads' clocks cross.
#[derive(Default)]
pub(super) struct AlarmList(pub(super) VecDeque<(AlarmKey, Arc<Alarm>)>);

/// `(sent_at, arrival)`: arrival breaks ties between alarms sent at the same instant.
pub(super) type AlarmKey = (DateTime<Utc>, u64);

impl AlarmList {
    /// Inserts in order and drops the oldest beyond `keep`.
    pub(super) fn insert(&mut self, key: AlarmKey, alarm: Arc<Alarm>, keep: usize) {
        if self.0.back().is_none_or(|(last, _)| *last < key) {
            self.0.push_back((key, alarm));
        } else {
            let at = self.0.partition_point(|(k, _)| *k < key);
            self.0.insert(at, (key, alarm));
        }
        while self.0.len() > keep {
            self.0.pop_front();
        }
    }

    pub(super) fn has(&self, event_id: Uuid) -> bool {
        self.0.iter().any(|(_, a)| a.event_id == event_id)
    }

    pub(super) fn newest(&self, limit: usize) -> Vec<Alarm> {
        self.0
            .iter()
            .rev()
            .take(limit)
            .map(|(_, a)| (**a).clone())
            .collect()
    }
}

#[derive(Default)]
pub(super) struct AlarmBook {
    pub(super) retention: AlarmRetention,
    pub(super) arrivals: u64,
    pub(super) all: AlarmList,
    pub(super) by_customer: HashMap<CustomerNo, AlarmList, IdHash>,
}

impl AlarmBook {
    /// Records the alarm unless its event already has one among the customer's kept
    /// alarms; returns whether it was new.
    pub(super) fn record(&mut self, alarm: Arc<Alarm>) -> bool {
        let mine = self.by_customer.entry(alarm.customer_no).or_default();
        if mine.has(alarm.event_id) {
            return false;
        }
        self.arrivals += 1;
        let key = (alarm.sent_at, self.arrivals);
        mine.insert(key, Arc::clone(&alarm), self.retention.per_customer);
        self.all.insert(key, alarm, self.retention.index);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::enrollment::{EnrollmentId, Status};

    fn alarm(customer: u64, n: i64) -> Arc<Alarm> {
        Arc::new(Alarm {
            event_id: Uuid::now_v7(),
            enrollment_id: EnrollmentId::new(),
            customer_no: CustomerNo::new(customer),
            status: Status::Planned,
            message: format!("alarm {n}"),
            sent_at: DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::seconds(n),
        })
    }

    fn messages(list: Vec<Alarm>) -> Vec<String> {
        list.into_iter().map(|a| a.message).collect()
    }

    #[test]
    fn alarms_are_kept_newest_first_within_the_retention() {
        let mut book = AlarmBook {
            retention: AlarmRetention {
                per_customer: 3,
                index: 5,
            },
            ..AlarmBook::default()
        };
        // Customer 1 gets alarms 0..6, customer 2 gets 2 late ones, one of them out of order.
        let first = alarm(1, 0);
        assert!(book.record(Arc::clone(&first)));
        assert!(!book.record(Arc::clone(&first)), "once per event");
        for n in 1..6 {
            assert!(book.record(alarm(1, n)));
        }
        assert!(book.record(alarm(2, 10)));
        assert!(book.record(alarm(2, 4)));
        let of = |book: &AlarmBook, c| {
            messages(
                book.by_customer
                    .get(&CustomerNo::new(c))
                    .map(|l| l.newest(100))
                    .unwrap_or_default(),
            )
        };
        assert_eq!(of(&book, 1), ["alarm 5", "alarm 4", "alarm 3"]);
        assert_eq!(of(&book, 2), ["alarm 10", "alarm 4"]);
        assert_eq!(
            messages(book.all.newest(100)),
            ["alarm 10", "alarm 5", "alarm 4", "alarm 4", "alarm 3"]
        );
        assert_eq!(messages(book.all.newest(2)), ["alarm 10", "alarm 5"]);
        // Beyond the customer's retention, an event is no longer recognised.
        assert!(book.record(first));
    }
}
