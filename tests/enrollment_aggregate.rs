//! The enrollment aggregate (가입) as the business tells it: given what happened, when a
//! customer (or a timer, or the payment gateway) asks for something, then these events
//! happen, or this refusal. One test per arrow of the lifecycle, every illegal
//! transition, the event contract (names, JSON) and the snapshot codec.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use ezenroll::domain::catalog::Catalog;
use ezenroll::domain::customer::{BirthDate, Gender, Insured};
use ezenroll::domain::enrollment::{
    Command, CustomerNo, DomainError, Enrollment, EnrollmentId, Event, PaymentFailure,
    PaymentMethod, PlanTerms, ProductDocument, Status, apply, handle, replay,
};
use ezenroll::domain::money::Won;
use ezenroll::domain::period::{CoveragePeriod, PaymentCycle, Years};
use ezenroll::domain::premium::QuoteInput;
use ezenroll::store::StoreError;
use ezenroll::store::codec::{
    decode_document, decode_snapshot, decode_stored, encode_document, encode_snapshot,
    needs_old_document,
};
use proptest::prelude::*;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::LazyLock;

#[path = "common/old_formats.rs"]
mod old_formats;

// ---------------------------------------------------------------------------------------
// Given / when / then (after cqrs-es's TestFramework)
// ---------------------------------------------------------------------------------------

/// What happened before: the given events folded with `apply`, one minute apart from
/// [`saved_at`], as the store would have replayed them.
struct Given {
    state: Option<Enrollment>,
}

fn given(events: Vec<Event>) -> Given {
    Given {
        state: fold(None, &events, |i| {
            saved_at() + Duration::minutes(i64::from(i))
        }),
    }
}

impl Given {
    fn when(self, command: Command) -> Then {
        let result = handle(self.state.as_ref(), &command);
        Then {
            state: self.state,
            command,
            result,
        }
    }
}

struct Then {
    state: Option<Enrollment>,
    command: Command,
    result: Result<Vec<Event>, DomainError>,
}

impl Then {
    /// Asserts the decision and returns the state after its events (applied at the
    /// command's `now`), for what a test wants to check next.
    #[track_caller]
    fn then_expect_events(self, expected: Vec<Event>) -> Enrollment {
        let events = match self.result {
            Ok(events) => events,
            Err(e) => panic!("{} was refused: {e:?}", self.command.name()),
        };
        assert_eq!(events, expected, "events of {}", self.command.name());
        let at = now_of(&self.command);
        fold(self.state, &events, |_| at).expect("the events apply to the state")
    }

    #[track_caller]
    fn then_expect_error(self, expected: DomainError) {
        match self.result {
            Ok(events) => panic!(
                "{} was accepted with {events:?}, expected {expected:?}",
                self.command.name()
            ),
            Err(e) => assert_eq!(e, expected, "refusal of {}", self.command.name()),
        }
    }
}

fn fold(
    mut state: Option<Enrollment>,
    events: &[Event],
    at: impl Fn(u32) -> DateTime<Utc>,
) -> Option<Enrollment> {
    for (i, event) in (0u32..).zip(events) {
        state = Some(apply(state, enrollment_id(), event, at(i))?);
    }
    state
}

// ---------------------------------------------------------------------------------------
// The fixed world of these tests: one enrollment, one customer, one calendar
// ---------------------------------------------------------------------------------------

fn enrollment_id() -> EnrollmentId {
    EnrollmentId::parse("0193613a-5c00-7000-8000-00000000e001").expect("a UUID")
}

const CUSTOMER: CustomerNo = CustomerNo::new(123_456_789);

fn time(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .expect("an RFC 3339 time")
        .with_timezone(&Utc)
}

/// When the given history starts (the first plan was saved).
fn saved_at() -> DateTime<Utc> {
    time("2026-11-24T09:00:00Z")
}

/// When the commands under test arrive: a day later.
fn now() -> DateTime<Utc> {
    time("2026-11-25T10:00:00Z")
}

/// The first plan is valid for 30 days.
fn plan_expires_at() -> DateTime<Utc> {
    time("2026-12-24T09:00:00Z")
}

/// A re-saved plan gets a new 30-day window from the re-save.
fn resaved_expires_at() -> DateTime<Utc> {
    now() + Duration::days(30)
}

/// 청약철회 is possible for 30 days from the proposal.
fn withdrawal_deadline() -> DateTime<Utc> {
    time("2026-12-25T10:00:00Z")
}

// ---------------------------------------------------------------------------------------
// Realistic plans, priced by the demo catalog
// ---------------------------------------------------------------------------------------

static CATALOG: LazyLock<Catalog> = LazyLock::new(Catalog::demo);

fn quote_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 24).expect("a date")
}

