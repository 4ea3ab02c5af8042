//! Persistence behind traits, so the engine never knows the backend: [`memory`] (embedded,
//! in process; the default, and what tests and benchmarks use) and [`redis`] (durable,
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
//! - read-model writes and alarm records are idempotent; the payment ledger's records are
//!   first-wins.
//!
//! # Files
//!
//! - [`error`](StoreError): what an operation fails with;
//! - `envelope`: [`EventEnvelope`], the event as it travels;
//! - one file per trait with its types and the checks every backend shares: `enrollments`
//!   ([`EnrollmentStore`], [`Append`]), `timers` ([`TimerStore`]), `event_log`
//!   ([`EventLog`], [`Delivery`]), `customers` ([`CustomerStore`]), `products`
//!   ([`ProductStore`]), `read_model` ([`ReadModelStore`], [`AlarmRetention`]),
//!   `idempotency` ([`IdempotencyStore`]), `ownership` ([`OwnershipStore`]: membership and
//!   partition leases with fencing), `payment_ledger` ([`PaymentLedger`]);
//! - `locks`: taking std locks in the backends;
//! - [`codec`]: encodings of snapshots, documents and events;
//! - the backends, [`memory`] and [`redis`].
//!
//! [`Store`] (in `backend`) is every trait together: what the engine needs of a backend.

mod backend;
pub mod codec;
mod customers;
mod enrollments;
mod envelope;
mod error;
mod event_log;
mod idempotency;
mod locks;
pub mod memory;
mod ownership;
mod payment_ledger;
mod products;
mod read_model;
pub mod redis;
mod timers;
mod view_page;

pub use backend::Store;
pub use customers::{CustomerStore, Reservation};
pub use enrollments::{Append, EnrollmentStore};
pub use envelope::EventEnvelope;
pub use error::{StoreError, StoreResult};
pub use event_log::{CarriedState, Delivery, EventLog};
pub use idempotency::{IdempotencyClaim, IdempotencyStore};
pub use ownership::{Lease, Member, OwnershipStore};
pub use payment_ledger::{PaymentLedger, Recorded};
pub use products::ProductStore;
pub use read_model::{
    ALARM_INDEX_LEN, ALARMS_PER_CUSTOMER, Alarm, AlarmRetention, MyPageView, ReadModelStore,
    VIEW_INDEX_LEN, ViewFilter,
};
pub use timers::{Timer, TimerKind, TimerOp, TimerStore};
pub use view_page::{BadCursor, CURSOR_PATTERN, ViewCursor, ViewPage, ViewQuery};
