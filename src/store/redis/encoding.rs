//! Values as the Redis backend writes them: times in microseconds, durations in
//! milliseconds, JSON records, statuses by name.

use crate::domain::enrollment::Status;
use crate::store::codec;
use crate::store::envelope::EventEnvelope;
use crate::store::error::{StoreError, StoreResult};
use chrono::{DateTime, Utc};
use std::time::Duration;

pub(super) fn micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

pub(super) fn from_micros(what: &str, us: i64) -> StoreResult<DateTime<Utc>> {
    DateTime::from_timestamp_micros(us).ok_or_else(|| StoreError::Corrupt {
        key: what.to_owned(),
        reason: format!("{us} µs is not a time"),
    })
}

pub(super) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A status by its name, as the read model's counts are keyed.
pub(super) fn status_of(what: &str, text: &str) -> StoreResult<Status> {
    Status::parse(text).ok_or_else(|| StoreError::Corrupt {
        key: what.to_owned(),
        reason: format!("{text:?} is not a status"),
    })
}

pub(super) fn decode_json<T: serde::de::DeserializeOwned>(
    key: &str,
    bytes: &[u8],
) -> StoreResult<T> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        key: key.to_owned(),
        reason: format!("JSON: {e}"),
    })
}

pub(super) fn encode_json<T: serde::Serialize>(key: &str, value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt {
        key: key.to_owned(),
        reason: format!("cannot encode: {e}"),
    })
}

/// An event's JSON as a list, stream or dead letter holds it; `what` names the record in
/// errors.
pub(super) fn decode_event_bytes(what: &str, bytes: &[u8]) -> StoreResult<EventEnvelope> {
    let text = std::str::from_utf8(bytes).map_err(|e| StoreError::Corrupt {
        key: what.to_owned(),
        reason: format!("not UTF-8: {e}"),
    })?;
    codec::decode_event(what, text)
}
