//! First answers of requests with an `Idempotency-Key`, and the claims that keep two
//! processes from doing the same request's work.

use super::error::{StoreResult, rejected};
use async_trait::async_trait;
use std::time::Duration;

/// What claiming an idempotency key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyClaim {
    /// Nobody had it: the caller now holds it (for the lease) and does the work.
    Claimed,
    /// Another request with this key is being worked on (here or in another process),
    /// by `holder` (the claiming copy's member id; empty if unknown).
    InProgress { holder: String },
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
    /// Claims a key for `lease`, for `holder`, unless it is claimed or answered. A claim
    /// that is neither answered nor released runs out with its lease (its holder died).
    async fn idempotent_claim(
        &self,
        key: &str,
        lease: Duration,
        holder: &str,
    ) -> StoreResult<IdempotencyClaim>;
    /// Moves a claim held by `from` (a copy known to have died) to `to`, for `lease`;
    /// false if `from` no longer holds it (answered, released, or taken over already).
    async fn idempotent_take_over(
        &self,
        key: &str,
        from: &str,
        to: &str,
        lease: Duration,
    ) -> StoreResult<bool>;
    /// Drops a claim (the work failed in a way worth retrying); an answer stays.
    async fn idempotent_release(&self, key: &str) -> StoreResult<()>;
}

/// Refuses a record that would expire at once (it could never be read back).
pub(crate) fn check_ttl(ttl: Duration) -> StoreResult<()> {
    if ttl.is_zero() {
        Err(rejected("an idempotency record needs a positive TTL"))
    } else {
        Ok(())
    }
}

/// Refuses a claim that would run out at once (it would hold nothing off).
pub(crate) fn check_lease(lease: Duration) -> StoreResult<()> {
    if lease.is_zero() {
        Err(rejected("an idempotency claim needs a positive lease"))
    } else {
        Ok(())
    }
}
