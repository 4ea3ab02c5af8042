//! Persistence behind traits, so the engine never knows the backend: [`memory`] (embedded,
//! in process; the default, and what tests and benchmarks use) and, later, Redis (durable,
//! shared by several processes). Both keep the same semantics:
//!
//! - an enrollment is a snapshot (bincode with a format-version byte, see [`codec`]) and a
//!   version; [`EnrollmentStore::append`] checks the expected version and, atomically with
//!   the snapshot write, publishes the events to the enrollment's partition of the event
//!   log and sets or cancels its durable timers (transactional outbox). A mismatch is
//!   [`StoreError::Conflict`], never a lost update;
//! - the event log is partitioned and read by consumer groups: an entry read and not
//!   acknowledged stays pending and can be claimed by another consumer after an idle time;
//!   it can also be tailed without a group ([`EventLog::log_end`], [`EventLog::read_after`]),
//!   so every process sees every change (the live event stream);
//! - read-model writes and alarm records are idempotent.

pub mod codec;
pub mod memory;
pub mod redis;

use crate::domain::customer::{Customer, NewCustomer};
use crate::domain::enrollment::{
    CustomerNo, Enrollment, EnrollmentId, Event, ProductDocument, Status,
};
use crate::domain::money::Won;
use crate::domain::period::{CoveragePeriod, PaymentCycle};
use crate::domain::product::ProductSpec;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("version conflict on {key}: expected version {expected}, found {actual}")]
    Conflict {
        key: String,
        expected: u64,
        actual: u64,
    },
    #[error("the stored record {key} does not decode: {reason}")]
    Corrupt { key: String, reason: String },
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    #[error("{0}")]
    Rejected(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// An event as it travels: JSON `{id, type, data, enrollmentId, customerNo, version, time,
/// schemaVersion}`. `version` is the enrollment's version after this event; `id` is what
/// consumers are idempotent on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventEnvelope {
    pub id: Uuid,
    #[serde(flatten)]
    pub event: Event,
    pub enrollment_id: EnrollmentId,
    pub customer_no: CustomerNo,
    pub version: u64,
    pub time: DateTime<Utc>,
    pub schema_version: u16,
}

impl EventEnvelope {
    pub fn new(
        event: Event,
        enrollment_id: EnrollmentId,
        customer_no: CustomerNo,
        version: u64,
        time: DateTime<Utc>,
    ) -> EventEnvelope {
        EventEnvelope {
            id: Uuid::now_v7(),
            schema_version: event.event_version(),
            event,
            enrollment_id,
            customer_no,
            version,
            time,
        }
    }
}

/// Durable timers: one per (enrollment, kind); setting one again moves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TimerKind {
    /// Issue the product document (the issuance delay has passed).
    IssueDocument,
    /// Expire the plan if it is still before a proposal.
    ExpirePlan,
    /// Try (again) to refund the first premium of a withdrawn contract.
    Refund,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Timer {
    pub enrollment_id: EnrollmentId,
    pub kind: TimerKind,
    pub due: DateTime<Utc>,
    /// How many times it has fired before (for backoff).
    pub attempt: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerOp {
    Set(Timer),
    Cancel(TimerKind),
}

/// One atomic write: the new snapshot, the events that led to it, and timer changes.
/// State and events are shared (`Arc`): an in-process store keeps them as they are, a
/// remote one encodes them.
#[derive(Debug, Clone, Copy)]
pub struct Append<'a> {
    pub id: EnrollmentId,
    /// The version the caller's decision was based on (0 for a new enrollment).
    pub expected_version: u64,
    pub state: &'a std::sync::Arc<Enrollment>,
    pub events: &'a [std::sync::Arc<EventEnvelope>],
    pub timers: &'a [TimerOp],
    /// The text of the document a `DocumentIssued` event of this append names: stored
    /// with it, once, and apart from the state and the events, which hold only its
    /// reference ([`EnrollmentStore::document`] reads it back).
    pub document: Option<&'a std::sync::Arc<ProductDocument>>,
}

