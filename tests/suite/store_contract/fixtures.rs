//! What the contract's checks share: a demo catalog, enrollments driven through the domain
//! (`Journey`), and reading the log dry.

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use ezenroll::domain::catalog::Catalog;
use ezenroll::domain::customer::{
    BirthDate, CustomerName, Gender, Insured, MobilePhone, NewCustomer, parse_iso_date,
};
use ezenroll::domain::enrollment::{
    self, Command, CustomerNo, Enrollment, EnrollmentId, PaymentMethod, PlanTerms, ProductDocument,
};
use ezenroll::domain::money::Won;
use ezenroll::domain::period::{CoveragePeriod, PaymentCycle, Years};
use ezenroll::domain::premium::QuoteInput;
use ezenroll::store::{Append, Delivery, EventEnvelope, Store, TimerOp};
use std::collections::HashSet;
use std::sync::{Arc, LazyLock};
use std::time::Duration;
use uuid::Uuid;

pub static CATALOG: LazyLock<Catalog> = LazyLock::new(Catalog::demo);

/// The fixed "now" the checks start from.
pub fn t0() -> DateTime<Utc> {
    NaiveDate::from_ymd_opt(2026, 1, 1)
        .and_then(|d| d.and_hms_opt(9, 0, 0))
        .expect("a valid instant")
        .and_utc()
}

pub fn minutes(n: i64) -> TimeDelta {
    TimeDelta::minutes(n)
}

/// A priced EZ-TERM plan: 36 years old, 100M won, 20 years of cover paid monthly.
pub fn plan() -> PlanTerms {
    let product = CATALOG.latest("EZ-TERM").expect("the demo EZ-TERM product");
    let input = QuoteInput {
        insured: Insured {
            birth_date: BirthDate::parse("1990-05-20").expect("birth date"),
            gender: Gender::Male,
        },
        quote_date: parse_iso_date("2026-01-01").expect("quote date"),
        sum_insured: Won::new(100_000_000),
        coverage: CoveragePeriod::Years(Years::new(20).expect("years")),
        payment_period: Years::new(20).expect("years"),
        cycle: PaymentCycle::Monthly,
    };
    PlanTerms::quote(product, &input).expect("an acceptable quote")
}

pub fn new_customer(name: &str) -> NewCustomer {
    NewCustomer {
        name: CustomerName::parse(name).expect("name"),
        birth_date: BirthDate::parse("1990-05-20").expect("birth date"),
        gender: Gender::Female,
        mobile_phone: MobilePhone::parse("010-1234-5678").expect("phone"),
    }
}

/// What a test asks of its enrollment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    SavePlan,
    RequestDocument,
    IssueDocument,
    SubmitProposal,
    Pay,
    Withdraw,
}

/// One enrollment driven through the domain, as the engine would: decide, fold, wrap the
/// events in envelopes numbered after the current version, append.
#[derive(Debug, Clone)]
pub struct Journey {
    pub id: EnrollmentId,
    pub customer_no: CustomerNo,
    pub state: Option<Enrollment>,
    pub version: u64,
    /// The time of the next command; one minute passes per commit.
    pub now: DateTime<Utc>,
}

impl Journey {
    pub fn new(customer_no: CustomerNo) -> Journey {
        Journey {
            id: EnrollmentId::new(),
            customer_no,
            state: None,
            version: 0,
            now: t0(),
        }
    }

    pub fn command(&self, step: Step) -> Command {
        let now = self.now;
        let days_30 = now + TimeDelta::days(30);
        match step {
            Step::SavePlan => Command::SavePlan {
                id: self.id,
                customer_no: self.customer_no,
                plan: plan().into(),
                now,
                expires_at: days_30,
            },
            Step::RequestDocument => Command::RequestDocument { now },
            Step::IssueDocument => Command::IssueDocument {
                document: ProductDocument {
                    document_no: format!("DOC-{}", self.id),
                    plan_revision: self.state.as_ref().map_or(1, |s| s.plan_revision),
                    issued_at: now,
                    title: "이지 정기보험 상품설명서".to_owned(),
                    body: "보장내용".to_owned(),
                }
                .into(),
                now,
            },
            Step::SubmitProposal => Command::SubmitProposal {
                method: PaymentMethod::Card,
                now,
                withdrawal_deadline: days_30,
            },
            Step::Pay => Command::RecordPaymentSucceeded {
                payment_id: format!("PAY-{}", self.id),
                amount: self
                    .state
                    .as_ref()
                    .map_or(Won::ZERO, |s| s.plan.quote.installment),
                contract_no: format!("CT-{}", self.id),
                now,
            },
            Step::Withdraw => Command::RequestWithdrawal { now },
        }
    }

