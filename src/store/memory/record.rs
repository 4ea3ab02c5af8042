//! One stored enrollment: its version, snapshot, history and documents.

use crate::domain::enrollment::{Enrollment, EnrollmentId, ProductDocument};
use crate::store::envelope::EventEnvelope;
use std::sync::Arc;

pub(super) fn enrollment_key(id: EnrollmentId) -> String {
    format!("enrollment:{id}")
}

/// A stored snapshot: the state as appended, or (only after a test corrupted it) bytes.
#[derive(Clone)]
pub(super) enum Snapshot {
    Live(Arc<Enrollment>),
    Encoded(Arc<[u8]>),
}

/// One stored enrollment.
pub(super) struct Record {
    pub(super) version: u64,
    pub(super) snapshot: Snapshot,
    /// Every event, oldest first; never trimmed.
    pub(super) history: Vec<Arc<EventEnvelope>>,
    /// The text of every document issued, oldest first.
    pub(super) documents: Vec<Arc<ProductDocument>>,
}