#[async_trait]
pub trait EnrollmentStore: Send + Sync {
    /// The snapshot and its version, or `None` if the enrollment does not exist. Shared:
    /// the state is immutable once appended, and the memory store hands out what it holds.
    async fn load(&self, id: EnrollmentId) -> StoreResult<Option<(u64, Arc<Enrollment>)>>;
    /// [`load`](Self::load) for several enrollments, one answer per id, in order. By
    /// default the loads run at the same time (their round trips overlap); a store that
    /// can do better overrides it.
    async fn load_many(
        &self,
        ids: &[EnrollmentId],
    ) -> StoreResult<Vec<Option<(u64, Arc<Enrollment>)>>> {
        futures_util::future::try_join_all(ids.iter().map(|&id| self.load(id))).await
    }
    /// Writes atomically; returns the new version (expected + number of events).
    async fn append(&self, append: Append<'_>) -> StoreResult<u64>;
    /// Every event of one enrollment, oldest first.
    async fn history(&self, id: EnrollmentId) -> StoreResult<Vec<EventEnvelope>>;
    /// The text of document `document_no` of enrollment `id`, as an append stored it;
    /// `None` if there is none. Every document issued stays, also one a re-saved plan
    /// superseded.
    async fn document(
        &self,
        id: EnrollmentId,
        document_no: &str,
    ) -> StoreResult<Option<ProductDocument>>;
}

#[async_trait]
pub trait TimerStore: Send + Sync {
    /// Timers due at `now`, at most `max`, leased for `lease`: a claimed timer that is
    /// neither cancelled nor set again comes due again when the lease runs out (so a crash
    /// between claiming and finishing loses nothing).
    async fn claim_due_timers(
        &self,
        now: DateTime<Utc>,
        lease: Duration,
        max: usize,
    ) -> StoreResult<Vec<Timer>>;
    async fn set_timer(&self, timer: Timer) -> StoreResult<()>;
    async fn cancel_timer(&self, id: EnrollmentId, kind: TimerKind) -> StoreResult<()>;
}

/// One entry handed to a consumer.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub partition: u16,
    /// Position in the partition (a stream entry id in Redis).
    pub entry_id: String,
    /// Shared, not copied: one event goes to every group that reads it.
    pub envelope: std::sync::Arc<EventEnvelope>,
    /// 1 on the first delivery, more when it was claimed again.
    pub deliveries: u32,
    /// The enrollment's state right after this event (at `envelope.version`), when the
    /// log carries it: on Redis, the last entry of each append written by a build before
    /// 2026-12-03 (none since). Left encoded, as only some consumers need it.
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
    ) -> StoreResult<Vec<std::sync::Arc<EventEnvelope>>>;
}

/// The outcome of a cumulative-limit reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// Reserved (or already held by this enrollment); `total` is the customer's total now.
    Reserved { total: Won },
    /// Refused: `held` is what the customer already holds of the product.
    Exceeded { held: Won, limit: Won },
}

#[async_trait]
pub trait CustomerStore: Send + Sync {
    /// Registers a customer under a newly allocated number.
    async fn create_customer(&self, new: NewCustomer, now: DateTime<Utc>) -> StoreResult<Customer>;
    /// [`create_customer`](Self::create_customer) once per request (a scoped
    /// Idempotency-Key): the first call links `request` to the new number for `keep`; a
    /// later call under the same request gets the customer that number belongs to, even
    /// when the first call died before its answer was kept. If it died between linking
    /// and writing the customer, the later call writes the customer under the linked
    /// number, from its own `new`. The caller compares what comes back with its request.
    async fn create_customer_for(
        &self,
        request: &str,
        new: NewCustomer,
        now: DateTime<Utc>,
        keep: Duration,
    ) -> StoreResult<Customer>;
    async fn customer(&self, no: CustomerNo) -> StoreResult<Option<Customer>>;
    /// Atomically reserves `amount` of the product's cumulative limit for an enrollment,
    /// if the customer's total stays within `limit`. Idempotent per enrollment.
    async fn reserve_limit(
        &self,
        no: CustomerNo,
        product_code: &str,
        enrollment: EnrollmentId,
        amount: Won,
        limit: Won,
    ) -> StoreResult<Reservation>;
    /// Releases an enrollment's reservation (no-op if it holds none).
    async fn release_limit(
        &self,
        no: CustomerNo,
        product_code: &str,
        enrollment: EnrollmentId,
    ) -> StoreResult<()>;
}

