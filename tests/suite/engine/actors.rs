//! The enrollment actors: restarted after a panic, failed on a corrupt snapshot, passivated
//! and reactivated, and where they run.

use ezenroll::actors::ChaosHook;
use ezenroll::actors::{EngineConfig, EngineError};
use ezenroll::domain::enrollment::{Command, EnrollmentId, PaymentMethod, Status};
use ezenroll::store::{Store, StoreError};
use std::collections::HashSet;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use super::fixtures::*;
use super::helpers::{customer_views, event_types};

/// 4. A panic in one enrollment's handling: that call fails, the actor is restarted from
///    the store with its state intact, and an enrollment handled at the same time (on the
///    same arbiter thread) never notices.
pub async fn a_panic_restarts_only_that_enrollment_with_its_state_intact(store: Arc<dyn Store>) {
    let target: Arc<OnceLock<EnrollmentId>> = Arc::new(OnceLock::new());
    let fired = Arc::new(AtomicBool::new(false));
    let chaos: ChaosHook = {
        let (target, fired) = (Arc::clone(&target), Arc::clone(&fired));
        Arc::new(move |id: EnrollmentId, command: &Command| {
            if target.get() == Some(&id)
                && matches!(command, Command::RequestDocument { .. })
                && !fired.swap(true, Ordering::SeqCst)
            {
                panic!("chaos: injected failure for {id}");
            }
        })
    };
    let config = EngineConfig {
        // Both enrollments live on the one arbiter thread: a panic that escaped would take
        // the bystander down with it.
        arbiters: 1,
        ..test_config()
    };
    let h = start_with_chaos(
        Arc::clone(&store),
        config,
        healthy_provider(&store),
        Some(chaos),
    )
    .await;
    let engine = &h.engine;
    let customer = register_customer(engine, "한지민").await;
    let victim = engine
        .save_plan(term_plan(customer.customer_no, 100_000_000))
        .await
        .expect("plan");
    let bystander = engine
        .save_plan(term_plan(customer.customer_no, 100_000_000))
        .await
        .expect("plan");
    let (victim_id, bystander_id) = (victim.state.id, bystander.state.id);
    target.set(victim_id).expect("target set once");

    let (hit, unaffected) = tokio::join!(
        engine.request_document(victim_id),
        engine.request_document(bystander_id)
    );
    match hit {
        Err(EngineError::Internal(message)) => {
            assert!(message.contains("RequestDocument"), "{message}");
            assert!(message.contains("chaos"), "{message}");
        }
        other => panic!("the panicking call fails as Internal, got {other:?}"),
    }
    assert!(fired.load(Ordering::SeqCst));
    let unaffected = unaffected.expect("the bystander is unaffected");
    assert_eq!(unaffected.state.status, Status::DocumentRequested);

    // Restarted and reloaded: same version, same state, nothing written.
    let after = engine
        .enrollment(victim_id)
        .await
        .expect("the restarted actor answers");
    assert_eq!(after.version, victim.version);
    assert_same_state(&after.state, &victim.state);
    assert_eq!(
        event_types(&engine.history(victim_id).await.expect("history")),
        ["PlanSaved"]
    );
    assert!(engine.stats().restarts.load(Ordering::SeqCst) >= 1);

    // Both carry on to a contract.
    engine
        .request_document(victim_id)
        .await
        .expect("the retried command goes through");
    for id in [victim_id, bystander_id] {
        wait_status(engine, id, Status::DocumentIssued).await;
        let contracted = engine
            .submit_proposal(id, PaymentMethod::Card)
            .await
            .expect("contracted");
        assert_eq!(contracted.state.status, Status::Contracted);
    }
    assert_eq!(h.provider.approved_charges(), 2);

    engine.shutdown().await;
}

