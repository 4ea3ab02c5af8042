//! What a store operation can fail with, the same for every backend.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("version conflict on {key}: expected version {expected}, found {actual}")]
    Conflict {
        key: String,
        expected: u64,
        actual: u64,
    },
    #[error("the stored record {key} does not decode: {reason}")]
    Corrupt { key: String, reason: String },
    /// The append was made under a partition lease that no longer holds: another copy
    /// owns the enrollment now.
    #[error(
        "partition {partition} is owned by another copy now (fencing number {fence} no longer holds)"
    )]
    Fenced { partition: u16, fence: u64 },
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    #[error("{0}")]
    Rejected(String),
}

pub type StoreResult<T> = Result<T, StoreError>;
/// A refusal of what the caller asked for (the store is fine; the request is not).
pub(crate) fn rejected(message: impl Into<String>) -> StoreError {
    StoreError::Rejected(message.into())
}