/// Prices a plan on the latest version of a demo product for someone exactly `age`.
fn priced(
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

fn years(n: u64) -> CoveragePeriod {
    CoveragePeriod::Years(Years::new(n).expect("years"))
}

/// 이지 정기보험: a man of 40, 1억 for 20 years, paid monthly for 20 years.
fn term_plan() -> PlanTerms {
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
fn endowment_plan() -> PlanTerms {
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
fn whole_life_plan() -> PlanTerms {
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
fn first_premium() -> Won {
    term_plan().quote.installment
}

// ---------------------------------------------------------------------------------------
// Events and histories
// ---------------------------------------------------------------------------------------

/// SHA-256 of [`document`]'s body, as `sha256sum` prints it.
const SAMPLE_BODY_SHA256: &str = "1204b11591a9f0a8c511428450c9731310a8c124e9361e5c1eabdeb598d265b2";

fn document(plan_revision: u32) -> ProductDocument {
    ProductDocument {
        document_no: format!("D-2026-{plan_revision:06}"),
        plan_revision,
        issued_at: now(),
        title: "이지 정기보험 상품설명서".to_owned(),
        body: "보험기간 20년, 납입기간 20년, 월납".to_owned(),
    }
}

fn plan_saved() -> Event {
    Event::PlanSaved {
        customer_no: CUSTOMER,
        plan: term_plan().into(),
        expires_at: plan_expires_at(),
    }
}

fn proposal_submitted() -> Event {
    Event::ProposalSubmitted {
        method: PaymentMethod::Card,
        amount: first_premium(),
        withdrawal_deadline: withdrawal_deadline(),
    }
}

fn paid() -> Event {
    Event::PaymentSucceeded {
        payment_id: "PAY-0001".to_owned(),
        amount: first_premium(),
        contract_no: "K-2026-000001".to_owned(),
    }
}

fn declined() -> PaymentFailure {
    PaymentFailure::Declined {
        reason: "한도 초과".to_owned(),
    }
}

/// A history that leaves the enrollment in `status`, the way a customer gets there.
fn history(status: Status) -> Vec<Event> {
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

fn up_to_document_issued() -> Vec<Event> {
    vec![
        plan_saved(),
        Event::DocumentRequested { plan_revision: 1 },
        Event::DocumentIssued {
            document: document(1).reference().into(),
        },
    ]
}

fn up_to_proposed() -> Vec<Event> {
    let mut events = up_to_document_issued();
    events.push(proposal_submitted());
    events
}

fn up_to_contracted() -> Vec<Event> {
    let mut events = up_to_proposed();
    events.push(paid());
    events
}

fn state_in(status: Status) -> Enrollment {
    let state = given(history(status)).state.expect("a started enrollment");
    assert_eq!(state.status, status, "history({status}) leads to {status}");
    state
}

// ---------------------------------------------------------------------------------------
// Commands, all at the fixed `now` (the expiry timer fires at the expiry)
// ---------------------------------------------------------------------------------------

fn save_plan() -> Command {
    Command::SavePlan {
        id: enrollment_id(),
        customer_no: CUSTOMER,
        plan: term_plan().into(),
        now: now(),
        expires_at: plan_expires_at(),
    }
}

fn resave_plan(plan: PlanTerms) -> Command {
    Command::ResavePlan {
        plan: plan.into(),
        now: now(),
        expires_at: resaved_expires_at(),
    }
}

fn request_document() -> Command {
    Command::RequestDocument { now: now() }
}

fn issue_document(plan_revision: u32) -> Command {
    Command::IssueDocument {
        document: document(plan_revision).into(),
        now: now(),
    }
}

fn submit_proposal() -> Command {
    Command::SubmitProposal {
        method: PaymentMethod::Card,
        now: now(),
        withdrawal_deadline: withdrawal_deadline(),
    }
}

fn record_payment_succeeded() -> Command {
    Command::RecordPaymentSucceeded {
        payment_id: "PAY-0001".to_owned(),
        amount: first_premium(),
        contract_no: "K-2026-000001".to_owned(),
        now: now(),
    }
}

fn record_payment_failed() -> Command {
    Command::RecordPaymentFailed {
        failure: declined(),
        now: now(),
    }
}

fn retry_payment() -> Command {
    Command::RetryPayment { now: now() }
}

fn request_withdrawal() -> Command {
    Command::RequestWithdrawal { now: now() }
}

fn confirm_refund() -> Command {
    Command::ConfirmRefund {
        refund_id: "RF-0001".to_owned(),
        now: now(),
    }
}

fn expire_plan() -> Command {
    Command::ExpirePlan {
        now: plan_expires_at(),
    }
}

/// One of every command, each as it would succeed where it is allowed.
fn every_command() -> Vec<Command> {
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
fn at(mut command: Command, when: DateTime<Utc>) -> Command {
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

fn now_of(command: &Command) -> DateTime<Utc> {
    match command {
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

// ---------------------------------------------------------------------------------------
// The plans themselves
// ---------------------------------------------------------------------------------------

#[test]
fn the_demo_plans_are_priced_and_pin_their_product_version() {
    let term = term_plan();
    assert_eq!(term.product_code, "EZ-TERM");
    assert_eq!(term.product_version, 1);
    assert_eq!(term.product_name, "이지 정기보험");
    assert_eq!(term.quote.insurance_age.years(), 40);
    assert!(term.quote.installment >= Won::new(10_000), "{term:?}");
    assert_eq!(
        term.quote.annualized_premium,
        Won::new(term.quote.installment.get() * 12)
    );
    // Same insured, shorter cover that also pays at maturity: dearer per won insured.
    let endowment = endowment_plan();
    assert_eq!(endowment.product_code, "EZ-ENDOW");
    assert!(endowment.quote.installment > term.quote.installment);
    assert_eq!(whole_life_plan().coverage_period, CoveragePeriod::WholeLife);
}

// ---------------------------------------------------------------------------------------
// Every arrow of the lifecycle
// ---------------------------------------------------------------------------------------

#[test]
fn saving_a_plan_starts_an_enrollment_in_planned() {
    let state = given(vec![])
        .when(save_plan())
        .then_expect_events(vec![plan_saved()]);
    assert_eq!(state.id, enrollment_id());
    assert_eq!(state.customer_no, CUSTOMER);
    assert_eq!(state.status, Status::Planned);
    assert_eq!(*state.plan, term_plan());
    assert_eq!(state.plan_revision, 1);
    assert_eq!(state.plan_expires_at, plan_expires_at());
    assert_eq!(state.created_at, now());
}

#[test]
fn a_saved_plan_cannot_be_saved_as_new_again() {
    given(history(Status::Planned))
        .when(save_plan())
        .then_expect_error(DomainError::AlreadyStarted);
}

#[test]
fn re_saving_a_planned_plan_takes_the_new_quote_as_the_next_revision() {
    let state = given(history(Status::Planned))
        .when(resave_plan(endowment_plan()))
        .then_expect_events(vec![Event::PlanResaved {
            plan: endowment_plan().into(),
            revision: 2,
            expires_at: resaved_expires_at(),
        }]);
    assert_eq!(state.status, Status::Planned);
    assert_eq!(*state.plan, endowment_plan());
    assert_eq!(state.plan_revision, 2);
    assert_eq!(state.plan_expires_at, resaved_expires_at());
    assert_eq!(
        state.created_at,
        saved_at(),
        "a re-save is the same enrollment"
    );
}

#[test]
fn re_saving_while_the_document_is_being_issued_returns_to_planned() {
    let state = given(history(Status::DocumentRequested))
        .when(resave_plan(endowment_plan()))
        .then_expect_events(vec![Event::PlanResaved {
            plan: endowment_plan().into(),
            revision: 2,
            expires_at: resaved_expires_at(),
        }]);
    assert_eq!(state.status, Status::Planned);
    assert_eq!(state.plan_revision, 2);
    assert_eq!(state.document, None);
}

#[test]
fn re_saving_after_the_document_was_issued_drops_the_document() {
    let before = state_in(Status::DocumentIssued);
    assert_eq!(before.document.as_deref(), Some(&document(1).reference()));
    let state = given(history(Status::DocumentIssued))
        .when(resave_plan(endowment_plan()))
        .then_expect_events(vec![Event::PlanResaved {
            plan: endowment_plan().into(),
            revision: 2,
            expires_at: resaved_expires_at(),
        }]);
    assert_eq!(state.status, Status::Planned);
    assert_eq!(state.plan_revision, 2);
    assert_eq!(state.document, None, "the old document shows the old terms");
}

#[test]
fn every_re_save_is_one_revision_more() {
    let mut events = history(Status::Planned);
    for revision in 2..=5 {
        let state = given(events.clone())
            .when(resave_plan(term_plan()))
            .then_expect_events(vec![Event::PlanResaved {
                plan: term_plan().into(),
                revision,
                expires_at: resaved_expires_at(),
            }]);
        assert_eq!(state.plan_revision, revision);
        events.push(Event::PlanResaved {
            plan: term_plan().into(),
            revision,
            expires_at: resaved_expires_at(),
        });
    }
}

#[test]
fn requesting_the_document_of_a_planned_plan_names_its_revision() {
    let state = given(history(Status::Planned))
        .when(request_document())
        .then_expect_events(vec![Event::DocumentRequested { plan_revision: 1 }]);
    assert_eq!(state.status, Status::DocumentRequested);

    let mut resaved = history(Status::Planned);
    resaved.push(Event::PlanResaved {
        plan: endowment_plan().into(),
        revision: 2,
        expires_at: resaved_expires_at(),
    });
    given(resaved)
        .when(request_document())
        .then_expect_events(vec![Event::DocumentRequested { plan_revision: 2 }]);
}

#[test]
fn the_issued_document_is_kept_with_the_enrollment() {
    let state = given(history(Status::DocumentRequested))
        .when(issue_document(1))
        .then_expect_events(vec![Event::DocumentIssued {
            document: document(1).reference().into(),
        }]);
    assert_eq!(state.status, Status::DocumentIssued);
    assert_eq!(state.document.as_deref(), Some(&document(1).reference()));
}

#[test]
fn a_document_for_an_older_plan_revision_is_stale() {
    // Requested for revision 1, re-saved, requested again for revision 2: the issuer's
    // late answer for revision 1 must not pass for the new terms.
    let mut events = history(Status::DocumentRequested);
    events.push(Event::PlanResaved {
        plan: endowment_plan().into(),
        revision: 2,
        expires_at: resaved_expires_at(),
    });
    events.push(Event::DocumentRequested { plan_revision: 2 });
    given(events.clone())
        .when(issue_document(1))
        .then_expect_error(DomainError::StaleDocument {
            document_revision: 1,
            current_revision: 2,
        });
    given(events)
        .when(issue_document(2))
        .then_expect_events(vec![Event::DocumentIssued {
            document: document(2).reference().into(),
        }]);
}

#[test]
fn submitting_a_proposal_charges_the_plans_installment() {
    let state = given(history(Status::DocumentIssued))
        .when(submit_proposal())
        .then_expect_events(vec![Event::ProposalSubmitted {
            method: PaymentMethod::Card,
            amount: term_plan().quote.installment,
            withdrawal_deadline: withdrawal_deadline(),
        }]);
    assert_eq!(state.status, Status::Proposed);
    assert_eq!(state.payment_method, Some(PaymentMethod::Card));
    assert_eq!(state.proposed_at, Some(now()));
    assert_eq!(state.withdrawal_deadline, Some(withdrawal_deadline()));
    assert_eq!(state.payment_attempts, 1);
    assert_eq!(state.contract_no, None, "a proposal is not a contract yet");
}

#[test]
fn the_proposal_charges_the_re_saved_quote_not_the_first() {
    let events = vec![
        plan_saved(),
        Event::PlanResaved {
            plan: endowment_plan().into(),
            revision: 2,
            expires_at: resaved_expires_at(),
        },
        Event::DocumentRequested { plan_revision: 2 },
        Event::DocumentIssued {
            document: document(2).reference().into(),
        },
    ];
    given(events)
        .when(submit_proposal())
        .then_expect_events(vec![Event::ProposalSubmitted {
            method: PaymentMethod::Card,
            amount: endowment_plan().quote.installment,
            withdrawal_deadline: withdrawal_deadline(),
        }]);
}

#[test]
fn a_paid_first_premium_makes_a_contract() {
    let state = given(history(Status::Proposed))
        .when(record_payment_succeeded())
        .then_expect_events(vec![paid()]);
    assert_eq!(state.status, Status::Contracted);
    assert_eq!(state.contract_no.as_deref(), Some("K-2026-000001"));
    assert_eq!(state.payment_id.as_deref(), Some("PAY-0001"));
    assert_eq!(state.paid_amount, Some(first_premium()));
}

#[test]
fn a_declined_payment_leaves_the_proposal_unpaid() {
    let state = given(history(Status::Proposed))
        .when(record_payment_failed())
        .then_expect_events(vec![Event::PaymentFailed {
            failure: declined(),
        }]);
    assert_eq!(state.status, Status::PaymentFailed);
    assert_eq!(state.last_payment_failure, Some(declined()));
    assert_eq!(state.contract_no, None);
    assert_eq!(state.paid_amount, None);
}

#[test]
fn retrying_a_failed_payment_is_the_next_attempt_of_the_proposal() {
    let state = given(history(Status::PaymentFailed))
        .when(retry_payment())
        .then_expect_events(vec![Event::PaymentRetried { attempt: 2 }]);
    assert_eq!(state.status, Status::Proposed);
    assert_eq!(state.payment_attempts, 2);

    // Declined again, retried again: the third attempt, and it may still be paid.
    let mut events = history(Status::PaymentFailed);
    events.push(Event::PaymentRetried { attempt: 2 });
    events.push(Event::PaymentFailed {
        failure: PaymentFailure::Declined {
            reason: "잔액 부족".to_owned(),
        },
    });
    given(events.clone())
        .when(retry_payment())
        .then_expect_events(vec![Event::PaymentRetried { attempt: 3 }]);
    events.push(Event::PaymentRetried { attempt: 3 });
    let state = given(events)
        .when(record_payment_succeeded())
        .then_expect_events(vec![paid()]);
    assert_eq!(state.status, Status::Contracted);
    assert_eq!(state.payment_attempts, 3);
}

#[test]
fn withdrawing_a_contract_waits_for_the_refund_of_the_paid_premium() {
    let state = given(history(Status::Contracted))
        .when(request_withdrawal())
        .then_expect_events(vec![Event::WithdrawalRequested {
            refund_due: Some(first_premium()),
        }]);
    assert_eq!(state.status, Status::WithdrawalRequested);
    assert_eq!(state.refund_due, Some(first_premium()));
    assert_eq!(state.contract_no.as_deref(), Some("K-2026-000001"));
}

#[test]
fn a_confirmed_refund_completes_the_withdrawal() {
    let state = given(history(Status::WithdrawalRequested))
        .when(confirm_refund())
        .then_expect_events(vec![
            Event::RefundConfirmed {
                refund_id: "RF-0001".to_owned(),
                amount: first_premium(),
            },
            Event::Withdrawn {},
        ]);
    assert_eq!(state.status, Status::Withdrawn);
    assert_eq!(state.refund_id.as_deref(), Some("RF-0001"));
    assert_eq!(state.contract_no.as_deref(), Some("K-2026-000001"));
}

#[test]
fn withdrawing_an_unpaid_proposal_needs_no_refund() {
    for status in [Status::Proposed, Status::PaymentFailed] {
        let state = given(history(status))
            .when(request_withdrawal())
            .then_expect_events(vec![
                Event::WithdrawalRequested { refund_due: None },
                Event::Withdrawn {},
            ]);
        assert_eq!(state.status, Status::Withdrawn, "from {status}");
        assert_eq!(state.refund_due, None, "from {status}");
        assert_eq!(state.contract_no, None, "from {status}");
    }
}

#[test]
fn a_contract_can_be_withdrawn_up_to_the_deadline_and_not_after() {
    given(history(Status::Contracted))
        .when(at(request_withdrawal(), withdrawal_deadline()))
        .then_expect_events(vec![Event::WithdrawalRequested {
            refund_due: Some(first_premium()),
        }]);
    given(history(Status::Contracted))
        .when(at(
            request_withdrawal(),
            withdrawal_deadline() + Duration::seconds(1),
        ))
        .then_expect_error(DomainError::WithdrawalPeriodOver {
            deadline: withdrawal_deadline(),
        });
}

#[test]
fn a_plan_expires_from_every_state_before_the_proposal() {
    for status in [
        Status::Planned,
        Status::DocumentRequested,
        Status::DocumentIssued,
    ] {
        for when in [plan_expires_at(), plan_expires_at() + Duration::days(3)] {
            let state = given(history(status))
                .when(at(expire_plan(), when))
                .then_expect_events(vec![Event::PlanExpired {}]);
            assert_eq!(state.status, Status::Expired, "from {status} at {when}");
        }
    }
}

#[test]
fn a_plan_does_not_expire_before_its_time() {
    for status in [
        Status::Planned,
        Status::DocumentRequested,
        Status::DocumentIssued,
    ] {
        given(history(status))
            .when(at(expire_plan(), plan_expires_at() - Duration::seconds(1)))
            .then_expect_error(DomainError::NotExpired {
                expires_at: plan_expires_at(),
            });
    }
}

#[test]
fn a_re_save_moves_the_expiry_so_the_old_timer_finds_nothing_to_expire() {
    let mut events = history(Status::Planned);
    events.push(Event::PlanResaved {
        plan: endowment_plan().into(),
        revision: 2,
        expires_at: resaved_expires_at(),
    });
    assert!(plan_expires_at() < resaved_expires_at());
    given(events.clone())
        .when(at(expire_plan(), plan_expires_at()))
        .then_expect_error(DomainError::NotExpired {
            expires_at: resaved_expires_at(),
        });
    given(events)
        .when(at(expire_plan(), resaved_expires_at()))
        .then_expect_events(vec![Event::PlanExpired {}]);
}

#[test]
fn an_expired_plan_can_no_longer_be_used_even_before_the_timer_fires() {
    let expired = DomainError::PlanExpired {
        expires_at: plan_expires_at(),
    };
    for when in [plan_expires_at(), plan_expires_at() + Duration::hours(1)] {
        given(history(Status::Planned))
            .when(at(request_document(), when))
            .then_expect_error(expired.clone());
        for status in [
            Status::Planned,
            Status::DocumentRequested,
            Status::DocumentIssued,
        ] {
            given(history(status))
                .when(at(resave_plan(endowment_plan()), when))
                .then_expect_error(expired.clone());
        }
        given(history(Status::DocumentIssued))
            .when(at(submit_proposal(), when))
            .then_expect_error(expired.clone());
    }
    // One second earlier all three still work.
    let just_before = plan_expires_at() - Duration::seconds(1);
    given(history(Status::Planned))
        .when(at(request_document(), just_before))
        .then_expect_events(vec![Event::DocumentRequested { plan_revision: 1 }]);
    given(history(Status::DocumentIssued))
        .when(at(submit_proposal(), just_before))
        .then_expect_events(vec![proposal_submitted()]);
}

#[test]
fn a_proposal_no_longer_expires_with_its_plan() {
    // Past the plan's expiry, a proposal's payment and withdrawal go on as usual.
    let late = plan_expires_at() + Duration::hours(1);
    given(history(Status::Proposed))
        .when(at(record_payment_succeeded(), late))
        .then_expect_events(vec![paid()]);
    given(history(Status::PaymentFailed))
        .when(at(retry_payment(), late))
        .then_expect_events(vec![Event::PaymentRetried { attempt: 2 }]);
}

// ---------------------------------------------------------------------------------------
// Illegal transitions
// ---------------------------------------------------------------------------------------

/// The lifecycle diagram as a table: the statuses each command is allowed in.
fn allowed_in(command: &Command) -> &'static [Status] {
    use Status::*;
    match command {
        Command::SavePlan { .. } => &[],
        Command::ResavePlan { .. } => &[Planned, DocumentRequested, DocumentIssued],
        Command::RequestDocument { .. } => &[Planned],
        Command::IssueDocument { .. } => &[DocumentRequested],
        Command::SubmitProposal { .. } => &[DocumentIssued],
        Command::RecordPaymentSucceeded { .. } => &[Proposed],
        Command::RecordPaymentFailed { .. } => &[Proposed],
        Command::RetryPayment { .. } => &[PaymentFailed],
        Command::RequestWithdrawal { .. } => &[Contracted, Proposed, PaymentFailed],
        Command::ConfirmRefund { .. } => &[WithdrawalRequested],
        Command::ExpirePlan { .. } => &[Planned, DocumentRequested, DocumentIssued],
    }
}

#[test]
fn every_command_outside_its_states_is_an_illegal_transition_naming_the_status() {
    let mut refused = 0;
    let mut accepted = 0;
    for status in Status::ALL {
        for command in every_command() {
            let result = handle(Some(&state_in(status)), &command);
            let name = command.name();
            if matches!(command, Command::SavePlan { .. }) {
                assert_eq!(result, Err(DomainError::AlreadyStarted), "in {status}");
                refused += 1;
            } else if allowed_in(&command).contains(&status) {
                assert!(result.is_ok(), "{name} in {status}: {result:?}");
                accepted += 1;
            } else {
                let err = result.expect_err(name);
                assert_eq!(
                    err,
                    DomainError::IllegalTransition {
                        command: name,
                        status
                    },
                    "{name} in {status}"
                );
                assert_eq!(err.status(), Some(status));
                assert_eq!(
                    err.to_string(),
                    format!("{name} is not allowed while the enrollment is {status}")
                );
                refused += 1;
            }
        }
    }
    assert_eq!(accepted, 16, "the arrows of the diagram");
    assert_eq!(refused + accepted, Status::ALL.len() * 11);
}

#[test]
fn before_a_plan_is_saved_nothing_else_is_possible() {
    for command in every_command() {
        if matches!(command, Command::SavePlan { .. }) {
            continue;
        }
        let name = command.name();
        given(vec![])
            .when(command)
            .then_expect_error(DomainError::NotStarted { command: name });
    }
}

#[test]
fn a_refund_without_a_paid_premium_is_not_confirmed() {
    // A withdrawal that owed nothing has nothing to confirm, even if it stopped halfway.
    let mut events = history(Status::Proposed);
    events.push(Event::WithdrawalRequested { refund_due: None });
    given(events)
        .when(confirm_refund())
        .then_expect_error(DomainError::IllegalTransition {
            command: "ConfirmRefund",
            status: Status::WithdrawalRequested,
        });
}

#[test]
fn an_unpaid_proposal_never_becomes_a_contract() {
    let mut states: Vec<Option<Enrollment>> = vec![None];
    states.extend(Status::ALL.map(|s| Some(state_in(s))));
    for state in &states {
        for command in every_command() {
            let from = state.as_ref().map(|s| s.status);
            let Ok(events) = handle(state.as_ref(), &command) else {
                continue;
            };
            let after = fold(state.clone(), &events, |_| now()).expect("applies");
            let pays = events
                .iter()
                .any(|e| matches!(e, Event::PaymentSucceeded { .. }));
            let is_payment = matches!(command, Command::RecordPaymentSucceeded { .. });
            assert_eq!(
                pays,
                is_payment && from == Some(Status::Proposed),
                "{} from {from:?} gave {events:?}",
                command.name()
            );
            if after.status == Status::Contracted && from != Some(Status::Contracted) {
                assert!(pays, "{} from {from:?} made a contract", command.name());
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Any sequence of commands keeps the invariants
// ---------------------------------------------------------------------------------------

/// A command by number; `late` moves it past every deadline. Kind 11 is the document
/// for the revision the plan is at now (the issuer's normal answer).
fn command_for(kind: usize, late: bool, state: Option<&Enrollment>) -> Command {
    let command = match kind {
        11 => issue_document(state.map_or(1, |s| s.plan_revision)),
        k => every_command().swap_remove(k % 11),
    };
    if late {
        at(command, withdrawal_deadline() + Duration::days(1))
    } else {
        command
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_sequence_of_commands_keeps_the_invariants(
        steps in prop::collection::vec((0usize..12, prop::bool::weighted(0.1)), 0..30)
    ) {
        let mut state = fold(None, &[plan_saved()], |_| saved_at());
        let mut log: Vec<(Event, DateTime<Utc>)> = vec![(plan_saved(), saved_at())];
        for (kind, late) in steps {
            let command = command_for(kind, late, state.as_ref());
            let before = state.as_ref().map(|s| s.status);
            let Ok(events) = handle(state.as_ref(), &command) else { continue };
            prop_assert!(!events.is_empty(), "{} accepted with no events", command.name());
            for event in events {
                let status = state.as_ref().map(|s| s.status);
                let next = apply(state.clone(), enrollment_id(), &event, now_of(&command))
                    .expect("an accepted event applies");
                prop_assert_eq!(next.status, event.status_after(status));
                if let Event::PaymentSucceeded { .. } = event {
                    prop_assert_eq!(before, Some(Status::Proposed));
                }
                log.push((event, now_of(&command)));
                state = Some(next);
            }
            let s = state.as_ref().expect("started");
            // A contract exists exactly when the first premium was paid.
            let paid = log.iter().any(|(e, _)| matches!(e, Event::PaymentSucceeded { .. }));
            prop_assert_eq!(s.contract_no.is_some(), paid);
            prop_assert_eq!(s.paid_amount.is_some(), paid);
            // A refund is owed (and confirmed) only for a premium that was paid.
            if s.status == Status::Withdrawn {
                prop_assert_eq!(s.refund_due, s.paid_amount);
                prop_assert_eq!(s.refund_id.is_some(), paid);
            }
            if s.status == Status::Expired {
                prop_assert_eq!(s.proposed_at, None);
            }
            if let Some(doc) = &s.document {
                prop_assert_eq!(doc.plan_revision, s.plan_revision);
            }
        }
        let replayed = replay(enrollment_id(), log.iter().map(|(e, at)| (e, *at)));
        prop_assert_eq!(replayed, state);
    }
}

// ---------------------------------------------------------------------------------------
// Replay and the event contract
// ---------------------------------------------------------------------------------------

#[test]
fn replay_is_folding_one_event_after_another() {
    for status in Status::ALL {
        let events = history(status);
        let times: Vec<DateTime<Utc>> = (0..events.len())
            .map(|i| saved_at() + Duration::minutes(i as i64))
            .collect();
        let mut folded = None;
        for (event, at) in events.iter().zip(&times) {
            folded = apply(folded, enrollment_id(), event, *at);
            assert!(folded.is_some(), "{} applies", event.event_type());
        }
        let replayed = replay(enrollment_id(), events.iter().zip(times.iter().copied()));
        assert_eq!(replayed, folded, "{status}");
        let state = replayed.expect("started");
        assert_eq!(state.created_at, saved_at());
        assert_eq!(state.updated_at, *times.last().expect("one event at least"));
    }
}

#[test]
fn a_history_that_does_not_start_with_a_saved_plan_replays_to_nothing() {
    assert_eq!(replay(enrollment_id(), []), None);
    let orphan = [Event::DocumentRequested { plan_revision: 1 }];
    assert_eq!(
        replay(enrollment_id(), orphan.iter().map(|e| (e, now()))),
        None
    );
    let mut tail = history(Status::Contracted);
    tail.remove(0);
    assert_eq!(
        replay(enrollment_id(), tail.iter().map(|e| (e, now()))),
        None
    );
}

/// One of every event; the match makes a new variant fail to compile here until it is
/// added to the contract tests.
fn every_event() -> Vec<Event> {
    let events = vec![
        plan_saved(),
        Event::PlanResaved {
            plan: whole_life_plan().into(),
            revision: 2,
            expires_at: resaved_expires_at(),
        },
        Event::DocumentRequested { plan_revision: 2 },
        Event::DocumentIssued {
            document: document(2).reference().into(),
        },
        proposal_submitted(),
        paid(),
        Event::PaymentFailed {
            failure: declined(),
        },
        Event::PaymentRetried { attempt: 2 },
        Event::WithdrawalRequested {
            refund_due: Some(first_premium()),
        },
        Event::RefundConfirmed {
            refund_id: "RF-0001".to_owned(),
            amount: first_premium(),
        },
        Event::Withdrawn {},
        Event::PlanExpired {},
    ];
    for event in &events {
        match event {
            Event::PlanSaved { .. }
            | Event::PlanResaved { .. }
            | Event::DocumentRequested { .. }
            | Event::DocumentIssued { .. }
            | Event::ProposalSubmitted { .. }
            | Event::PaymentSucceeded { .. }
            | Event::PaymentFailed { .. }
            | Event::PaymentRetried { .. }
            | Event::WithdrawalRequested { .. }
            | Event::RefundConfirmed { .. }
            | Event::Withdrawn {}
            | Event::PlanExpired {} => {}
        }
    }
    events
}

#[test]
fn event_names_are_stable_and_unique() {
    let names: Vec<&str> = every_event().iter().map(Event::event_type).collect();
    assert_eq!(
        names,
        [
            "PlanSaved",
            "PlanResaved",
            "DocumentRequested",
            "DocumentIssued",
            "ProposalSubmitted",
            "PaymentSucceeded",
            "PaymentFailed",
            "PaymentRetried",
            "WithdrawalRequested",
            "RefundConfirmed",
            "Withdrawn",
            "PlanExpired",
        ]
    );
    assert_eq!(names.iter().collect::<HashSet<_>>().len(), names.len());
    let versions: Vec<(&str, u16)> = every_event()
        .iter()
        .map(|e| (e.event_type(), e.event_version()))
        .filter(|&(_, version)| version != 1)
        .collect();
    assert_eq!(
        versions,
        [("DocumentIssued", 2)],
        "schema 2: the document by reference"
    );
}

fn keys_not_camel_case(value: &Value, path: &str, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                let camel = key.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                    && key.chars().all(|c| c.is_ascii_alphanumeric());
                if !camel {
                    out.push(format!("{path}.{key}"));
                }
                keys_not_camel_case(inner, &format!("{path}.{key}"), out);
            }
        }
        Value::Array(items) => {
            for (i, inner) in items.iter().enumerate() {
                keys_not_camel_case(inner, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn events_are_json_type_and_camel_case_data_and_round_trip() {
    for event in every_event() {
        let value = serde_json::to_value(&event).expect("serializes");
        let object = value.as_object().expect("an object");
        let mut keys: Vec<&String> = object.keys().collect();
        keys.sort();
        assert_eq!(keys, ["data", "type"], "{value}");
        assert_eq!(value["type"], event.event_type());
        assert!(value["data"].is_object(), "{value}");
        let mut bad = Vec::new();
        keys_not_camel_case(&value["data"], "data", &mut bad);
        assert!(
            bad.is_empty(),
            "{}: not camelCase: {bad:?}",
            event.event_type()
        );

        let text = serde_json::to_string(&event).expect("serializes");
        let back: Event = serde_json::from_str(&text).expect("deserializes");
        assert_eq!(back, event);
    }
}

#[test]
fn event_json_reads_as_documented() {
    let json_of = |e: &Event| serde_json::to_value(e).expect("serializes");
    assert_eq!(
        json_of(&Event::DocumentRequested { plan_revision: 2 }),
        json!({"type": "DocumentRequested", "data": {"planRevision": 2}})
    );
    assert_eq!(
        json_of(&Event::WithdrawalRequested { refund_due: None }),
        json!({"type": "WithdrawalRequested", "data": {"refundDue": null}})
    );
    assert_eq!(
        json_of(&Event::Withdrawn {}),
        json!({"type": "Withdrawn", "data": {}})
    );
    assert_eq!(
        json_of(&paid()),
        json!({"type": "PaymentSucceeded", "data": {
            "paymentId": "PAY-0001",
            "amount": first_premium().get(),
            "contractNo": "K-2026-000001",
        }})
    );
    assert_eq!(
        json_of(&proposal_submitted())["data"],
        json!({
            "method": "card",
            "amount": first_premium().get(),
            "withdrawalDeadline": "2026-12-25T10:00:00Z",
        })
    );
    // DocumentIssued names the document and the SHA-256 of its text, which is not in it.
    let issued = json_of(&Event::DocumentIssued {
        document: document(2).reference().into(),
    });
    assert_eq!(
        issued,
        json!({"type": "DocumentIssued", "data": {"document": {
            "documentNo": "D-2026-000002",
            "planRevision": 2,
            "issuedAt": "2026-11-25T10:00:00Z",
            "title": "이지 정기보험 상품설명서",
            // printf '%s' '보험기간 20년, 납입기간 20년, 월납' | sha256sum
            "bodySha256": SAMPLE_BODY_SHA256,
        }}})
    );
    // A schema-1 event (the whole document in it) still reads, as a reference without a
    // digest.
    let mut old = issued.clone();
    let data = &mut old["data"]["document"];
    data["body"] = json!("보험기간 20년, 납입기간 20년, 월납");
    if let Some(fields) = data.as_object_mut() {
        fields.remove("bodySha256");
    }
    let read: Event = serde_json::from_value(old).expect("a schema-1 event reads");
    let Event::DocumentIssued {
        document: reference,
    } = read
    else {
        panic!("not DocumentIssued: {read:?}");
    };
    assert_eq!(reference.document_no, "D-2026-000002");
    assert_eq!(reference.body_sha256, "");
    assert!(document(2).is_named_by(&reference), "named by number alone");
    // With a digest, a text changed by one character is not the one named.
    let named = document(2).reference();
    let mut changed = document(2);
    changed.body = changed.body.replace("월납", "연납");
    assert!(document(2).is_named_by(&named));
    assert!(!changed.is_named_by(&named), "another text");
    assert!(!document(3).is_named_by(&named), "another document");
    let saved = json_of(&plan_saved());
    assert_eq!(saved["data"]["customerNo"], "C123456789");
    assert_eq!(saved["data"]["plan"]["productCode"], "EZ-TERM");
    assert_eq!(saved["data"]["plan"]["coveragePeriod"], 20);
    assert_eq!(saved["data"]["plan"]["paymentCycle"], "monthly");
    assert_eq!(
        json_of(&Event::PaymentFailed {
            failure: declined()
        })["data"],
        json!({"failure": {"declined": {"reason": "한도 초과"}}})
    );
}

#[test]
fn status_after_agrees_with_apply() {
    let mut histories: Vec<Vec<Event>> = Status::ALL.map(history).to_vec();
    let mut unpaid_withdrawal = history(Status::PaymentFailed);
    unpaid_withdrawal.extend([
        Event::PaymentRetried { attempt: 2 },
        Event::WithdrawalRequested { refund_due: None },
        Event::Withdrawn {},
    ]);
    histories.push(unpaid_withdrawal);
    for events in histories {
        let mut state: Option<Enrollment> = None;
        for event in &events {
            let before = state.as_ref().map(|s| s.status);
            state = apply(state, enrollment_id(), event, now());
            let after = state.as_ref().expect("applies").status;
            assert_eq!(
                event.status_after(before),
                after,
                "{} after {before:?}",
                event.event_type()
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// Snapshots
// ---------------------------------------------------------------------------------------

fn snapshot_key() -> String {
    format!("enrollment:{}", enrollment_id())
}

#[test]
fn a_snapshot_in_every_status_decodes_to_the_same_enrollment() {
    let mut states: Vec<Enrollment> = Status::ALL.map(state_in).to_vec();
    // Whole life (a coverage period without years) and a failure with its reason.
    let mut whole_life = history(Status::PaymentFailed);
    whole_life.insert(
        1,
        Event::PlanResaved {
            plan: whole_life_plan().into(),
            revision: 2,
            expires_at: resaved_expires_at(),
        },
    );
    for event in &mut whole_life {
        if let Event::DocumentRequested { plan_revision } = event {
            *plan_revision = 2;
        }
        if let Event::DocumentIssued { document: d } = event {
            *d = document(2).reference().into();
        }
        if let Event::ProposalSubmitted { amount, .. } = event {
            *amount = whole_life_plan().quote.installment;
        }
    }
    let state = given(whole_life).state.expect("started");
    assert_eq!(state.plan.coverage_period, CoveragePeriod::WholeLife);
    assert_eq!(state.document.as_ref().map(|d| d.plan_revision), Some(2));
    states.push(state);

    for state in states {
        let bytes = encode_snapshot(&state).expect("encodes");
        let back = decode_snapshot(&snapshot_key(), &bytes).expect("decodes");
        assert_eq!(back, state, "{}", state.status);
    }
}

#[track_caller]
fn assert_corrupt(result: Result<Enrollment, StoreError>, what: &str) {
    let err = result.expect_err(what);
    assert!(
        matches!(&err, StoreError::Corrupt { key, reason } if *key == snapshot_key() && !reason.is_empty()),
        "{what}: expected Corrupt for {}, got {err:?}",
        snapshot_key()
    );
    assert!(err.to_string().contains(&snapshot_key()), "{what}: {err}");
}

#[test]
fn a_damaged_snapshot_is_corrupt_and_names_its_key() {
    let bytes = encode_snapshot(&state_in(Status::Contracted)).expect("encodes");
    let key = snapshot_key();

    for cut in [1, 2, bytes.len() / 2, bytes.len() - 1] {
        assert_corrupt(
            decode_snapshot(&key, &bytes[..cut]),
            &format!("truncated to {cut}"),
        );
    }
    for format in [0u8, 2, 255] {
        let mut wrong = bytes.clone();
        wrong[0] = format;
        assert_corrupt(
            decode_snapshot(&key, &wrong),
            &format!("format byte {format}"),
        );
    }
    assert_corrupt(decode_snapshot(&key, &[]), "empty");
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert_corrupt(decode_snapshot(&key, &trailing), "a trailing byte");
}

/// The full document an enrollment's reference names, in these tests.
fn document_of(state: &Enrollment) -> Option<ProductDocument> {
    let reference = state.document.as_ref()?;
    let full = document(reference.plan_revision);
    assert_eq!(full.reference(), **reference);
    Some(full)
}

/// This build writes format 3: the state names its document, whose text is not in it.
/// Formats 1 (the document whole in the state) and 2 (the text apart, in `d`) of earlier
/// builds still read: the state comes back with the reference computed from the text,
/// and the text with it, for the store to keep where this build keeps texts.
#[test]
fn snapshots_of_earlier_builds_still_read_with_their_documents() {
    for state in Status::ALL.map(state_in) {
        let full = document_of(&state);
        let current = encode_snapshot(&state).expect("encodes");
        assert_eq!(current[0], 3, "format 3");
        assert!(!needs_old_document(&current));
        let back = decode_stored(&snapshot_key(), &current, None).expect("format 3");
        assert_eq!((back.state, back.old_document), (state.clone(), None));

        let old = old_formats::format1(&state, full.as_ref());
        assert!(!needs_old_document(&old));
        let back = decode_stored(&snapshot_key(), &old, None).expect("format 1");
        assert_eq!(back.state, state, "format 1, {}", state.status);
        assert_eq!(back.old_document, full);

        let split = old_formats::format2(&state, full.is_some());
        assert_eq!(needs_old_document(&split), full.is_some());
        let apart = full
            .as_ref()
            .map(|d| encode_document(state.id, d).expect("encodes the text"));
        let back = decode_stored(&snapshot_key(), &split, apart.as_deref()).expect("format 2");
        assert_eq!(back.state, state, "format 2, {}", state.status);
        assert_eq!(back.old_document, full);
        if let Some(document) = &full {
            // The text is not in this build's snapshot: shorter than format 1 by about its size.
            assert!(
                current.len() + document.body.len() <= old.len() + 64,
                "{} + {} vs {}",
                current.len(),
                document.body.len(),
                old.len()
            );
        }
    }
}

#[test]
fn a_damaged_old_snapshot_or_document_is_corrupt() {
    let state = state_in(Status::Contracted);
    let key = snapshot_key();
    let snapshot = old_formats::format2(&state, true);
    let document =
        encode_document(state.id, &document_of(&state).expect("a document")).expect("encodes");
    let decode = |snapshot: &[u8], document: Option<&[u8]>| {
        decode_stored(&key, snapshot, document).map(|stored| stored.state)
    };
    assert_corrupt(decode(&snapshot, None), "the document missing");
    for cut in [1, 2, snapshot.len() - 1] {
        assert_corrupt(
            decode(&snapshot[..cut], Some(&document)),
            &format!("snapshot truncated to {cut}"),
        );
    }
    for cut in [0, 1, document.len() - 1] {
        assert_corrupt(
            decode(&snapshot, Some(&document[..cut])),
            &format!("document truncated to {cut}"),
        );
    }
    let mut flag = snapshot.clone();
    flag[1] = 7;
    assert_corrupt(decode(&flag, Some(&document)), "document flag 7");
    let mut format = document.clone();
    format[0] = 9;
    assert_corrupt(decode(&snapshot, Some(&format)), "document format 9");
    assert!(
        matches!(
            decode_document(&key, &format),
            Err(StoreError::Corrupt { .. })
        ),
        "a document of an unknown format"
    );
    for format in [0u8, 4, 255] {
        let mut wrong = snapshot.clone();
        wrong[0] = format;
        assert_corrupt(
            decode(&wrong, Some(&document)),
            &format!("format byte {format}"),
        );
    }
    assert_corrupt(decode(&[], Some(&document)), "empty");
}
