//! The enrollment aggregate (가입): one customer's journey for one product, as pure
//! functions. `handle(&state, command)` decides (events or a refusal), `apply(state,
//! &event)` folds. Everything a decision needs (the quote, the time, deadlines) is in the
//! command, so every rule is testable without a runtime.
//!
//! ```text
//! Planned ──request document──▶ DocumentRequested ──issued──▶ DocumentIssued
//!    ▲  └─ re-save plan ─┘                                          │ submit proposal
//!    └──────────── re-save plan (before proposal) ──────────────────┤
//!                      PaymentFailed ◀─declined─ Proposed ─paid─▶ Contracted
//!                          └──── retry payment ─────┘                 │ withdraw
//!            Withdrawn ◀── refund confirmed ── WithdrawalRequested ◀──┘
//!            (from Proposed/PaymentFailed a withdrawal needs no refund)
//! Planned / DocumentRequested / DocumentIssued ──plan expired──▶ Expired
//! ```

use super::customer::Insured;
use super::money::Won;
use super::period::{CoveragePeriod, PaymentCycle, Years};
use super::premium::{PricedProduct, Quote, QuoteInput};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

/// The correlation key of every event of one enrollment. Time-ordered (UUIDv7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EnrollmentId(Uuid);

impl EnrollmentId {
    pub fn new() -> EnrollmentId {
        EnrollmentId(Uuid::now_v7())
    }

    /// The id of the enrollment that one keyed request creates: the same key (scoped to
    /// its caller) always names the same enrollment, so a request retried after its first
    /// try died between saving and keeping its answer finds what that try saved instead of
    /// starting a second enrollment. A name-based UUID (v5), not time-ordered; nothing
    /// relies on the order of ids.
    pub fn for_request(scoped_key: &str) -> EnrollmentId {
        const NAMESPACE: Uuid = Uuid::from_u128(0x6c1e_4f0a_9b2d_4e57_8a31_0d5c_e2b4_7f19);
        EnrollmentId(Uuid::new_v5(&NAMESPACE, scoped_key.as_bytes()))
    }

    pub fn parse(text: &str) -> Result<EnrollmentId, String> {
        Uuid::parse_str(text)
            .map(EnrollmentId)
            .map_err(|_| format!("{text:?} is not an enrollment id (a UUID)"))
    }

    pub fn as_uuid(&self) -> &Uuid {
        &self.0
    }

    /// The last eight hex digits (random in a v7 UUID): short references in documents
    /// and contract numbers.
    pub fn short(&self) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let bytes = self.0.as_bytes();
        let mut short = String::with_capacity(8);
        for byte in &bytes[12..] {
            short.push(char::from(HEX[usize::from(byte >> 4)]));
            short.push(char::from(HEX[usize::from(byte & 0xf)]));
        }
        short
    }

    /// A stable 64-bit hash for partitioning (the low bits of a v7 UUID are random).
    pub fn partition_hash(&self) -> u64 {
        let bytes = self.0.as_bytes();
        u64::from_le_bytes([
            bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15],
        ])
    }
}

impl Default for EnrollmentId {
    fn default() -> Self {
        EnrollmentId::new()
    }
}

impl fmt::Display for EnrollmentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A hasher for maps keyed by [`EnrollmentId`] or [`CustomerNo`]: the ids are random
/// (v7 UUIDs carry 62 random bits) or sequential, so folding their bits is enough, and
/// SipHash was a twentieth of the engine's instructions.
#[derive(Debug, Default, Clone, Copy)]
pub struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        // splitmix64's finalizer: spreads sequential customer numbers over the high bits
        // DashMap picks shards with.
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(29) ^ u64::from_le_bytes(word);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = self.0.rotate_left(29) ^ n;
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

/// Build hasher for [`IdHasher`].
pub type IdHash = std::hash::BuildHasherDefault<IdHasher>;

/// 고객번호: `C` and nine digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CustomerNo(u64);

impl CustomerNo {
    pub const fn new(n: u64) -> CustomerNo {
        CustomerNo(n)
    }

    pub fn get(self) -> u64 {
        self.0
    }

