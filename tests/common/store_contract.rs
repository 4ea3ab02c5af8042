//! The store contract: what every backend of `ezenroll::store::Store` must do, as checks
//! that take nothing but an `Arc<dyn Store>`, so the memory backend and the Redis one run
//! the very same checks.
//!
//! Each check needs a fresh, empty store (a Redis runner gives each its own key prefix or
//! database). A runner mounts this file as a module named `store_contract` and expands
//! [`store_contract_suite!`] with an expression that makes a store (it may `.await`); the
//! check that needs to corrupt a stored snapshot takes a backend-specific closure and is
//! written out by hand:
//!
//! ```ignore
//! #[macro_use]
//! #[path = "common/store_contract.rs"]
//! mod store_contract;
//! store_contract_suite!(store_contract, Arc::new(MemoryStore::new(4)));
//! ```
//!
//! Timing: waits here are semantic (a lease or TTL running out, a blocked read being woken);
//! nothing asserts how fast anything is.

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use ezenroll::domain::catalog::Catalog;
use ezenroll::domain::customer::{
    BirthDate, CustomerName, Gender, Insured, MobilePhone, NewCustomer, parse_iso_date,
};
use ezenroll::domain::enrollment::{
    self, Command, CustomerNo, Enrollment, EnrollmentId, PaymentMethod, PlanTerms, ProductDocument,
    Status,
};
use ezenroll::domain::money::Won;
use ezenroll::domain::period::{CoveragePeriod, PaymentCycle, Years};
use ezenroll::domain::premium::QuoteInput;
use ezenroll::store::{
    Alarm, Append, Delivery, EventEnvelope, IdempotencyClaim, MyPageView, Reservation, Store,
    StoreError, Timer, TimerKind, TimerOp, ViewFilter,
};
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, LazyLock};
use std::time::Duration;
use uuid::Uuid;

/// One `#[tokio::test]` (multi-threaded, so concurrent checks really race) per
/// backend-agnostic check. `$module` is the name this file is mounted under; `$make` makes
/// a fresh store and may `.await`.
macro_rules! store_contract_suite {
    ($module:ident, $make:expr) => {
        store_contract_suite!(
            @each $module, $make;
            ping_answers,
            append_and_load_round_trip,
            stale_append_conflicts_and_writes_nothing,
            concurrent_appends_one_wins,
            history_is_oldest_first,
            malformed_append_is_rejected,
            a_documents_text_is_kept_with_the_append_that_names_it,
            events_reach_their_partition_once,
            consumers_of_a_group_share_entries,
            a_read_fills_its_batch_from_one_busy_partition,
            unacked_entries_are_claimable_after_min_idle,
            ack_prevents_redelivery,
            new_group_sees_earlier_events,
            reading_an_unknown_group_fails,
            lag_counts_unread_and_pending,
            dead_letters_are_kept_and_acknowledged,
            blocked_read_returns_an_event_appended_meanwhile,
            blocked_read_on_nothing_returns_empty,
            read_after_tails_the_log_from_its_end,
            blocked_read_after_is_woken_by_an_append,
            timers_claim_lease_move_and_cancel,
            timer_ops_apply_with_the_append,
            customers_are_numbered_from_one,
            customers_are_registered_once_per_request,
            reservations_respect_the_limit,
            concurrent_reservations_stay_within_the_limit,
            products_conflict_and_list_by_code_then_version,
            views_are_written_only_forward,
            views_filter_order_and_count,
            alarms_are_recorded_once_and_listed_newest_first,
            idempotency_is_put_if_absent_with_ttl,
            idempotency_claims_are_exclusive,
            batches_of_alarms_and_views_behave_like_one_at_a_time,
            a_large_batch_of_views_is_written_whole_and_in_order,
        );
    };
    (@each $module:ident, $make:expr; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $check() {
                let store: ::std::sync::Arc<dyn ::ezenroll::store::Store> = $make;
                $module::$check(store).await;
            }
        )*
    };
}

// ---------------------------------------------------------------- fixtures

static CATALOG: LazyLock<Catalog> = LazyLock::new(Catalog::demo);

/// The fixed "now" the checks start from.
pub fn t0() -> DateTime<Utc> {
    NaiveDate::from_ymd_opt(2026, 1, 1)
        .and_then(|d| d.and_hms_opt(9, 0, 0))
        .expect("a valid instant")
        .and_utc()
}