#[async_trait]
pub trait ProductStore: Send + Sync {
    /// Stores one version of a product (its spec carries the version). Storing a version
    /// that exists is a conflict.
    async fn put_product(&self, spec: &ProductSpec) -> StoreResult<()>;
    /// Every stored version of every product, by code then version.
    async fn products(&self) -> StoreResult<Vec<ProductSpec>>;
}

/// 내보험 조회: what customers and administrators see of one enrollment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MyPageView {
    pub enrollment_id: EnrollmentId,
    pub customer_no: CustomerNo,
    pub product_code: String,
    pub product_version: u32,
    pub product_name: String,
    pub status: Status,
    pub sum_insured: Won,
    pub installment: Won,
    pub payment_cycle: PaymentCycle,
    pub coverage_period: CoveragePeriod,
    pub payment_period: u8,
    pub contract_no: Option<String>,
    /// The enrollment version this view reflects (events at or below it are applied).
    pub version: u64,
    pub updated_at: DateTime<Utc>,
}

/// 알림: one notification sent to a customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Alarm {
    /// The event it announces; at most one alarm per event.
    pub event_id: Uuid,
    pub enrollment_id: EnrollmentId,
    pub customer_no: CustomerNo,
    pub status: Status,
    pub message: String,
    pub sent_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ViewFilter {
    pub customer_no: Option<CustomerNo>,
    pub status: Option<Status>,
}

#[async_trait]
pub trait ReadModelStore: Send + Sync {
    /// Writes the view unless the stored one is at the same or a later version; returns
    /// whether it was written (so replays and reordering are harmless).
    async fn upsert_view(&self, view: &MyPageView) -> StoreResult<bool>;
    /// [`upsert_view`](Self::upsert_view) for several views at once (one round trip on a
    /// remote store); one answer per view, in order.
    async fn upsert_views(&self, views: &[MyPageView]) -> StoreResult<Vec<bool>> {
        let mut written = Vec::with_capacity(views.len());
        for view in views {
            written.push(self.upsert_view(view).await?);
        }
        Ok(written)
    }
    async fn view(&self, id: EnrollmentId) -> StoreResult<Option<MyPageView>>;
    /// Views matching the filter, most recently changed first, at most `limit`.
    async fn views(&self, filter: ViewFilter, limit: usize) -> StoreResult<Vec<MyPageView>>;
    /// How many enrollments are in each status, by the read model.
    async fn count_by_status(&self) -> StoreResult<Vec<(Status, u64)>>;
    /// Records an alarm unless one for the same event exists; returns whether it was new.
    async fn record_alarm(&self, alarm: &Alarm) -> StoreResult<bool>;
    /// [`record_alarm`](Self::record_alarm) for several alarms at once (one round trip on
    /// a remote store); one answer per alarm, in order.
    async fn record_alarms(&self, alarms: &[Arc<Alarm>]) -> StoreResult<Vec<bool>> {
        let mut new = Vec::with_capacity(alarms.len());
        for alarm in alarms {
            new.push(self.record_alarm(alarm).await?);
        }
        Ok(new)
    }
    /// Alarms, newest first, of one customer or of everyone.
    async fn alarms(&self, customer: Option<CustomerNo>, limit: usize) -> StoreResult<Vec<Alarm>>;
}

/// What claiming an idempotency key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyClaim {
    /// Nobody had it: the caller now holds it (for the lease) and does the work.
    Claimed,
    /// Another request with this key is being worked on (here or in another process).
    InProgress,
    /// The key's first answer, kept.
    Done(Vec<u8>),
}

