//! Reading partition streams for consumer groups: XREADGROUP over the partitions, the
//! entries a read took beyond its `max` kept for the consumer's next read, claimed entries,
//! and turning entries into deliveries (dead-lettering the undecodable).

use super::conn::unavailable;
use super::encoding::millis;
use super::reply;
use super::store::RedisStore;
use crate::store::codec;
use crate::store::error::{StoreError, StoreResult, rejected};
use crate::store::event_log::{CarriedState, Delivery};
use crate::store::locks::lock;
use redis::{Cmd, RedisError, Value};
use std::sync::Arc;
use std::time::Duration;

/// A stream entry as read, before its event is decoded.
pub(super) struct RawEntry {
    pub(super) partition: u16,
    pub(super) id: String,
    /// The event JSON (field `e`); `None` for an entry deleted meanwhile.
    pub(super) event: Option<Vec<u8>>,
    /// The snapshot its append wrote (field `s`), when the entry is of the older layout
    /// that carried one.
    pub(super) state: Option<Vec<u8>>,
    pub(super) deliveries: u32,
}

impl RedisStore {
    pub(super) fn read_error(&self, e: RedisError) -> StoreError {
        if e.code() == Some("NOGROUP") {
            rejected(format!(
                "no such consumer group: {e}; ensure_group creates it"
            ))
        } else {
            unavailable(e)
        }
    }

    /// Turns stream entries into deliveries. An entry whose event does not decode goes
    /// straight to the dead letters (it would fail every time); one deleted meanwhile is
    /// acknowledged away.
    pub(super) async fn deliveries(
        &self,
        group: &str,
        raw: Vec<RawEntry>,
    ) -> StoreResult<Vec<Delivery>> {
        let mut out = Vec::with_capacity(raw.len());
        for entry in raw {
            let RawEntry {
                partition,
                id: entry_id,
                event: payload,
                state,
                deliveries,
            } = entry;
            let key = &self.parts[usize::from(partition)].log;
            let decoded = match &payload {
                Some(bytes) => std::str::from_utf8(bytes)
                    .map_err(|e| StoreError::Corrupt {
                        key: format!("{key} {entry_id}"),
                        reason: format!("not UTF-8: {e}"),
                    })
                    .and_then(|text| {
                        // The key for the error only: named when it is needed.
                        codec::decode_event("", text).map_err(|e| match e {
                            StoreError::Corrupt { reason, .. } => StoreError::Corrupt {
                                key: format!("{key} {entry_id}"),
                                reason,
                            },
                            other => other,
                        })
                    }),
                None => {
                    self.query::<Value>(redis::cmd("XACK").arg(key).arg(group).arg(&entry_id))
                        .await?;
                    continue;
                }
            };
            match decoded {
                Ok(envelope) => out.push(Delivery {
                    partition,
                    entry_id,
                    envelope: Arc::new(envelope),
                    deliveries,
                    state: state.map(CarriedState::new),
                }),
                Err(e) => {
                    tracing::error!(%key, %entry_id, error = %e, "undecodable event: dead-lettered");
                    let raw = payload.unwrap_or_default();
                    self.query::<Value>(
                        redis::cmd("XADD")
                            .arg(self.dead_key(group))
                            .arg("*")
                            .arg("raw")
                            .arg(raw)
                            .arg("r")
                            .arg(e.to_string())
                            .arg("p")
                            .arg(partition)
                            .arg("i")
                            .arg(&entry_id),
                    )
                    .await?;
                    self.query::<Value>(redis::cmd("XACK").arg(key).arg(group).arg(&entry_id))
                        .await?;
                }
            }
        }
        Ok(out)
    }

    pub(super) fn parse_read(&self, value: &Value) -> StoreResult<Vec<RawEntry>> {
        let mut raw = Vec::new();
        for (key, entries) in reply::streams("XREADGROUP", value)? {
            let Some(&partition) = self.part_of_log.get(key) else {
                return Err(reply::unexpected("XREADGROUP stream", value));
            };
            for (id, [event, state]) in reply::stream_fields("XREADGROUP", entries, [b"e", b"s"])? {
                raw.push(RawEntry {
                    partition,
                    id: id.to_owned(),
                    event: event.map(<[u8]>::to_vec),
                    state: state.map(<[u8]>::to_vec),
                    deliveries: 1,
                });
            }
        }
        Ok(raw)
    }

