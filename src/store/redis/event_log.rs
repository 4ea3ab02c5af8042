//! The event log: consumer groups on partition streams, dead letters, lag, compaction,
//! and readers without a group.

use super::conn::CLUSTER_POLL;
use super::conn::{Conn, unavailable};
use super::encoding::{decode_event_bytes, millis};
use super::keys::check_entry_id;
use super::reply;
use super::store::RedisStore;
use crate::store::codec;
use crate::store::envelope::EventEnvelope;
use crate::store::error::{StoreError, StoreResult};
use crate::store::event_log::{Delivery, EventLog, check_positions, no_group};
use async_trait::async_trait;
use redis::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Dead letters kept per group (the oldest go first beyond it).
const DEAD_LETTERS_KEPT: u64 = 100_000;

impl RedisStore {
    pub(super) async fn lag_of_partition(&self, p: usize, group: &str) -> StoreResult<Option<u64>> {
        let key = &self.parts[p].log;
        let info = match self
            .query::<Value>(redis::cmd("XINFO").arg("GROUPS").arg(key))
            .await
        {
            Ok(info) => info,
            Err(StoreError::Unavailable(e)) if e.contains("no such key") => return Ok(None),
            Err(e) => return Err(e),
        };
        for g in reply::items("XINFO GROUPS", &info)? {
            let fields = reply::pairs("XINFO GROUPS", g)?;
            let field = |name: &str| {
                fields
                    .iter()
                    .find(|(k, _)| reply::bytes("XINFO", k).is_ok_and(|b| b == name.as_bytes()))
                    .map(|(_, v)| *v)
            };
            let is_group = field("name")
                .and_then(|v| reply::text("XINFO", v).ok())
                .is_some_and(|n| n == group);
            if !is_group {
                continue;
            }
            let pending = field("pending")
                .map(|v| reply::uint("XINFO pending", v))
                .transpose()?
                .unwrap_or(0);
            let lag = match field("lag") {
                Some(Value::Nil) | None => {
                    // Redis cannot tell (entries deleted after the group's position):
                    // count what lies after the last delivered entry.
                    let last = field("last-delivered-id")
                        .map(|v| reply::text("XINFO", v).map(str::to_owned))
                        .transpose()?
                        .unwrap_or_else(|| "0-0".to_owned());
                    self.count_after(key, &last).await?
                }
                Some(v) => reply::uint("XINFO lag", v)?,
            };
            return Ok(Some(lag + pending));
        }
        Ok(None)
    }

    pub(super) async fn count_after(&self, key: &str, last: &str) -> StoreResult<u64> {
        let mut from = format!("({last}");
        let mut count = 0u64;
        loop {
            let page: Value = self
                .query(
                    redis::cmd("XRANGE")
                        .arg(key)
                        .arg(&from)
                        .arg("+")
                        .arg("COUNT")
                        .arg(1000),
                )
                .await?;
            let entries = reply::stream_entries("XRANGE", &page, b"e")?;
            let Some((last_id, _)) = entries.last() else {
                return Ok(count);
            };
            count += entries.len() as u64;
            from = format!("({last_id}");
        }
    }
}

#[async_trait]
impl EventLog for RedisStore {
    fn partitions(&self) -> u16 {
        self.parts.len() as u16
    }

    async fn ensure_group(&self, group: &str) -> StoreResult<()> {
        let cmds = self
            .parts
            .iter()
            .map(|p| {
                let mut cmd = redis::cmd("XGROUP");
                cmd.arg("CREATE")
                    .arg(&p.log)
                    .arg(group)
                    .arg("0")
                    .arg("MKSTREAM");
                cmd
            })
            .collect();
        for result in self.run_each(cmds).await {
            match result {
                Ok(_) => {}
                Err(e) if e.code() == Some("BUSYGROUP") => {}
                Err(e) => return Err(unavailable(e)),
            }
        }
        Ok(())
    }

