//! [`EngineError`]: why an engine call did not do what was asked.

use crate::domain::catalog::CatalogError;
use crate::domain::enrollment::{DomainError, Enrollment, PaymentFailure};
use crate::domain::money::Won;
use crate::domain::premium::Refusal;
use crate::store::StoreError;
use chrono::{DateTime, Utc};
use std::sync::Arc;

/// Why an engine call did not do what was asked. Business refusals (`Domain`,
/// `Underwriting`, `LimitExceeded`, `Payment`) never share a variant with infrastructure
/// failures (`Store`, `Internal`).
#[derive(Debug, Clone, thiserror::Error)]
pub enum EngineError {
    #[error("no such {0}")]
    NotFound(&'static str),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error("underwriting refused the plan: {0}")]
    Underwriting(Refusal),
    #[error(
        "the customer already holds {held} of the product; adding {requested} passes the cumulative limit {limit}"
    )]
    LimitExceeded {
        held: Won,
        limit: Won,
        requested: Won,
    },
    #[error("the first premium was not paid: {failure:?}")]
    Payment {
        failure: PaymentFailure,
        version: u64,
        state: Arc<Enrollment>,
    },
    #[error("the refund did not go through yet (attempt {attempt}); it is retried at {retry_at}")]
    RefundPending {
        attempt: u32,
        retry_at: DateTime<Utc>,
    },
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("internal error: {0}")]
    Internal(String),
    #[error("the engine is shutting down")]
    Stopping,
    /// The enrollment's partition is owned by another copy (or, during a hand-over, by
    /// none): its requests go to the owner.
    #[error("partition {partition} is not owned by this copy")]
    NotOwner { partition: u16 },
}