    pub fn parse(text: &str) -> Result<CustomerNo, String> {
        text.strip_prefix('C')
            .filter(|d| d.len() == 9 && d.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|d| d.parse().ok())
            .map(CustomerNo)
            .ok_or_else(|| format!("{text:?} is not a customer number (C and nine digits)"))
    }
}

impl fmt::Display for CustomerNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "C{:09}", self.0)
    }
}

impl Serialize for CustomerNo {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(self)
        } else {
            s.serialize_u64(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for CustomerNo {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let text = std::borrow::Cow::<str>::deserialize(d)?;
            CustomerNo::parse(&text).map_err(serde::de::Error::custom)
        } else {
            u64::deserialize(d).map(CustomerNo)
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Status {
    Planned,
    DocumentRequested,
    DocumentIssued,
    Proposed,
    PaymentFailed,
    Contracted,
    WithdrawalRequested,
    Withdrawn,
    Expired,
}

impl Status {
    pub const ALL: [Status; 9] = [
        Status::Planned,
        Status::DocumentRequested,
        Status::DocumentIssued,
        Status::Proposed,
        Status::PaymentFailed,
        Status::Contracted,
        Status::WithdrawalRequested,
        Status::Withdrawn,
        Status::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Planned => "Planned",
            Status::DocumentRequested => "DocumentRequested",
            Status::DocumentIssued => "DocumentIssued",
            Status::Proposed => "Proposed",
            Status::PaymentFailed => "PaymentFailed",
            Status::Contracted => "Contracted",
            Status::WithdrawalRequested => "WithdrawalRequested",
            Status::Withdrawn => "Withdrawn",
            Status::Expired => "Expired",
        }
    }

    /// 한글 상태명, for notifications and documents.
    pub fn korean(self) -> &'static str {
        match self {
            Status::Planned => "가입설계 저장",
            Status::DocumentRequested => "상품설명서 발행 요청",
            Status::DocumentIssued => "상품설명서 발행 완료",
            Status::Proposed => "청약 접수",
            Status::PaymentFailed => "초회보험료 결제 실패",
            Status::Contracted => "계약 성립",
            Status::WithdrawalRequested => "청약철회 접수",
            Status::Withdrawn => "청약철회 완료",
            Status::Expired => "가입설계 만료",
        }
    }

    pub fn parse(text: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Before a proposal: the plan may still be re-saved, and it may expire.
    pub fn is_pre_proposal(self) -> bool {
        matches!(
            self,
            Status::Planned | Status::DocumentRequested | Status::DocumentIssued
        )
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The quoted terms a plan pins: the product version it was priced on and the premium.
/// Changing the product later never reprices it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanTerms {
    pub product_code: String,
    pub product_version: u32,
    pub product_name: String,
    pub insured: Insured,
    #[serde(with = "super::time::date")]
    pub quote_date: NaiveDate,
    pub sum_insured: Won,
    pub coverage_period: CoveragePeriod,
    pub payment_period: Years,
    pub payment_cycle: PaymentCycle,
    pub quote: Quote,
}

impl PlanTerms {
    /// Prices `input` on `product` and pins the result, or returns every violation.
    pub fn quote(
        product: &PricedProduct,
        input: &QuoteInput,
    ) -> Result<PlanTerms, super::premium::Refusal> {
        let quote = product.quote(input)?;
        let p = product.product();
        Ok(PlanTerms {
            product_code: p.code().to_string(),
            product_version: p.version(),
            product_name: p.name().to_owned(),
            insured: input.insured,
            quote_date: input.quote_date,
            sum_insured: input.sum_insured,
            coverage_period: input.coverage,
            payment_period: input.payment_period,
            payment_cycle: input.cycle,
            quote,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

/// 상품설명서: rendered text with the terms it describes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductDocument {
    pub document_no: String,
    pub plan_revision: u32,
    #[serde(with = "super::time::utc")]
    pub issued_at: DateTime<Utc>,
    pub title: String,
    pub body: String,
}

impl ProductDocument {
    /// What the enrollment and its event keep of this document.
    pub fn reference(&self) -> DocumentRef {
        DocumentRef {
            document_no: self.document_no.clone(),
            plan_revision: self.plan_revision,
            issued_at: self.issued_at,
            title: self.title.clone(),
            body_sha256: self.body_sha256(),
        }
    }

    /// Lower-case hex SHA-256 of the body's UTF-8 bytes.
    pub fn body_sha256(&self) -> String {
        sha256_hex(self.body.as_bytes())
    }

    /// Whether this is the document `reference` names: same number and revision, and
    /// a body with the digest it recorded (a reference decoded from an event written
    /// before digests were recorded has none, and names the document by number alone).
    pub fn is_named_by(&self, reference: &DocumentRef) -> bool {
        self.document_no == reference.document_no
            && self.plan_revision == reference.plan_revision
            && (reference.body_sha256.is_empty() || self.body_sha256() == reference.body_sha256)
    }
}

/// The product document as the enrollment and its `DocumentIssued` event name it: its
/// number, the plan revision it shows, when it was issued, its title and the SHA-256 of
/// its text. The text itself (about 1 KB) is kept once, apart, and read by
/// `GET /enrollments/{id}/document` (the claim-check pattern): it does not travel with
/// every later snapshot, the event history, each consumer's delivery and every
/// enrollment answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DocumentRef {
    pub document_no: String,
    pub plan_revision: u32,
    #[serde(with = "super::time::utc")]
    pub issued_at: DateTime<Utc>,
    pub title: String,
    /// Lower-case hex SHA-256 of the body's UTF-8 bytes. Empty only in a reference read
    /// from a schema-1 event, which carried the whole document instead.
    #[serde(default)]
    pub body_sha256: String,
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for byte in digest {
        for nibble in [byte >> 4, byte & 0x0f] {
            out.push(char::from_digit(u32::from(nibble), 16).unwrap_or('0'));
        }
    }
    out
}

/// The state of one enrollment, rebuilt by folding its events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Enrollment {
    pub id: EnrollmentId,
    pub customer_no: CustomerNo,
    pub status: Status,
    /// Shared, like the document: the state is copied on every command.
    pub plan: std::sync::Arc<PlanTerms>,
    /// 1 for the first save, +1 on each re-save; a document names the revision it shows.
    pub plan_revision: u32,
    #[serde(with = "super::time::utc")]
    pub plan_expires_at: DateTime<Utc>,
    /// The issued document for the current plan revision, by reference (its text is kept
    /// apart). Shared: the state is copied on every command.
    pub document: Option<std::sync::Arc<DocumentRef>>,
    pub payment_method: Option<PaymentMethod>,
    /// The first premium the proposal asks for; a payment of any other amount is refused.
    pub amount_due: Option<Won>,
    #[serde(with = "super::time::utc_opt")]
    pub proposed_at: Option<DateTime<Utc>>,
    #[serde(with = "super::time::utc_opt")]
    pub withdrawal_deadline: Option<DateTime<Utc>>,
    pub payment_attempts: u32,
    pub last_payment_failure: Option<PaymentFailure>,
    pub payment_id: Option<String>,
    pub paid_amount: Option<Won>,
    pub contract_no: Option<String>,
    pub refund_due: Option<Won>,
    pub refund_id: Option<String>,
    #[serde(with = "super::time::utc")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "super::time::utc")]
    pub updated_at: DateTime<Utc>,
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data", rename_all_fields = "camelCase")]
pub enum Event {
    PlanSaved {
        customer_no: CustomerNo,
        plan: std::sync::Arc<PlanTerms>,
        expires_at: DateTime<Utc>,
    },
    PlanResaved {
        plan: std::sync::Arc<PlanTerms>,
        revision: u32,
        expires_at: DateTime<Utc>,
    },
    DocumentRequested {
        plan_revision: u32,
    },
    /// Names the document (schema 2); its text is stored with the append that records
    /// this event. Schema 1 carried the whole document.
    DocumentIssued {
        document: std::sync::Arc<DocumentRef>,
    },
    ProposalSubmitted {
        method: PaymentMethod,
        amount: Won,
        withdrawal_deadline: DateTime<Utc>,
    },
    PaymentSucceeded {
        payment_id: String,
        amount: Won,
        contract_no: String,
    },
    PaymentFailed {
        failure: PaymentFailure,
    },
    PaymentRetried {
        attempt: u32,
    },
    WithdrawalRequested {
        /// The first premium to refund; `None` when nothing was paid.
        refund_due: Option<Won>,
    },
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

fn illegal(command: &Command, status: Status) -> DomainError {
    DomainError::IllegalTransition {
        command: command.name(),
        status,
    }
}

/// Decides: the events a command produces in a state, or why it is refused.
pub fn handle(state: Option<&Enrollment>, command: &Command) -> Result<Vec<Event>, DomainError> {
    let Some(state) = state else {
        return match command {
            Command::SavePlan {
                customer_no,
                plan,
                expires_at,
                ..
            } => Ok(vec![Event::PlanSaved {
                customer_no: *customer_no,
                plan: plan.clone(),
                expires_at: *expires_at,
            }]),
            other => Err(DomainError::NotStarted {
                command: other.name(),
            }),
        };
    };
    let status = state.status;
    let refuse = || Err(illegal(command, status));
    let expired = |now: &DateTime<Utc>| {
        (status.is_pre_proposal() && *now >= state.plan_expires_at).then_some(
            DomainError::PlanExpired {
                expires_at: state.plan_expires_at,
            },
        )
    };
    match command {
        Command::SavePlan { .. } => Err(DomainError::AlreadyStarted),
        Command::ResavePlan {
            plan,
            expires_at,
            now,
        } => {
            if !status.is_pre_proposal() {
                return refuse();
            }
            if let Some(e) = expired(now) {
                return Err(e);
            }
            Ok(vec![Event::PlanResaved {
                plan: plan.clone(),
                revision: state.plan_revision + 1,
                expires_at: *expires_at,
            }])
        }
        Command::RequestDocument { now } => match status {
            Status::Planned => match expired(now) {
                Some(e) => Err(e),
                None => Ok(vec![Event::DocumentRequested {
                    plan_revision: state.plan_revision,
                }]),
            },
            _ => refuse(),
        },
        Command::IssueDocument { document, now } => match status {
            Status::DocumentRequested if expired(now).is_some() => Err(DomainError::PlanExpired {
                expires_at: state.plan_expires_at,
            }),
            Status::DocumentRequested if document.plan_revision == state.plan_revision => {
                Ok(vec![Event::DocumentIssued {
                    document: std::sync::Arc::new(document.reference()),
                }])
            }
            Status::DocumentRequested => Err(DomainError::StaleDocument {
                document_revision: document.plan_revision,
                current_revision: state.plan_revision,
            }),
            _ => refuse(),
        },
        Command::SubmitProposal {
            method,
            now,
            withdrawal_deadline,
        } => match status {
            Status::DocumentIssued => match expired(now) {
                Some(e) => Err(e),
                None => Ok(vec![Event::ProposalSubmitted {
                    method: *method,
                    amount: state.plan.quote.installment,
                    withdrawal_deadline: *withdrawal_deadline,
                }]),
            },
            _ => refuse(),
        },
        Command::RecordPaymentSucceeded {
            payment_id,
            amount,
            contract_no,
            ..
        } => match status {
            Status::Proposed if state.amount_due.is_some_and(|due| due != *amount) => {
                Err(DomainError::AmountMismatch {
                    due: state.amount_due.unwrap_or_default(),
                    paid: *amount,
                })
            }
            Status::Proposed => Ok(vec![Event::PaymentSucceeded {
                payment_id: payment_id.clone(),
                amount: *amount,
                contract_no: contract_no.clone(),
            }]),
            _ => refuse(),
        },
        Command::RecordPaymentFailed { failure, .. } => match status {
            Status::Proposed => Ok(vec![Event::PaymentFailed {
                failure: failure.clone(),
            }]),
            _ => refuse(),
        },
        Command::RetryPayment { .. } => match status {
            Status::PaymentFailed => Ok(vec![Event::PaymentRetried {
                attempt: state.payment_attempts + 1,
            }]),
            _ => refuse(),
        },
        Command::RequestWithdrawal { now } => match status {
            Status::Contracted => match state.withdrawal_deadline {
                Some(deadline) if *now > deadline => {
                    Err(DomainError::WithdrawalPeriodOver { deadline })
                }
                _ => Ok(vec![Event::WithdrawalRequested {
                    refund_due: state.paid_amount,
                }]),
            },
            // Nothing was paid: withdrawn at once, no refund to wait for.
            Status::Proposed | Status::PaymentFailed => Ok(vec![
                Event::WithdrawalRequested { refund_due: None },
                Event::Withdrawn {},
            ]),
            _ => refuse(),
        },
        Command::ConfirmRefund { refund_id, .. } => match (status, state.refund_due) {
            (Status::WithdrawalRequested, Some(amount)) => Ok(vec![
                Event::RefundConfirmed {
                    refund_id: refund_id.clone(),
                    amount,
                },
                Event::Withdrawn {},
            ]),
            _ => refuse(),
        },
        Command::ExpirePlan { now } => {
            if !status.is_pre_proposal() {
                return refuse();
            }
            if *now < state.plan_expires_at {
                return Err(DomainError::NotExpired {
                    expires_at: state.plan_expires_at,
                });
            }
            Ok(vec![Event::PlanExpired {}])
        }
    }
}

/// Folds one event into the state. `at` is the event's time. Returns `None` only for a
/// first event that does not start an enrollment (a corrupt history).
pub fn apply(
    state: Option<Enrollment>,
    id: EnrollmentId,
    event: &Event,
    at: DateTime<Utc>,
) -> Option<Enrollment> {
    let mut s = match (state, event) {
        (
            None,
            Event::PlanSaved {
                customer_no,
                plan,
                expires_at,
            },
        ) => {
            return Some(Enrollment {
                id,
                customer_no: *customer_no,
                status: Status::Planned,
                plan: std::sync::Arc::clone(plan),
                plan_revision: 1,
                plan_expires_at: *expires_at,
                document: None,
                payment_method: None,
                amount_due: None,
                proposed_at: None,
                withdrawal_deadline: None,
                payment_attempts: 0,
                last_payment_failure: None,
                payment_id: None,
                paid_amount: None,
                contract_no: None,
                refund_due: None,
                refund_id: None,
                created_at: at,
                updated_at: at,
            });
        }
        (None, _) => return None,
        (Some(s), _) => s,
    };
    s.status = event.status_after(Some(s.status));
    s.updated_at = at;
    match event {
        Event::PlanSaved {
            plan, expires_at, ..
        } => {
            s.plan = std::sync::Arc::clone(plan);
            s.plan_expires_at = *expires_at;
        }
        Event::PlanResaved {
            plan,
            revision,
            expires_at,
        } => {
            s.plan = std::sync::Arc::clone(plan);
            s.plan_revision = *revision;
            s.plan_expires_at = *expires_at;
            s.document = None;
        }
        Event::DocumentRequested { .. } => {}
        Event::DocumentIssued { document } => s.document = Some(std::sync::Arc::clone(document)),
        Event::ProposalSubmitted {
            method,
            amount,
            withdrawal_deadline,
        } => {
            s.payment_method = Some(*method);
            s.amount_due = Some(*amount);
            s.proposed_at = Some(at);
            s.withdrawal_deadline = Some(*withdrawal_deadline);
            s.payment_attempts = 1;
        }
        Event::PaymentSucceeded {
            payment_id,
            amount,
            contract_no,
        } => {
            s.payment_id = Some(payment_id.clone());
            s.paid_amount = Some(*amount);
            s.contract_no = Some(contract_no.clone());
            s.last_payment_failure = None;
        }
        Event::PaymentFailed { failure } => s.last_payment_failure = Some(failure.clone()),
        Event::PaymentRetried { attempt } => {
            s.payment_attempts = *attempt;
            s.last_payment_failure = None;
        }
        Event::WithdrawalRequested { refund_due } => s.refund_due = *refund_due,
        Event::RefundConfirmed { refund_id, .. } => s.refund_id = Some(refund_id.clone()),
        Event::Withdrawn {} | Event::PlanExpired {} => {}
    }
    Some(s)
}

/// Folds a whole history; `None` if it is empty or does not start with a saved plan.
pub fn replay<'a>(
    id: EnrollmentId,
    events: impl IntoIterator<Item = (&'a Event, DateTime<Utc>)>,
) -> Option<Enrollment> {
    let mut state = None;
    for (event, at) in events {
        state = Some(apply(state, id, event, at)?);
    }
    state
}
