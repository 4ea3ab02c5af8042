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
//! `store` holds [`MemoryStore`], its constructor and settings. What it keeps, one kind
//! of state per file: `record` (an enrollment), `partition` (one partition of the log, its
//! groups' pending entries and its timers), `timer_queue`, `groups` (a consumer group
//! across partitions), `holdings` (a customer's limit reservations), `remembered` (an
//! idempotency record) and `few` (the small map customers' indexes use). One file per
//! store trait: `enrollments` (the append), `event_log`, `timers`, `customers`,
//! `products`, `read_model` (views; its alarms in `alarms`), `idempotency`, `ownership`
//! (membership and partition leases), `payment_ledger` (with the record of an approval).

mod alarms;
mod customers;
mod enrollments;
mod event_log;
mod few;
mod groups;
mod holdings;
mod idempotency;
mod ownership;
mod partition;
mod payment_ledger;
mod products;
mod read_model;
mod record;
mod remembered;
mod store;
mod timer_queue;
mod timers;

pub use crate::store::read_model::AlarmRetention;
pub use store::MemoryStore;
