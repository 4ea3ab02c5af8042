//! Given / when / then (after cqrs-es's TestFramework), and the fixed world of these tests:
//! one enrollment, one customer, one calendar, realistic plans priced by the demo catalog,
//! the events and histories, and every command at the fixed `now`.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use ezenroll::domain::catalog::Catalog;
use ezenroll::domain::customer::{BirthDate, Gender, Insured};
use ezenroll::domain::enrollment::{
    Command, CustomerNo, DomainError, Enrollment, EnrollmentId, Event, PaymentFailure,
    PaymentMethod, PlanTerms, ProductDocument, Status, apply, handle,
};
use ezenroll::domain::money::Won;
use ezenroll::domain::period::{CoveragePeriod, PaymentCycle, Years};
use ezenroll::domain::premium::QuoteInput;
use std::sync::LazyLock;

/// What happened before: the given events folded with `apply`, one minute apart from
/// [`saved_at`], as the store would have replayed them.
pub(super) struct Given {
    pub(super) state: Option<Enrollment>,
}

pub(super) fn given(events: Vec<Event>) -> Given {
    Given {
        state: fold(None, &events, |i| {
            saved_at() + Duration::minutes(i64::from(i))
        }),
    }
}

impl Given {
    pub(super) fn when(self, command: Command) -> Then {
        let result = handle(self.state.as_ref(), &command);
        Then {
            state: self.state,
            command,
            result,
        }
    }
}

pub(super) struct Then {
    pub(super) state: Option<Enrollment>,
    pub(super) command: Command,
    pub(super) result: Result<Vec<Event>, DomainError>,
}

impl Then {
    /// Asserts the decision and returns the state after its events (applied at the
    /// command's `now`), for what a test wants to check next.
    #[track_caller]
    pub(super) fn then_expect_events(self, expected: Vec<Event>) -> Enrollment {
        let events = match self.result {
            Ok(events) => events,
            Err(e) => panic!("{} was refused: {e:?}", self.command.name()),
        };
        assert_eq!(events, expected, "events of {}", self.command.name());
        let at = self.command.at();
        fold(self.state, &events, |_| at).expect("the events apply to the state")
    }

    #[track_caller]
    pub(super) fn then_expect_error(self, expected: DomainError) {
        match self.result {
            Ok(events) => panic!(
                "{} was accepted with {events:?}, expected {expected:?}",
                self.command.name()
            ),
            Err(e) => assert_eq!(e, expected, "refusal of {}", self.command.name()),
        }
    }
}

pub(super) fn fold(
    mut state: Option<Enrollment>,
    events: &[Event],
    at: impl Fn(u32) -> DateTime<Utc>,
) -> Option<Enrollment> {
    for (i, event) in (0u32..).zip(events) {
        state = Some(apply(state, enrollment_id(), event, at(i))?);
    }
    state
}

pub(super) fn enrollment_id() -> EnrollmentId {
    EnrollmentId::parse("0193613a-5c00-7000-8000-00000000e001").expect("a UUID")
}

pub(super) const CUSTOMER: CustomerNo = CustomerNo::new(123_456_789);

pub(super) fn time(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .expect("an RFC 3339 time")
        .with_timezone(&Utc)
}

/// When the given history starts (the first plan was saved).
pub(super) fn saved_at() -> DateTime<Utc> {
    time("2026-11-24T09:00:00Z")
}

/// When the commands under test arrive: a day later.
pub(super) fn now() -> DateTime<Utc> {
    time("2026-11-25T10:00:00Z")
}

/// The first plan is valid for 30 days.
pub(super) fn plan_expires_at() -> DateTime<Utc> {
    time("2026-12-24T09:00:00Z")
}

/// A re-saved plan gets a new 30-day window from the re-save.
pub(super) fn resaved_expires_at() -> DateTime<Utc> {
    now() + Duration::days(30)
}

/// 청약철회 is possible for 30 days from the proposal.
pub(super) fn withdrawal_deadline() -> DateTime<Utc> {
    time("2026-12-25T10:00:00Z")
}

pub(super) static CATALOG: LazyLock<Catalog> = LazyLock::new(Catalog::demo);

