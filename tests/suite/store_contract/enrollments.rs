//! Enrollments: appends, loads, histories, conflicts, the document text, corrupt snapshots.

use chrono::TimeDelta;
use ezenroll::domain::enrollment::{Command, CustomerNo, EnrollmentId, Status};
use ezenroll::store::{Append, EventEnvelope, Store, StoreError, Timer, TimerKind, TimerOp};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

use super::fixtures::*;

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
                fence: None,
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
                    fence: None,
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
                    fence: None,
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
            fence: None,
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
            fence: None,
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
            fence: None,
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
            fence: None,
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