fn minutes(n: i64) -> TimeDelta {
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

const UP_TO_PROPOSAL: [Step; 4] = [
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

fn event_ids(deliveries: &[Delivery]) -> Vec<Uuid> {
    deliveries.iter().map(|d| d.envelope.id).collect()
}

fn assert_no_duplicates(ids: &[Uuid]) {
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

fn far_future() -> DateTime<Utc> {
    t0() + TimeDelta::days(3650)
}

const LEASE: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------- enrollments

pub async fn ping_answers(store: Arc<dyn Store>) {
    store.ping().await.expect("ping");
    assert!(!store.backend().is_empty());
    assert!(store.partitions() >= 1);
}

pub async fn append_and_load_round_trip(store: Arc<dyn Store>) {
    let store = &*store;
    let mut journey = Journey::new(CustomerNo::new(7));
    assert_eq!(store.load(journey.id).await.expect("load"), None);
    assert!(store.history(journey.id).await.expect("history").is_empty());

    journey.commit(store, Step::SavePlan, &[]).await;
    let (version, state) = store.load(journey.id).await.expect("load").expect("stored");
    assert_eq!(version, 1);
    assert_eq!(Some(Arc::unwrap_or_clone(state)), journey.state);

    journey
        .run(
            store,
            &[
                Step::RequestDocument,
                Step::IssueDocument,
                Step::SubmitProposal,
            ],
        )
        .await;
    // From a proposal, a withdrawal is two events in one append: the version counts both.
    let envelopes = journey.commit(store, Step::Withdraw, &[]).await;
    assert_eq!(envelopes.len(), 2);
    let (version, state) = store.load(journey.id).await.expect("load").expect("stored");
    assert_eq!(version, 6);
    assert_eq!(state.status, Status::Withdrawn);
    assert_eq!(Some(Arc::unwrap_or_clone(state)), journey.state);
}

pub async fn stale_append_conflicts_and_writes_nothing(store: Arc<dyn Store>) {
    let store = &*store;
    store.ensure_group("g").await.expect("group");
    let mut journey = Journey::new(CustomerNo::new(1));
    let expire = Timer {
        enrollment_id: journey.id,
        kind: TimerKind::ExpirePlan,
        due: t0() + TimeDelta::days(30),
        attempt: 0,
    };
    let saved = journey
        .commit(store, Step::SavePlan, &[TimerOp::Set(expire)])
        .await;

    // A writer that decided on a stale version (0), and one from the future (5).
    let (state, envelopes) = journey.decide(Step::RequestDocument);
    let issue = Timer {
        enrollment_id: journey.id,
        kind: TimerKind::IssueDocument,
        due: t0(),
        attempt: 0,
    };
    let timers = [TimerOp::Set(issue), TimerOp::Cancel(TimerKind::ExpirePlan)];
    for (expected, renumbered) in [(0u64, 0u64), (5, 5)] {
        let events: Vec<EventEnvelope> = envelopes
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, mut e)| {
                e.version = renumbered + i as u64 + 1;
                e
            })
            .collect();
        let result = store
            .append(Append {
                id: journey.id,
                expected_version: expected,
                state: &Arc::new(state.clone()),
                events: &shared(&events),
                timers: &timers,
                document: None,
            })
            .await;
        match result {
            Err(StoreError::Conflict {
                expected: e,
                actual,
                key,
            }) => {
                assert_eq!((e, actual), (expected, 1));
                assert!(!key.is_empty());
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
    }

    // Nothing of the refused appends is visible anywhere.
    let (version, stored) = store.load(journey.id).await.expect("load").expect("stored");
    assert_eq!(version, 1);
    assert_eq!(Some(Arc::unwrap_or_clone(stored)), journey.state);
    assert_eq!(store.history(journey.id).await.expect("history"), saved);
    let delivered = drain(store, "g", "c", 100).await;
    assert_eq!(event_ids(&delivered), vec![saved[0].id]);
    let timers = store
        .claim_due_timers(far_future(), LEASE, 100)
        .await
        .expect("timers");
    assert_eq!(timers, vec![expire]);
}

pub async fn concurrent_appends_one_wins(store: Arc<dyn Store>) {
    const RACERS: usize = 16;
    // Creation: every racer appends version 1 of the same new enrollment.
    let journey = Journey::new(CustomerNo::new(1));
    let mut tasks = Vec::new();
    for _ in 0..RACERS {
        let store = Arc::clone(&store);
        let journey = journey.clone();
        tasks.push(tokio::spawn(async move {
            let (state, events) = journey.decide(Step::SavePlan);
            let result = store
                .append(Append {
                    id: journey.id,
                    expected_version: 0,
                    state: &Arc::new(state.clone()),
                    events: &shared(&events),
                    timers: &[],
                    document: None,
                })
                .await;
            (result, events)
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.expect("task") {
            (Ok(version), events) => {
                assert_eq!(version, 1);
                winners.push(events);
            }
            (
                Err(StoreError::Conflict {
                    expected, actual, ..
                }),
                _,
            ) => {
                assert_eq!((expected, actual), (0, 1));
            }
            (Err(other), _) => panic!("unexpected error {other}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one creation wins");
    let history = store.history(journey.id).await.expect("history");
    assert_eq!(history, winners[0]);

    // An update: every racer appends version 2 on top of version 1.
    let mut at_one = journey.clone();
    at_one.state = Some(
        store
            .load(journey.id)
            .await
            .expect("load")
            .expect("stored")
            .1
            .as_ref()
            .clone(),
    );
    at_one.version = 1;
    let mut tasks = Vec::new();
    for _ in 0..RACERS {
        let store = Arc::clone(&store);
        let journey = at_one.clone();
        tasks.push(tokio::spawn(async move {
            let (state, events) = journey.decide(Step::RequestDocument);
            store
                .append(Append {
                    id: journey.id,
                    expected_version: 1,
                    state: &Arc::new(state.clone()),
                    events: &shared(&events),
                    timers: &[],
                    document: None,
                })
                .await
        }));
    }
    let mut wins = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(version) => {
                assert_eq!(version, 2);
                wins += 1;
            }
            Err(StoreError::Conflict {
                expected, actual, ..
            }) => assert_eq!((expected, actual), (1, 2)),
            Err(other) => panic!("unexpected error {other}"),
        }
    }
    assert_eq!(wins, 1, "exactly one update wins");
    assert_eq!(store.history(journey.id).await.expect("history").len(), 2);
    store.ensure_group("g").await.expect("group");
    assert_eq!(
        store.lag("g").await.expect("lag"),
        2,
        "only the winners are published"
    );
}

/// One enrollment's steps from its plan to its withdrawal.
pub const JOURNEY: [Step; 6] = [
    Step::SavePlan,
    Step::RequestDocument,
    Step::IssueDocument,
    Step::SubmitProposal,
    Step::Pay,
    Step::Withdraw,
];

/// Every entry in one partition (one enrollment's events): a read still returns `max` of
/// them, not just that partition's share of `max`, and in order.
pub async fn a_read_fills_its_batch_from_one_busy_partition(store: Arc<dyn Store>) {
    let store = &*store;
    store.ensure_group("g").await.expect("group");
    let mut journey = Journey::new(CustomerNo::new(5));
    let mut appended = Vec::new();
    for &step in &JOURNEY[..5] {
        appended.extend(journey.commit(store, step, &[]).await);
    }
    let first = store
        .read_group("g", "a", 3, Duration::ZERO)
        .await
        .expect("read");
    assert_eq!(first.len(), 3, "a busy partition fills the batch");
    let rest = drain(store, "g", "a", 3).await;
    let read: Vec<Uuid> = first.iter().chain(&rest).map(|d| d.envelope.id).collect();
    let ids: Vec<Uuid> = appended.iter().map(|e| e.id).collect();
    assert_eq!(read, ids);
}

pub async fn history_is_oldest_first(store: Arc<dyn Store>) {
    let store = &*store;
    let mut journey = Journey::new(CustomerNo::new(3));
    let mut other = Journey::new(CustomerNo::new(4));
    let mut appended = Vec::new();
    for step in JOURNEY {
        appended.extend(journey.commit(store, step, &[]).await);
        // Interleave another enrollment: histories are per enrollment.
        if other.version < 2 {
            let step = if other.version == 0 {
                Step::SavePlan
            } else {
                Step::RequestDocument
            };
            other.commit(store, step, &[]).await;
        }
    }
    let history = store.history(journey.id).await.expect("history");
    assert_eq!(history, appended);
    let types: Vec<_> = history.iter().map(|e| e.event.event_type()).collect();
    assert_eq!(
        types,
        [
            "PlanSaved",
            "DocumentRequested",
            "DocumentIssued",
            "ProposalSubmitted",
            "PaymentSucceeded",
            "WithdrawalRequested",
        ]
    );
    let versions: Vec<_> = history.iter().map(|e| e.version).collect();
    assert_eq!(versions, [1, 2, 3, 4, 5, 6]);
    assert_eq!(store.history(other.id).await.expect("history").len(), 2);
}

/// An append whose envelopes or snapshot are not of this enrollment at the versions it
/// writes is an engine bug: refused, and nothing is written.
pub async fn malformed_append_is_rejected(store: Arc<dyn Store>) {
    let store = &*store;
    store.ensure_group("g").await.expect("group");
    let journey = Journey::new(CustomerNo::new(1));
    let (state, mut events) = journey.decide(Step::SavePlan);
    events[0].version = 7;
    let wrong_version = store
        .append(Append {
            id: journey.id,
            expected_version: 0,
            state: &Arc::new(state.clone()),
            events: &shared(&events),
            timers: &[],
            document: None,
        })
        .await;
    assert!(
        matches!(wrong_version, Err(StoreError::Rejected(_))),
        "{wrong_version:?}"
    );

    let (state, events) = journey.decide(Step::SavePlan);
    let wrong_id = store
        .append(Append {
            id: EnrollmentId::new(),
            expected_version: 0,
            state: &Arc::new(state.clone()),
            events: &shared(&events),
            timers: &[],
            document: None,
        })
        .await;
    assert!(
        matches!(wrong_id, Err(StoreError::Rejected(_))),
        "{wrong_id:?}"
    );

    let foreign_timer = Timer {
        enrollment_id: EnrollmentId::new(),
        kind: TimerKind::ExpirePlan,
        due: t0(),
        attempt: 0,
    };
    let wrong_timer = store
        .append(Append {
            id: journey.id,
            expected_version: 0,
            state: &Arc::new(state.clone()),
            events: &shared(&events),
            timers: &[TimerOp::Set(foreign_timer)],
            document: None,
        })
        .await;
    assert!(
        matches!(wrong_timer, Err(StoreError::Rejected(_))),
        "{wrong_timer:?}"
    );

    assert_eq!(store.load(journey.id).await.expect("load"), None);
    assert_eq!(store.lag("g").await.expect("lag"), 0);
    assert!(
        store
            .claim_due_timers(far_future(), LEASE, 10)
            .await
            .expect("timers")
            .is_empty()
    );
}

/// The text of an issued document goes with the append whose DocumentIssued event names
/// it (by number and SHA-256), and is read back by number; the state and the events hold
/// only the reference. A text that no event of its append names is refused, and nothing
/// of that append is written.
pub async fn a_documents_text_is_kept_with_the_append_that_names_it(store: Arc<dyn Store>) {
    let store = &*store;
    let mut journey = Journey::new(CustomerNo::new(3));
    journey
        .run(store, &[Step::SavePlan, Step::RequestDocument])
        .await;
    let Command::IssueDocument { document, .. } = journey.command(Step::IssueDocument) else {
        panic!("IssueDocument is not an issuance");
    };
    let (state, events) = journey.decide(Step::IssueDocument);
    let mut other = (*document).clone();
    other.body.push_str(" (고침)");
    let unnamed = store
        .append(Append {
            id: journey.id,
            expected_version: journey.version,
            state: &Arc::new(state.clone()),
            events: &shared(&events),
            timers: &[],
            document: Some(&Arc::new(other)),
        })
        .await;
    assert!(
        matches!(&unnamed, Err(StoreError::Rejected(m)) if m.contains(&document.document_no)),
        "{unnamed:?}"
    );
    assert_eq!(
        store
            .document(journey.id, &document.document_no)
            .await
            .expect("read"),
        None
    );
    let (version, _) = store.load(journey.id).await.expect("load").expect("stored");
    assert_eq!(version, journey.version, "nothing of it written");

    journey.commit(store, Step::IssueDocument, &[]).await;
    assert_eq!(
        store
            .document(journey.id, &document.document_no)
            .await
            .expect("read"),
        Some((*document).clone())
    );
    let (_, state) = store.load(journey.id).await.expect("load").expect("stored");
    assert_eq!(state.document.as_deref(), Some(&document.reference()));
    let history = store.history(journey.id).await.expect("history");
    let issued = history
        .iter()
        .find(|e| {
            matches!(
                e.event,
                ezenroll::domain::enrollment::Event::DocumentIssued { .. }
            )
        })
        .expect("the event");
    let json = serde_json::to_string(issued).expect("JSON");
    assert!(json.contains(&document.document_no), "{json}");
    assert!(
        !json.contains(&document.body),
        "the text is not in the event: {json}"
    );
    assert_eq!(
        store.document(journey.id, "DOC-none").await.expect("read"),
        None
    );
    assert_eq!(
        store
            .document(EnrollmentId::new(), &document.document_no)
            .await
            .expect("read"),
        None
    );
}

// ---------------------------------------------------------------- event log

pub async fn events_reach_their_partition_once(store: Arc<dyn Store>) {
    let store = &*store;
    store.ensure_group("g").await.expect("group");
    let partitions = u64::from(store.partitions());
    let mut appended: HashMap<Uuid, EventEnvelope> = HashMap::new();
    for _ in 0..12 {
        let mut journey = Journey::new(CustomerNo::new(1));
        for e in journey
            .run(store, &[Step::SavePlan, Step::RequestDocument])
            .await
        {
            appended.insert(e.id, e);
        }
    }
    let delivered = drain(store, "g", "c", 5).await;
    assert_eq!(delivered.len(), appended.len());
    assert_no_duplicates(&event_ids(&delivered));
    let mut last_version: HashMap<EnrollmentId, u64> = HashMap::new();
    let mut positions = HashSet::new();
    for d in &delivered {
        assert_eq!(Some(&*d.envelope), appended.get(&d.envelope.id));
        assert_eq!(d.deliveries, 1);
        let expected = d.envelope.enrollment_id.partition_hash() % partitions;
        assert_eq!(u64::from(d.partition), expected, "wrong partition");
        assert!(
            positions.insert((d.partition, d.entry_id.clone())),
            "entry ids repeat"
        );
        // One enrollment's events keep their order within its partition.
        let last = last_version.insert(d.envelope.enrollment_id, d.envelope.version);
        assert!(last.is_none_or(|v| v < d.envelope.version), "out of order");
    }
    assert!(drain(store, "g", "c", 5).await.is_empty(), "read twice");
    assert!(
        drain(store, "g", "other-consumer", 5).await.is_empty(),
        "another consumer of the group got them again"
    );
}

pub async fn consumers_of_a_group_share_entries(store: Arc<dyn Store>) {
    const EVENTS: usize = 60;
    let appended = saved_plans(&*store, EVENTS).await;
    let expected: HashSet<Uuid> = appended.iter().map(|e| e.id).collect();

    // Taking turns: both get some, nobody gets the same entry.
    store.ensure_group("turns").await.expect("group");
    let mut by: HashMap<&str, Vec<Uuid>> = HashMap::new();
    'outer: loop {
        for consumer in ["a", "b"] {
            let batch = store
                .read_group("turns", consumer, 7, Duration::ZERO)
                .await
                .expect("read");
            if batch.is_empty() {
                break 'outer;
            }
            store.ack("turns", &refs(&batch)).await.expect("ack");
            by.entry(consumer).or_default().extend(event_ids(&batch));
        }
    }
    assert!(by.get("a").is_some_and(|v| !v.is_empty()));
    assert!(by.get("b").is_some_and(|v| !v.is_empty()));
    let all: Vec<Uuid> = by.values().flatten().copied().collect();
    assert_no_duplicates(&all);
    assert_eq!(all.into_iter().collect::<HashSet<_>>(), expected);

    // Racing: three consumers at once.
    store.ensure_group("race").await.expect("group");
    let mut tasks = Vec::new();
    for consumer in ["x", "y", "z"] {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let batch = store
                    .read_group("race", consumer, 4, Duration::from_millis(50))
                    .await
                    .expect("read");
                if batch.is_empty() {
                    return got;
                }
                store.ack("race", &refs(&batch)).await.expect("ack");
                got.extend(event_ids(&batch));
            }
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("task"));
    }
    assert_no_duplicates(&all);
    assert_eq!(all.into_iter().collect::<HashSet<_>>(), expected);
    assert_eq!(store.lag("race").await.expect("lag"), 0);
}

pub async fn unacked_entries_are_claimable_after_min_idle(store: Arc<dyn Store>) {
    let store = &*store;
    store.ensure_group("g").await.expect("group");
    let appended = saved_plans(store, 3).await;
    let first = drain(store, "g", "a", 10).await;
    assert_eq!(first.len(), 3);

    let min_idle = Duration::from_millis(300);
    assert!(
        store
            .claim_stale("g", "b", min_idle, 10)
            .await
            .expect("claim")
            .is_empty(),
        "claimed before min_idle"
    );
    tokio::time::sleep(min_idle + Duration::from_millis(100)).await;

    let some = store
        .claim_stale("g", "b", min_idle, 2)
        .await
        .expect("claim");
    assert_eq!(some.len(), 2, "max is respected");
    let rest = store
        .claim_stale("g", "b", min_idle, 10)
        .await
        .expect("claim");
    assert_eq!(rest.len(), 1);
    let claimed: Vec<Delivery> = some.into_iter().chain(rest).collect();
    assert_no_duplicates(&event_ids(&claimed));
    let ids: HashSet<Uuid> = event_ids(&claimed).into_iter().collect();
    assert_eq!(ids, appended.iter().map(|e| e.id).collect());
    for d in &claimed {
        assert_eq!(d.deliveries, 2, "a claim counts as a delivery");
        let original = first
            .iter()
            .find(|f| f.envelope.id == d.envelope.id)
            .expect("the same entry");
        assert_eq!(
            (d.partition, &d.entry_id),
            (original.partition, &original.entry_id)
        );
        assert_eq!(d.envelope, original.envelope);
    }

    // Claiming resets the idle time; reading never hands out pending entries.
    assert!(
        store
            .claim_stale("g", "c", min_idle, 10)
            .await
            .expect("claim")
            .is_empty()
    );
    assert!(drain(store, "g", "c", 10).await.is_empty());
    assert_eq!(store.lag("g").await.expect("lag"), 3);
}

pub async fn ack_prevents_redelivery(store: Arc<dyn Store>) {
    let store = &*store;
    store.ensure_group("g").await.expect("group");
    saved_plans(store, 2).await;
    let read = drain(store, "g", "a", 10).await;
    assert_eq!(read.len(), 2);
    store.ack("g", &refs(&read[..1])).await.expect("ack");

    let again = store
        .claim_stale("g", "b", Duration::ZERO, 10)
        .await
        .expect("claim");
    assert_eq!(event_ids(&again), vec![read[1].envelope.id]);
    assert_eq!(again[0].deliveries, 2);
    store.ack("g", &refs(&again)).await.expect("ack");
    // Acknowledging twice is harmless.
    store.ack("g", &refs(&read)).await.expect("ack again");

    assert!(
        store
            .claim_stale("g", "b", Duration::ZERO, 10)
            .await
            .expect("claim")
            .is_empty()
    );
    assert!(drain(store, "g", "a", 10).await.is_empty());
    assert_eq!(store.lag("g").await.expect("lag"), 0);
}

pub async fn new_group_sees_earlier_events(store: Arc<dyn Store>) {
    let store = &*store;
    let before = saved_plans(store, 3).await;
    store.ensure_group("late").await.expect("group");
    store.ensure_group("late").await.expect("ensure again");
    let read = drain(store, "late", "a", 10).await;
    let ids: HashSet<Uuid> = event_ids(&read).into_iter().collect();
    assert_eq!(ids, before.iter().map(|e| e.id).collect());

    // Ensuring an existing group changes nothing: no rewind, pending entries stay pending.
    store.ensure_group("late").await.expect("ensure again");
    assert!(drain(store, "late", "a", 10).await.is_empty());
    assert_eq!(store.lag("late").await.expect("lag"), 3);
    store.ack("late", &refs(&read)).await.expect("ack");
    store.ensure_group("late").await.expect("ensure again");
    assert_eq!(store.lag("late").await.expect("lag"), 0);

    let after = saved_plans(store, 1).await;
    let read = drain(store, "late", "a", 10).await;
    assert_eq!(event_ids(&read), vec![after[0].id]);
}

pub async fn reading_an_unknown_group_fails(store: Arc<dyn Store>) {
    saved_plans(&*store, 1).await;
    assert!(
        store
            .read_group("never-created", "a", 10, Duration::ZERO)
            .await
            .is_err()
    );
}

pub async fn lag_counts_unread_and_pending(store: Arc<dyn Store>) {
    let store = &*store;
    store.ensure_group("g").await.expect("group");
    store.ensure_group("other").await.expect("group");
    assert_eq!(store.lag("g").await.expect("lag"), 0);
    saved_plans(store, 5).await;
    assert_eq!(store.lag("g").await.expect("lag"), 5);

    let two = store
        .read_group("g", "a", 2, Duration::ZERO)
        .await
        .expect("read");
    assert_eq!(two.len(), 2);
    assert_eq!(
        store.lag("g").await.expect("lag"),
        5,
        "3 unread + 2 pending"
    );
    store.ack("g", &refs(&two[..1])).await.expect("ack");
    assert_eq!(store.lag("g").await.expect("lag"), 4);
    let rest = drain(store, "g", "a", 10).await;
    assert_eq!(rest.len(), 3);
    assert_eq!(store.lag("g").await.expect("lag"), 4, "all pending now");
    store.ack("g", &refs(&two)).await.expect("ack");
    store.ack("g", &refs(&rest)).await.expect("ack");
    assert_eq!(store.lag("g").await.expect("lag"), 0);
    assert_eq!(
        store.lag("other").await.expect("lag"),
        5,
        "groups are independent"
    );
}

pub async fn dead_letters_are_kept_and_acknowledged(store: Arc<dyn Store>) {
    let store = &*store;
    store.ensure_group("g").await.expect("group");
    store.ensure_group("other").await.expect("group");
    saved_plans(store, 2).await;
    let read = drain(store, "g", "a", 10).await;
    assert_eq!(read.len(), 2);
    store
        .dead_letter("g", &read[0], "handler failed 5 times")
        .await
        .expect("dead letter");
    store
        .dead_letter("g", &read[1], "undecodable")
        .await
        .expect("dead letter");

    let dead = store.dead_letters("g").await.expect("dead letters");
    assert_eq!(
        dead,
        vec![(*read[0].envelope).clone(), (*read[1].envelope).clone()]
    );
    assert_eq!(
        store.lag("g").await.expect("lag"),
        0,
        "dead-lettering acknowledges"
    );
    assert!(
        store
            .claim_stale("g", "b", Duration::ZERO, 10)
            .await
            .expect("claim")
            .is_empty()
    );
    assert!(
        store
            .dead_letters("other")
            .await
            .expect("dead letters")
            .is_empty()
    );
    assert_eq!(store.lag("other").await.expect("lag"), 2);
}

pub async fn blocked_read_returns_an_event_appended_meanwhile(store: Arc<dyn Store>) {
    store.ensure_group("g").await.expect("group");
    let reader = {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            store
                .read_group("g", "a", 10, Duration::from_secs(10))
                .await
                .expect("read")
        })
    };
    // Give the reader time to start waiting (it returns the event either way).
    tokio::time::sleep(Duration::from_millis(100)).await;
    let appended = saved_plans(&*store, 1).await;
    let read = reader.await.expect("reader");
    assert_eq!(read.len(), 1);
    assert_eq!(*read[0].envelope, appended[0]);
}

pub async fn blocked_read_on_nothing_returns_empty(store: Arc<dyn Store>) {
    store.ensure_group("g").await.expect("group");
    let read = store
        .read_group("g", "a", 10, Duration::from_millis(100))
        .await
        .expect("read");
    assert!(read.is_empty());
}

// ---------------------------------------------------------------- tailing the log

/// Reads with `read_after` (no wait) until nothing is left; checks `max` on the way.
async fn tail_all(store: &dyn Store, positions: &mut [String], max: usize) -> Vec<EventEnvelope> {
    let mut all = Vec::new();
    loop {
        let batch = store
            .read_after(positions, max, Duration::ZERO)
            .await
            .expect("read_after");
        assert!(batch.len() <= max, "read_after returned more than max");
        if batch.is_empty() {
            return all;
        }
        all.extend(batch.iter().map(|e| (**e).clone()));
    }
}

/// Asserts `read` holds exactly the envelopes of `expected`, each once, and every
/// enrollment's events in version order.
fn assert_tailed(read: &[EventEnvelope], expected: &[EventEnvelope]) {
    let ids: Vec<Uuid> = read.iter().map(|e| e.id).collect();
    assert_no_duplicates(&ids);
    let expected_ids: HashSet<Uuid> = expected.iter().map(|e| e.id).collect();
    assert_eq!(ids.iter().copied().collect::<HashSet<_>>(), expected_ids);
    let by_id: HashMap<Uuid, &EventEnvelope> = expected.iter().map(|e| (e.id, e)).collect();
    let mut last_version: HashMap<EnrollmentId, u64> = HashMap::new();
    for e in read {
        assert_eq!(Some(&e), by_id.get(&e.id), "the envelope as appended");
        let last = last_version.insert(e.enrollment_id, e.version);
        assert!(last.is_none_or(|v| v < e.version), "out of order");
    }
}

pub async fn read_after_tails_the_log_from_its_end(store: Arc<dyn Store>) {
    let store = &*store;
    let partitions = usize::from(store.partitions());
    // Positions taken on an empty log.
    let mut from_start = store.log_end().await.expect("log_end");
    assert_eq!(from_start.len(), partitions, "one position per partition");

    let earlier = saved_plans(store, 3).await;
    let mut reader = store.log_end().await.expect("log_end");
    assert_eq!(reader.len(), partitions);
    assert!(
        store
            .read_after(&mut reader, 10, Duration::ZERO)
            .await
            .expect("read_after")
            .is_empty(),
        "the end of the log is after every earlier event"
    );
    let mut second = reader.clone();

    let mut later = Vec::new();
    for _ in 0..6 {
        let mut journey = Journey::new(CustomerNo::new(2));
        later.extend(
            journey
                .run(store, &[Step::SavePlan, Step::RequestDocument])
                .await,
        );
    }
    let read = tail_all(store, &mut reader, 3).await;
    assert_tailed(&read, &later);
    assert!(
        tail_all(store, &mut reader, 3).await.is_empty(),
        "nothing is read twice"
    );

    // Not a consumer group: another reader sees everything too, and one that started on
    // the empty log sees the earlier events as well.
    assert_tailed(&tail_all(store, &mut second, 100).await, &later);
    let everything: Vec<EventEnvelope> = earlier.iter().chain(&later).cloned().collect();
    assert_tailed(&tail_all(store, &mut from_start, 4).await, &everything);

    // Positions advance only past what was read; `max == 0` reads nothing.
    let more = saved_plans(store, 1).await;
    assert!(
        store
            .read_after(&mut reader, 0, Duration::ZERO)
            .await
            .expect("read_after")
            .is_empty()
    );
    assert_tailed(&tail_all(store, &mut reader, 10).await, &more);

    // Malformed positions are refused.
    let mut too_few = vec![reader[0].clone(); partitions - 1];
    match store.read_after(&mut too_few, 10, Duration::ZERO).await {
        Err(StoreError::Rejected(_)) => {}
        other => panic!(
            "expected Rejected for {} positions, got {other:?}",
            partitions - 1
        ),
    }
    let mut too_many = vec![reader[0].clone(); partitions + 1];
    match store.read_after(&mut too_many, 10, Duration::ZERO).await {
        Err(StoreError::Rejected(_)) => {}
        other => panic!(
            "expected Rejected for {} positions, got {other:?}",
            partitions + 1
        ),
    }
    let mut garbage = vec!["not a position".to_owned(); partitions];
    assert!(
        store
            .read_after(&mut garbage, 10, Duration::ZERO)
            .await
            .is_err(),
        "a position that does not parse"
    );
}

pub async fn blocked_read_after_is_woken_by_an_append(store: Arc<dyn Store>) {
    let start = store.log_end().await.expect("log_end");
    let reader = |mut positions: Vec<String>| {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            let read = store
                .read_after(&mut positions, 10, Duration::from_secs(10))
                .await
                .expect("read_after");
            (read, positions)
        })
    };
    // Two blocked readers: both are woken, both get the entry.
    let (a, b) = (reader(start.clone()), reader(start.clone()));
    // Give the readers time to start waiting (they return the event either way).
    tokio::time::sleep(Duration::from_millis(100)).await;
    let appended = saved_plans(&*store, 1).await;
    for task in [a, b] {
        let (read, mut positions) = task.await.expect("reader");
        assert_eq!(read.len(), 1);
        assert_eq!(*read[0], appended[0]);
        assert_ne!(positions, start, "the position moved past the entry");
        assert!(
            store
                .read_after(&mut positions, 10, Duration::from_millis(100))
                .await
                .expect("read_after")
                .is_empty(),
            "a blocked read on nothing new returns empty"
        );
    }
}