    async fn read_group(
        &self,
        group: &str,
        consumer: &str,
        max: usize,
        block: Duration,
    ) -> StoreResult<Vec<Delivery>> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let left = self.take_leftovers(group, consumer, max);
        if !left.is_empty() {
            return Ok(left);
        }
        let n = self.parts.len();
        let order = self.rotation(&self.read_turn);
        // Exactly `max` at most: so an empty answer to one consumer means nothing unread
        // is held back for another.
        let mut raw = self.read_exact(group, consumer, max, &order).await?;
        if raw.is_empty() && !block.is_zero() {
            match self.conn {
                Conn::Single(_) => {
                    // Wait for anything new. COUNT keeps the answer within `max`, except
                    // when more partitions than `max` get entries at once; the extra wait
                    // for this consumer's next read (they are pending under its name).
                    let per = (max / n).max(1);
                    let value = self
                        .query_blocking(
                            &self.read_cmd(group, consumer, per, Some(block), &order),
                            block,
                        )
                        .await?;
                    raw = self.parse_read(&value)?;
                }
                Conn::Cluster(_) => {
                    let deadline = tokio::time::Instant::now() + block;
                    loop {
                        let now = tokio::time::Instant::now();
                        if now >= deadline {
                            break;
                        }
                        tokio::time::sleep(CLUSTER_POLL.min(deadline - now)).await;
                        raw = self.read_exact(group, consumer, max, &order).await?;
                        if !raw.is_empty() {
                            break;
                        }
                    }
                }
            }
        }
        let mut found = self.deliveries(group, raw).await?;
        if found.len() > max {
            let extra = found.split_off(max);
            self.keep_leftovers(group, consumer, extra);
        }
        Ok(found)
    }

    async fn ack(&self, group: &str, entries: &[(u16, String)]) -> StoreResult<()> {
        let mut by_partition: HashMap<usize, Vec<&str>> = HashMap::new();
        for (partition, entry_id) in entries {
            let p = self.check_partition(*partition)?;
            check_entry_id(entry_id)?;
            by_partition.entry(p).or_default().push(entry_id);
        }
        if by_partition.is_empty() {
            return Ok(());
        }
        let cmds = by_partition
            .into_iter()
            .map(|(p, ids)| {
                let mut cmd = redis::cmd("XACK");
                cmd.arg(&self.parts[p].log).arg(group).arg(ids);
                cmd
            })
            .collect();
        for result in self.run_each(cmds).await {
            result.map_err(unavailable)?;
        }
        Ok(())
    }

    async fn claim_stale(
        &self,
        group: &str,
        consumer: &str,
        min_idle: Duration,
        max: usize,
    ) -> StoreResult<Vec<Delivery>> {
        let mut raw = Vec::new();
        if max == 0 {
            return Ok(Vec::new());
        }
        let order = self.rotation(&self.read_turn);
        for batch in self.script_batches(&order) {
            let room = max - raw.len();
            if room == 0 {
                break;
            }
            let mut invocation = self.scripts.claim_stale.prepare_invoke();
            for &p in batch {
                invocation.key(&self.parts[p].log);
            }
            invocation
                .arg(group)
                .arg(consumer)
                .arg(millis(min_idle))
                .arg(room);
            let value: Value = invocation
                .invoke_async(&mut self.con())
                .await
                .map_err(|e| self.read_error(e))?;
            raw.extend(self.parse_claimed(&value, batch)?);
        }
        self.deliveries(group, raw).await
    }

    async fn dead_letter(&self, group: &str, delivery: &Delivery, reason: &str) -> StoreResult<()> {
        let p = self.check_partition(delivery.partition)?;
        check_entry_id(&delivery.entry_id)?;
        let event = codec::encode_event(&delivery.envelope)?;
        // Kept first, acknowledged second: a crash between the two re-delivers the entry
        // (and it is dead-lettered again), never loses it.
        self.query::<Value>(
            redis::cmd("XADD")
                .arg(self.dead_key(group))
                .arg("MAXLEN")
                .arg("~")
                .arg(DEAD_LETTERS_KEPT)
                .arg("*")
                .arg("e")
                .arg(event)
                .arg("r")
                .arg(reason)
                .arg("p")
                .arg(delivery.partition)
                .arg("i")
                .arg(&delivery.entry_id),
        )
        .await?;
        self.query::<Value>(
            redis::cmd("XACK")
                .arg(&self.parts[p].log)
                .arg(group)
                .arg(&delivery.entry_id),
        )
        .await?;
        Ok(())
    }

    async fn dead_letters(&self, group: &str) -> StoreResult<Vec<EventEnvelope>> {
        let key = self.dead_key(group);
        let value: Value = self
            .query(redis::cmd("XRANGE").arg(&key).arg("-").arg("+"))
            .await?;
        reply::stream_entries("dead letters", &value, b"e")?
            .into_iter()
            .filter_map(|(id, event)| event.map(|e| (id, e)))
            .map(|(id, event)| decode_event_bytes(&format!("{key} {id}"), event))
            .collect()
    }

    async fn lag(&self, group: &str) -> StoreResult<u64> {
        let mut total = 0u64;
        let mut found = false;
        for p in 0..self.parts.len() {
            if let Some(lag) = self.lag_of_partition(p, group).await? {
                total += lag;
                found = true;
            }
        }
        if found {
            Ok(total)
        } else {
            Err(no_group(group))
        }
    }

    async fn compact(&self) -> StoreResult<u64> {
        let mut removed = 0;
        for part in &self.parts {
            let n: u64 = self
                .scripts
                .compact
                .key(&part.log)
                .invoke_async(&mut self.con())
                .await
                .map_err(unavailable)?;
            removed += n;
        }
        Ok(removed)
    }

    async fn log_end(&self) -> StoreResult<Vec<String>> {
        let cmds = self
            .parts
            .iter()
            .map(|p| {
                let mut cmd = redis::cmd("XREVRANGE");
                cmd.arg(&p.log).arg("+").arg("-").arg("COUNT").arg(1);
                cmd
            })
            .collect();
        let mut out = Vec::with_capacity(self.parts.len());
        for result in self.run_each(cmds).await {
            let value = result.map_err(unavailable)?;
            let last = reply::stream_entries("XREVRANGE", &value, b"e")?
                .first()
                .map_or_else(|| "0-0".to_owned(), |(id, _)| (*id).to_owned());
            out.push(last);
        }
        Ok(out)
    }

    async fn read_after(
        &self,
        positions: &mut [String],
        max: usize,
        block: Duration,
    ) -> StoreResult<Vec<Arc<EventEnvelope>>> {
        check_positions(positions.len(), self.parts.len())?;
        for position in positions.iter() {
            check_entry_id(position)?;
        }
        if max == 0 {
            return Ok(Vec::new());
        }
        let xread = |partitions: &[usize], block: Option<Duration>| {
            let mut cmd = redis::cmd("XREAD");
            cmd.arg("COUNT").arg(max);
            if let Some(block) = block {
                cmd.arg("BLOCK")
                    .arg(millis(block).clamp(1, u64::from(u32::MAX)));
            }
            cmd.arg("STREAMS");
            for &p in partitions {
                cmd.arg(&self.parts[p].log);
            }
            for &p in partitions {
                cmd.arg(&positions[p]);
            }
            cmd
        };
        let all: Vec<usize> = (0..self.parts.len()).collect();
        let values: Vec<Value> = match self.conn {
            Conn::Single(_) if !block.is_zero() => {
                vec![
                    self.query_blocking(&xread(&all, Some(block)), block)
                        .await?,
                ]
            }
            Conn::Single(_) => vec![self.query(&xread(&all, None)).await?],
            Conn::Cluster(_) => {
                let deadline = tokio::time::Instant::now() + block;
                loop {
                    let cmds = all.iter().map(|&p| xread(&[p], None)).collect();
                    let mut values = Vec::new();
                    for result in self.run_each(cmds).await {
                        let value = result.map_err(unavailable)?;
                        if !matches!(value, Value::Nil) {
                            values.push(value);
                        }
                    }
                    let now = tokio::time::Instant::now();
                    if !values.is_empty() || now >= deadline {
                        break values;
                    }
                    tokio::time::sleep(CLUSTER_POLL.min(deadline - now)).await;
                }
            }
        };
        let mut out = Vec::new();
        for value in &values {
            for (key, entries) in reply::streams("XREAD", value)? {
                let Some(&partition) = self.part_of_log.get(key) else {
                    return Err(reply::unexpected("XREAD stream", value));
                };
                for (id, payload) in reply::stream_entries("XREAD", entries, b"e")? {
                    if out.len() >= max {
                        break;
                    }
                    positions[usize::from(partition)] = id.to_owned();
                    let Some(bytes) = payload else { continue };
                    match decode_event_bytes(&format!("{key} {id}"), bytes) {
                        Ok(envelope) => out.push(Arc::new(envelope)),
                        // A reader without a group cannot park it: skip it, loudly.
                        Err(e) => {
                            tracing::error!(%key, %id, error = %e, "undecodable event skipped")
                        }
                    }
                }
            }
        }
        Ok(out)
    }
}