/// Passivates every live actor (the next call re-activates from the store). An actor
/// with a call in flight (say the issuer's, whose append just woke a waiter) is kept
/// until the call is answered, so this retries briefly.
async fn passivate_all(engine: &ezenroll::actors::EngineHandle) -> usize {
    let mut n = 0;
    for _ in 0..200 {
        n += engine.passivate_idle(Duration::ZERO);
        if engine.active_actors() == 0 {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{} enrollment actors stayed busy", engine.active_actors());
}

/// 5. A snapshot that does not decode: that enrollment's calls fail as `Store(Corrupt)`,
///    every other enrollment works.
///
/// `corrupt` makes the stored snapshot of the enrollment it is given undecodable (how is
/// the backend's business); the history stays as it is.
pub async fn a_corrupt_snapshot_fails_only_its_enrollment<F, Fut>(store: Arc<dyn Store>, corrupt: F)
where
    F: FnOnce(EnrollmentId) -> Fut,
    Fut: Future<Output = ()>,
{
    let h = start_default(Arc::clone(&store)).await;
    let engine = &h.engine;
    let customer = register_customer(engine, "오세훈").await;
    let bad = drive_to_document_issued(engine, term_plan(customer.customer_no, 100_000_000))
        .await
        .state
        .id;
    let good = drive_to_document_issued(engine, term_plan(customer.customer_no, 100_000_000))
        .await
        .state
        .id;
    assert!(passivate_all(engine).await >= 2);
    corrupt(bad).await;

    let corrupt = |result: Result<_, EngineError>| match result {
        Err(EngineError::Store(StoreError::Corrupt { key, .. })) => {
            assert!(key.contains(&bad.to_string()), "{key}")
        }
        other => panic!("a corrupt snapshot fails as Store(Corrupt), got {other:?}"),
    };
    corrupt(engine.enrollment(bad).await);
    corrupt(engine.submit_proposal(bad, PaymentMethod::Card).await);
    // A restart reloads from the store and finds it as corrupt as before.
    corrupt(engine.enrollment(bad).await);
    assert_eq!(
        h.provider.approved_charges(),
        0,
        "nothing was charged for it"
    );
    assert_eq!(
        engine.history(bad).await.expect("history").len(),
        3,
        "its events are intact"
    );

    let contracted = engine
        .submit_proposal(good, PaymentMethod::Card)
        .await
        .expect("another enrollment is fine");
    assert_eq!(contracted.state.status, Status::Contracted);
    let other = engine
        .save_plan(term_plan(customer.customer_no, 100_000_000))
        .await
        .expect("new enrollments are fine");
    assert_eq!(other.state.status, Status::Planned);
    assert_eq!(h.provider.approved_charges(), 1);

    engine.shutdown().await;
}

/// 6. Passivation: idle actors stop and come back from the store with the right state.
pub async fn passivated_actors_reactivate_from_the_store(store: Arc<dyn Store>) {
    let h = start_default(Arc::clone(&store)).await;
    let engine = &h.engine;
    let customer = register_customer(engine, "윤서연").await;
    let issued =
        drive_to_document_issued(engine, term_plan(customer.customer_no, 100_000_000)).await;
    let id = issued.state.id;
    let before = engine.enrollment(id).await.expect("enrollment");
    assert!(engine.active_actors() >= 1);

    assert!(passivate_all(engine).await >= 1);
    assert!(engine.stats().passivated.load(Ordering::SeqCst) >= 1);
    let again = engine.enrollment(id).await.expect("re-activated");
    assert_eq!(again.version, before.version);
    assert_same_state(&again.state, &before.state);
    assert_eq!(engine.active_actors(), 1);

    // A re-activated actor appends at the right version.
    passivate_all(engine).await;
    let contracted = engine
        .submit_proposal(id, PaymentMethod::Card)
        .await
        .expect("contracted after re-activation");
    assert_eq!(contracted.state.status, Status::Contracted);
    assert_eq!(contracted.version, before.version + 2);
    engine.shutdown().await;
}

/// 6b. The sweeper passivates idle actors by itself; they come back with the right state.
pub async fn the_sweeper_passivates_idle_actors(store: Arc<dyn Store>) {
    let config = EngineConfig {
        passivate_after: Duration::from_millis(100),
        ..test_config()
    };
    let provider = healthy_provider(&store);
    let h = start(store, config, provider).await;
    let engine = &h.engine;
    let customer = register_customer(engine, "윤서연").await;
    let planned = engine
        .save_plan(term_plan(customer.customer_no, 100_000_000))
        .await
        .expect("plan");
    eventually("the sweeper to passivate the idle actor", || async {
        (engine.active_actors() == 0 && engine.stats().passivated.load(Ordering::SeqCst) >= 1)
            .then_some(())
    })
    .await;
    let again = engine
        .enrollment(planned.state.id)
        .await
        .expect("re-activated");
    assert_eq!(again.version, planned.version);
    assert_same_state(&again.state, &planned.state);
    engine.shutdown().await;
}

/// 17. An engine without arbiters of its own (`serve --threads 1`) runs its actors, the
///     payment gateway and the document issuer on the arbiter of the System it was started
///     in: an enrollment goes from plan to refund, the consumers see it, and every command
///     is handled on the System's thread (with arbiters it would be theirs).
pub async fn without_arbiters_everything_runs_on_the_system_thread(store: Arc<dyn Store>) {
    let system_thread = std::thread::current().id();
    let handled_on: Arc<std::sync::Mutex<HashSet<std::thread::ThreadId>>> = Arc::default();
    let chaos: ChaosHook = {
        let handled_on = Arc::clone(&handled_on);
        Arc::new(move |_: EnrollmentId, _: &Command| {
            if let Ok(mut threads) = handled_on.lock() {
                threads.insert(std::thread::current().id());
            }
        })
    };
    let config = EngineConfig {
        arbiters: 0,
        ..test_config()
    };
    let h = start_with_chaos(
        Arc::clone(&store),
        config,
        healthy_provider(&store),
        Some(chaos),
    )
    .await;
    let engine = &h.engine;
    let customer = register_customer(engine, "단일스레드").await;
    let no = customer.customer_no;
    let issued = drive_to_document_issued(engine, term_plan(no, 100_000_000)).await;
    let id = issued.state.id;
    let contracted = engine
        .submit_proposal(id, PaymentMethod::Card)
        .await
        .expect("paid and contracted");
    assert_eq!(contracted.state.status, Status::Contracted);
    engine.request_withdrawal(id).await.expect("withdrawal");
    let withdrawn = wait_status(engine, id, Status::Withdrawn).await;
    assert!(withdrawn.state.refund_id.is_some());
    assert_eq!(h.calls.charge_calls(), 1);
    assert_eq!(h.calls.refund_calls(), 1);
    let statuses: Vec<Status> = eventually("the MyPage view of the withdrawal", || async {
        let views = engine.mypage(customer_views(no), 10).await.ok()?;
        let statuses: Vec<Status> = views.iter().map(|v| v.status).collect();
        (statuses == [Status::Withdrawn]).then_some(statuses)
    })
    .await;
    assert_eq!(statuses, [Status::Withdrawn]);

    let threads = handled_on.lock().map(|t| t.clone()).unwrap_or_default();
    assert_eq!(
        threads,
        HashSet::from([system_thread]),
        "every command is handled on the System's thread"
    );
    engine.shutdown().await;
}
