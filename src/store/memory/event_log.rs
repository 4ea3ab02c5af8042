//! The event log: consumer groups (cursors and pending entries per partition, dead
//! letters per group), readers without a group, and the wait for appends when there is
//! nothing to read.

use super::groups::{DeadLetter, GroupMeta};
use super::partition::{Cursor, Partition, Pending, PendingList, entry_at};
use super::store::MemoryStore;
use crate::store::envelope::EventEnvelope;
use crate::store::error::StoreResult;
use crate::store::event_log::{
    Delivery, EventLog, check_partition, check_positions, no_group, not_an_entry,
};
use crate::store::locks::{lock, read, write};
use async_trait::async_trait;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// What one delivery needs, gathered under a partition lock and built after it.
pub(super) struct Taken {
    pub(super) partition: u16,
    pub(super) seq: u64,
    pub(super) envelope: Arc<EventEnvelope>,
    pub(super) deliveries: u32,
}

impl Taken {
    pub(super) fn into_delivery(self) -> Delivery {
        Delivery {
            partition: self.partition,
            entry_id: self.seq.to_string(),
            envelope: self.envelope,
            deliveries: self.deliveries,
            state: None,
        }
    }
}

/// Decrements the count of waiting readers when a wait ends, however it ends.
pub(super) struct Waiting<'a>(pub(super) &'a AtomicUsize);

