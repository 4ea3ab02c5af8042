//! Idempotency records and claims in a sharded map, with expiry by deadline and a sweep
//! now and then of what expired.

use super::remembered::{IDEMPOTENCY_SWEEP_EVERY, Remembered};
use super::store::MemoryStore;
use crate::store::error::StoreResult;
use crate::store::idempotency::{IdempotencyClaim, IdempotencyStore, check_lease, check_ttl};
use async_trait::async_trait;
use dashmap::mapref::entry::Entry;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

impl MemoryStore {
    /// Whether this write is the one in [`IDEMPOTENCY_SWEEP_EVERY`] that sweeps expired
    /// records (idempotency records, and keyed customer registrations).
    pub(super) fn sweep_turn(&self) -> bool {
        self.idempotency_puts.fetch_add(1, Ordering::Relaxed) % IDEMPOTENCY_SWEEP_EVERY
            == IDEMPOTENCY_SWEEP_EVERY - 1
    }

    /// Keys are rarely read back after their TTL: sweep now and then so they do not pile up.
    pub(super) fn sweep_idempotency(&self, now: Instant) {
        if self.sweep_turn() {
            self.idempotency.retain(|_, r| r.live(now));
        }
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
        check_ttl(ttl)?;
        let now = Instant::now();
        let record = Remembered {
            value: Some(value.to_vec()),
            holder: String::new(),
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

    async fn idempotent_claim(
        &self,
        key: &str,
        lease: Duration,
        holder: &str,
    ) -> StoreResult<IdempotencyClaim> {
        check_lease(lease)?;
        let now = Instant::now();
        let claim = Remembered {
            value: None,
            holder: holder.to_owned(),
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
                        None => IdempotencyClaim::InProgress {
                            holder: kept.holder.clone(),
                        },
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

    async fn idempotent_take_over(
        &self,
        key: &str,
        from: &str,
        to: &str,
        lease: Duration,
    ) -> StoreResult<bool> {
        check_lease(lease)?;
        let now = Instant::now();
        match self.idempotency.get_mut(key) {
            Some(mut claim) if claim.live(now) && claim.value.is_none() && claim.holder == from => {
                claim.holder = to.to_owned();
                claim.expires_at = now.checked_add(lease);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn idempotent_release(&self, key: &str) -> StoreResult<()> {
        self.idempotency.remove_if(key, |_, r| r.value.is_none());
        Ok(())
    }
}
