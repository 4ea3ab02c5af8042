//! [`MemoryStore`]: its state and its constructor; each store trait is implemented in a
//! file of its own beside this one.

use super::alarms::AlarmBook;
use super::few::Few;
use super::groups::GroupMeta;
use super::holdings::Holdings;
use super::partition::{Partition, Slot};
use super::payment_ledger::Approval;
use super::record::Record;
use super::remembered::Remembered;

use crate::domain::customer::Customer;
use crate::domain::enrollment::{CustomerNo, EnrollmentId, IdHash, Status};
use crate::domain::product::ProductSpec;
use crate::store::backend::Store;
use crate::store::error::StoreResult;
use crate::store::event_log::partition_index;
use crate::store::locks::lock;
use crate::store::read_model::AlarmRetention;
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
    pub(super) partitions: Box<[Slot]>,
    /// Trim each partition of the log to at most this many entries.
    pub(super) log_retention: Option<usize>,
    pub(super) enrollments: DashMap<EnrollmentId, Record, IdHash>,
    pub(super) groups: RwLock<HashMap<String, Arc<GroupMeta>>>,
    /// Woken (all waiters) by appends, when `waiting_readers` says someone waits.
    pub(super) appended: Notify,
    pub(super) waiting_readers: AtomicUsize,
    pub(super) timer_turn: AtomicUsize,
    /// Where the next `read_after` starts its round over the partitions.
    pub(super) tail_turn: AtomicUsize,
    pub(super) next_customer: AtomicU64,
    pub(super) customers: DashMap<CustomerNo, Customer, IdHash>,
    /// Per customer, per product code.
    pub(super) reservations: DashMap<CustomerNo, Few<Box<str>, Holdings>, IdHash>,
    pub(super) products: Mutex<BTreeMap<(String, u32), ProductSpec>>,
    pub(super) views: DashMap<EnrollmentId, MyPageView, IdHash>,
    pub(super) views_by_customer: DashMap<CustomerNo, Few<EnrollmentId, ()>, IdHash>,
    /// Views per status, in the order of `Status::ALL`.
    pub(super) status_counts: [AtomicU64; Status::ALL.len()],
    pub(super) alarms: Mutex<AlarmBook>,
    pub(super) idempotency: DashMap<String, Remembered>,
    pub(super) idempotency_puts: AtomicU64,
    /// Keyed registrations: request → (customer number, link expiry; `None`: never).
    pub(super) customer_links: DashMap<String, (u64, Option<Instant>)>,
    /// Members and partition leases.
    pub(super) ownership: Mutex<super::ownership::Book>,
    /// The payment ledger: approvals by reference, refund ids by payment id.
    pub(super) approvals: DashMap<String, Approval>,
    pub(super) refunds: DashMap<String, String>,
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
            ownership: Mutex::default(),
            approvals: DashMap::new(),
            refunds: DashMap::new(),
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

    pub(super) fn partition_of(&self, id: EnrollmentId) -> usize {
        partition_index(id, self.partitions.len())
    }

    pub(super) fn partition(&self, index: usize) -> MutexGuard<'_, Partition> {
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
