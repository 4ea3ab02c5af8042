//! Enrollments: one atomic append writes the snapshot, publishes its events and changes
//! its timers (the transactional outbox); every backend checks an append the same way.

use super::envelope::EventEnvelope;
use super::error::{StoreResult, rejected};
use super::timers::TimerOp;
use crate::domain::enrollment::{Enrollment, EnrollmentId, Event, ProductDocument};
use async_trait::async_trait;
use std::sync::Arc;

/// One atomic write: the new snapshot, the events that led to it, and timer changes.
/// State and events are shared (`Arc`): an in-process store keeps them as they are, a
/// remote one encodes them.
#[derive(Debug, Clone, Copy)]
pub struct Append<'a> {
    pub id: EnrollmentId,
    /// The version the caller's decision was based on (0 for a new enrollment).
    pub expected_version: u64,
    pub state: &'a Arc<Enrollment>,
    pub events: &'a [Arc<EventEnvelope>],
    pub timers: &'a [TimerOp],
    /// The text of the document a `DocumentIssued` event of this append names: stored
    /// with it, once, and apart from the state and the events, which hold only its
    /// reference ([`EnrollmentStore::document`] reads it back).
    pub document: Option<&'a Arc<ProductDocument>>,
    /// The fencing number of the enrollment's partition lease the writer holds
    /// ([`OwnershipStore`](super::OwnershipStore)): the append is refused as
    /// [`StoreError::Fenced`](super::StoreError::Fenced) unless it still holds the lease.
    /// `None` for a writer that takes no part in ownership (a single process).
    pub fence: Option<u64>,
}

#[async_trait]
pub trait EnrollmentStore: Send + Sync {
    /// The snapshot and its version, or `None` if the enrollment does not exist. Shared:
    /// the state is immutable once appended, and the memory store hands out what it holds.
    async fn load(&self, id: EnrollmentId) -> StoreResult<Option<(u64, Arc<Enrollment>)>>;
    /// [`load`](Self::load) for several enrollments, one answer per id, in order. By
    /// default the loads run at the same time (their round trips overlap); a store that
    /// can do better overrides it.
    async fn load_many(
        &self,
        ids: &[EnrollmentId],
    ) -> StoreResult<Vec<Option<(u64, Arc<Enrollment>)>>> {
        futures_util::future::try_join_all(ids.iter().map(|&id| self.load(id))).await
    }
    /// Writes atomically; returns the new version (expected + number of events).
    async fn append(&self, append: Append<'_>) -> StoreResult<u64>;
    /// Every event of one enrollment, oldest first.
    async fn history(&self, id: EnrollmentId) -> StoreResult<Vec<EventEnvelope>>;
    /// The text of document `document_no` of enrollment `id`, as an append stored it;
    /// `None` if there is none. Every document issued stays, also one a re-saved plan
    /// superseded.
    async fn document(
        &self,
        id: EnrollmentId,
        document_no: &str,
    ) -> StoreResult<Option<ProductDocument>>;
}

/// Checks an append before anything is written (the snapshot, every event and every timer
/// are of the enrollment appended to, events numbered after the expected version);
/// returns the new version. Every backend refuses the same appends the same way.
pub(crate) fn validate_append(append: &Append<'_>) -> StoreResult<u64> {
    let id = append.id;
    if append.state.id != id {
        return Err(rejected(format!(
            "the snapshot is of enrollment {}, not {id}",
            append.state.id
        )));
    }
    for (i, envelope) in append.events.iter().enumerate() {
        let after = append.expected_version.saturating_add(i as u64 + 1);
        if envelope.enrollment_id != id || envelope.version != after {
            return Err(rejected(format!(
                "event {} is enrollment {} version {}; this append expects {id} version {after}",
                envelope.id, envelope.enrollment_id, envelope.version
            )));
        }
    }
    if let Some(document) = append.document {
        let named = append.events.iter().any(|envelope| {
            matches!(&envelope.event, Event::DocumentIssued { document: reference }
                if document.is_named_by(reference))
        });
        if !named {
            return Err(rejected(format!(
                "document {} comes with no DocumentIssued event that names it",
                document.document_no
            )));
        }
    }
    if let Some(TimerOp::Set(t)) = append
        .timers
        .iter()
        .find(|op| matches!(op, TimerOp::Set(t) if t.enrollment_id != id))
    {
        return Err(rejected(format!(
            "a timer of enrollment {} in an append to {id}",
            t.enrollment_id
        )));
    }
    append
        .expected_version
        .checked_add(append.events.len() as u64)
        .ok_or_else(|| rejected("the version would overflow".to_owned()))
}
