//! The event as it travels between the store, the actors and the consumers.

use crate::domain::enrollment::{CustomerNo, EnrollmentId, Event};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// An event as it travels: JSON `{id, type, data, enrollmentId, customerNo, version, time,
/// schemaVersion}`. `version` is the enrollment's version after this event; `id` is what
/// consumers are idempotent on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventEnvelope {
    pub id: Uuid,
    #[serde(flatten)]
    pub event: Event,
    pub enrollment_id: EnrollmentId,
    pub customer_no: CustomerNo,
    pub version: u64,
    pub time: DateTime<Utc>,
    pub schema_version: u16,
    /// The request whose command appended it: a digest of its `Idempotency-Key` and
    /// scope, for keyed requests only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<std::sync::Arc<str>>,
}

impl EventEnvelope {
    pub fn new(
        event: Event,
        enrollment_id: EnrollmentId,
        customer_no: CustomerNo,
        version: u64,
        time: DateTime<Utc>,
    ) -> EventEnvelope {
        EventEnvelope {
            id: Uuid::now_v7(),
            schema_version: event.event_version(),
            event,
            enrollment_id,
            customer_no,
            version,
            time,
            request: None,
        }
    }
}
