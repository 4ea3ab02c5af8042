//! The payment ledger: what the simulated payment provider approved and refunded, kept in
//! the store so it outlives any process and every copy on the store sees one ledger.

use super::error::{StoreResult, rejected};
use async_trait::async_trait;

/// What recording into the ledger found: the id that holds, and whether this call put it
/// there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// The id recorded now, or the one recorded before (which then holds instead).
    pub id: String,
    /// This call recorded it: for an approval, money was taken now.
    pub first: bool,
}

/// The ledger of a payment provider, shared by every process on the store: approvals by
/// the merchant's reference, refunds by payment id, each first-wins and atomic, so two
/// copies racing on one reference can never both take money, and a copy that takes over
/// an enrollment finds the charge another one made.
///
/// Records never expire: a forgotten approval would let a late retry of its reference
/// charge a second time, and there is one small record per enrollment paid, as the store
/// keeps the enrollment itself for good.
#[async_trait]
pub trait PaymentLedger: Send + Sync {
    /// Records `payment_id` as the approval of `reference` unless one is recorded already;
    /// answers the approval that holds. Only a first recording counts as money taken.
    async fn record_approval(&self, reference: &str, payment_id: &str) -> StoreResult<Recorded>;
    /// The payment id approved for `reference`, if any.
    async fn approval(&self, reference: &str) -> StoreResult<Option<String>>;
    /// Records `refund_id` as the refund of `payment_id` unless one is recorded already;
    /// answers the refund that holds.
    async fn record_refund(&self, payment_id: &str, refund_id: &str) -> StoreResult<Recorded>;
    /// How often money was taken for `reference` (an audit count: a sound ledger never
    /// goes past 1).
    async fn charges_taken(&self, reference: &str) -> StoreResult<u64>;
}

/// Refuses an empty reference, payment id or refund id: it would name nothing.
pub(crate) fn check_ledger_id(what: &str, id: &str) -> StoreResult<()> {
    if id.is_empty() {
        Err(rejected(format!("a ledger {what} cannot be empty")))
    } else {
        Ok(())
    }
}
