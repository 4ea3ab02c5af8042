//! Enrollments: records in a sharded map, and the append that writes a record, publishes
//! its events to the partition and changes its timers in one step.

use super::record::{Record, Snapshot, enrollment_key};
use super::store::MemoryStore;
use crate::domain::enrollment::{Enrollment, EnrollmentId, ProductDocument};
use crate::store::codec;
use crate::store::enrollments::{Append, EnrollmentStore, validate_append};
use crate::store::envelope::EventEnvelope;
use crate::store::error::{StoreError, StoreResult};
use crate::store::timers::TimerOp;
use async_trait::async_trait;
use dashmap::mapref::entry::Entry;
use std::sync::Arc;
use std::sync::atomic::Ordering;

impl MemoryStore {
    pub(super) fn load_now(&self, id: EnrollmentId) -> StoreResult<Option<(u64, Arc<Enrollment>)>> {
        let Some((version, snapshot)) = self
            .enrollments
            .get(&id)
            .map(|r| (r.version, r.snapshot.clone()))
        else {
            return Ok(None);
        };
        let state = match snapshot {
            Snapshot::Live(state) => state,
            Snapshot::Encoded(bytes) => {
                Arc::new(codec::decode_snapshot(&enrollment_key(id), &bytes)?)
            }
        };
        Ok(Some((version, state)))
    }

    /// Overwrites a stored snapshot with bytes that do not decode, for recovery tests.
    /// Returns whether the enrollment existed.
    pub fn corrupt_snapshot_for_test(&self, id: EnrollmentId) -> bool {
        match self.enrollments.get_mut(&id) {
            Some(mut record) => {
                // The current format byte, then a truncated varint: bincode must refuse it.
                record.snapshot =
                    Snapshot::Encoded(Arc::from(vec![codec::SNAPSHOT_FORMAT, 0xff, 0xff, 0xff]));
                true
            }
            None => false,
        }
    }
}

#[async_trait]
impl EnrollmentStore for MemoryStore {
    async fn load(&self, id: EnrollmentId) -> StoreResult<Option<(u64, Arc<Enrollment>)>> {
        self.load_now(id)
    }

    /// Nothing to wait for in memory: one after another, without a future per load.
    async fn load_many(
        &self,
        ids: &[EnrollmentId],
    ) -> StoreResult<Vec<Option<(u64, Arc<Enrollment>)>>> {
        ids.iter().map(|&id| self.load_now(id)).collect()
    }

    async fn append(&self, append: Append<'_>) -> StoreResult<u64> {
        let Append {
            id,
            expected_version,
            state,
            events,
            timers,
            document,
            fence,
        } = append;
        // Malformed appends are refused before anything is locked or written.
        let new_version = validate_append(&append)?;
        let document = document.map(Arc::clone);
        let snapshot = Snapshot::Live(Arc::clone(state));
        let events: Vec<Arc<EventEnvelope>> = events.to_vec();
        let partition = self.partition_of(id);
        {
            // The shard write lock makes everything below one step for this enrollment.
            let entry = self.enrollments.entry(id);
            self.check_fence(partition, fence)?;
            let actual = match &entry {
                Entry::Occupied(record) => record.get().version,
                Entry::Vacant(_) => 0,
            };
            if actual != expected_version {
                return Err(StoreError::Conflict {
                    key: enrollment_key(id),
                    expected: expected_version,
                    actual,
                });
            }
            {
                let mut part = self.partition(partition);
                part.publish(&events, self.log_retention);
                for op in timers {
                    match *op {
                        TimerOp::Set(timer) => part.timers.set(timer),
                        TimerOp::Cancel(kind) => part.timers.cancel(id, kind),
                    }
                }
            }
            match entry {
                Entry::Occupied(mut record) => {
                    let record = record.get_mut();
                    record.version = new_version;
                    record.snapshot = snapshot;
                    record.history.extend(events);
                    record.documents.extend(document);
                }
                Entry::Vacant(slot) => {
                    slot.insert(Record {
                        version: new_version,
                        snapshot,
                        history: events,
                        documents: document.into_iter().collect(),
                    });
                }
            }
        }
        // After the publish (and its unlock): a reader that registered before this load
        // gets woken; one that registers after it finds the entries when it looks.
        if new_version != expected_version && self.waiting_readers.load(Ordering::SeqCst) > 0 {
            self.appended.notify_waiters();
        }
        Ok(new_version)
    }

    async fn history(&self, id: EnrollmentId) -> StoreResult<Vec<EventEnvelope>> {
        let events: Vec<Arc<EventEnvelope>> = self
            .enrollments
            .get(&id)
            .map(|r| r.history.clone())
            .unwrap_or_default();
        Ok(events.iter().map(|e| (**e).clone()).collect())
    }

    async fn document(
        &self,
        id: EnrollmentId,
        document_no: &str,
    ) -> StoreResult<Option<ProductDocument>> {
        Ok(self.enrollments.get(&id).and_then(|record| {
            record
                .documents
                .iter()
                .rev()
                .find(|d| d.document_no == document_no)
                .map(|d| (**d).clone())
        }))
    }
}
