//! The embedded in-process backend: every trait of [`super`] with the semantics the Redis
//! backend has, kept in memory (nothing survives the process).
//!
//! # Layout and locks
//!
//! The append path is the hot one (the engine targets ≥ 50,000 enrollments a second, about
//! five appends each, with consumers reading at the same time), so there is no global lock
//! on it:
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
//!   `read_after` waiting on a [`Notify`] for appends, after every lock is released. Appends only call
//!   `notify_waiters` (which takes the `Notify`'s own mutex) when a reader is waiting.
//!
//! Snapshots are kept as the immutable `Arc<Enrollment>` the engine appended: in one
//! process there is no boundary to encode for (encoding every append was a seventh of
//! the engine's time). The codec is for stores across a process boundary; a corrupt
//! record (see [`MemoryStore::corrupt_snapshot_for_test`]) is held as bytes and fails to
//! decode here as it would in Redis ([`StoreError::Corrupt`], never a panic). Events are shared (`Arc`) between the
//! enrollment's history and the log, which may be trimmed
//! ([`MemoryStore::with_log_retention`]) while the history is kept whole.

use super::codec;
use super::{
    Alarm, Append, CustomerStore, Delivery, EnrollmentStore, EventEnvelope, EventLog,
    IdempotencyClaim, IdempotencyStore, MyPageView, ProductStore, ReadModelStore, Reservation,
    Store, StoreError, StoreResult, Timer, TimerKind, TimerOp, TimerStore, ViewFilter,
};
use super::{numbered_customer, stored_version, validate_append};
use crate::domain::customer::{Customer, NewCustomer};
use crate::domain::enrollment::{
    CustomerNo, Enrollment, EnrollmentId, IdHash, ProductDocument, Status,
};
use crate::domain::money::Won;
use crate::domain::product::ProductSpec;
use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use std::cmp::{Ordering as CmpOrdering, Reverse};
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use uuid::Uuid;

/// Expired idempotency records are swept every this many puts.
const IDEMPOTENCY_SWEEP_EVERY: u64 = 4096;

/// A poisoned lock only means another thread panicked while holding it; every critical
/// section here leaves the data consistent at each step, so the data is still good.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

fn enrollment_key(id: EnrollmentId) -> String {
    format!("enrollment:{id}")
}

fn rejected(message: impl Into<String>) -> StoreError {
    StoreError::Rejected(message.into())
}

