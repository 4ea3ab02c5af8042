//! Enrollments: the append script (the transactional outbox), histories and documents.

use super::conn::unavailable;
use super::encoding::decode_event_bytes;
use super::keys::document_field;
use super::reply;
use super::store::RedisStore;
use crate::domain::enrollment::{Enrollment, EnrollmentId, ProductDocument};
use crate::store::codec;
use crate::store::enrollments::{Append, EnrollmentStore, validate_append};
use crate::store::envelope::EventEnvelope;
use crate::store::error::{StoreError, StoreResult};
use async_trait::async_trait;
use redis::Value;
use std::sync::Arc;

#[async_trait]
impl EnrollmentStore for RedisStore {
    async fn load(&self, id: EnrollmentId) -> StoreResult<Option<(u64, Arc<Enrollment>)>> {
        self.load_state(id).await
    }

    async fn append(&self, append: Append<'_>) -> StoreResult<u64> {
        let new_version = validate_append(&append)?;
        let id = append.id;
        let snapshot = codec::encode_snapshot(append.state)?;
        let events = append
            .events
            .iter()
            .map(|e| codec::encode_event(e))
            .collect::<StoreResult<Vec<String>>>()?;
        let mut timer_args = Vec::new();
        for op in append.timers {
            self.timer_args(op, id, &mut timer_args);
        }
        // The document's text goes to Redis once, with the event that names it.
        let (document_field, document_bytes) = match append.document {
            Some(d) => (
                document_field(&d.document_no),
                codec::encode_document(id, d)?,
            ),
            None => (String::new(), Vec::new()),
        };
        let part = &self.parts[self.partition_of(id)];
        let key = self.enrollment_key(id);
        let script = &self.scripts.append;
        let bytes = snapshot.len()
            + document_bytes.len()
            + events.iter().map(String::len).sum::<usize>()
            + timer_args.iter().map(String::len).sum::<usize>()
            + 256;
        let mut cmd = Self::evalsha(script, 6, 8 + events.len() + timer_args.len(), bytes);
        cmd.arg(&key)
            .arg(self.history_key(id))
            .arg(&part.log)
            .arg(&part.timers)
            .arg(&part.timer_attempts)
            .arg(&part.lease)
            .arg(append.expected_version)
            .arg(new_version)
            .arg(&snapshot)
            .arg(self.config.stream_max_len)
            .arg(&document_field)
            .arg(&document_bytes)
            .arg(events.len())
            .arg(append.fence.map(|f| f.to_string()).unwrap_or_default());
        for e in &events {
            cmd.arg(e);
        }
        for a in &timer_args {
            cmd.arg(a);
        }
        let result: Value = self.eval(script, &cmd).await.map_err(unavailable)?;
        let [ok, version] = reply::items("append", &result)? else {
            return Err(reply::unexpected("append", &result));
        };
        let version = reply::uint("append version", version)?;
        match reply::int("append", ok)? {
            1 => Ok(version),
            0 => Err(StoreError::Conflict {
                key,
                expected: append.expected_version,
                actual: version,
            }),
            2 => Err(StoreError::Fenced {
                partition: u16::try_from(self.partition_of(id)).unwrap_or(u16::MAX),
                fence: append.fence.unwrap_or(0),
            }),
            _ => Err(reply::unexpected("append", &result)),
        }
    }

    async fn history(&self, id: EnrollmentId) -> StoreResult<Vec<EventEnvelope>> {
        let key = self.history_key(id);
        let events: Vec<Vec<u8>> = self
            .query(redis::cmd("LRANGE").arg(&key).arg(0).arg(-1))
            .await?;
        events
            .iter()
            .map(|bytes| decode_event_bytes(&key, bytes))
            .collect()
    }

    async fn document(
        &self,
        id: EnrollmentId,
        document_no: &str,
    ) -> StoreResult<Option<ProductDocument>> {
        let key = self.enrollment_key(id);
        let bytes: Option<Vec<u8>> = self
            .query(
                redis::cmd("HGET")
                    .arg(&key)
                    .arg(document_field(document_no)),
            )
            .await?;
        bytes
            .map(|bytes| codec::decode_document(&key, &bytes))
            .transpose()
    }
}
