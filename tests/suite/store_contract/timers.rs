//! Timers: claimed under a lease, moved, cancelled, and written with the append.

use chrono::{DateTime, TimeDelta, Utc};
use ezenroll::domain::enrollment::{CustomerNo, EnrollmentId};
use ezenroll::store::{Store, Timer, TimerKind, TimerOp};
use std::collections::HashSet;
use std::sync::Arc;

use super::fixtures::*;

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