    /// The state and envelopes `step` leads to; changes nothing.
    pub fn decide(&self, step: Step) -> (Enrollment, Vec<EventEnvelope>) {
        let events =
            enrollment::handle(self.state.as_ref(), &self.command(step)).expect("a legal step");
        let mut state = self.state.clone();
        let mut envelopes = Vec::with_capacity(events.len());
        for (i, event) in events.into_iter().enumerate() {
            state = enrollment::apply(state, self.id, &event, self.now);
            let version = self.version + i as u64 + 1;
            envelopes.push(EventEnvelope::new(
                event,
                self.id,
                self.customer_no,
                version,
                self.now,
            ));
        }
        (state.expect("a started enrollment"), envelopes)
    }

    /// Decides and appends `step` with `timers`; panics unless the store takes it.
    pub async fn commit(
        &mut self,
        store: &dyn Store,
        step: Step,
        timers: &[TimerOp],
    ) -> Vec<EventEnvelope> {
        let (state, envelopes) = self.decide(step);
        // The text of a document issued goes with the append, as the engine sends it.
        let document = match self.command(step) {
            Command::IssueDocument { document, .. } => Some(document),
            _ => None,
        };
        let version = store
            .append(Append {
                id: self.id,
                expected_version: self.version,
                state: &Arc::new(state.clone()),
                events: &shared(&envelopes),
                timers,
                document: document.as_ref(),
                fence: None,
            })
            .await
            .expect("the append is accepted");
        assert_eq!(version, self.version + envelopes.len() as u64);
        self.state = Some(state);
        self.version = version;
        self.now += minutes(1);
        envelopes
    }

    /// Commits each step in turn; returns every envelope.
    pub async fn run(&mut self, store: &dyn Store, steps: &[Step]) -> Vec<EventEnvelope> {
        let mut all = Vec::new();
        for &step in steps {
            all.extend(self.commit(store, step, &[]).await);
        }
        all
    }
}

pub const UP_TO_PROPOSAL: [Step; 4] = [
    Step::SavePlan,
    Step::RequestDocument,
    Step::IssueDocument,
    Step::SubmitProposal,
];

/// Reads without blocking until nothing is left.
pub async fn drain(store: &dyn Store, group: &str, consumer: &str, max: usize) -> Vec<Delivery> {
    let mut all = Vec::new();
    loop {
        let batch = store
            .read_group(group, consumer, max, Duration::ZERO)
            .await
            .expect("read_group");
        assert!(batch.len() <= max, "read_group returned more than max");
        if batch.is_empty() {
            return all;
        }
        all.extend(batch);
    }
}

pub fn refs(deliveries: &[Delivery]) -> Vec<(u16, String)> {
    deliveries
        .iter()
        .map(|d| (d.partition, d.entry_id.clone()))
        .collect()
}

pub fn event_ids(deliveries: &[Delivery]) -> Vec<Uuid> {
    deliveries.iter().map(|d| d.envelope.id).collect()
}

pub fn assert_no_duplicates(ids: &[Uuid]) {
    let unique: HashSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "an entry was delivered twice");
}

/// Appends `n` one-event enrollments (saved plans); returns their envelopes.
pub async fn saved_plans(store: &dyn Store, n: usize) -> Vec<EventEnvelope> {
    let mut all = Vec::new();
    for _ in 0..n {
        let mut journey = Journey::new(CustomerNo::new(1));
        all.extend(journey.commit(store, Step::SavePlan, &[]).await);
    }
    all
}

pub fn far_future() -> DateTime<Utc> {
    t0() + TimeDelta::days(3650)
}

pub const LEASE: Duration = Duration::from_secs(60);

/// Events as appends take them: shared.
pub fn shared(events: &[EventEnvelope]) -> Vec<Arc<EventEnvelope>> {
    events.iter().cloned().map(Arc::new).collect()
}
