//! Encodings shared by every backend: enrollment snapshots are bincode 2 behind a
//! format-version byte (so a later layout can be told apart and migrated); events are JSON;
//! a product document's text is bincode behind a format byte of its own.
//!
//! Snapshot formats:
//! - 3 (what is written now): `[3][bincode of the state]`. The state names its document
//!   by reference; the text is stored apart, once, by the append that issued it.
//! - 1 (read only): `[1][bincode of the state with the whole document in it]`.
//! - 2 (read only): `[2][1 if the state has a document][bincode of the state without it]`,
//!   the document's text in a field of its own (`d` in Redis).
//!
//! A format-1 or -2 state comes back with a reference to its document (computed from the
//! text) and the text itself, for a store to serve it from.

use super::envelope::EventEnvelope;
use super::error::StoreError;
use crate::domain::enrollment::{
    CustomerNo, Enrollment, EnrollmentId, PaymentFailure, PaymentMethod, PlanTerms,
    ProductDocument, Status,
};
use crate::domain::money::Won;
use chrono::{DateTime, Utc};
use std::sync::Arc;

/// Bump when the snapshot layout changes, and keep a decoder for the old one.
pub const SNAPSHOT_FORMAT: u8 = 3;
/// The whole state, its document's text included.
const WHOLE_SNAPSHOT_FORMAT: u8 = 1;
/// The state without its document's text, which was stored apart in `d`.
const SPLIT_SNAPSHOT_FORMAT: u8 = 2;
/// The format byte of a document's text.
pub const DOCUMENT_FORMAT: u8 = 1;

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// `header` then `value` in bincode; a failure names the enrollment and `what` it was.
fn encode_after<T: serde::Serialize>(
    header: &[u8],
    value: &T,
    id: EnrollmentId,
    what: &str,
    capacity: usize,
) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::with_capacity(capacity);
    out.extend_from_slice(header);
    bincode::serde::encode_into_std_write(value, &mut out, config())
        .map_err(|e| corrupt(&id.to_string(), format!("cannot encode the {what}: {e}")))?;
    Ok(out)
}

pub fn encode_snapshot(state: &Enrollment) -> Result<Vec<u8>, StoreError> {
    encode_after(&[SNAPSHOT_FORMAT], state, state.id, "snapshot", 384)
}

/// The text of a document of enrollment `id`, to store apart.
pub fn encode_document(
    id: EnrollmentId,
    document: &ProductDocument,
) -> Result<Vec<u8>, StoreError> {
    encode_after(&[DOCUMENT_FORMAT], document, id, "document", 1536)
}

/// Decodes a snapshot of a format that holds everything the state needs (3, 1, and 2
/// without a document); `key` names the record in errors.
pub fn decode_snapshot(key: &str, bytes: &[u8]) -> Result<Enrollment, StoreError> {
    decode_stored(key, bytes, None).map(|stored| stored.state)
}

/// A decoded snapshot, and the text of its document when the snapshot is of a format that
/// kept the text with the state (1, 2).
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub state: Enrollment,
    pub old_document: Option<ProductDocument>,
}

/// Whether `snapshot` is a format-2 state with a document: its text, stored apart (`d`),
/// must be read with it ([`decode_stored`]).
pub fn needs_old_document(snapshot: &[u8]) -> bool {
    matches!(snapshot, [SPLIT_SNAPSHOT_FORMAT, 1, ..])
}