    pub(super) fn take_leftovers(&self, group: &str, consumer: &str, max: usize) -> Vec<Delivery> {
        let mut all = lock(&self.leftovers);
        let key = (group.to_owned(), consumer.to_owned());
        let Some(queue) = all.get_mut(&key) else {
            return Vec::new();
        };
        let n = max.min(queue.len());
        let out: Vec<Delivery> = queue.drain(..n).collect();
        if queue.is_empty() {
            all.remove(&key);
        }
        out
    }

    pub(super) fn keep_leftovers(&self, group: &str, consumer: &str, extra: Vec<Delivery>) {
        if extra.is_empty() {
            return;
        }
        lock(&self.leftovers)
            .entry((group.to_owned(), consumer.to_owned()))
            .or_default()
            .extend(extra);
    }

    /// One XREADGROUP over the given partitions, no blocking unless `block` is set (single
    /// server only).
    pub(super) fn read_cmd(
        &self,
        group: &str,
        consumer: &str,
        per: usize,
        block: Option<Duration>,
        partitions: &[usize],
    ) -> Cmd {
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(group)
            .arg(consumer)
            .arg("COUNT")
            .arg(per);
        if let Some(block) = block {
            cmd.arg("BLOCK")
                .arg(millis(block).clamp(1, u64::from(u32::MAX)));
        }
        cmd.arg("STREAMS");
        for &p in partitions {
            cmd.arg(&self.parts[p].log);
        }
        for _ in partitions {
            cmd.arg(">");
        }
        cmd
    }

    /// Never-delivered entries, at most `max`, from the partitions in the order given.
    /// Plain XREADGROUPs, not a script: Redis writes the entries into the reply as they
    /// are, where a script would turn every entry into Lua tables and back, costing Redis
    /// more CPU per entry.
    ///
    /// On a single server, first one read over every partition, COUNT `max` ÷ partitions
    /// each (so at most `max` in all); then, while room is left, one partition at a time,
    /// but only those that filled their share and may hold more. Most reads find little:
    /// one round trip. On a cluster, partition by partition.
    pub(super) async fn read_exact(
        &self,
        group: &str,
        consumer: &str,
        max: usize,
        partitions: &[usize],
    ) -> StoreResult<Vec<RawEntry>> {
        let mut raw = Vec::new();
        for batch in self.script_batches(partitions) {
            let room = max.saturating_sub(raw.len());
            if room == 0 {
                break;
            }
            let per = room / batch.len();
            let mut filled = Vec::new();
            if per == 0 {
                filled.extend_from_slice(batch);
            } else {
                let found = self.read_new(group, consumer, per, batch).await?;
                let mut counts = vec![0usize; self.parts.len()];
                for entry in &found {
                    counts[usize::from(entry.partition)] += 1;
                }
                filled.extend(batch.iter().copied().filter(|&p| counts[p] >= per));
                raw.extend(found);
            }
            for p in filled {
                let room = max.saturating_sub(raw.len());
                if room == 0 {
                    break;
                }
                raw.extend(self.read_new(group, consumer, room, &[p]).await?);
            }
        }
        Ok(raw)
    }

    /// One non-blocking XREADGROUP of up to `count` new entries from each partition given.
    pub(super) async fn read_new(
        &self,
        group: &str,
        consumer: &str,
        count: usize,
        partitions: &[usize],
    ) -> StoreResult<Vec<RawEntry>> {
        let value: Value = self
            .read_cmd(group, consumer, count, None, partitions)
            .query_async(&mut self.con())
            .await
            .map_err(|e| self.read_error(e))?;
        self.parse_read(&value)
    }

    pub(super) fn parse_claimed(
        &self,
        value: &Value,
        partitions: &[usize],
    ) -> StoreResult<Vec<RawEntry>> {
        let items = reply::items("claim", value)?;
        let mut raw = Vec::with_capacity(items.len() / 4);
        for e in items.chunks(4) {
            let [index, id, payload, deliveries] = e else {
                return Err(reply::unexpected("claim", value));
            };
            let index = reply::uint("claim", index)? as usize;
            let Some(&p) = index.checked_sub(1).and_then(|i| partitions.get(i)) else {
                return Err(reply::unexpected("claim", value));
            };
            let payload = reply::bytes("claim", payload)?;
            // The claim script returns the event only: a projector reads the state back.
            raw.push(RawEntry {
                partition: p as u16,
                id: reply::text("claim", id)?.to_owned(),
                event: (!payload.is_empty()).then(|| payload.to_vec()),
                state: None,
                deliveries: u32::try_from(reply::uint("claim", deliveries)?).unwrap_or(u32::MAX),
            });
        }
        Ok(raw)
    }
}
