//! Membership and partition leases in memory: the same rules as on Redis, for the engines
//! of one process that share a store (and the store contract).

use super::store::MemoryStore;
use crate::store::error::{StoreError, StoreResult};
use crate::store::locks::lock;
use crate::store::ownership::{Lease, Member, OwnershipStore};
use async_trait::async_trait;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Who is alive and who holds which partition.
#[derive(Debug, Default)]
pub(crate) struct Book {
    /// Member id → (address, heartbeat runs out at).
    members: HashMap<String, (String, Instant)>,
    /// Partition → (holder, fence, lease runs out at).
    leases: HashMap<u16, (String, u64, Instant)>,
    /// Partition → the last fencing number given out (kept after the lease ends).
    fences: HashMap<u16, u64>,
    secret: Option<Vec<u8>>,
}

impl Book {
    fn lease(&mut self, partition: u16, now: Instant) -> Option<&(String, u64, Instant)> {
        if self
            .leases
            .get(&partition)
            .is_some_and(|(_, _, until)| *until <= now)
        {
            self.leases.remove(&partition);
        }
        self.leases.get(&partition)
    }

    /// The members whose heartbeat has not run out at `now`, ordered by id.
    fn live(&self, now: Instant) -> Vec<Member> {
        let mut live: Vec<Member> = self
            .members
            .iter()
            .filter(|(_, (_, until))| *until > now)
            .map(|(id, (address, _))| Member {
                id: id.clone(),
                address: address.clone(),
            })
            .collect();
        live.sort();
        live
    }

    /// Whether `fence` holds `partition`'s lease now.
    pub(crate) fn holds(&mut self, partition: u16, fence: u64) -> bool {
        self.lease(partition, Instant::now())
            .is_some_and(|(_, f, _)| *f == fence)
    }
}

impl MemoryStore {
    /// Refuses an append made with a fencing number that no longer holds the lease.
    pub(super) fn check_fence(&self, partition: usize, fence: Option<u64>) -> StoreResult<()> {
        let Some(fence) = fence else { return Ok(()) };
        let partition = u16::try_from(partition).unwrap_or(u16::MAX);
        if lock(&self.ownership).holds(partition, fence) {
            Ok(())
        } else {
            Err(StoreError::Fenced { partition, fence })
        }
    }
}

fn until(now: Instant, ttl: Duration) -> Instant {
    now.checked_add(ttl)
        .unwrap_or_else(|| now + Duration::from_secs(365 * 24 * 3600))
}

#[async_trait]
impl OwnershipStore for MemoryStore {
    async fn heartbeat(&self, member: &Member, ttl: Duration) -> StoreResult<Vec<Member>> {
        let now = Instant::now();
        let mut book = lock(&self.ownership);
        book.members.retain(|_, (_, until)| *until > now);
        book.members
            .insert(member.id.clone(), (member.address.clone(), until(now, ttl)));
        Ok(book.live(now))
    }

    async fn members(&self) -> StoreResult<Vec<Member>> {
        Ok(lock(&self.ownership).live(Instant::now()))
    }

    async fn leave(&self, member_id: &str) -> StoreResult<()> {
        lock(&self.ownership).members.remove(member_id);
        Ok(())
    }

    async fn claim_partition(
        &self,
        partition: u16,
        member_id: &str,
        ttl: Duration,
    ) -> StoreResult<Option<u64>> {
        let now = Instant::now();
        let mut book = lock(&self.ownership);
        match book.lease(partition, now) {
            Some((holder, fence, _)) if holder == member_id => {
                let fence = *fence;
                book.leases
                    .insert(partition, (member_id.to_owned(), fence, until(now, ttl)));
                Ok(Some(fence))
            }
            Some(_) => Ok(None),
            None => {
                let fence = book.fences.get(&partition).copied().unwrap_or(0) + 1;
                book.fences.insert(partition, fence);
                book.leases
                    .insert(partition, (member_id.to_owned(), fence, until(now, ttl)));
                Ok(Some(fence))
            }
        }
    }

    async fn release_partition(
        &self,
        partition: u16,
        member_id: &str,
        fence: u64,
    ) -> StoreResult<()> {
        let mut book = lock(&self.ownership);
        if book
            .leases
            .get(&partition)
            .is_some_and(|(holder, f, _)| holder == member_id && *f == fence)
        {
            book.leases.remove(&partition);
        }
        Ok(())
    }

    async fn partition_leases(&self) -> StoreResult<Vec<Option<Lease>>> {
        let now = Instant::now();
        let mut book = lock(&self.ownership);
        let n = u16::try_from(self.partitions.len()).unwrap_or(u16::MAX);
        Ok((0..n)
            .map(|p| {
                book.lease(p, now).map(|(owner, fence, _)| Lease {
                    owner: owner.clone(),
                    fence: *fence,
                })
            })
            .collect())
    }

    async fn cluster_secret(&self) -> StoreResult<Vec<u8>> {
        let mut book = lock(&self.ownership);
        let secret = book.secret.get_or_insert_with(|| {
            let mut bytes = uuid::Uuid::new_v4().as_bytes().to_vec();
            bytes.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
            bytes
        });
        Ok(secret.clone())
    }
}