// ---------------------------------------------------------------- timers

pub async fn timers_claim_lease_move_and_cancel(store: Arc<dyn Store>) {
    let store = &*store;
    let id = EnrollmentId::new();
    let timer = Timer {
        enrollment_id: id,
        kind: TimerKind::ExpirePlan,
        due: t0(),
        attempt: 0,
    };
    store.set_timer(timer).await.expect("set");
    let claim = |now: DateTime<Utc>, max: usize| store.claim_due_timers(now, LEASE, max);

    assert!(
        claim(t0() - minutes(1), 10)
            .await
            .expect("claim")
            .is_empty(),
        "not due yet"
    );
    assert_eq!(claim(t0(), 10).await.expect("claim"), vec![timer]);
    assert!(claim(t0(), 10).await.expect("claim").is_empty(), "leased");
    assert!(
        claim(t0() + TimeDelta::seconds(59), 10)
            .await
            .expect("claim")
            .is_empty(),
        "still leased"
    );
    // The lease ran out and nobody cancelled or moved it: due again.
    let again = claim(t0() + TimeDelta::seconds(60), 10)
        .await
        .expect("claim");
    assert_eq!(again.len(), 1);
    assert_eq!(
        (again[0].enrollment_id, again[0].kind),
        (id, TimerKind::ExpirePlan)
    );

    // Setting it again moves it (one timer per enrollment and kind).
    let moved = Timer {
        due: t0() + minutes(60),
        attempt: 1,
        ..timer
    };
    store.set_timer(moved).await.expect("set");
    assert!(
        claim(t0() + minutes(30), 10)
            .await
            .expect("claim")
            .is_empty()
    );
    assert_eq!(
        claim(t0() + minutes(60), 10).await.expect("claim"),
        vec![moved]
    );
    store
        .cancel_timer(id, TimerKind::ExpirePlan)
        .await
        .expect("cancel");
    assert!(
        claim(far_future(), 10).await.expect("claim").is_empty(),
        "cancelled"
    );
    // Cancelling what is not there is fine.
    store
        .cancel_timer(id, TimerKind::Refund)
        .await
        .expect("cancel");

    // Kinds are independent.
    let other = EnrollmentId::new();
    for kind in [TimerKind::IssueDocument, TimerKind::ExpirePlan] {
        store
            .set_timer(Timer {
                enrollment_id: other,
                kind,
                due: t0(),
                attempt: 0,
            })
            .await
            .expect("set");
    }
    store
        .cancel_timer(other, TimerKind::ExpirePlan)
        .await
        .expect("cancel");
    let left = claim(far_future(), 10).await.expect("claim");
    assert_eq!(left.len(), 1);
    assert_eq!(
        (left[0].enrollment_id, left[0].kind),
        (other, TimerKind::IssueDocument)
    );
    store
        .cancel_timer(other, TimerKind::IssueDocument)
        .await
        .expect("cancel");

    // At most `max`, each once.
    let mut ids = HashSet::new();
    for _ in 0..5 {
        let t = Timer {
            enrollment_id: EnrollmentId::new(),
            kind: TimerKind::Refund,
            due: t0(),
            attempt: 0,
        };
        ids.insert(t.enrollment_id);
        store.set_timer(t).await.expect("set");
    }
    let two = claim(t0(), 2).await.expect("claim");
    assert_eq!(two.len(), 2);
    let three = claim(t0(), 10).await.expect("claim");
    assert_eq!(three.len(), 3);
    let claimed: HashSet<EnrollmentId> =
        two.iter().chain(&three).map(|t| t.enrollment_id).collect();
    assert_eq!(claimed, ids);
}

