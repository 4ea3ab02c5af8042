//! Encodings shared by every backend: enrollment snapshots are bincode 2 behind a
//! format-version byte (so a later layout can be told apart and migrated); events are JSON.

use super::{EventEnvelope, StoreError};
use crate::domain::enrollment::Enrollment;

/// Bump when the snapshot layout changes, and keep a decoder for the old one.
pub const SNAPSHOT_FORMAT: u8 = 1;

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

pub fn encode_snapshot(state: &Enrollment) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::with_capacity(512);
    out.push(SNAPSHOT_FORMAT);
    bincode::serde::encode_into_std_write(state, &mut out, config()).map_err(|e| {
        StoreError::Corrupt {
            key: state.id.to_string(),
            reason: format!("cannot encode the snapshot: {e}"),
        }
    })?;
    Ok(out)
}

/// Decodes a snapshot; `key` names the record in the error.
pub fn decode_snapshot(key: &str, bytes: &[u8]) -> Result<Enrollment, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        key: key.to_owned(),
        reason,
    };
    match bytes.split_first() {
        Some((&SNAPSHOT_FORMAT, body)) => {
            let (state, read) = bincode::serde::decode_from_slice(body, config())
                .map_err(|e| corrupt(format!("bincode: {e}")))?;
            if read != body.len() {
                return Err(corrupt(format!(
                    "{} trailing bytes after the snapshot",
                    body.len() - read
                )));
            }
            Ok(state)
        }
        Some((other, _)) => Err(corrupt(format!(
            "unknown snapshot format {other} (this build reads {SNAPSHOT_FORMAT})"
        ))),
        None => Err(corrupt("empty snapshot".to_owned())),
    }
}

pub fn encode_event(envelope: &EventEnvelope) -> Result<String, StoreError> {
    serde_json::to_string(envelope).map_err(|e| StoreError::Corrupt {
        key: envelope.id.to_string(),
        reason: format!("cannot encode the event: {e}"),
    })
}

pub fn decode_event(key: &str, text: &str) -> Result<EventEnvelope, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt {
        key: key.to_owned(),
        reason: format!("event JSON: {e}"),
    })
}