pub(super) fn quote_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 24).expect("a date")
}

/// Prices a plan on the latest version of a demo product for someone exactly `age`.
pub(super) fn priced(
    code: &str,
    age: i32,
    gender: Gender,
    sum_insured: u64,
    coverage: CoveragePeriod,
    payment_years: u64,
    cycle: PaymentCycle,
) -> PlanTerms {
    let product = CATALOG.latest(code).expect("a demo product");
    let birth = NaiveDate::from_ymd_opt(2026 - age, 11, 24).expect("a birth date");
    let input = QuoteInput {
        insured: Insured {
            birth_date: BirthDate::new(birth).expect("a birth date"),
            gender,
        },
        quote_date: quote_date(),
        sum_insured: Won::new(sum_insured),
        coverage,
        payment_period: Years::new(payment_years).expect("years"),
        cycle,
    };
    PlanTerms::quote(product, &input).unwrap_or_else(|r| panic!("{code} refused: {r}"))
}

pub(super) fn years(n: u64) -> CoveragePeriod {
    CoveragePeriod::Years(Years::new(n).expect("years"))
}

/// 이지 정기보험: a man of 40, 1억 for 20 years, paid monthly for 20 years.
pub(super) fn term_plan() -> PlanTerms {
    let term = years(20);
    priced(
        "EZ-TERM",
        40,
        Gender::Male,
        100_000_000,
        term,
        20,
        PaymentCycle::Monthly,
    )
}

/// The customer changes their mind: 이지 양로보험, 5천만 for 15 years, paid in 10.
pub(super) fn endowment_plan() -> PlanTerms {
    let term = years(15);
    priced(
        "EZ-ENDOW",
        40,
        Gender::Male,
        50_000_000,
        term,
        10,
        PaymentCycle::Monthly,
    )
}

/// 이지 종신보험: a woman of 30, 1억 for life, paid yearly for 20 years.
pub(super) fn whole_life_plan() -> PlanTerms {
    let life = CoveragePeriod::WholeLife;
    priced(
        "EZ-WL",
        30,
        Gender::Female,
        100_000_000,
        life,
        20,
        PaymentCycle::Annual,
    )
}

/// The first premium of [`term_plan`]: one monthly installment.
pub(super) fn first_premium() -> Won {
    term_plan().quote.installment
}

/// SHA-256 of [`document`]'s body, as `sha256sum` prints it.
pub(super) const SAMPLE_BODY_SHA256: &str =
    "1204b11591a9f0a8c511428450c9731310a8c124e9361e5c1eabdeb598d265b2";

pub(super) fn document(plan_revision: u32) -> ProductDocument {
    ProductDocument {
        document_no: format!("D-2026-{plan_revision:06}"),
        plan_revision,
        issued_at: now(),
        title: "이지 정기보험 상품설명서".to_owned(),
        body: "보험기간 20년, 납입기간 20년, 월납".to_owned(),
    }
}

pub(super) fn plan_saved() -> Event {
    Event::PlanSaved {
        customer_no: CUSTOMER,
        plan: term_plan().into(),
        expires_at: plan_expires_at(),
    }
}

pub(super) fn proposal_submitted() -> Event {
    Event::ProposalSubmitted {
        method: PaymentMethod::Card,
        amount: first_premium(),
        withdrawal_deadline: withdrawal_deadline(),
    }
}

pub(super) fn paid() -> Event {
    Event::PaymentSucceeded {
        payment_id: "PAY-0001".to_owned(),
        amount: first_premium(),
        contract_no: "K-2026-000001".to_owned(),
    }
}

pub(super) fn declined() -> PaymentFailure {
    PaymentFailure::Declined {
        reason: "한도 초과".to_owned(),
    }
}