pub async fn timer_ops_apply_with_the_append(store: Arc<dyn Store>) {
    let store = &*store;
    let mut journey = Journey::new(CustomerNo::new(1));
    let expire = Timer {
        enrollment_id: journey.id,
        kind: TimerKind::ExpirePlan,
        due: t0() + TimeDelta::days(30),
        attempt: 0,
    };
    journey
        .commit(store, Step::SavePlan, &[TimerOp::Set(expire)])
        .await;
    assert!(
        store
            .claim_due_timers(t0(), LEASE, 10)
            .await
            .expect("claim")
            .is_empty()
    );

    let issue = Timer {
        enrollment_id: journey.id,
        kind: TimerKind::IssueDocument,
        due: t0() + minutes(2),
        attempt: 0,
    };
    journey
        .commit(
            store,
            Step::RequestDocument,
            &[TimerOp::Cancel(TimerKind::ExpirePlan), TimerOp::Set(issue)],
        )
        .await;
    let due = store
        .claim_due_timers(far_future(), LEASE, 10)
        .await
        .expect("claim");
    assert_eq!(due, vec![issue]);
}

// ---------------------------------------------------------------- customers

/// A keyed registration makes one customer, however often its request comes; another
/// request makes another, and concurrent tries of one request agree on one number.
pub async fn customers_are_registered_once_per_request(store: Arc<dyn Store>) {
    let keep = Duration::from_secs(60);
    let first = store
        .create_customer_for("POST /customers key-1", new_customer("김보험"), t0(), keep)
        .await
        .expect("create");
    let again = store
        .create_customer_for("POST /customers key-1", new_customer("김보험"), t0(), keep)
        .await
        .expect("create again");
    assert_eq!(again, first, "the same request: the same customer");
    let other_details = store
        .create_customer_for("POST /customers key-1", new_customer("이가입"), t0(), keep)
        .await
        .expect("create with other details");
    assert_eq!(
        other_details, first,
        "what the request registered, for the caller to compare"
    );
    let second = store
        .create_customer_for("POST /customers key-2", new_customer("김보험"), t0(), keep)
        .await
        .expect("create under another request");
    assert_ne!(second.customer_no, first.customer_no);
    let plain = store
        .create_customer(new_customer("박청약"), t0())
        .await
        .expect("create unkeyed");
    assert!(plain.customer_no != first.customer_no && plain.customer_no != second.customer_no);

    let tries = (0..8).map(|_| {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            store
                .create_customer_for("POST /customers key-3", new_customer("최동시"), t0(), keep)
                .await
                .expect("create concurrently")
                .customer_no
        })
    });
    let numbers: HashSet<CustomerNo> = futures_util::future::join_all(tries)
        .await
        .into_iter()
        .map(|n| n.expect("task"))
        .collect();
    assert_eq!(numbers.len(), 1, "{numbers:?}");
}