impl<'a> Waiting<'a> {
    pub(super) fn register(counter: &'a AtomicUsize) -> Waiting<'a> {
        counter.fetch_add(1, Ordering::SeqCst);
        Waiting(counter)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl MemoryStore {
    /// The group's dead letters with the reason each was given, oldest first (the trait
    /// returns only the envelopes).
    pub fn dead_letters_with_reasons(&self, group: &str) -> Vec<(EventEnvelope, String)> {
        match self.group(group) {
            Ok(meta) => lock(&meta.dead)
                .iter()
                .map(|d| (d.envelope.clone(), d.reason.clone()))
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    pub(super) fn group(&self, name: &str) -> StoreResult<Arc<GroupMeta>> {
        read(&self.groups)
            .get(name)
            .cloned()
            .ok_or_else(|| no_group(name))
    }

    /// Validates an entry reference: (partition index, sequence number).
    pub(super) fn parse_entry(&self, partition: u16, entry_id: &str) -> StoreResult<(usize, u64)> {
        let index = check_partition(partition, self.partitions.len())?;
        let seq = entry_id
            .parse::<u64>()
            .map_err(|_| not_an_entry(entry_id))?;
        Ok((index, seq))
    }

    /// Hands never-delivered entries to `consumer`, round-robin over the partitions: a first
    /// round takes a fair share of `max` from each, a second fills what is left.
    pub(super) fn take_new(
        &self,
        meta: &GroupMeta,
        group: &str,
        consumer: &Arc<str>,
        max: usize,
    ) -> Vec<Delivery> {
        let n = self.partitions.len();
        let start = meta.read_turn.fetch_add(1, Ordering::Relaxed) % n;
        let share = max.div_ceil(n).max(1);
        let now = Instant::now();
        let mut taken: Vec<Taken> = Vec::new();
        for round in 0..2 {
            let mut more = false;
            for k in 0..n {
                let room = max - taken.len();
                if room == 0 {
                    break;
                }
                let budget = if round == 0 { share.min(room) } else { room };
                let index = (start + k) % n;
                let mut guard = self.partition(index);
                let Partition {
                    first_seq,
                    entries,
                    groups,
                    ..
                } = &mut *guard;
                let Some(cursor) = groups.get_mut(group) else {
                    continue;
                };
                let end = *first_seq + entries.len() as u64;
                // Entries trimmed before they were read are gone, as in Redis.
                cursor.next = cursor.next.max(*first_seq);
                let mut count = 0;
                while cursor.next < end && count < budget {
                    let seq = cursor.next;
                    if let Some(envelope) = entry_at(*first_seq, entries, seq) {
                        taken.push(Taken {
                            partition: index as u16,
                            seq,
                            envelope: Arc::clone(envelope),
                            deliveries: 1,
                        });
                        cursor.pending.insert(
                            seq,
                            Pending {
                                consumer: Arc::clone(consumer),
                                delivered_at: now,
                                deliveries: 1,
                            },
                        );
                    }
                    cursor.next += 1;
                    count += 1;
                }
                more |= cursor.next < end;
            }
            if !more || taken.len() >= max {
                break;
            }
        }
        taken.into_iter().map(Taken::into_delivery).collect()
    }

    /// Validates `read_after` positions: one per partition, each the sequence number of
    /// the last entry the reader has seen (0: none yet).
    pub(super) fn parse_positions(&self, positions: &[String]) -> StoreResult<Vec<u64>> {
        check_positions(positions.len(), self.partitions.len())?;
        positions
            .iter()
            .map(|p| {
                p.parse::<u64>().map_err(|_| {
                    crate::store::error::rejected(format!("{p:?} is not a position in this log"))
                })
            })
            .collect()
    }

    /// Entries after `after` (one position per partition, advanced here), at most `max`,
    /// round-robin over the partitions like [`MemoryStore::take_new`], so a busy partition
    /// does not starve the others; each partition's entries come in order.
    pub(super) fn take_after(&self, after: &mut [u64], max: usize) -> Vec<Arc<EventEnvelope>> {
        let n = self.partitions.len();
        let start = self.tail_turn.fetch_add(1, Ordering::Relaxed) % n;
        let share = max.div_ceil(n).max(1);
        let mut taken = Vec::new();
        for round in 0..2 {
            let mut more = false;
            for k in 0..n {
                let room = max - taken.len();
                if room == 0 {
                    break;
                }
                let budget = if round == 0 { share.min(room) } else { room };
                let index = (start + k) % n;
                let Some(last) = after.get_mut(index) else {
                    continue;
                };
                let part = self.partition(index);
                let end = part.end_seq();
                // Entries trimmed before they were read are gone, as in Redis.
                let mut next = last.saturating_add(1).max(part.first_seq);
                let mut count = 0;
                while next < end && count < budget {
                    if let Some(envelope) = entry_at(part.first_seq, &part.entries, next) {
                        taken.push(Arc::clone(envelope));
                    }
                    next += 1;
                    count += 1;
                }
                *last = (*last).max(next - 1);
                more |= next < end;
            }
            if !more || taken.len() >= max {
                break;
            }
        }
        taken
    }

    /// Takes with `take` until it finds something or `block` has passed, woken by appends
    /// in between; `block` too long to represent waits until something arrives.
    async fn wait_for<T>(&self, block: Duration, mut take: impl FnMut() -> Vec<T>) -> Vec<T> {
        let deadline = Instant::now().checked_add(block);
        loop {
            let _waiting = Waiting::register(&self.waiting_readers);
            let notified = self.appended.notified();
            tokio::pin!(notified);
            // Registered before looking, so an append after the look wakes this wait.
            notified.as_mut().enable();
            let found = take();
            if !found.is_empty() {
                return found;
            }
            match deadline {
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() || tokio::time::timeout(left, notified).await.is_err() {
                        return Vec::new();
                    }
                }
                None => notified.await,
            }
            // Woken by an append (possibly to entries another reader takes first): look again.
        }
    }
}

#[async_trait]
impl EventLog for MemoryStore {
    fn partitions(&self) -> u16 {
        // Built from a u16 count.
        self.partitions.len() as u16
    }

    async fn ensure_group(&self, group: &str) -> StoreResult<()> {
        let mut groups = write(&self.groups);
        if groups.contains_key(group) {
            return Ok(());
        }
        // Every partition gets the cursor before the group is visible to readers.
        for slot in self.partitions.iter() {
            let mut part = lock(&slot.0);
            let start = part.first_seq;
            part.groups.entry(group.to_owned()).or_insert(Cursor {
                next: start,
                pending: PendingList::default(),
            });
        }
        groups.insert(group.to_owned(), Arc::new(GroupMeta::default()));
        Ok(())
    }

    async fn read_group(
        &self,
        group: &str,
        consumer: &str,
        max: usize,
        block: Duration,
    ) -> StoreResult<Vec<Delivery>> {
        let meta = self.group(group)?;
        if max == 0 {
            return Ok(Vec::new());
        }
        let consumer: Arc<str> = Arc::from(consumer);
        let found = self.take_new(&meta, group, &consumer, max);
        if !found.is_empty() || block.is_zero() {
            return Ok(found);
        }
        Ok(self
            .wait_for(block, || self.take_new(&meta, group, &consumer, max))
            .await)
    }

    async fn ack(&self, group: &str, entries: &[(u16, String)]) -> StoreResult<()> {
        let parsed = entries
            .iter()
            .map(|(p, id)| self.parse_entry(*p, id))
            .collect::<StoreResult<Vec<_>>>()?;
        // One lock and one group lookup per run of entries of the same partition (a
        // batch is read partition by partition, so runs are long).
        let mut rest = &parsed[..];
        while let Some(&(index, _)) = rest.first() {
            let run = rest.iter().take_while(|(i, _)| *i == index).count();
            let mut part = self.partition(index);
            if let Some(cursor) = part.groups.get_mut(group) {
                for (_, seq) in &rest[..run] {
                    cursor.pending.remove(*seq);
                }
            }
            rest = &rest[run..];
        }
        Ok(())
    }

    async fn claim_stale(
        &self,
        group: &str,
        consumer: &str,
        min_idle: Duration,
        max: usize,
    ) -> StoreResult<Vec<Delivery>> {
        let meta = self.group(group)?;
        let consumer: Arc<str> = Arc::from(consumer);
        let n = self.partitions.len();
        let start = meta.claim_turn.fetch_add(1, Ordering::Relaxed) % n;
        let now = Instant::now();
        let mut taken: Vec<Taken> = Vec::new();
        for k in 0..n {
            if taken.len() >= max {
                break;
            }
            let index = (start + k) % n;
            let mut guard = self.partition(index);
            let Partition {
                first_seq,
                entries,
                groups,
                ..
            } = &mut *guard;
            let Some(cursor) = groups.get_mut(group) else {
                continue;
            };
            let mut gone = Vec::new();
            for (seq, pending) in cursor.pending.iter_mut() {
                if taken.len() >= max {
                    break;
                }
                if now.saturating_duration_since(pending.delivered_at) < min_idle {
                    continue;
                }
                match entry_at(*first_seq, entries, seq) {
                    Some(envelope) => {
                        pending.consumer = Arc::clone(&consumer);
                        pending.delivered_at = now;
                        pending.deliveries = pending.deliveries.saturating_add(1);
                        taken.push(Taken {
                            partition: index as u16,
                            seq,
                            envelope: Arc::clone(envelope),
                            deliveries: pending.deliveries,
                        });
                    }
                    // Trimmed from the log: dropped from the pending list (XAUTOCLAIM).
                    None => gone.push(seq),
                }
            }
            for seq in gone {
                cursor.pending.remove(seq);
            }
        }
        Ok(taken.into_iter().map(Taken::into_delivery).collect())
    }

    async fn dead_letter(&self, group: &str, delivery: &Delivery, reason: &str) -> StoreResult<()> {
        let meta = self.group(group)?;
        let (index, seq) = self.parse_entry(delivery.partition, &delivery.entry_id)?;
        lock(&meta.dead).push(DeadLetter {
            envelope: (*delivery.envelope).clone(),
            reason: reason.to_owned(),
        });
        if let Some(cursor) = self.partition(index).groups.get_mut(group) {
            cursor.pending.remove(seq);
        }
        Ok(())
    }

    async fn dead_letters(&self, group: &str) -> StoreResult<Vec<EventEnvelope>> {
        let Ok(meta) = self.group(group) else {
            return Ok(Vec::new());
        };
        let dead = lock(&meta.dead);
        Ok(dead.iter().map(|d| d.envelope.clone()).collect())
    }

    async fn lag(&self, group: &str) -> StoreResult<u64> {
        self.group(group)?;
        let mut lag = 0u64;
        for slot in self.partitions.iter() {
            let part = lock(&slot.0);
            if let Some(cursor) = part.groups.get(group) {
                let unread = part
                    .end_seq()
                    .saturating_sub(cursor.next.max(part.first_seq));
                lag += unread + cursor.pending.len() as u64;
            }
        }
        Ok(lag)
    }

    async fn log_end(&self) -> StoreResult<Vec<String>> {
        // The last sequence number given out (0 before the first entry).
        Ok(self
            .partitions
            .iter()
            .map(|slot| (lock(&slot.0).end_seq() - 1).to_string())
            .collect())
    }

    async fn read_after(
        &self,
        positions: &mut [String],
        max: usize,
        block: Duration,
    ) -> StoreResult<Vec<Arc<EventEnvelope>>> {
        let start = self.parse_positions(positions)?;
        if max == 0 {
            return Ok(Vec::new());
        }
        let mut after = start.clone();
        let mut found = self.take_after(&mut after, max);
        if found.is_empty() && !block.is_zero() {
            found = self
                .wait_for(block, || self.take_after(&mut after, max))
                .await;
        }
        // Only positions that moved (past new or trimmed entries) are written back.
        for ((position, old), new) in positions.iter_mut().zip(&start).zip(&after) {
            if new != old {
                *position = new.to_string();
            }
        }
        Ok(found)
    }
}
