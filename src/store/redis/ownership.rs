//! Members and partition leases. Members live in one hash slot (`{cluster}`), each lease
//! in its partition's slot beside the enrollments whose appends check it. Times come from
//! Redis's own clock (`TIME` in the scripts), so copies with skewed clocks still agree.

use super::conn::unavailable;
use super::encoding::millis;
use super::reply;
use super::store::RedisStore;
use crate::store::error::{StoreError, StoreResult};
use crate::store::ownership::{Lease, Member, OwnershipStore};
use async_trait::async_trait;
use redis::{Script, Value};
use std::time::Duration;

/// Refreshes a member and answers the live ones. KEYS: 1 members zset (id → heartbeat
/// expiry, ms), 2 addresses hash; ARGV: 1 id, 2 address, 3 ttl (ms).
/// Returns a flat list `id, address` per live member, by id.
const HEARTBEAT: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for _, gone in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)) do
  redis.call('HDEL', KEYS[2], gone)
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
local out = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  out[#out + 1] = id
  out[#out + 1] = redis.call('HGET', KEYS[2], id) or ''
end
return out
"#;

/// The live members. KEYS: as [`HEARTBEAT`]. Returns what it returns, changing nothing.
const MEMBERS: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')) do
  out[#out + 1] = id
  out[#out + 1] = redis.call('HGET', KEYS[2], id) or ''
end
return out
"#;

/// Takes or renews a partition's lease. KEYS: 1 lease hash, 2 fence counter; ARGV: 1
/// member, 2 ttl (ms). Returns the fencing number held, or -1 (another holds it).
const CLAIM: &str = r#"
local owner = redis.call('HGET', KEYS[1], 'o')
if owner == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return tonumber(redis.call('HGET', KEYS[1], 'f'))
end
if owner then return -1 end
local fence = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], 'o', ARGV[1], 'f', fence)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return fence
"#;

/// Gives a lease up if still held. KEYS: 1 lease hash; ARGV: 1 member, 2 fencing number.
const RELEASE: &str = r#"
if redis.call('HGET', KEYS[1], 'o') == ARGV[1] and redis.call('HGET', KEYS[1], 'f') == ARGV[2] then
  redis.call('DEL', KEYS[1])
end
return 1
"#;

/// The ownership scripts, hashed once.
pub(super) struct OwnershipScripts {
    heartbeat: Script,
    members: Script,
    claim: Script,
    release: Script,
}

impl OwnershipScripts {
    pub(super) fn new() -> OwnershipScripts {
        OwnershipScripts {
            heartbeat: Script::new(HEARTBEAT),
            members: Script::new(MEMBERS),
            claim: Script::new(CLAIM),
            release: Script::new(RELEASE),
        }
    }
}

/// `id, address` pairs as the scripts answer them; ordered by id.
fn parse_members(value: &Value) -> StoreResult<Vec<Member>> {
    let items = reply::items("members", value)?;
    let mut members = items
        .chunks(2)
        .map(|pair| match pair {
            [id, address] => Ok(Member {
                id: reply::text("member id", id)?.to_owned(),
                address: reply::text("member address", address)?.to_owned(),
            }),
            _ => Err(reply::unexpected("members", value)),
        })
        .collect::<StoreResult<Vec<Member>>>()?;
    members.sort();
    Ok(members)
}

impl RedisStore {
    fn cluster_key(&self, rest: &str) -> String {
        self.key(&format!("{{cluster}}:{rest}"))
    }

    fn lease_keys(&self, partition: u16) -> StoreResult<(&str, &str)> {
        let p = self.check_partition(partition)?;
        Ok((&self.parts[p].lease, &self.parts[p].fence))
    }
}

#[async_trait]
impl OwnershipStore for RedisStore {
    async fn heartbeat(&self, member: &Member, ttl: Duration) -> StoreResult<Vec<Member>> {
        let value: Value = self
            .ownership_scripts
            .heartbeat
            .key(self.cluster_key("members"))
            .key(self.cluster_key("addresses"))
            .arg(&member.id)
            .arg(&member.address)
            .arg(millis(ttl).max(1))
            .invoke_async(&mut self.con())
            .await
            .map_err(unavailable)?;
        parse_members(&value)
    }

    async fn members(&self) -> StoreResult<Vec<Member>> {
        let value: Value = self
            .ownership_scripts
            .members
            .key(self.cluster_key("members"))
            .key(self.cluster_key("addresses"))
            .invoke_async(&mut self.con())
            .await
            .map_err(unavailable)?;
        parse_members(&value)
    }

    async fn leave(&self, member_id: &str) -> StoreResult<()> {
        let mut pipe = redis::pipe();
        pipe.cmd("ZREM")
            .arg(self.cluster_key("members"))
            .arg(member_id)
            .ignore()
            .cmd("HDEL")
            .arg(self.cluster_key("addresses"))
            .arg(member_id)
            .ignore();
        pipe.query_async::<()>(&mut self.con())
            .await
            .map_err(unavailable)
    }

    async fn claim_partition(
        &self,
        partition: u16,
        member_id: &str,
        ttl: Duration,
    ) -> StoreResult<Option<u64>> {
        let (lease, fence) = self.lease_keys(partition)?;
        let held: i64 = self
            .ownership_scripts
            .claim
            .key(lease)
            .key(fence)
            .arg(member_id)
            .arg(millis(ttl).max(1))
            .invoke_async(&mut self.con())
            .await
            .map_err(unavailable)?;
        Ok(u64::try_from(held).ok())
    }

    async fn release_partition(
        &self,
        partition: u16,
        member_id: &str,
        fence: u64,
    ) -> StoreResult<()> {
        let (lease, _) = self.lease_keys(partition)?;
        let _: i64 = self
            .ownership_scripts
            .release
            .key(lease)
            .arg(member_id)
            .arg(fence)
            .invoke_async(&mut self.con())
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn partition_leases(&self) -> StoreResult<Vec<Option<Lease>>> {
        let cmds = self
            .parts
            .iter()
            .map(|part| {
                let mut cmd = redis::cmd("HMGET");
                cmd.arg(&part.lease).arg("o").arg("f");
                cmd
            })
            .collect();
        let mut out = Vec::with_capacity(self.parts.len());
        for (part, answer) in self.parts.iter().zip(self.run_each(cmds).await) {
            let value = answer.map_err(unavailable)?;
            let (owner, fence): (Option<String>, Option<u64>) = redis::from_redis_value(value)
                .map_err(|e| StoreError::Corrupt {
                    key: part.lease.clone(),
                    reason: format!("not a lease: {e}"),
                })?;
            out.push(
                owner
                    .zip(fence)
                    .map(|(owner, fence)| Lease { owner, fence }),
            );
        }
        Ok(out)
    }

    async fn cluster_secret(&self) -> StoreResult<Vec<u8>> {
        let key = self.cluster_key("secret");
        let mut fresh = uuid::Uuid::new_v4().simple().to_string();
        fresh.push_str(&uuid::Uuid::new_v4().simple().to_string());
        // The first copy's secret stays; every later one reads it.
        let _: Option<String> = self
            .query(redis::cmd("SET").arg(&key).arg(&fresh).arg("NX"))
            .await?;
        let secret: Option<Vec<u8>> = self.query(redis::cmd("GET").arg(&key)).await?;
        secret.ok_or_else(|| StoreError::Corrupt {
            key,
            reason: "the cluster secret vanished as it was made".to_owned(),
        })
    }
}
