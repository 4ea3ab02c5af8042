//! Encodings shared by every backend: enrollment snapshots are bincode 2 behind a
//! format-version byte (so a later layout can be told apart and migrated); events are JSON.
//!
//! Format 1 is the whole state. Format 2 (what the Redis backend writes) leaves the product
//! document out: the document is written once, when it is issued, into a field of its own,
//! instead of again with every later transition (1.2 KB each, three times an enrollment,
//! into Redis's append-only file). `[2][1 if the state has a document][bincode of the state
//! without it]`; the document is `[1][bincode of the document]`.

use super::{EventEnvelope, StoreError};
use crate::domain::enrollment::{Enrollment, ProductDocument};
use std::sync::Arc;

/// Bump when the snapshot layout changes, and keep a decoder for the old one.
pub const SNAPSHOT_FORMAT: u8 = 1;
/// The state without its document, which is stored apart.
pub const SPLIT_SNAPSHOT_FORMAT: u8 = 2;
/// The format byte of a document stored apart.
pub const DOCUMENT_FORMAT: u8 = 1;

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// `header` then `value` in bincode; a failure names the enrollment and `what` it was.
fn encode_after<T: serde::Serialize>(
    header: &[u8],
    value: &T,
    state: &Enrollment,
    what: &str,
    capacity: usize,
) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::with_capacity(capacity);
    out.extend_from_slice(header);
    bincode::serde::encode_into_std_write(value, &mut out, config()).map_err(|e| {
        corrupt(
            &state.id.to_string(),
            format!("cannot encode the {what}: {e}"),
        )
    })?;
    Ok(out)
}

pub fn encode_snapshot(state: &Enrollment) -> Result<Vec<u8>, StoreError> {
    encode_after(&[SNAPSHOT_FORMAT], state, state, "snapshot", 512)
}

/// Decodes a format-1 snapshot; `key` names the record in the error.
pub fn decode_snapshot(key: &str, bytes: &[u8]) -> Result<Enrollment, StoreError> {
    match bytes.split_first() {
        Some((&SNAPSHOT_FORMAT, body)) => decode_whole(key, body, "snapshot"),
        Some((other, _)) => Err(corrupt(
            key,
            format!("unknown snapshot format {other} (this build reads {SNAPSHOT_FORMAT})"),
        )),
        None => Err(corrupt(key, "empty snapshot".to_owned())),
    }
}

fn corrupt(key: &str, reason: String) -> StoreError {
    StoreError::Corrupt {
        key: key.to_owned(),
        reason,
    }
}

/// bincode of one value that must take all of `body`.
fn decode_whole<T: serde::de::DeserializeOwned>(
    key: &str,
    body: &[u8],
    what: &str,
) -> Result<T, StoreError> {
    let (value, read) = bincode::serde::decode_from_slice(body, config())
        .map_err(|e| corrupt(key, format!("{what}: bincode: {e}")))?;
    if read != body.len() {
        return Err(corrupt(
            key,
            format!("{} trailing bytes after the {what}", body.len() - read),
        ));
    }
    Ok(value)
}

/// A format-2 snapshot: the state without its document (see the module docs). Whether
/// the state has a document is in the snapshot; the document itself is
/// [`encode_document`]'s to write.
pub fn encode_split_snapshot(state: &Enrollment) -> Result<Vec<u8>, StoreError> {
    let header = [SPLIT_SNAPSHOT_FORMAT, u8::from(state.document.is_some())];
    if state.document.is_some() {
        let lean = Enrollment {
            document: None,
            ..state.clone()
        };
        encode_after(&header, &lean, state, "snapshot", 384)
    } else {
        encode_after(&header, state, state, "snapshot", 384)
    }
}

pub fn encode_document(
    state: &Enrollment,
    document: &ProductDocument,
) -> Result<Vec<u8>, StoreError> {
    encode_after(&[DOCUMENT_FORMAT], document, state, "document", 1536)
}

/// Whether [`decode_stored`] should put the document back into the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WithDocument {
    Yes,
    /// The caller has no use for the document: a format-2 state comes back without it
    /// (`document: None`), and `document` need not even have been read.
    No,
}

/// Decodes a stored snapshot of either format. `document` is the document stored apart
/// (format 2), if it was read; `key` names the record in errors.
pub fn decode_stored(
    key: &str,
    snapshot: &[u8],
    document: Option<&[u8]>,
    with: WithDocument,
) -> Result<Enrollment, StoreError> {
    match snapshot {
        [SNAPSHOT_FORMAT, ..] => decode_snapshot(key, snapshot),
        [SPLIT_SNAPSHOT_FORMAT, has_document, body @ ..] => {
            let mut state: Enrollment = decode_whole(key, body, "snapshot")?;
            match (has_document, with) {
                (0, _) | (1, WithDocument::No) => {}
                (1, WithDocument::Yes) => {
                    let bytes = document.ok_or_else(|| {
                        corrupt(
                            key,
                            "the snapshot has a document the record lacks".to_owned(),
                        )
                    })?;
                    let document = match bytes.split_first() {
                        Some((&DOCUMENT_FORMAT, body)) => decode_whole(key, body, "document")?,
                        Some((other, _)) => {
                            return Err(corrupt(
                                key,
                                format!(
                                    "unknown document format {other} (this build reads {DOCUMENT_FORMAT})"
                                ),
                            ));
                        }
                        None => return Err(corrupt(key, "empty document".to_owned())),
                    };
                    state.document = Some(Arc::new(document));
                }
                (other, _) => {
                    return Err(corrupt(
                        key,
                        format!("document flag {other} is neither 0 nor 1"),
                    ));
                }
            }
            Ok(state)
        }
        [SPLIT_SNAPSHOT_FORMAT] => Err(corrupt(key, "truncated snapshot".to_owned())),
        [other, ..] => Err(corrupt(
            key,
            format!(
                "unknown snapshot format {other} (this build reads {SNAPSHOT_FORMAT} and {SPLIT_SNAPSHOT_FORMAT})"
            ),
        )),
        [] => Err(corrupt(key, "empty snapshot".to_owned())),
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