pub async fn customers_are_numbered_from_one(store: Arc<dyn Store>) {
    let mut created = Vec::new();
    for name in ["김보험", "이가입", "박청약"] {
        created.push(
            store
                .create_customer(new_customer(name), t0())
                .await
                .expect("create"),
        );
    }
    let numbers: Vec<u64> = created.iter().map(|c| c.customer_no.get()).collect();
    assert_eq!(numbers, [1, 2, 3]);
    assert_eq!(created[1].name.as_str(), "이가입");
    assert_eq!(created[1].registered_at, t0());
    assert_eq!(
        store.customer(CustomerNo::new(2)).await.expect("get"),
        Some(created[1].clone())
    );
    assert_eq!(
        store.customer(CustomerNo::new(99)).await.expect("get"),
        None
    );

    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            store
                .create_customer(new_customer(&format!("고객{i}")), t0())
                .await
                .expect("create")
                .customer_no
                .get()
        }));
    }
    let mut numbers = Vec::new();
    for task in tasks {
        numbers.push(task.await.expect("task"));
    }
    numbers.sort_unstable();
    assert_eq!(numbers, (4..=23).collect::<Vec<u64>>());
}

pub async fn reservations_respect_the_limit(store: Arc<dyn Store>) {
    let store = &*store;
    let no = CustomerNo::new(1);
    let m = |n: u64| Won::new(n * 1_000_000);
    let limit = m(100);
    let (e1, e2, e3) = (
        EnrollmentId::new(),
        EnrollmentId::new(),
        EnrollmentId::new(),
    );
    let reserve =
        |e: EnrollmentId, amount: Won| store.reserve_limit(no, "EZ-TERM", e, amount, limit);

    assert_eq!(
        reserve(e1, m(60)).await.expect("reserve"),
        Reservation::Reserved { total: m(60) }
    );
    assert_eq!(
        reserve(e2, m(50)).await.expect("reserve"),
        Reservation::Exceeded { held: m(60), limit }
    );
    // Idempotent per enrollment.
    assert_eq!(
        reserve(e1, m(60)).await.expect("reserve"),
        Reservation::Reserved { total: m(60) }
    );
    assert_eq!(
        reserve(e3, m(40)).await.expect("reserve"),
        Reservation::Reserved { total: m(100) }
    );
    // Another product, another customer: separate limits.
    assert_eq!(
        store
            .reserve_limit(no, "EZ-WL", e2, m(50), limit)
            .await
            .expect("reserve"),
        Reservation::Reserved { total: m(50) }
    );
    assert_eq!(
        store
            .reserve_limit(CustomerNo::new(2), "EZ-TERM", e2, m(50), limit)
            .await
            .expect("reserve"),
        Reservation::Reserved { total: m(50) }
    );

    store
        .release_limit(no, "EZ-TERM", e1)
        .await
        .expect("release");
    store
        .release_limit(no, "EZ-TERM", e1)
        .await
        .expect("release twice");
    store
        .release_limit(no, "EZ-TERM", EnrollmentId::new())
        .await
        .expect("release of nothing");
    assert_eq!(
        reserve(e2, m(50)).await.expect("reserve"),
        Reservation::Reserved { total: m(90) }
    );

    // A new amount for the same enrollment replaces its reservation, within the limit.
    assert_eq!(
        reserve(e2, m(60)).await.expect("reserve"),
        Reservation::Reserved { total: m(100) }
    );
    assert_eq!(
        reserve(e2, m(70)).await.expect("reserve"),
        Reservation::Exceeded { held: m(40), limit }
    );
    assert_eq!(
        reserve(e2, m(60)).await.expect("reserve"),
        Reservation::Reserved { total: m(100) },
        "a refused change keeps the reservation it had"
    );
}

