//! One idempotency record or claim, with its deadline.

use std::time::Instant;

/// Expired idempotency records are swept every this many puts.
pub(super) const IDEMPOTENCY_SWEEP_EVERY: u64 = 4096;

pub(super) struct Remembered {
    /// `None`: claimed, no answer yet.
    pub(super) value: Option<Vec<u8>>,
    /// Who claimed it (empty once answered).
    pub(super) holder: String,
    /// `None`: the TTL is too long to represent, so it never expires.
    pub(super) expires_at: Option<Instant>,
}

impl Remembered {
    pub(super) fn live(&self, now: Instant) -> bool {
        self.expires_at.is_none_or(|t| now < t)
    }
}
