//! One partition of the event log: its entries, every consumer group's cursor and
//! pending entries in it, and the durable timers of its enrollments, all behind one lock
//! so an append's publish and timer changes are one short critical section.

use super::timer_queue::Timers;
use crate::store::envelope::EventEnvelope;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// One partition of the event log, with the group state and timers that belong to it.
pub(super) struct Partition {
    /// Sequence number of `entries[0]`; the first entry ever is 1.
    pub(super) first_seq: u64,
    pub(super) entries: VecDeque<Arc<EventEnvelope>>,
    pub(super) groups: HashMap<String, Cursor>,
    pub(super) timers: Timers,
}

impl Partition {
    pub(super) fn new() -> Partition {
        Partition {
            first_seq: 1,
            entries: VecDeque::new(),
            groups: HashMap::new(),
            timers: Timers::default(),
        }
    }

    /// The sequence number the next entry gets.
    pub(super) fn end_seq(&self) -> u64 {
        self.first_seq + self.entries.len() as u64
    }

    pub(super) fn publish(&mut self, events: &[Arc<EventEnvelope>], retention: Option<usize>) {
        self.entries.extend(events.iter().cloned());
        if let Some(max) = retention {
            while self.entries.len() > max {
                self.entries.pop_front();
                self.first_seq += 1;
            }
        }
    }
}

pub(super) fn entry_at(
    first_seq: u64,
    entries: &VecDeque<Arc<EventEnvelope>>,
    seq: u64,
) -> Option<&Arc<EventEnvelope>> {
    let index = usize::try_from(seq.checked_sub(first_seq)?).ok()?;
    entries.get(index)
}

/// Keeps each partition's mutex on its own cache lines, so appends to neighbouring
/// partitions on different cores do not slow each other down.
#[repr(align(128))]
pub(super) struct Slot(pub(super) Mutex<Partition>);

/// A consumer group's state in one partition.
pub(super) struct Cursor {
    /// Sequence number of the next entry never delivered to the group.
    pub(super) next: u64,
    /// Delivered, not acknowledged: sequence number → who holds it.
    pub(super) pending: PendingList,
}

/// The pending entries of one group in one partition, by sequence number. Entries are
/// delivered in sequence order and mostly acknowledged in it, so a deque sorted by
/// sequence number, with acknowledged ones left as holes until they reach the front,
/// finds an entry with one binary search and removes it without rebalancing, which a
/// tree would do on every acknowledgement.
#[derive(Default)]
pub(super) struct PendingList {
    pub(super) slots: VecDeque<(u64, Option<Pending>)>,
    pub(super) live: usize,
}

impl PendingList {
    pub(super) fn insert(&mut self, seq: u64, pending: Pending) {
        match self.slots.back() {
            // Always so for a new delivery: the cursor only moves forward.
            None => self.slots.push_back((seq, Some(pending))),
            Some(&(last, _)) if last < seq => self.slots.push_back((seq, Some(pending))),
            Some(_) => match self.slots.binary_search_by_key(&seq, |(s, _)| *s) {
                Ok(at) => {
                    if self.slots[at].1.is_none() {
                        self.live += 1;
                    }
                    self.slots[at].1 = Some(pending);
                    return;
                }
                Err(at) => self.slots.insert(at, (seq, Some(pending))),
            },
        }
        self.live += 1;
    }

    pub(super) fn remove(&mut self, seq: u64) {
        if let Ok(at) = self.slots.binary_search_by_key(&seq, |(s, _)| *s)
            && self.slots[at].1.take().is_some()
        {
            self.live -= 1;
        }
        while matches!(self.slots.front(), Some((_, None))) {
            self.slots.pop_front();
        }
    }

    pub(super) fn iter_mut(&mut self) -> impl Iterator<Item = (u64, &mut Pending)> {
        self.slots
            .iter_mut()
            .filter_map(|(seq, pending)| pending.as_mut().map(|p| (*seq, p)))
    }

    pub(super) fn len(&self) -> usize {
        self.live
    }
}

pub(super) struct Pending {
    pub(super) consumer: Arc<str>,
    pub(super) delivered_at: Instant,
    pub(super) deliveries: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(deliveries: u32) -> Pending {
        Pending {
            consumer: Arc::from("c"),
            delivered_at: Instant::now(),
            deliveries,
        }
    }

    fn seqs(list: &mut PendingList) -> Vec<(u64, u32)> {
        list.iter_mut().map(|(s, p)| (s, p.deliveries)).collect()
    }

    #[test]
    fn a_pending_list_keeps_sequence_order_whatever_the_order_of_acks() {
        let mut list = PendingList::default();
        for seq in [3, 4, 5, 7] {
            list.insert(seq, pending(1));
        }
        // Out of order (only claims could do this; kept right anyway), and a re-delivery.
        list.insert(1, pending(1));
        list.insert(6, pending(1));
        list.insert(4, pending(2));
        assert_eq!(list.len(), 6);
        assert_eq!(
            seqs(&mut list),
            [(1, 1), (3, 1), (4, 2), (5, 1), (6, 1), (7, 1)]
        );
        list.remove(5);
        list.remove(5);
        list.remove(42);
        assert_eq!(list.len(), 5);
        list.remove(1);
        list.remove(3);
        assert_eq!(seqs(&mut list), [(4, 2), (6, 1), (7, 1)]);
        assert_eq!(
            list.slots.front().map(|(s, _)| *s),
            Some(4),
            "holes at the front go"
        );
        // A hole in the middle comes back to life when its entry is delivered again.
        list.insert(5, pending(3));
        assert_eq!(seqs(&mut list), [(4, 2), (5, 3), (6, 1), (7, 1)]);
        for seq in [7, 6, 5, 4] {
            list.remove(seq);
        }
        assert_eq!(list.len(), 0);
        assert!(list.slots.is_empty());
    }
}