pub async fn concurrent_reservations_stay_within_the_limit(store: Arc<dyn Store>) {
    let no = CustomerNo::new(1);
    let amount = Won::new(100_000_000);
    let limit = Won::new(1_000_000_000);
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            store
                .reserve_limit(no, "EZ-TERM", EnrollmentId::new(), amount, limit)
                .await
                .expect("reserve")
        }));
    }
    let mut reserved = 0;
    for task in tasks {
        match task.await.expect("task") {
            Reservation::Reserved { total } => {
                assert!(total <= limit);
                reserved += 1;
            }
            Reservation::Exceeded { held, .. } => assert!(held <= limit),
        }
    }
    assert_eq!(reserved, 10, "exactly as many as fit");
    assert_eq!(
        store
            .reserve_limit(no, "EZ-TERM", EnrollmentId::new(), Won::new(1), limit)
            .await
            .expect("reserve"),
        Reservation::Exceeded { held: limit, limit }
    );
}

// ---------------------------------------------------------------- products

pub async fn products_conflict_and_list_by_code_then_version(store: Arc<dyn Store>) {
    let spec = |code: &str, version: u32| {
        let mut spec = CATALOG
            .latest(code)
            .expect("demo product")
            .product()
            .spec()
            .clone();
        spec.version = Some(version);
        spec
    };
    // Stored out of order; 10 sorts after 2 (numbers, not text).
    for (code, version) in [
        ("EZ-WL", 1),
        ("EZ-TERM", 10),
        ("EZ-TERM", 1),
        ("EZ-TERM", 2),
    ] {
        store.put_product(&spec(code, version)).await.expect("put");
    }
    let mut changed = spec("EZ-TERM", 2);
    changed.name = "바뀐 이름".to_owned();
    assert!(matches!(
        store.put_product(&changed).await,
        Err(StoreError::Conflict { .. })
    ));
    let mut unversioned = spec("EZ-ENDOW", 1);
    unversioned.version = None;
    assert!(store.put_product(&unversioned).await.is_err());

    let listed = store.products().await.expect("products");
    let keys: Vec<(&str, Option<u32>)> = listed
        .iter()
        .map(|s| (s.code.as_str(), s.version))
        .collect();
    assert_eq!(
        keys,
        [
            ("EZ-TERM", Some(1)),
            ("EZ-TERM", Some(2)),
            ("EZ-TERM", Some(10)),
            ("EZ-WL", Some(1)),
        ]
    );
    assert_eq!(listed[1], spec("EZ-TERM", 2), "the first write is kept");
}

// ---------------------------------------------------------------- read model

pub fn view(
    id: EnrollmentId,
    customer_no: CustomerNo,
    status: Status,
    version: u64,
    updated_at: DateTime<Utc>,
) -> MyPageView {
    let plan = plan();
    MyPageView {
        enrollment_id: id,
        customer_no,
        product_code: plan.product_code,
        product_version: plan.product_version,
        product_name: plan.product_name,
        status,
        sum_insured: plan.sum_insured,
        installment: plan.quote.installment,
        payment_cycle: plan.payment_cycle,
        coverage_period: plan.coverage_period,
        payment_period: plan.payment_period.get(),
        contract_no: (status == Status::Contracted).then(|| format!("CT-{id}")),
        version,
        updated_at,
    }
}

/// Counts as a map; a backend may leave out statuses with none.
async fn counts(store: &dyn Store) -> HashMap<Status, u64> {
    let listed = store.count_by_status().await.expect("counts");
    let map: HashMap<Status, u64> = listed.iter().copied().collect();
    assert_eq!(map.len(), listed.len(), "a status is listed twice");
    map.into_iter().filter(|&(_, n)| n > 0).collect()
}

