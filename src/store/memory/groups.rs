//! A consumer group's state across partitions: where its reads and claims start, and
//! its dead letters.

use crate::store::envelope::EventEnvelope;
use std::sync::Mutex;
use std::sync::atomic::AtomicUsize;

/// Per group, across partitions.
#[derive(Default)]
pub(super) struct GroupMeta {
    /// Where the next `read_group` starts its round over the partitions.
    pub(super) read_turn: AtomicUsize,
    pub(super) claim_turn: AtomicUsize,
    pub(super) dead: Mutex<Vec<DeadLetter>>,
}

pub(super) struct DeadLetter {
    pub(super) envelope: EventEnvelope,
    pub(super) reason: String,
}
