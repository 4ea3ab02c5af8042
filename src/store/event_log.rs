//! The event log: partitioned, read by consumer groups (an entry read and not
//! acknowledged stays pending and can be claimed by another consumer after an idle time),
//! and tailed without a group by readers that want every change.
//!
//! Every backend maps an enrollment to a partition, checks entry references and read
//! positions, and names a missing group the same way: those rules live here.

use super::codec;
use super::envelope::EventEnvelope;
use super::error::{StoreError, StoreResult, rejected};
use crate::domain::enrollment::{Enrollment, EnrollmentId};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;

/// One entry handed to a consumer.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub partition: u16,
    /// Position in the partition (a stream entry id in Redis).
    pub entry_id: String,
    /// Shared, not copied: one event goes to every group that reads it.
    pub envelope: Arc<EventEnvelope>,
    /// 1 on the first delivery, more when it was claimed again.
    pub deliveries: u32,
    /// The enrollment's state right after this event (at `envelope.version`), when the
    /// log carries it: on Redis, the last entry of an append in the older stream-entry
    /// layout, which also held the snapshot (`s`); nothing writes that layout any more, but
    /// entries in it are still read. Left encoded, as only some consumers need it.
    pub state: Option<CarriedState>,
}

/// A snapshot carried by a log entry, as the store encoded it.
#[derive(Clone, PartialEq)]
pub struct CarriedState(Vec<u8>);

impl CarriedState {
    pub fn new(encoded: Vec<u8>) -> CarriedState {
        CarriedState(encoded)
    }

    pub fn decode(&self) -> StoreResult<Enrollment> {
        codec::decode_snapshot("carried state", &self.0)
    }
}

impl std::fmt::Debug for CarriedState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CarriedState({} bytes)", self.0.len())
    }
}

#[async_trait]
pub trait EventLog: Send + Sync {
    fn partitions(&self) -> u16;
    /// Creates the group if missing, positioned at the start of the log, so a new group
    /// sees every retained event.
    async fn ensure_group(&self, group: &str) -> StoreResult<()>;
    /// Entries never delivered to this group, across all partitions, at most `max`;
    /// waits up to `block` for one when there are none.
    async fn read_group(
        &self,
        group: &str,
        consumer: &str,
        max: usize,
        block: Duration,
    ) -> StoreResult<Vec<Delivery>>;
    /// Marks entries handled; they are never delivered to this group again.
    async fn ack(&self, group: &str, entries: &[(u16, String)]) -> StoreResult<()>;
    /// Takes over entries pending (delivered, not acknowledged) for longer than
    /// `min_idle`, from any consumer of the group (XAUTOCLAIM).
    async fn claim_stale(
        &self,
        group: &str,
        consumer: &str,
        min_idle: Duration,
        max: usize,
    ) -> StoreResult<Vec<Delivery>>;
    /// Moves an entry that keeps failing to the group's dead-letter list and acknowledges it.
    async fn dead_letter(&self, group: &str, delivery: &Delivery, reason: &str) -> StoreResult<()>;
    /// Entries of the group that are dead-lettered, oldest first.
    async fn dead_letters(&self, group: &str) -> StoreResult<Vec<EventEnvelope>>;
    /// Entries not yet acknowledged by the group (unread + pending): its lag.
    async fn lag(&self, group: &str) -> StoreResult<u64>;
    /// Drops entries every consumer group has acknowledged, so the log does not grow
    /// forever (a log without groups is left alone); returns how many went. Entries a group
    /// has not handled yet are always kept. Backends that bound their log otherwise may
    /// do nothing.
    async fn compact(&self) -> StoreResult<u64> {
        Ok(0)
    }
    /// Where the log ends now: one position per partition, for a reader that wants only what comes next.
    async fn log_end(&self) -> StoreResult<Vec<String>>;
    /// Entries after `positions` (one per partition, as returned by `log_end` or left by a previous call, which this advances), at most `max` in all, waiting up to `block` when there are none. Not a consumer group: every reader sees every entry; nothing is pending or acknowledged. Entries trimmed before they were read are skipped.
    async fn read_after(
        &self,
        positions: &mut [String],
        max: usize,
        block: Duration,
    ) -> StoreResult<Vec<Arc<EventEnvelope>>>;
}

/// The partition (of `count`) an enrollment's events, timers and record belong to.
pub(crate) fn partition_index(id: EnrollmentId, count: usize) -> usize {
    // Less than the partition count, which fits in u16: the cast is exact.
    (id.partition_hash() % count.max(1) as u64) as usize
}

/// `partition` as an index into a log of `count` partitions, or the refusal.
pub(crate) fn check_partition(partition: u16, count: usize) -> StoreResult<usize> {
    let index = usize::from(partition);
    if index < count {
        Ok(index)
    } else {
        Err(rejected(format!(
            "partition {partition} does not exist (the log has {count})"
        )))
    }
}

/// Refuses `read_after` positions that are not one per partition.
pub(crate) fn check_positions(given: usize, count: usize) -> StoreResult<()> {
    if given == count {
        Ok(())
    } else {
        Err(rejected(format!(
            "{given} positions given for a log of {count} partitions"
        )))
    }
}

/// The refusal of an operation on a consumer group that was never created.
pub(crate) fn no_group(group: &str) -> StoreError {
    rejected(format!(
        "no consumer group {group:?}; ensure_group creates it"
    ))
}

/// The refusal of an entry reference that is not a position in the log.
pub(crate) fn not_an_entry(entry_id: &str) -> StoreError {
    rejected(format!("{entry_id:?} is not an entry id of this log"))
}