pub async fn views_are_written_only_forward(store: Arc<dyn Store>) {
    let store = &*store;
    let id = EnrollmentId::new();
    let no = CustomerNo::new(1);
    let v3 = view(id, no, Status::DocumentIssued, 3, t0() + minutes(3));
    assert_eq!(store.view(id).await.expect("view"), None);
    assert!(store.upsert_view(&v3).await.expect("upsert"));
    let v2 = view(id, no, Status::DocumentRequested, 2, t0() + minutes(2));
    assert!(
        !store.upsert_view(&v2).await.expect("upsert"),
        "older version ignored"
    );
    let mut v3_again = v3.clone();
    v3_again.product_name = "재전송".to_owned();
    assert!(
        !store.upsert_view(&v3_again).await.expect("upsert"),
        "same version ignored"
    );
    assert_eq!(store.view(id).await.expect("view"), Some(v3));
    let v5 = view(id, no, Status::Contracted, 5, t0() + minutes(5));
    assert!(store.upsert_view(&v5).await.expect("upsert"));
    assert_eq!(store.view(id).await.expect("view"), Some(v5));
    assert_eq!(
        counts(store).await,
        HashMap::from([(Status::Contracted, 1)])
    );
}

pub async fn views_filter_order_and_count(store: Arc<dyn Store>) {
    let store = &*store;
    let (a, b) = (CustomerNo::new(1), CustomerNo::new(2));
    let at = |m: i64| t0() + minutes(m);
    let a1 = view(EnrollmentId::new(), a, Status::Planned, 1, at(1));
    let a3 = view(EnrollmentId::new(), a, Status::Contracted, 5, at(3));
    let a2 = view(EnrollmentId::new(), a, Status::Planned, 1, at(2));
    let b5 = view(EnrollmentId::new(), b, Status::Planned, 1, at(5));
    let b4 = view(EnrollmentId::new(), b, Status::Proposed, 4, at(4));
    // Same time as b5, later version: ranks before it.
    let b5_later = view(EnrollmentId::new(), b, Status::Proposed, 6, at(5));
    for v in [&a1, &a3, &a2, &b5, &b4, &b5_later] {
        assert!(store.upsert_view(v).await.expect("upsert"));
    }
    let all = ViewFilter::default();
    assert_eq!(
        store.views(all, 100).await.expect("views"),
        vec![
            b5_later.clone(),
            b5.clone(),
            b4.clone(),
            a3.clone(),
            a2.clone(),
            a1.clone()
        ]
    );
    assert_eq!(
        store.views(all, 2).await.expect("views"),
        vec![b5_later.clone(), b5.clone()]
    );
    assert!(store.views(all, 0).await.expect("views").is_empty());
    let of_a = ViewFilter {
        customer_no: Some(a),
        status: None,
    };
    assert_eq!(
        store.views(of_a, 100).await.expect("views"),
        vec![a3.clone(), a2.clone(), a1.clone()]
    );
    let planned = ViewFilter {
        customer_no: None,
        status: Some(Status::Planned),
    };
    assert_eq!(
        store.views(planned, 100).await.expect("views"),
        vec![b5.clone(), a2.clone(), a1.clone()]
    );
    let planned_of_a = ViewFilter {
        customer_no: Some(a),
        status: Some(Status::Planned),
    };
    assert_eq!(
        store.views(planned_of_a, 1).await.expect("views"),
        vec![a2.clone()]
    );
    let nobody = ViewFilter {
        customer_no: Some(CustomerNo::new(99)),
        status: None,
    };
    assert!(store.views(nobody, 100).await.expect("views").is_empty());

    assert_eq!(
        counts(store).await,
        HashMap::from([
            (Status::Planned, 3),
            (Status::Contracted, 1),
            (Status::Proposed, 2)
        ])
    );
    // A status change moves the count; a refused write does not.
    let a1_next = view(a1.enrollment_id, a, Status::DocumentRequested, 2, at(6));
    assert!(store.upsert_view(&a1_next).await.expect("upsert"));
    assert!(!store.upsert_view(&a1).await.expect("upsert"));
    assert_eq!(
        counts(store).await,
        HashMap::from([
            (Status::Planned, 2),
            (Status::DocumentRequested, 1),
            (Status::Contracted, 1),
            (Status::Proposed, 2)
        ])
    );
    assert_eq!(
        store.views(of_a, 1).await.expect("views"),
        vec![a1_next],
        "the changed view is now the most recent"
    );
}

pub async fn alarms_are_recorded_once_and_listed_newest_first(store: Arc<dyn Store>) {
    let store = &*store;
    let (a, b) = (CustomerNo::new(1), CustomerNo::new(2));
    let alarm = |customer_no: CustomerNo, m: i64| Alarm {
        event_id: Uuid::now_v7(),
        enrollment_id: EnrollmentId::new(),
        customer_no,
        status: Status::Planned,
        message: format!("{} 알림 {m}", customer_no),
        sent_at: t0() + minutes(m),
    };
    let a1 = alarm(a, 1);
    let a3 = alarm(a, 3);
    let a2 = alarm(a, 2);
    let b4 = alarm(b, 4);
    for x in [&a1, &a3, &a2, &b4] {
        assert!(store.record_alarm(x).await.expect("record"));
    }
    let mut replay = a3.clone();
    replay.message = "다시".to_owned();
    replay.sent_at = t0() + minutes(9);
    assert!(
        !store.record_alarm(&replay).await.expect("record"),
        "one per event"
    );

    assert_eq!(
        store.alarms(Some(a), 10).await.expect("alarms"),
        vec![a3.clone(), a2.clone(), a1.clone()]
    );
    assert_eq!(
        store.alarms(None, 2).await.expect("alarms"),
        vec![b4.clone(), a3.clone()]
    );
    assert_eq!(store.alarms(None, 10).await.expect("alarms").len(), 4);
    assert!(
        store
            .alarms(Some(CustomerNo::new(99)), 10)
            .await
            .expect("alarms")
            .is_empty()
    );
}

// ---------------------------------------------------------------- idempotency

pub async fn idempotency_is_put_if_absent_with_ttl(store: Arc<dyn Store>) {
    let store = &*store;
    let hour = Duration::from_secs(3600);
    assert!(
        store
            .idempotent_put("k", b"first", hour)
            .await
            .expect("put")
    );
    assert!(
        !store
            .idempotent_put("k", b"second", hour)
            .await
            .expect("put")
    );
    assert_eq!(
        store.idempotent_get("k").await.expect("get"),
        Some(b"first".to_vec())
    );
    assert_eq!(store.idempotent_get("missing").await.expect("get"), None);

    let short = Duration::from_millis(50);
    assert!(
        store
            .idempotent_put("short", b"x", short)
            .await
            .expect("put")
    );
    assert!(
        store
            .idempotent_put("short-2", b"x", short)
            .await
            .expect("put")
    );
    assert_eq!(
        store.idempotent_get("short").await.expect("get"),
        Some(b"x".to_vec())
    );
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(
        store.idempotent_get("short").await.expect("get"),
        None,
        "expired"
    );
    // An expired key is absent to a put, too (with or without a read first).
    assert!(
        store
            .idempotent_put("short", b"y", hour)
            .await
            .expect("put")
    );
    assert!(
        store
            .idempotent_put("short-2", b"z", hour)
            .await
            .expect("put")
    );
    assert_eq!(
        store.idempotent_get("short").await.expect("get"),
        Some(b"y".to_vec())
    );
    assert_eq!(
        store.idempotent_get("short-2").await.expect("get"),
        Some(b"z".to_vec())
    );
}

// ---------------------------------------------------------------- recovery

