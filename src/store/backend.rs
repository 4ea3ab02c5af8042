//! [`Store`]: everything a backend provides, in one trait the engine holds.

use super::customers::CustomerStore;
use super::enrollments::EnrollmentStore;
use super::error::StoreResult;
use super::event_log::EventLog;
use super::idempotency::IdempotencyStore;
use super::ownership::OwnershipStore;
use super::payment_ledger::PaymentLedger;
use super::products::ProductStore;
use super::read_model::ReadModelStore;
use super::timers::TimerStore;
use async_trait::async_trait;

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
    + OwnershipStore
    + PaymentLedger
{
    /// Cheap reachability check (`/readyz`).
    async fn ping(&self) -> StoreResult<()>;
    /// A short name for logs: `memory`, `redis`.
    fn backend(&self) -> &'static str;
}
