//! Idempotency records: `D<answer>` or `P` (claimed) under `idem:<key>`, with a TTL.

use super::conn::unavailable;
use super::encoding::millis;
use super::reply;
use super::store::RedisStore;
use crate::store::error::{StoreError, StoreResult};
use crate::store::idempotency::{IdempotencyClaim, IdempotencyStore, check_lease, check_ttl};
use async_trait::async_trait;
use redis::Value;
use std::time::Duration;

#[async_trait]
impl IdempotencyStore for RedisStore {
    async fn idempotent_get(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        let record = self.key(&format!("idem:{key}"));
        let value: Option<Vec<u8>> = self.query(redis::cmd("GET").arg(&record)).await?;
        match value.as_deref() {
            // A claim (`P<holder>`, or a bare `P` of an earlier version) is not an answer.
            None | Some([b'P', ..]) => Ok(None),
            Some([b'D', answer @ ..]) => Ok(Some(answer.to_vec())),
            Some(_) => Err(StoreError::Corrupt {
                key: record,
                reason: "not an idempotency record".to_owned(),
            }),
        }
    }

    async fn idempotent_put(&self, key: &str, value: &[u8], ttl: Duration) -> StoreResult<bool> {
        check_ttl(ttl)?;
        let kept: i64 = self
            .scripts
            .idem_put
            .key(self.key(&format!("idem:{key}")))
            .arg(value)
            .arg(millis(ttl).max(1))
            .invoke_async(&mut self.con())
            .await
            .map_err(unavailable)?;
        Ok(kept == 1)
    }

    async fn idempotent_claim(
        &self,
        key: &str,
        lease: Duration,
        holder: &str,
    ) -> StoreResult<IdempotencyClaim> {
        check_lease(lease)?;
        let value: Value = self
            .scripts
            .idem_claim
            .key(self.key(&format!("idem:{key}")))
            .arg(millis(lease).max(1))
            .arg(holder)
            .invoke_async(&mut self.con())
            .await
            .map_err(unavailable)?;
        match reply::items("idempotency claim", &value)? {
            [code] if reply::int("idempotency claim", code)? == 1 => Ok(IdempotencyClaim::Claimed),
            [code, holder] if reply::int("idempotency claim", code)? == 2 => {
                Ok(IdempotencyClaim::InProgress {
                    holder: reply::text("idempotency holder", holder)?.to_owned(),
                })
            }
            [_, answer] => Ok(IdempotencyClaim::Done(
                reply::bytes("idempotency answer", answer)?.to_vec(),
            )),
            _ => Err(reply::unexpected("idempotency claim", &value)),
        }
    }

    async fn idempotent_take_over(
        &self,
        key: &str,
        from: &str,
        to: &str,
        lease: Duration,
    ) -> StoreResult<bool> {
        check_lease(lease)?;
        let moved: i64 = self
            .scripts
            .idem_take_over
            .key(self.key(&format!("idem:{key}")))
            .arg(millis(lease).max(1))
            .arg(from)
            .arg(to)
            .invoke_async(&mut self.con())
            .await
            .map_err(unavailable)?;
        Ok(moved == 1)
    }

    async fn idempotent_release(&self, key: &str) -> StoreResult<()> {
        self.scripts
            .idem_release
            .key(self.key(&format!("idem:{key}")))
            .invoke_async::<Value>(&mut self.con())
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}