/// `corrupt` overwrites the stored snapshot of the enrollment with bytes that do not
/// decode (each backend knows how).
pub async fn corrupt_snapshot_is_an_error<F, Fut>(store: Arc<dyn Store>, corrupt: F)
where
    F: FnOnce(EnrollmentId) -> Fut,
    Fut: Future<Output = ()>,
{
    let store = &*store;
    let mut broken = Journey::new(CustomerNo::new(1));
    broken.run(store, &[Step::SavePlan]).await;
    let mut fine = Journey::new(CustomerNo::new(1));
    fine.run(store, &UP_TO_PROPOSAL).await;

    corrupt(broken.id).await;
    match store.load(broken.id).await {
        Err(StoreError::Corrupt { key, .. }) => assert!(!key.is_empty()),
        other => panic!("expected Corrupt, got {other:?}"),
    }
    // The history and the other enrollments are untouched.
    assert_eq!(store.history(broken.id).await.expect("history").len(), 1);
    let (version, state) = store.load(fine.id).await.expect("load").expect("stored");
    assert_eq!(version, 4);
    assert_eq!(Some(Arc::unwrap_or_clone(state)), fine.state);
}

/// Events as appends take them: shared.
pub fn shared(events: &[EventEnvelope]) -> Vec<Arc<EventEnvelope>> {
    events.iter().cloned().map(Arc::new).collect()
}

pub async fn idempotency_claims_are_exclusive(store: Arc<dyn Store>) {
    let hour = Duration::from_secs(3600);
    assert_eq!(
        store.idempotent_claim("k", hour).await.expect("claim"),
        IdempotencyClaim::Claimed
    );
    assert_eq!(
        store.idempotent_claim("k", hour).await.expect("claim"),
        IdempotencyClaim::InProgress,
        "claimed by someone else"
    );
    assert_eq!(
        store.idempotent_get("k").await.expect("get"),
        None,
        "a claim is not an answer"
    );
    assert!(
        store
            .idempotent_put("k", b"answer", hour)
            .await
            .expect("put")
    );
    assert_eq!(
        store.idempotent_claim("k", hour).await.expect("claim"),
        IdempotencyClaim::Done(b"answer".to_vec())
    );
    store.idempotent_release("k").await.expect("release");
    assert_eq!(
        store.idempotent_get("k").await.expect("get"),
        Some(b"answer".to_vec()),
        "releasing never drops an answer"
    );
    assert!(
        !store
            .idempotent_put("k", b"other", hour)
            .await
            .expect("put")
    );

    // A released claim can be claimed again; so can one whose lease ran out.
    store.idempotent_claim("r", hour).await.expect("claim");
    store.idempotent_release("r").await.expect("release");
    assert_eq!(
        store.idempotent_claim("r", hour).await.expect("claim"),
        IdempotencyClaim::Claimed
    );
    let short = Duration::from_millis(100);
    store.idempotent_claim("l", short).await.expect("claim");
    tokio::time::sleep(short * 3).await;
    assert_eq!(
        store.idempotent_claim("l", hour).await.expect("claim"),
        IdempotencyClaim::Claimed,
        "the dead holder's lease ran out"
    );

    // Racing claims: exactly one wins.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            store.idempotent_claim("race", hour).await.expect("claim")
        }));
    }
    let mut claimed = 0;
    for task in tasks {
        match task.await.expect("task") {
            IdempotencyClaim::Claimed => claimed += 1,
            IdempotencyClaim::InProgress => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(claimed, 1);
}

pub async fn batches_of_alarms_and_views_behave_like_one_at_a_time(store: Arc<dyn Store>) {
    let (a, b) = (CustomerNo::new(1), CustomerNo::new(2));
    let alarm = |customer_no: CustomerNo, m: i64| Alarm {
        event_id: Uuid::now_v7(),
        enrollment_id: EnrollmentId::new(),
        customer_no,
        status: Status::Planned,
        message: format!("{customer_no} 알림 {m}"),
        sent_at: t0() + minutes(m),
    };
    let (a1, b2, a3) = (alarm(a, 1), alarm(b, 2), alarm(a, 3));
    assert!(store.record_alarm(&a1).await.expect("record"));
    let mut again = a3.clone();
    again.message = "다시".to_owned();
    assert_eq!(
        store
            .record_alarms(&[a1.clone(), b2.clone(), a3.clone(), again].map(Arc::new))
            .await
            .expect("record"),
        vec![false, true, true, false],
        "one per event, also within a batch"
    );
    assert!(store.record_alarms(&[]).await.expect("record").is_empty());
    assert_eq!(
        store.alarms(Some(a), 10).await.expect("alarms"),
        vec![a3.clone(), a1.clone()]
    );
    assert_eq!(
        store.alarms(None, 10).await.expect("alarms"),
        vec![a3, b2, a1]
    );

    let (x, y) = (EnrollmentId::new(), EnrollmentId::new());
    let x2 = view(x, a, Status::DocumentRequested, 2, t0() + minutes(2));
    assert!(store.upsert_view(&x2).await.expect("upsert"));
    let written = store
        .upsert_views(&[
            view(x, a, Status::Planned, 1, t0() + minutes(1)),
            view(y, b, Status::Planned, 1, t0() + minutes(3)),
            view(x, a, Status::Contracted, 5, t0() + minutes(5)),
            view(y, b, Status::Planned, 1, t0() + minutes(3)),
        ])
        .await
        .expect("upsert");
    assert_eq!(written, vec![false, true, true, false], "only forward");
    assert!(store.upsert_views(&[]).await.expect("upsert").is_empty());
    let x = store.view(x).await.expect("view").expect("x");
    assert_eq!((x.status, x.version), (Status::Contracted, 5));
    let counts: HashMap<Status, u64> = store
        .count_by_status()
        .await
        .expect("counts")
        .into_iter()
        .collect();
    assert_eq!(counts.get(&Status::Contracted), Some(&1));
    assert_eq!(counts.get(&Status::Planned), Some(&1));
    assert_eq!(
        counts.get(&Status::DocumentRequested).copied().unwrap_or(0),
        0
    );
    let ids: Vec<EnrollmentId> = store
        .views(ViewFilter::default(), 10)
        .await
        .expect("views")
        .iter()
        .map(|v| v.enrollment_id)
        .collect();
    assert_eq!(ids, vec![x.enrollment_id, y], "most recently changed first");
}

/// A batch of views larger than any one write of a backend (Redis writes at most 64 per
/// script call): every answer in the batch's order, each view as if written one at a
/// time, including an enrollment that comes back in a later part of the batch.
pub async fn a_large_batch_of_views_is_written_whole_and_in_order(store: Arc<dyn Store>) {
    let store = &*store;
    let ids: Vec<EnrollmentId> = (0..150).map(|_| EnrollmentId::new()).collect();
    let no = |i: usize| CustomerNo::new(1 + (i % 7) as u64);
    let mut batch = Vec::new();
    let mut expected = Vec::new();
    for (i, &id) in ids.iter().enumerate() {
        batch.push(view(
            id,
            no(i),
            Status::Planned,
            1,
            t0() + minutes(i as i64),
        ));
        expected.push(true);
    }
    // Back again, well past the first parts: newer (written), the same version and older
    // (both refused).
    for (i, &id) in ids.iter().enumerate().take(40) {
        let later = t0() + minutes(1000 + i as i64);
        let (status, version, written) = match i % 3 {
            0 => (Status::DocumentRequested, 2, true),
            1 => (Status::Planned, 1, false),
            _ => (Status::Withdrawn, 0, false),
        };
        batch.push(view(id, no(i), status, version, later));
        expected.push(written);
    }
    let written = store.upsert_views(&batch).await.expect("upsert");
    assert_eq!(
        written, expected,
        "one answer per view, in the batch's order"
    );
    for (i, &id) in ids.iter().enumerate() {
        let stored = store.view(id).await.expect("view").expect("written");
        let version = if i < 40 && i % 3 == 0 { 2 } else { 1 };
        assert_eq!(stored.version, version, "view {i}");
    }
    let moved = (0..40).filter(|i| i % 3 == 0).count() as u64;
    assert_eq!(
        counts(store).await,
        HashMap::from([
            (Status::Planned, ids.len() as u64 - moved),
            (Status::DocumentRequested, moved),
        ])
    );
    let listed = store
        .views(ViewFilter::default(), 1000)
        .await
        .expect("views");
    assert_eq!(listed.len(), ids.len(), "every enrollment listed once");
}