/// `at + span`, saturating at the end of representable time.
fn add_std(at: DateTime<Utc>, span: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(span)
        .ok()
        .and_then(|d| at.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// A stored snapshot: the state as appended, or (only after a test corrupted it) bytes.
#[derive(Clone)]
enum Snapshot {
    Live(Arc<Enrollment>),
    Encoded(Arc<[u8]>),
}

/// One stored enrollment.
struct Record {
    version: u64,
    snapshot: Snapshot,
    /// Every event, oldest first; never trimmed.
    history: Vec<Arc<EventEnvelope>>,
    /// The text of every document issued, oldest first.
    documents: Vec<Arc<ProductDocument>>,
}

/// A consumer group's state in one partition.
struct Cursor {
    /// Sequence number of the next entry never delivered to the group.
    next: u64,
    /// Delivered, not acknowledged: sequence number → who holds it.
    pending: PendingList,
}

/// The pending entries of one group in one partition, by sequence number. Entries are
/// delivered in sequence order and mostly acknowledged in it, so a deque sorted by
/// sequence number, with acknowledged ones left as holes until they reach the front,
/// does with a binary search what a B-tree did with node searches and rebalancing (its
/// removals were 4% of the engine benchmark's instructions).
#[derive(Default)]
struct PendingList {
    slots: VecDeque<(u64, Option<Pending>)>,
    live: usize,
}

impl PendingList {
    fn insert(&mut self, seq: u64, pending: Pending) {
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

    fn remove(&mut self, seq: u64) {
        if let Ok(at) = self.slots.binary_search_by_key(&seq, |(s, _)| *s)
            && self.slots[at].1.take().is_some()
        {
            self.live -= 1;
        }
        while matches!(self.slots.front(), Some((_, None))) {
            self.slots.pop_front();
        }
    }

    fn iter_mut(&mut self) -> impl Iterator<Item = (u64, &mut Pending)> {
        self.slots
            .iter_mut()
            .filter_map(|(seq, pending)| pending.as_mut().map(|p| (*seq, p)))
    }

    fn len(&self) -> usize {
        self.live
    }
}

struct Pending {
    consumer: Arc<str>,
    delivered_at: Instant,
    deliveries: u32,
}

/// Durable timers of the enrollments of one partition.
#[derive(Default)]
struct Timers {
    by_key: HashMap<(EnrollmentId, TimerKind), Timer>,
    /// Due-time index; the value is the kind (which has no order of its own).
    by_due: BTreeMap<(DateTime<Utc>, EnrollmentId, u8), TimerKind>,
}

fn kind_rank(kind: TimerKind) -> u8 {
    match kind {
        TimerKind::IssueDocument => 0,
        TimerKind::ExpirePlan => 1,
        TimerKind::Refund => 2,
    }
}

impl Timers {
    fn set(&mut self, timer: Timer) {
        if let Some(old) = self.by_key.insert((timer.enrollment_id, timer.kind), timer) {
            self.by_due
                .remove(&(old.due, old.enrollment_id, kind_rank(old.kind)));
        }
        self.by_due.insert(
            (timer.due, timer.enrollment_id, kind_rank(timer.kind)),
            timer.kind,
        );
    }

    fn cancel(&mut self, id: EnrollmentId, kind: TimerKind) {
        if let Some(old) = self.by_key.remove(&(id, kind)) {
            self.by_due.remove(&(old.due, id, kind_rank(kind)));
        }
    }

    /// Claims up to `budget` timers due at `now`, moving each to `until`.
    fn claim(
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

/// One partition of the event log, with the group state and timers that belong to it.
struct Partition {
    /// Sequence number of `entries[0]`; the first entry ever is 1.
    first_seq: u64,
    entries: VecDeque<Arc<EventEnvelope>>,
    groups: HashMap<String, Cursor>,
    timers: Timers,
}

impl Partition {
    fn new() -> Partition {
        Partition {
            first_seq: 1,
            entries: VecDeque::new(),
            groups: HashMap::new(),
            timers: Timers::default(),
        }
    }

    /// The sequence number the next entry gets.
    fn end_seq(&self) -> u64 {
        self.first_seq + self.entries.len() as u64
    }

    fn publish(&mut self, events: &[Arc<EventEnvelope>], retention: Option<usize>) {
        self.entries.extend(events.iter().cloned());
        if let Some(max) = retention {
            while self.entries.len() > max {
                self.entries.pop_front();
                self.first_seq += 1;
            }
        }
    }
}

fn entry_at(
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
struct Slot(Mutex<Partition>);

/// Per group, across partitions.
#[derive(Default)]
struct GroupMeta {
    /// Where the next `read_group` starts its round over the partitions.
    read_turn: AtomicUsize,
    claim_turn: AtomicUsize,
    dead: Mutex<Vec<DeadLetter>>,
}

struct DeadLetter {
    envelope: EventEnvelope,
    reason: String,
}

/// What one delivery needs, gathered under a partition lock and built after it.
struct Taken {
    partition: u16,
    seq: u64,
    envelope: Arc<EventEnvelope>,
    deliveries: u32,
}

impl Taken {
    fn into_delivery(self) -> Delivery {
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
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn register(counter: &'a AtomicUsize) -> Waiting<'a> {
        counter.fetch_add(1, Ordering::SeqCst);
        Waiting(counter)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A customer's reservations of one product's cumulative limit.
#[derive(Default)]
struct Holdings {
    total: Won,
    by_enrollment: Few<EnrollmentId, Won>,
}

/// A map of the few entries one customer has (products, enrollments) as a vector
/// searched in order. A hash table per customer cost a few hundred bytes for one or two
/// entries, and the memory store keeps one per customer and index; a customer with
/// thousands of enrollments makes lookups linear, which a workload of such customers
/// would notice before this.
struct Few<K, V>(Vec<(K, V)>);

impl<K, V> Default for Few<K, V> {
    fn default() -> Self {
        Few(Vec::new())
    }
}

impl<K: PartialEq, V> Few<K, V> {
    fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: std::borrow::Borrow<Q>,
        Q: PartialEq + ?Sized,
    {
        self.0
            .iter()
            .find(|(k, _)| k.borrow() == key)
            .map(|(_, v)| v)
    }

    fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: std::borrow::Borrow<Q>,
        Q: PartialEq + ?Sized,
    {
        self.0
            .iter_mut()
            .find(|(k, _)| k.borrow() == key)
            .map(|(_, v)| v)
    }

    /// The value of `key`, inserted by `make` if absent.
    fn get_or_insert_with<Q>(&mut self, key: &Q, make: impl FnOnce() -> (K, V)) -> &mut V
    where
        K: std::borrow::Borrow<Q>,
        Q: PartialEq + ?Sized,
    {
        let at = match self.0.iter().position(|(k, _)| k.borrow() == key) {
            Some(at) => at,
            None => {
                self.0.push(make());
                self.0.len() - 1
            }
        };
        &mut self.0[at].1
    }

    fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => Some(std::mem::replace(v, value)),
            None => {
                self.0.push((key, value));
                None
            }
        }
    }

    fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: PartialEq + ?Sized,
    {
        let at = self.0.iter().position(|(k, _)| k.borrow() == key)?;
        Some(self.0.swap_remove(at).1)
    }

    fn keys(&self) -> impl Iterator<Item = &K> {
        self.0.iter().map(|(k, _)| k)
    }
}

/// The view order: most recently changed first.
type ViewRank = (DateTime<Utc>, u64, EnrollmentId);

fn view_rank(view: &MyPageView) -> ViewRank {
    (view.updated_at, view.version, view.enrollment_id)
}

struct Ranked {
    rank: ViewRank,
    view: MyPageView,
}

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.rank == other.rank
    }
}

impl Eq for Ranked {}

impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}

impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        self.rank.cmp(&other.rank)
    }
}

/// Keeps the `limit` most recently changed views offered to it.
struct TopViews {
    limit: usize,
    heap: BinaryHeap<Reverse<Ranked>>,
}

impl TopViews {
    fn new(limit: usize) -> TopViews {
        TopViews {
            limit,
            heap: BinaryHeap::with_capacity(limit.min(1024) + 1),
        }
    }

    fn offer(&mut self, view: &MyPageView) {
        if self.limit == 0 {
            return;
        }
        let rank = view_rank(view);
        if self.heap.len() < self.limit {
            self.heap.push(Reverse(Ranked {
                rank,
                view: view.clone(),
            }));
        } else if self
            .heap
            .peek()
            .is_some_and(|Reverse(least)| rank > least.rank)
        {
            self.heap.pop();
            self.heap.push(Reverse(Ranked {
                rank,
                view: view.clone(),
            }));
        }
    }

    fn into_vec(self) -> Vec<MyPageView> {
        // Ascending order of `Reverse` is descending rank: newest first.
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|Reverse(r)| r.view)
            .collect()
    }
}

fn matches(filter: &ViewFilter, view: &MyPageView) -> bool {
    filter.customer_no.is_none_or(|c| c == view.customer_no)
        && filter.status.is_none_or(|s| s == view.status)
}

fn status_slot(status: Status) -> Option<usize> {
    Status::ALL.iter().position(|&s| s == status)
}

/// Alarms in the order `(sent_at, arrival)`; read backwards for newest first. A sorted
/// vector, not a tree: alarms arrive in (nearly) the order they were sent, so an insert
/// is a push at the end, or a short shift when two threads' clocks cross.
#[derive(Default)]
struct AlarmList(VecDeque<(AlarmKey, Arc<Alarm>)>);

/// `(sent_at, arrival)`: arrival breaks ties between alarms sent at the same instant.
type AlarmKey = (DateTime<Utc>, u64);

impl AlarmList {
    /// Inserts in order and drops the oldest beyond `keep`.
    fn insert(&mut self, key: AlarmKey, alarm: Arc<Alarm>, keep: usize) {
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

    fn has(&self, event_id: Uuid) -> bool {
        self.0.iter().any(|(_, a)| a.event_id == event_id)
    }

    fn newest(&self, limit: usize) -> Vec<Alarm> {
        self.0
            .iter()
            .rev()
            .take(limit)
            .map(|(_, a)| (**a).clone())
            .collect()
    }
}

/// How many alarms are kept: the newest of each customer, and the newest of everyone in
/// the global index. The same defaults as the Redis store's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlarmRetention {
    pub per_customer: usize,
    pub index: usize,
}

impl Default for AlarmRetention {
    fn default() -> Self {
        AlarmRetention {
            per_customer: 100,
            index: 100_000,
        }
    }
}

#[derive(Default)]
struct AlarmBook {
    retention: AlarmRetention,
    arrivals: u64,
    all: AlarmList,
    by_customer: HashMap<CustomerNo, AlarmList, IdHash>,
}

impl AlarmBook {
    /// Records the alarm unless its event already has one among the customer's kept
    /// alarms; returns whether it was new.
    fn record(&mut self, alarm: Arc<Alarm>) -> bool {
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

struct Remembered {
    /// `None`: claimed, no answer yet.
    value: Option<Vec<u8>>,
    /// `None`: the TTL is too long to represent, so it never expires.
    expires_at: Option<Instant>,
}

impl Remembered {
    fn live(&self, now: Instant) -> bool {
        self.expires_at.is_none_or(|t| now < t)
    }
}

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

    fn load_now(&self, id: EnrollmentId) -> StoreResult<Option<(u64, Arc<Enrollment>)>> {
        let Some((version, snapshot)) = self
            .enrollments
            .get(&id)
            .map(|r| (r.version, r.snapshot.clone()))
        else {
            return Ok(None);
        };
        let state = match snapshot {
            Snapshot::Live(state) => state,
            Snapshot::Encoded(bytes) => {
                Arc::new(codec::decode_snapshot(&enrollment_key(id), &bytes)?)
            }
        };
        Ok(Some((version, state)))
    }

    /// Overwrites a stored snapshot with bytes that do not decode, for recovery tests.
    /// Returns whether the enrollment existed.
    pub fn corrupt_snapshot_for_test(&self, id: EnrollmentId) -> bool {
        match self.enrollments.get_mut(&id) {
            Some(mut record) => {
                // The current format byte, then a truncated varint: bincode must refuse it.
                record.snapshot =
                    Snapshot::Encoded(Arc::from(vec![codec::SNAPSHOT_FORMAT, 0xff, 0xff, 0xff]));
                true
            }
            None => false,
        }
    }

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

    fn partition_of(&self, id: EnrollmentId) -> usize {
        // Less than the partition count, which fits in u16: the cast is exact.
        (id.partition_hash() % self.partitions.len() as u64) as usize
    }

    fn partition(&self, index: usize) -> MutexGuard<'_, Partition> {
        lock(&self.partitions[index % self.partitions.len()].0)
    }

    fn group(&self, name: &str) -> StoreResult<Arc<GroupMeta>> {
        read(&self.groups).get(name).cloned().ok_or_else(|| {
            rejected(format!(
                "no consumer group {name:?}; ensure_group creates it"
            ))
        })
    }

    /// Keys are rarely read back after their TTL: sweep now and then so they do not pile up.
    fn sweep_idempotency(&self, now: Instant) {
        if self.idempotency_puts.fetch_add(1, Ordering::Relaxed) % IDEMPOTENCY_SWEEP_EVERY
            == IDEMPOTENCY_SWEEP_EVERY - 1
        {
            self.idempotency.retain(|_, r| r.live(now));
        }
    }

    /// Validates an entry reference: (partition index, sequence number).
    fn parse_entry(&self, partition: u16, entry_id: &str) -> StoreResult<(usize, u64)> {
        let index = usize::from(partition);
        if index >= self.partitions.len() {
            return Err(rejected(format!(
                "partition {partition} does not exist (the log has {})",
                self.partitions.len()
            )));
        }
        let seq = entry_id
            .parse::<u64>()
            .map_err(|_| rejected(format!("{entry_id:?} is not an entry id of this log")))?;
        Ok((index, seq))
    }

    /// Hands never-delivered entries to `consumer`, round-robin over the partitions: a first
    /// round takes a fair share of `max` from each, a second fills what is left.
    fn take_new(
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
    fn parse_positions(&self, positions: &[String]) -> StoreResult<Vec<u64>> {
        if positions.len() != self.partitions.len() {
            return Err(rejected(format!(
                "{} positions given for a log of {} partitions",
                positions.len(),
                self.partitions.len()
            )));
        }
        positions
            .iter()
            .map(|p| {
                p.parse::<u64>()
                    .map_err(|_| rejected(format!("{p:?} is not a position in this log")))
            })
            .collect()
    }

    /// Entries after `after` (one position per partition, advanced here), at most `max`,
    /// round-robin over the partitions like [`MemoryStore::take_new`], so a busy partition
    /// does not starve the others; each partition's entries come in order.
    fn take_after(&self, after: &mut [u64], max: usize) -> Vec<Arc<EventEnvelope>> {
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
}

#[async_trait]
impl EnrollmentStore for MemoryStore {
    async fn load(&self, id: EnrollmentId) -> StoreResult<Option<(u64, Arc<Enrollment>)>> {
        self.load_now(id)
    }

    /// Nothing to wait for in memory: one after another, without a future per load.
    async fn load_many(
        &self,
        ids: &[EnrollmentId],
    ) -> StoreResult<Vec<Option<(u64, Arc<Enrollment>)>>> {
        ids.iter().map(|&id| self.load_now(id)).collect()
    }

    async fn append(&self, append: Append<'_>) -> StoreResult<u64> {
        let Append {
            id,
            expected_version,
            state,
            events,
            timers,
            document,
        } = append;
        // Malformed appends are refused before anything is locked or written.
        let new_version = validate_append(&append)?;
        let document = document.map(Arc::clone);
        let snapshot = Snapshot::Live(Arc::clone(state));
        let events: Vec<Arc<EventEnvelope>> = events.to_vec();
        let partition = self.partition_of(id);
        {
            // The shard write lock makes everything below one step for this enrollment.
            let entry = self.enrollments.entry(id);
            let actual = match &entry {
                Entry::Occupied(record) => record.get().version,
                Entry::Vacant(_) => 0,
            };
            if actual != expected_version {
                return Err(StoreError::Conflict {
                    key: enrollment_key(id),
                    expected: expected_version,
                    actual,
                });
            }
            {
                let mut part = self.partition(partition);
                part.publish(&events, self.log_retention);
                for op in timers {
                    match *op {
                        TimerOp::Set(timer) => part.timers.set(timer),
                        TimerOp::Cancel(kind) => part.timers.cancel(id, kind),
                    }
                }
            }
            match entry {
                Entry::Occupied(mut record) => {
                    let record = record.get_mut();
                    record.version = new_version;
                    record.snapshot = snapshot;
                    record.history.extend(events);
                    record.documents.extend(document);
                }
                Entry::Vacant(slot) => {
                    slot.insert(Record {
                        version: new_version,
                        snapshot,
                        history: events,
                        documents: document.into_iter().collect(),
                    });
                }
            }
        }
        // After the publish (and its unlock): a reader that registered before this load
        // gets woken; one that registers after it finds the entries when it looks.
        if new_version != expected_version && self.waiting_readers.load(Ordering::SeqCst) > 0 {
            self.appended.notify_waiters();
        }
        Ok(new_version)
    }

    async fn history(&self, id: EnrollmentId) -> StoreResult<Vec<EventEnvelope>> {
        let events: Vec<Arc<EventEnvelope>> = self
            .enrollments
            .get(&id)
            .map(|r| r.history.clone())
            .unwrap_or_default();
        Ok(events.iter().map(|e| (**e).clone()).collect())
    }

    async fn document(
        &self,
        id: EnrollmentId,
        document_no: &str,
    ) -> StoreResult<Option<ProductDocument>> {
        Ok(self.enrollments.get(&id).and_then(|record| {
            record
                .documents
                .iter()
                .rev()
                .find(|d| d.document_no == document_no)
                .map(|d| (**d).clone())
        }))
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
        let until = add_std(now, lease);
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
        // `None`: a wait too long to represent, i.e. until something arrives.
        let deadline = Instant::now().checked_add(block);
        loop {
            let _waiting = Waiting::register(&self.waiting_readers);
            let notified = self.appended.notified();
            tokio::pin!(notified);
            // Registered before looking, so an append after the look wakes this wait.
            notified.as_mut().enable();
            let found = self.take_new(&meta, group, &consumer, max);
            if !found.is_empty() {
                return Ok(found);
            }
            match deadline {
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() || tokio::time::timeout(left, notified).await.is_err() {
                        return Ok(Vec::new());
                    }
                }
                None => notified.await,
            }
            // Woken by an append (possibly to entries another consumer takes first): look again.
        }
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
            // `None`: a wait too long to represent, i.e. until something arrives.
            let deadline = Instant::now().checked_add(block);
            loop {
                let _waiting = Waiting::register(&self.waiting_readers);
                let notified = self.appended.notified();
                tokio::pin!(notified);
                // Registered before looking, so an append after the look wakes this wait.
                notified.as_mut().enable();
                found = self.take_after(&mut after, max);
                if !found.is_empty() {
                    break;
                }
                match deadline {
                    Some(deadline) => {
                        let left = deadline.saturating_duration_since(Instant::now());
                        if left.is_zero() || tokio::time::timeout(left, notified).await.is_err() {
                            break;
                        }
                    }
                    None => notified.await,
                }
            }
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

#[async_trait]
impl CustomerStore for MemoryStore {
    async fn create_customer(&self, new: NewCustomer, now: DateTime<Utc>) -> StoreResult<Customer> {
        let n = self.next_customer.fetch_add(1, Ordering::Relaxed);
        let customer = numbered_customer(n, new, now)?;
        self.customers
            .insert(customer.customer_no, customer.clone());
        Ok(customer)
    }

    async fn create_customer_for(
        &self,
        request: &str,
        new: NewCustomer,
        now: DateTime<Utc>,
        keep: Duration,
    ) -> StoreResult<Customer> {
        let at = Instant::now();
        let expires_at = at.checked_add(keep);
        // The link's shard lock makes linking and registering one step: nothing here
        // can die between them.
        let mut link = self
            .customer_links
            .entry(request.to_owned())
            .or_insert((0, None));
        let (n, until) = *link;
        if n != 0
            && until.is_none_or(|t| at < t)
            && let Some(customer) = self.customers.get(&CustomerNo::new(n))
        {
            return Ok(customer.clone());
        }
        let customer =
            numbered_customer(self.next_customer.fetch_add(1, Ordering::Relaxed), new, now)?;
        self.customers
            .insert(customer.customer_no, customer.clone());
        *link = (customer.customer_no.get(), expires_at);
        drop(link);
        if self.idempotency_puts.fetch_add(1, Ordering::Relaxed) % IDEMPOTENCY_SWEEP_EVERY
            == IDEMPOTENCY_SWEEP_EVERY - 1
        {
            self.customer_links
                .retain(|_, (_, until)| until.is_none_or(|t| at < t));
        }
        Ok(customer)
    }

    async fn customer(&self, no: CustomerNo) -> StoreResult<Option<Customer>> {
        Ok(self.customers.get(&no).map(|c| c.clone()))
    }

    async fn reserve_limit(
        &self,
        no: CustomerNo,
        product_code: &str,
        enrollment: EnrollmentId,
        amount: Won,
        limit: Won,
    ) -> StoreResult<Reservation> {
        // The customer's shard lock makes the check and the reservation one step.
        let mut products = self.reservations.entry(no).or_default();
        let holdings = products.get_or_insert_with(product_code, || {
            (Box::from(product_code), Holdings::default())
        });
        let previous = holdings.by_enrollment.get(&enrollment).copied();
        if previous == Some(amount) {
            return Ok(Reservation::Reserved {
                total: holdings.total,
            });
        }
        // A different amount for the same enrollment replaces its reservation.
        let others = holdings
            .total
            .checked_sub(previous.unwrap_or(Won::ZERO))
            .unwrap_or(Won::ZERO);
        match others.checked_add(amount) {
            Some(total) if total <= limit => {
                holdings.total = total;
                holdings.by_enrollment.insert(enrollment, amount);
                Ok(Reservation::Reserved { total })
            }
            _ => Ok(Reservation::Exceeded {
                held: others,
                limit,
            }),
        }
    }

    async fn release_limit(
        &self,
        no: CustomerNo,
        product_code: &str,
        enrollment: EnrollmentId,
    ) -> StoreResult<()> {
        let Some(mut products) = self.reservations.get_mut(&no) else {
            return Ok(());
        };
        if let Some(holdings) = products.get_mut(product_code)
            && let Some(amount) = holdings.by_enrollment.remove(&enrollment)
        {
            holdings.total = holdings.total.checked_sub(amount).unwrap_or(Won::ZERO);
        }
        Ok(())
    }
}

#[async_trait]
impl ProductStore for MemoryStore {
    async fn put_product(&self, spec: &ProductSpec) -> StoreResult<()> {
        let version = stored_version(spec)?;
        let mut products = lock(&self.products);
        let key = (spec.code.clone(), version);
        if products.contains_key(&key) {
            let latest = products
                .range((spec.code.clone(), 0)..=(spec.code.clone(), u32::MAX))
                .next_back()
                .map_or(version, |((_, v), _)| *v);
            return Err(StoreError::Conflict {
                key: format!("product:{}:{version}", spec.code),
                expected: u64::from(version),
                actual: u64::from(latest),
            });
        }
        products.insert(key, spec.clone());
        Ok(())
    }

    async fn products(&self) -> StoreResult<Vec<ProductSpec>> {
        Ok(lock(&self.products).values().cloned().collect())
    }
}

#[async_trait]
impl ReadModelStore for MemoryStore {
    async fn upsert_view(&self, view: &MyPageView) -> StoreResult<bool> {
        let count = |status: Status, up: bool| {
            if let Some(counter) = status_slot(status).and_then(|i| self.status_counts.get(i)) {
                if up {
                    counter.fetch_add(1, Ordering::Relaxed);
                } else {
                    counter.fetch_sub(1, Ordering::Relaxed);
                }
            }
        };
        // The view's shard lock covers the counters and the customer index (view shard →
        // index shard; nothing takes them the other way round).
        match self.views.entry(view.enrollment_id) {
            Entry::Occupied(mut stored) => {
                if view.version <= stored.get().version {
                    return Ok(false);
                }
                let old = stored.get();
                if old.status != view.status {
                    count(old.status, false);
                    count(view.status, true);
                }
                if old.customer_no != view.customer_no {
                    if let Some(mut ids) = self.views_by_customer.get_mut(&old.customer_no) {
                        ids.remove(&view.enrollment_id);
                    }
                    self.views_by_customer
                        .entry(view.customer_no)
                        .or_default()
                        .insert(view.enrollment_id, ());
                }
                stored.insert(view.clone());
            }
            Entry::Vacant(slot) => {
                count(view.status, true);
                self.views_by_customer
                    .entry(view.customer_no)
                    .or_default()
                    .insert(view.enrollment_id, ());
                slot.insert(view.clone());
            }
        }
        Ok(true)
    }

    async fn view(&self, id: EnrollmentId) -> StoreResult<Option<MyPageView>> {
        Ok(self.views.get(&id).map(|v| v.clone()))
    }

    async fn views(&self, filter: ViewFilter, limit: usize) -> StoreResult<Vec<MyPageView>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut top = TopViews::new(limit);
        match filter.customer_no {
            Some(customer) => {
                let ids: Vec<EnrollmentId> = self
                    .views_by_customer
                    .get(&customer)
                    .map(|ids| ids.keys().copied().collect())
                    .unwrap_or_default();
                for id in ids {
                    if let Some(view) = self.views.get(&id)
                        && matches(&filter, &view)
                    {
                        top.offer(&view);
                    }
                }
            }
            None => {
                for view in self.views.iter() {
                    if matches(&filter, &view) {
                        top.offer(&view);
                    }
                }
            }
        }
        Ok(top.into_vec())
    }

    async fn count_by_status(&self) -> StoreResult<Vec<(Status, u64)>> {
        Ok(Status::ALL
            .iter()
            .zip(self.status_counts.iter())
            .map(|(&status, n)| (status, n.load(Ordering::Relaxed)))
            .collect())
    }

    async fn record_alarm(&self, alarm: &Alarm) -> StoreResult<bool> {
        Ok(lock(&self.alarms).record(Arc::new(alarm.clone())))
    }

    /// One lock for the whole batch; the alarms are shared, not copied.
    async fn record_alarms(&self, alarms: &[Arc<Alarm>]) -> StoreResult<Vec<bool>> {
        let mut book = lock(&self.alarms);
        Ok(alarms
            .iter()
            .map(|alarm| book.record(Arc::clone(alarm)))
            .collect())
    }

    async fn alarms(&self, customer: Option<CustomerNo>, limit: usize) -> StoreResult<Vec<Alarm>> {
        let book = lock(&self.alarms);
        Ok(match customer {
            Some(no) => book
                .by_customer
                .get(&no)
                .map(|list| list.newest(limit))
                .unwrap_or_default(),
            None => book.all.newest(limit),
        })
    }
}

#[async_trait]
impl IdempotencyStore for MemoryStore {
    async fn idempotent_get(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        let now = Instant::now();
        if let Some(found) = self.idempotency.get(key) {
            if found.live(now) {
                return Ok(found.value.clone());
            }
        } else {
            return Ok(None);
        }
        self.idempotency.remove_if(key, |_, r| !r.live(now));
        Ok(None)
    }

    async fn idempotent_put(&self, key: &str, value: &[u8], ttl: Duration) -> StoreResult<bool> {
        if ttl.is_zero() {
            return Err(rejected("an idempotency record needs a positive TTL"));
        }
        let now = Instant::now();
        let record = Remembered {
            value: Some(value.to_vec()),
            expires_at: now.checked_add(ttl),
        };
        let stored = match self.idempotency.entry(key.to_owned()) {
            Entry::Occupied(mut existing) => {
                let kept = existing.get();
                if kept.live(now) && kept.value.is_some() {
                    false
                } else {
                    existing.insert(record);
                    true
                }
            }
            Entry::Vacant(slot) => {
                slot.insert(record);
                true
            }
        };
        self.sweep_idempotency(now);
        Ok(stored)
    }

    async fn idempotent_claim(&self, key: &str, lease: Duration) -> StoreResult<IdempotencyClaim> {
        if lease.is_zero() {
            return Err(rejected("an idempotency claim needs a positive lease"));
        }
        let now = Instant::now();
        let claim = Remembered {
            value: None,
            expires_at: now.checked_add(lease),
        };
        let found = match self.idempotency.entry(key.to_owned()) {
            Entry::Occupied(mut existing) => {
                let kept = existing.get();
                if !kept.live(now) {
                    existing.insert(claim);
                    IdempotencyClaim::Claimed
                } else {
                    match &kept.value {
                        Some(v) => IdempotencyClaim::Done(v.clone()),
                        None => IdempotencyClaim::InProgress,
                    }
                }
            }
            Entry::Vacant(slot) => {
                slot.insert(claim);
                IdempotencyClaim::Claimed
            }
        };
        self.sweep_idempotency(now);
        Ok(found)
    }

    async fn idempotent_release(&self, key: &str) -> StoreResult<()> {
        self.idempotency.remove_if(key, |_, r| r.value.is_none());
        Ok(())
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

    #[test]
    fn few_behaves_as_a_map() {
        let mut few: Few<Box<str>, u32> = Few::default();
        assert_eq!(few.insert("a".into(), 1), None);
        assert_eq!(few.insert("b".into(), 2), None);
        assert_eq!(few.insert("a".into(), 3), Some(1), "a key is there once");
        *few.get_or_insert_with("c", || ("c".into(), 0)) += 5;
        *few.get_or_insert_with("a", || ("a".into(), 0)) += 10;
        assert_eq!(few.get("a"), Some(&13));
        assert_eq!(few.get("c"), Some(&5));
        if let Some(b) = few.get_mut("b") {
            *b = 20;
        }
        assert_eq!(few.remove("b"), Some(20));
        assert_eq!(few.remove("b"), None);
        let mut keys: Vec<&str> = few.keys().map(|k| &**k).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["a", "c"]);
    }

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
