//! What a caller asks of an enrollment ([`Command`]), what happened to it ([`Event`]) and
//! why a command is refused ([`DomainError`]); [`super::enrollment`] decides and folds them.

use super::document::{DocumentRef, ProductDocument};
use super::ids::{CustomerNo, EnrollmentId};
use super::money::Won;
use super::plan::PlanTerms;
use super::status::Status;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum PaymentMethod {
    Card,
    BankTransfer,
}

impl fmt::Display for PaymentMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PaymentMethod::Card => "카드",
            PaymentMethod::BankTransfer => "계좌이체",
        })
    }
}

/// Why a first-premium payment did not go through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum PaymentFailure {
    /// The card issuer or bank said no.
    Declined { reason: String },
    /// The gateway was overloaded or its breaker open; try again after a while.
    Unavailable {
        reason: String,
        retry_after_secs: u32,
    },
}

/// What a caller asks of an enrollment.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    SavePlan {
        id: EnrollmentId,
        customer_no: CustomerNo,
        plan: std::sync::Arc<PlanTerms>,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    },
    ResavePlan {
        plan: std::sync::Arc<PlanTerms>,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    },
    RequestDocument {
        now: DateTime<Utc>,
    },
    IssueDocument {
        document: std::sync::Arc<ProductDocument>,
        now: DateTime<Utc>,
    },
    SubmitProposal {
        method: PaymentMethod,
        now: DateTime<Utc>,
        withdrawal_deadline: DateTime<Utc>,
    },
    RecordPaymentSucceeded {
        payment_id: String,
        amount: Won,
        contract_no: String,
        now: DateTime<Utc>,
    },
    RecordPaymentFailed {
        failure: PaymentFailure,
        now: DateTime<Utc>,
    },
    RetryPayment {
        now: DateTime<Utc>,
    },
    RequestWithdrawal {
        now: DateTime<Utc>,
    },
    ConfirmRefund {
        refund_id: String,
        now: DateTime<Utc>,
    },
    ExpirePlan {
        now: DateTime<Utc>,
    },
}

impl Command {
    /// When the command was given: the time its events carry.
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            Command::SavePlan { now, .. }
            | Command::ResavePlan { now, .. }
            | Command::RequestDocument { now }
            | Command::IssueDocument { now, .. }
            | Command::SubmitProposal { now, .. }
            | Command::RecordPaymentSucceeded { now, .. }
            | Command::RecordPaymentFailed { now, .. }
            | Command::RetryPayment { now }
            | Command::RequestWithdrawal { now }
            | Command::ConfirmRefund { now, .. }
            | Command::ExpirePlan { now } => *now,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Command::SavePlan { .. } => "SavePlan",
            Command::ResavePlan { .. } => "ResavePlan",
            Command::RequestDocument { .. } => "RequestDocument",
            Command::IssueDocument { .. } => "IssueDocument",
            Command::SubmitProposal { .. } => "SubmitProposal",
            Command::RecordPaymentSucceeded { .. } => "RecordPaymentSucceeded",
            Command::RecordPaymentFailed { .. } => "RecordPaymentFailed",
            Command::RetryPayment { .. } => "RetryPayment",
            Command::RequestWithdrawal { .. } => "RequestWithdrawal",
            Command::ConfirmRefund { .. } => "ConfirmRefund",
            Command::ExpirePlan { .. } => "ExpirePlan",
        }
    }
}

/// What happened. Serialized as `{"type": ..., "data": {...}}` inside event envelopes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
// `rename_all` on each variant rather than `rename_all_fields` on the enum: the same JSON,
// in the form the OpenAPI derive reads.
#[serde(tag = "type", content = "data")]
pub enum Event {
    #[serde(rename_all = "camelCase")]
    PlanSaved {
        customer_no: CustomerNo,
        plan: std::sync::Arc<PlanTerms>,
        expires_at: DateTime<Utc>,
    },
    #[serde(rename_all = "camelCase")]
    PlanResaved {
        plan: std::sync::Arc<PlanTerms>,
        revision: u32,
        expires_at: DateTime<Utc>,
    },
    #[serde(rename_all = "camelCase")]
    DocumentRequested {
        plan_revision: u32,
    },
    /// Names the document (schema 2); its text is stored with the append that records
    /// this event. Schema 1 carried the whole document.
    #[serde(rename_all = "camelCase")]
    DocumentIssued {
        document: std::sync::Arc<DocumentRef>,
    },
    #[serde(rename_all = "camelCase")]
    ProposalSubmitted {
        method: PaymentMethod,
        amount: Won,
        withdrawal_deadline: DateTime<Utc>,
    },
    #[serde(rename_all = "camelCase")]
    PaymentSucceeded {
        payment_id: String,
        amount: Won,
        contract_no: String,
    },
    #[serde(rename_all = "camelCase")]
    PaymentFailed {
        failure: PaymentFailure,
    },
    #[serde(rename_all = "camelCase")]
    PaymentRetried {
        attempt: u32,
    },
    #[serde(rename_all = "camelCase")]
    WithdrawalRequested {
        /// The first premium to refund; `None` when nothing was paid.
        refund_due: Option<Won>,
    },
    #[serde(rename_all = "camelCase")]
    RefundConfirmed {
        refund_id: String,
        amount: Won,
    },
    Withdrawn {},
    PlanExpired {},
}