/// First answers of requests with an `Idempotency-Key`, shared by every process on the
/// store: a key is claimed before the work (so two copies of the server never both do
/// it), then its answer replaces the claim.
#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// The kept answer for a key; `None` if there is none (or only a claim).
    async fn idempotent_get(&self, key: &str) -> StoreResult<Option<Vec<u8>>>;
    /// Keeps the first answer for a key, replacing a claim on it; returns false (and keeps
    /// the old) if an answer is kept already.
    async fn idempotent_put(&self, key: &str, value: &[u8], ttl: Duration) -> StoreResult<bool>;
    /// Claims a key for `lease` unless it is claimed or answered. A claim that is neither
    /// answered nor released runs out with its lease (its holder died).
    async fn idempotent_claim(&self, key: &str, lease: Duration) -> StoreResult<IdempotencyClaim>;
    /// Drops a claim (the work failed in a way worth retrying); an answer stays.
    async fn idempotent_release(&self, key: &str) -> StoreResult<()>;
}

/// Customer numbers are `C` and nine digits.
const MAX_CUSTOMER_NO: u64 = 999_999_999;

/// The customer record for the `n`-th number a backend handed out, or the refusal when
/// the numbers have run out.
fn numbered_customer(n: u64, new: NewCustomer, now: DateTime<Utc>) -> StoreResult<Customer> {
    if n > MAX_CUSTOMER_NO {
        return Err(StoreError::Rejected(
            "every customer number (C000000001 to C999999999) is taken".to_owned(),
        ));
    }
    Ok(Customer {
        customer_no: CustomerNo::new(n),
        name: new.name,
        birth_date: new.birth_date,
        gender: new.gender,
        mobile_phone: new.mobile_phone,
        registered_at: now,
    })
}

/// The version a product spec is stored under; a spec without one is refused (the catalog
/// numbers versions before storing).
fn stored_version(spec: &ProductSpec) -> StoreResult<u32> {
    spec.version.ok_or_else(|| {
        StoreError::Rejected(format!(
            "product {} carries no version; the catalog numbers versions before storing",
            spec.code
        ))
    })
}

/// Checks an append before anything is written (the snapshot, every event and every timer
/// are of the enrollment appended to, events numbered after the expected version);
/// returns the new version. Every backend refuses the same appends the same way.
fn validate_append(append: &Append<'_>) -> StoreResult<u64> {
    let rejected = |m: String| StoreError::Rejected(m);
    let id = append.id;
    if append.state.id != id {
        return Err(rejected(format!(
            "the snapshot is of enrollment {}, not {id}",
            append.state.id
        )));
    }
    for (i, envelope) in append.events.iter().enumerate() {
        let after = append.expected_version.saturating_add(i as u64 + 1);
        if envelope.enrollment_id != id || envelope.version != after {
            return Err(rejected(format!(
                "event {} is enrollment {} version {}; this append expects {id} version {after}",
                envelope.id, envelope.enrollment_id, envelope.version
            )));
        }
    }
    if let Some(document) = append.document {
        let named = append.events.iter().any(|envelope| {
            matches!(&envelope.event, Event::DocumentIssued { document: reference }
                if document.is_named_by(reference))
        });
        if !named {
            return Err(rejected(format!(
                "document {} comes with no DocumentIssued event that names it",
                document.document_no
            )));
        }
    }
    if let Some(TimerOp::Set(t)) = append
        .timers
        .iter()
        .find(|op| matches!(op, TimerOp::Set(t) if t.enrollment_id != id))
    {
        return Err(rejected(format!(
            "a timer of enrollment {} in an append to {id}",
            t.enrollment_id
        )));
    }
    append
        .expected_version
        .checked_add(append.events.len() as u64)
        .ok_or_else(|| rejected("the version would overflow".to_owned()))
}

/// Everything the engine needs of a backend.
#[async_trait]
pub trait Store:
    EnrollmentStore
    + TimerStore
    + EventLog
    + CustomerStore
    + ProductStore
    + ReadModelStore
    + IdempotencyStore
{
    /// Cheap reachability check (`/readyz`).
    async fn ping(&self) -> StoreResult<()>;
    /// A short name for logs: `memory`, `redis`.
    fn backend(&self) -> &'static str;
}
