//! Membership and partition leases: how the copies of the server on one store agree on a
//! single live owner per partition of the event log (and so per enrollment), with no
//! coordinator of their own.
//!
//! - A copy registers itself with a heartbeat that runs out after a time to live, with the
//!   address other copies reach it at.
//! - A partition's lease names its owner and carries a fencing number that grows with
//!   every new owner. An append made with a fencing number is refused
//!   ([`StoreError::Fenced`]) unless that number still holds the lease, so a copy that was
//!   paused while another took over can no longer write.

use super::error::StoreResult;
use async_trait::async_trait;
use std::time::Duration;

/// A copy of the server as the others see it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Member {
    /// Unique per process.
    pub id: String,
    /// `host:port` the other copies reach it at.
    pub address: String,
}

/// Who holds a partition's lease now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub owner: String,
    pub fence: u64,
}

#[async_trait]
pub trait OwnershipStore: Send + Sync {
    /// Registers `member` (or refreshes it) for `ttl`, forgetting members whose time ran
    /// out; answers every live member, this one included, ordered by id.
    async fn heartbeat(&self, member: &Member, ttl: Duration) -> StoreResult<Vec<Member>>;
    /// The members registered now, ordered by id, without registering anyone (a copy
    /// that is stopping still routes to the others).
    async fn members(&self) -> StoreResult<Vec<Member>>;
    /// Unregisters `member` at once (it is stopping).
    async fn leave(&self, member_id: &str) -> StoreResult<()>;
    /// Takes the lease of `partition` for `member_id` if nobody holds it, or renews it if
    /// `member_id` does, for `ttl`: the fencing number it holds the lease with (a new,
    /// larger one on every take), or `None` if another member holds it.
    async fn claim_partition(
        &self,
        partition: u16,
        member_id: &str,
        ttl: Duration,
    ) -> StoreResult<Option<u64>>;
    /// Gives the lease up, if `member_id` still holds it with `fence`.
    async fn release_partition(
        &self,
        partition: u16,
        member_id: &str,
        fence: u64,
    ) -> StoreResult<()>;
    /// The holder of every partition's lease, by partition.
    async fn partition_leases(&self) -> StoreResult<Vec<Option<Lease>>>;
    /// The secret the copies sign the requests they forward to each other with: made
    /// (random) by the first copy that asks, the same for every copy on the store after.
    async fn cluster_secret(&self) -> StoreResult<Vec<u8>>;
}