impl Event {
    /// The stable name in envelopes and streams.
    pub fn event_type(&self) -> &'static str {
        match self {
            Event::PlanSaved { .. } => "PlanSaved",
            Event::PlanResaved { .. } => "PlanResaved",
            Event::DocumentRequested { .. } => "DocumentRequested",
            Event::DocumentIssued { .. } => "DocumentIssued",
            Event::ProposalSubmitted { .. } => "ProposalSubmitted",
            Event::PaymentSucceeded { .. } => "PaymentSucceeded",
            Event::PaymentFailed { .. } => "PaymentFailed",
            Event::PaymentRetried { .. } => "PaymentRetried",
            Event::WithdrawalRequested { .. } => "WithdrawalRequested",
            Event::RefundConfirmed { .. } => "RefundConfirmed",
            Event::Withdrawn {} => "Withdrawn",
            Event::PlanExpired {} => "PlanExpired",
        }
    }

    /// Schema version of the payload; bump it (and upcast old ones) when it changes.
    pub fn event_version(&self) -> u16 {
        match self {
            // 2: the document by reference, without its text.
            Event::DocumentIssued { .. } => 2,
            _ => 1,
        }
    }

    /// The status an enrollment is in after this event.
    pub fn status_after(&self, before: Option<Status>) -> Status {
        match self {
            Event::PlanSaved { .. } | Event::PlanResaved { .. } => Status::Planned,
            Event::DocumentRequested { .. } => Status::DocumentRequested,
            Event::DocumentIssued { .. } => Status::DocumentIssued,
            Event::ProposalSubmitted { .. } | Event::PaymentRetried { .. } => Status::Proposed,
            Event::PaymentSucceeded { .. } => Status::Contracted,
            Event::PaymentFailed { .. } => Status::PaymentFailed,
            Event::WithdrawalRequested { .. } => Status::WithdrawalRequested,
            Event::RefundConfirmed { .. } => before.unwrap_or(Status::WithdrawalRequested),
            Event::Withdrawn {} => Status::Withdrawn,
            Event::PlanExpired {} => Status::Expired,
        }
    }
}

/// A business refusal. Never mixed with infrastructure failures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("{command} is not allowed while the enrollment is {status}")]
    IllegalTransition {
        command: &'static str,
        status: Status,
    },
    #[error("the enrollment does not exist yet; the first command must save a plan")]
    NotStarted { command: &'static str },
    #[error("the enrollment already exists")]
    AlreadyStarted,
    #[error(
        "the document shows plan revision {document_revision}, but the plan is at revision {current_revision}"
    )]
    StaleDocument {
        document_revision: u32,
        current_revision: u32,
    },
    #[error("the plan expires at {expires_at}, not yet")]
    NotExpired { expires_at: DateTime<Utc> },
    #[error("the plan expired at {expires_at}")]
    PlanExpired { expires_at: DateTime<Utc> },
    #[error("the withdrawal period ended at {deadline}")]
    WithdrawalPeriodOver { deadline: DateTime<Utc> },
    #[error("the first premium is {due} but {paid} was paid")]
    AmountMismatch { due: Won, paid: Won },
    #[error("the plan is for customer {expected}, not {given}")]
    WrongCustomer {
        expected: CustomerNo,
        given: CustomerNo,
    },
}

impl DomainError {
    /// The state the refusal was made in, when it is about one.
    pub fn status(&self) -> Option<Status> {
        match self {
            DomainError::IllegalTransition { status, .. } => Some(*status),
            _ => None,
        }
    }
}