/// Decodes a stored snapshot of any format. `old_document` is the text stored apart for a
/// format-2 snapshot with a document (see [`needs_old_document`]).
pub fn decode_stored(
    key: &str,
    snapshot: &[u8],
    old_document: Option<&[u8]>,
) -> Result<Stored, StoreError> {
    match snapshot {
        [SNAPSHOT_FORMAT, body @ ..] => Ok(Stored {
            state: decode_whole(key, body, "snapshot")?,
            old_document: None,
        }),
        [WHOLE_SNAPSHOT_FORMAT, body @ ..] => {
            let old: OldEnrollment = decode_whole(key, body, "snapshot")?;
            Ok(old.upgrade(None))
        }
        [SPLIT_SNAPSHOT_FORMAT, has_document, body @ ..] => {
            let old: OldEnrollment = decode_whole(key, body, "snapshot")?;
            match has_document {
                0 => Ok(old.upgrade(None)),
                1 => {
                    let bytes = old_document.ok_or_else(|| {
                        corrupt(
                            key,
                            "the snapshot has a document the record lacks".to_owned(),
                        )
                    })?;
                    Ok(old.upgrade(Some(decode_document(key, bytes)?)))
                }
                other => Err(corrupt(
                    key,
                    format!("document flag {other} is neither 0 nor 1"),
                )),
            }
        }
        [SPLIT_SNAPSHOT_FORMAT] => Err(corrupt(key, "truncated snapshot".to_owned())),
        [other, ..] => Err(corrupt(
            key,
            format!(
                "unknown snapshot format {other} (known: {SNAPSHOT_FORMAT}, and \
                 {WHOLE_SNAPSHOT_FORMAT} and {SPLIT_SNAPSHOT_FORMAT} read only)"
            ),
        )),
        [] => Err(corrupt(key, "empty snapshot".to_owned())),
    }
}

/// A document's text as [`encode_document`] wrote it.
pub fn decode_document(key: &str, bytes: &[u8]) -> Result<ProductDocument, StoreError> {
    match bytes.split_first() {
        Some((&DOCUMENT_FORMAT, body)) => decode_whole(key, body, "document"),
        Some((other, _)) => Err(corrupt(
            key,
            format!("unknown document format {other} (known: {DOCUMENT_FORMAT})"),
        )),
        None => Err(corrupt(key, "empty document".to_owned())),
    }
}

/// The state as formats 1 and 2 laid it out: the document whole (format 1) or absent
/// (format 2, stored apart). Field for field [`Enrollment`] as formats 1 and 2 encoded it.
#[derive(serde::Deserialize)]
struct OldEnrollment {
    id: EnrollmentId,
    customer_no: CustomerNo,
    status: Status,
    plan: Arc<PlanTerms>,
    plan_revision: u32,
    #[serde(with = "crate::domain::time::utc")]
    plan_expires_at: DateTime<Utc>,
    document: Option<ProductDocument>,
    payment_method: Option<PaymentMethod>,
    amount_due: Option<Won>,
    #[serde(with = "crate::domain::time::utc_opt")]
    proposed_at: Option<DateTime<Utc>>,
    #[serde(with = "crate::domain::time::utc_opt")]
    withdrawal_deadline: Option<DateTime<Utc>>,
    payment_attempts: u32,
    last_payment_failure: Option<PaymentFailure>,
    payment_id: Option<String>,
    paid_amount: Option<Won>,
    contract_no: Option<String>,
    refund_due: Option<Won>,
    refund_id: Option<String>,
    #[serde(with = "crate::domain::time::utc")]
    created_at: DateTime<Utc>,
    #[serde(with = "crate::domain::time::utc")]
    updated_at: DateTime<Utc>,
}

impl OldEnrollment {
    /// The state in the format-3 layout: the document (in the snapshot, or `apart`) by
    /// reference.
    fn upgrade(self, apart: Option<ProductDocument>) -> Stored {
        let document = self.document.or(apart);
        Stored {
            state: Enrollment {
                id: self.id,
                customer_no: self.customer_no,
                status: self.status,
                plan: self.plan,
                plan_revision: self.plan_revision,
                plan_expires_at: self.plan_expires_at,
                document: document.as_ref().map(|d| Arc::new(d.reference())),
                payment_method: self.payment_method,
                amount_due: self.amount_due,
                proposed_at: self.proposed_at,
                withdrawal_deadline: self.withdrawal_deadline,
                payment_attempts: self.payment_attempts,
                last_payment_failure: self.last_payment_failure,
                payment_id: self.payment_id,
                paid_amount: self.paid_amount,
                contract_no: self.contract_no,
                refund_due: self.refund_due,
                refund_id: self.refund_id,
                created_at: self.created_at,
                updated_at: self.updated_at,
            },
            old_document: document,
        }
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
