//! The embedded in-process backend: every trait of [`crate::store`] with the semantics the
//! Redis backend has, kept in memory (nothing survives the process).
//!
//! # Layout and locks
//!
//! The append path is the hot one (every state change is an append, with consumers
//! reading at the same time), so there is no global lock on it:
//!
//! - enrollments live in a [`DashMap`]; an append holds the write lock of the enrollment's
//!   shard (its `entry`) for the whole write, which makes the version check, the snapshot
//!   and history write, the log publish and the timer changes one atomic step for anyone
//!   who looks at that enrollment;
//! - the event log is split into partitions, each behind its own `std::sync::Mutex`
//!   (padded to its own cache lines). A partition holds its entries, every consumer
//!   group's cursor and pending entries for it, and the durable timers of its
//!   enrollments, so the publish and the timer changes of an append take one short,
//!   uncontended-in-the-common-case lock, inside the shard lock above;
//! - lock order is always shard → partition (nothing holding a partition lock takes a
//!   shard lock), and the group registry (an `RwLock`) is never held while a partition is
//!   locked except by `ensure_group`, which takes registry → partitions;
//! - no std lock is ever held across an `.await`: the only awaits are `read_group` and
//!   `read_after` waiting on a [`Notify`] for appends, after every lock is released.
//!   Appends only call `notify_waiters` (which takes the `Notify`'s own mutex) when a
//!   reader is waiting.
//!
//! Snapshots are kept as the immutable `Arc<Enrollment>` the engine appended: in one
//! process there is no boundary to encode for, and encoding every append would be a large
//! share of the engine's work. The codec is for stores across a process boundary; a
//! corrupt record (see [`MemoryStore::corrupt_snapshot_for_test`]) is held as bytes and
//! fails to decode here as it would in Redis
//! ([`StoreError::Corrupt`](crate::store::StoreError::Corrupt), never a panic). Events are
//! shared (`Arc`) between the enrollment's history and the log, which may be trimmed
//! ([`MemoryStore::with_log_retention`]) while the history is kept whole.
//!
//! # Files
//!
//! This file holds [`MemoryStore`], its constructor and settings; each other file one
//! concern: `enrollments` (records and the append), `partition` (one partition of the
//! log, its groups' pending entries and its timers), `event_log` (consumer groups and
//! readers), `timers`, `customers`, `products`, `read_model` (views), `alarms`,
//! `idempotency`, and `few` (the small map customers' indexes use).

mod alarms;
mod customers;
mod enrollments;
mod event_log;
mod few;
mod idempotency;
mod partition;
mod products;
mod read_model;
mod timers;

pub use crate::store::read_model::AlarmRetention;

use alarms::AlarmBook;
use customers::Holdings;
use enrollments::Record;
use event_log::GroupMeta;
use few::Few;
use idempotency::Remembered;
use partition::{Partition, Slot};

use crate::domain::customer::Customer;
use crate::domain::enrollment::{CustomerNo, EnrollmentId, IdHash, Status};
use crate::domain::product::ProductSpec;
use crate::store::Store;
use crate::store::error::StoreResult;
use crate::store::event_log::partition_index;
use crate::store::locks::lock;
use crate::store::read_model::MyPageView;
use async_trait::async_trait;
use dashmap::DashMap;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Instant;
use tokio::sync::Notify;

/// The embedded backend. Cheap to share behind an `Arc`; every method takes `&self`.
pub struct MemoryStore {
    partitions: Box<[Slot]>,
    /// Trim each partition of the log to at most this many entries.
    log_retention: Option<usize>,
    enrollments: DashMap<EnrollmentId, Record, IdHash>,
    groups: RwLock<HashMap<String, Arc<GroupMeta>>>,
    /// Woken (all waiters) by appends, when `waiting_readers` says someone waits.
    appended: Notify,
    waiting_readers: AtomicUsize,
    timer_turn: AtomicUsize,
    /// Where the next `read_after` starts its round over the partitions.
    tail_turn: AtomicUsize,
    next_customer: AtomicU64,
    customers: DashMap<CustomerNo, Customer, IdHash>,
    /// Per customer, per product code.
    reservations: DashMap<CustomerNo, Few<Box<str>, Holdings>, IdHash>,
    products: Mutex<BTreeMap<(String, u32), ProductSpec>>,
    views: DashMap<EnrollmentId, MyPageView, IdHash>,
    views_by_customer: DashMap<CustomerNo, Few<EnrollmentId, ()>, IdHash>,
    /// Views per status, in the order of `Status::ALL`.
    status_counts: [AtomicU64; Status::ALL.len()],
    alarms: Mutex<AlarmBook>,
    idempotency: DashMap<String, Remembered>,
    idempotency_puts: AtomicU64,
    /// Keyed registrations: request → (customer number, link expiry; `None`: never).
    customer_links: DashMap<String, (u64, Option<Instant>)>,
}

impl Default for MemoryStore {
    /// 16 partitions.
    fn default() -> Self {
        MemoryStore::new(16)
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("partitions", &self.partitions.len())
            .field("log_retention", &self.log_retention)
            .field("enrollments", &self.enrollments.len())
            .field("customers", &self.customers.len())
            .field("views", &self.views.len())
            .finish_non_exhaustive()
    }
}

impl MemoryStore {
    /// An empty store whose event log has `partitions` partitions (at least 1).
    pub fn new(partitions: u16) -> MemoryStore {
        let partitions = partitions.max(1);
        MemoryStore {
            partitions: (0..partitions)
                .map(|_| Slot(Mutex::new(Partition::new())))
                .collect(),
            log_retention: None,
            enrollments: DashMap::default(),
            groups: RwLock::new(HashMap::new()),
            appended: Notify::new(),
            waiting_readers: AtomicUsize::new(0),
            timer_turn: AtomicUsize::new(0),
            tail_turn: AtomicUsize::new(0),
            next_customer: AtomicU64::new(1),
            customers: DashMap::default(),
            reservations: DashMap::default(),
            products: Mutex::new(BTreeMap::new()),
            views: DashMap::default(),
            views_by_customer: DashMap::default(),
            status_counts: std::array::from_fn(|_| AtomicU64::new(0)),
            alarms: Mutex::new(AlarmBook::default()),
            idempotency: DashMap::new(),
            idempotency_puts: AtomicU64::new(0),
            customer_links: DashMap::new(),
        }
    }

    /// Keeps at most `max_entries` (at least 1) in each partition of the event log, like
    /// `XADD MAXLEN`: older entries are dropped whether or not every group has read them.
    /// Histories are kept whole. Without this the log grows with every event.
    pub fn with_log_retention(mut self, max_entries: usize) -> MemoryStore {
        self.log_retention = Some(max_entries.max(1));
        self
    }

    /// Keeps the newest `retention.per_customer` alarms of each customer and the newest
    /// `retention.index` of everyone (each at least 1); an event whose alarm is no longer
    /// kept is no longer recognised as alarmed. Defaults: [`AlarmRetention::default`].
    pub fn with_alarm_retention(self, retention: AlarmRetention) -> MemoryStore {
        lock(&self.alarms).retention = AlarmRetention {
            per_customer: retention.per_customer.max(1),
            index: retention.index.max(1),
        };
        self
    }

    fn partition_of(&self, id: EnrollmentId) -> usize {
        partition_index(id, self.partitions.len())
    }

    fn partition(&self, index: usize) -> MutexGuard<'_, Partition> {
        lock(&self.partitions[index % self.partitions.len()].0)
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn ping(&self) -> StoreResult<()> {
        Ok(())
    }

    fn backend(&self) -> &'static str {
        "memory"
    }
}