/// A history that leaves the enrollment in `status`, the way a customer gets there.
pub(super) fn history(status: Status) -> Vec<Event> {
    let mut events = vec![plan_saved()];
    let steps: Vec<Event> = match status {
        Status::Planned => vec![],
        Status::DocumentRequested => vec![Event::DocumentRequested { plan_revision: 1 }],
        Status::DocumentIssued => return up_to_document_issued(),
        Status::Proposed => return up_to_proposed(),
        Status::PaymentFailed => {
            let mut e = up_to_proposed();
            e.push(Event::PaymentFailed {
                failure: declined(),
            });
            return e;
        }
        Status::Contracted => return up_to_contracted(),
        Status::WithdrawalRequested => {
            let mut e = up_to_contracted();
            e.push(Event::WithdrawalRequested {
                refund_due: Some(first_premium()),
            });
            return e;
        }
        Status::Withdrawn => {
            let mut e = history(Status::WithdrawalRequested);
            e.push(Event::RefundConfirmed {
                refund_id: "RF-0001".to_owned(),
                amount: first_premium(),
            });
            e.push(Event::Withdrawn {});
            return e;
        }
        Status::Expired => vec![Event::PlanExpired {}],
    };
    events.extend(steps);
    events
}

pub(super) fn up_to_document_issued() -> Vec<Event> {
    vec![
        plan_saved(),
        Event::DocumentRequested { plan_revision: 1 },
        Event::DocumentIssued {
            document: document(1).reference().into(),
        },
    ]
}

pub(super) fn up_to_proposed() -> Vec<Event> {
    let mut events = up_to_document_issued();
    events.push(proposal_submitted());
    events
}

pub(super) fn up_to_contracted() -> Vec<Event> {
    let mut events = up_to_proposed();
    events.push(paid());
    events
}

pub(super) fn state_in(status: Status) -> Enrollment {
    let state = given(history(status)).state.expect("a started enrollment");
    assert_eq!(state.status, status, "history({status}) leads to {status}");
    state
}

pub(super) fn save_plan() -> Command {
    Command::SavePlan {
        id: enrollment_id(),
        customer_no: CUSTOMER,
        plan: term_plan().into(),
        now: now(),
        expires_at: plan_expires_at(),
    }
}

pub(super) fn resave_plan(plan: PlanTerms) -> Command {
    Command::ResavePlan {
        plan: plan.into(),
        now: now(),
        expires_at: resaved_expires_at(),
    }
}

pub(super) fn request_document() -> Command {
    Command::RequestDocument { now: now() }
}

pub(super) fn issue_document(plan_revision: u32) -> Command {
    Command::IssueDocument {
        document: document(plan_revision).into(),
        now: now(),
    }
}

pub(super) fn submit_proposal() -> Command {
    Command::SubmitProposal {
        method: PaymentMethod::Card,
        now: now(),
        withdrawal_deadline: withdrawal_deadline(),
    }
}

pub(super) fn record_payment_succeeded() -> Command {
    Command::RecordPaymentSucceeded {
        payment_id: "PAY-0001".to_owned(),
        amount: first_premium(),
        contract_no: "K-2026-000001".to_owned(),
        now: now(),
    }
}

pub(super) fn record_payment_failed() -> Command {
    Command::RecordPaymentFailed {
        failure: declined(),
        now: now(),
    }
}

pub(super) fn retry_payment() -> Command {
    Command::RetryPayment { now: now() }
}

pub(super) fn request_withdrawal() -> Command {
    Command::RequestWithdrawal { now: now() }
}

pub(super) fn confirm_refund() -> Command {
    Command::ConfirmRefund {
        refund_id: "RF-0001".to_owned(),
        now: now(),
    }
}

pub(super) fn expire_plan() -> Command {
    Command::ExpirePlan {
        now: plan_expires_at(),
    }
}

/// One of every command, each as it would succeed where it is allowed.
pub(super) fn every_command() -> Vec<Command> {
    vec![
        save_plan(),
        resave_plan(endowment_plan()),
        request_document(),
        issue_document(1),
        submit_proposal(),
        record_payment_succeeded(),
        record_payment_failed(),
        retry_payment(),
        request_withdrawal(),
        confirm_refund(),
        expire_plan(),
    ]
}

/// The same command at another time.
pub(super) fn at(mut command: Command, when: DateTime<Utc>) -> Command {
    match &mut command {
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
        | Command::ExpirePlan { now } => *now = when,
    }
    command
}
