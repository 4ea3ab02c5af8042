//! Engines sharing one store: one takes over what another left, decisions on fresh state,
//! the cumulative limit, a plan saved under a chosen id.

use ezenroll::actors::{EngineConfig, EngineError};
use ezenroll::domain::enrollment::{DomainError, EnrollmentId, PaymentMethod, Status};
use ezenroll::domain::money::Won;
use ezenroll::store::Store;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use super::fixtures::*;
use super::helpers::event_types;

/// 7. A restart on the same store: the next engine finishes durable work (a document due,
///    a refund pending) and the consumers resume without duplicates.
pub async fn a_new_engine_on_the_same_store_finishes_what_the_old_one_left(store: Arc<dyn Store>) {
    let config_a = EngineConfig {
        document_delay: Duration::from_millis(300),
        ..test_config()
    };
    let a = start(Arc::clone(&store), config_a, healthy_provider(&store)).await;
    let customer = register_customer(&a.engine, "박철수").await;
    let no = customer.customer_no;

    // X: contracted on A, then withdrawn while A's provider fails every refund.
    let x = drive_to_document_issued(&a.engine, term_plan(no, 100_000_000))
        .await
        .state
        .id;
    a.engine
        .submit_proposal(x, PaymentMethod::Card)
        .await
        .expect("contracted");
    a.provider.set_failure_rate(1.0);
    let withdrawing = a.engine.request_withdrawal(x).await.expect("withdrawal");
    assert_eq!(withdrawing.state.status, Status::WithdrawalRequested);
    eventually("a refund attempt on A", || async {
        (a.calls.refund_calls() >= 1).then_some(())
    })
    .await;

    // Y: document requested, then A stops before it is due.
    let y = a
        .engine
        .save_plan(term_plan(no, 120_000_000))
        .await
        .expect("plan")
        .state
        .id;
    a.engine.request_document(y).await.expect("requested");
    a.engine.shutdown().await;

    let (_, y_left) = stored(&Arc::clone(&store), y).await;
    assert_eq!(
        y_left.status,
        Status::DocumentRequested,
        "A stopped before the document was issued"
    );
    let (_, x_left) = stored(&Arc::clone(&store), x).await;
    assert_eq!(x_left.status, Status::WithdrawalRequested);
    assert_eq!(a.provider.refunds(), 0, "A never managed a refund");

    // B, on the same store, with a healthy provider.
    let b = start(Arc::clone(&store), test_config(), healthy_provider(&store)).await;
    let engine = &b.engine;
    let issued = wait_status(engine, y, Status::DocumentIssued).await;
    assert_eq!(
        issued.state.document.as_ref().map(|d| d.plan_revision),
        Some(1)
    );
    let withdrawn = wait_status(engine, x, Status::Withdrawn).await;
    assert!(withdrawn.state.refund_id.is_some());
    assert_eq!(b.provider.refunds(), 1, "B refunded it, once");
    assert_eq!(a.provider.refunds(), 0);
    assert_eq!(held_of_limit(engine, no, TERM).await, Won::ZERO);

    // Consumers resumed: every event has exactly one alarm, the views are final.
    let mut events = engine.history(x).await.expect("history of X");
    events.extend(engine.history(y).await.expect("history of Y"));
    let event_ids: HashSet<_> = events.iter().map(|e| e.id).collect();
    let wanted = &event_ids;
    let alarms = eventually(
        "an alarm for every event of both enrollments",
        || async move {
            let alarms = engine.alarms(None, 1000).await.ok()?;
            let seen: HashSet<_> = alarms.iter().map(|a| a.event_id).collect();
            wanted.is_subset(&seen).then_some(alarms)
        },
    )
    .await;
    let mut per_event: HashMap<_, usize> = HashMap::new();
    for alarm in &alarms {
        *per_event.entry(alarm.event_id).or_default() += 1;
    }
    for id in &event_ids {
        assert_eq!(
            per_event.get(id),
            Some(&1),
            "exactly one alarm for event {id}"
        );
    }
    assert_eq!(alarms.len(), events.len(), "no alarm for anything else");
    for (id, status) in [(x, Status::Withdrawn), (y, Status::DocumentIssued)] {
        eventually("the MyPage view to reach its final state", || async move {
            engine
                .mypage_view(id)
                .await
                .ok()
                .filter(|v| v.status == status)
        })
        .await;
    }

    // B carries on with Y.
    let contracted = engine
        .submit_proposal(y, PaymentMethod::Card)
        .await
        .expect("contracted on B");
    assert_eq!(contracted.state.status, Status::Contracted);
    assert_eq!(b.provider.approved_charges(), 1);
    engine.shutdown().await;
}

/// 8. The per-customer cumulative limit holds under concurrent proposals and is released
///    by a withdrawal.
pub async fn concurrent_proposals_never_pass_the_cumulative_limit(store: Arc<dyn Store>) {
    let h = start_default(Arc::clone(&store)).await;
    let engine = &h.engine;
    assert_eq!(cumulative_limit(engine, ENDOWMENT), Won::new(500_000_000));
    let customer = register_customer(engine, "강민수").await;
    let no = customer.customer_no;
    let first = drive_to_document_issued(engine, endowment_plan(no, 300_000_000)).await;
    let second = drive_to_document_issued(engine, endowment_plan(no, 300_000_000)).await;

    let (a, b) = tokio::join!(
        engine.submit_proposal(first.state.id, PaymentMethod::Card),
        engine.submit_proposal(second.state.id, PaymentMethod::Card)
    );
    let (winner, loser) = match (a, b) {
        (Ok(won), Err(lost)) => ((first.clone(), won), (second.clone(), lost)),
        (Err(lost), Ok(won)) => ((second.clone(), won), (first.clone(), lost)),
        other => panic!("exactly one of two 300M proposals fits a 500M limit, got {other:?}"),
    };
    assert_eq!(winner.1.state.status, Status::Contracted);
    match loser.1 {
        EngineError::LimitExceeded {
            held,
            limit,
            requested,
        } => assert_eq!(
            (held, limit, requested),
            (
                Won::new(300_000_000),
                Won::new(500_000_000),
                Won::new(300_000_000)
            )
        ),
        other => panic!("the other is refused by the limit, got {other:?}"),
    }
    let (loser_id, winner_id) = (loser.0.state.id, winner.0.state.id);
    let unchanged = engine.enrollment(loser_id).await.expect("enrollment");
    assert_eq!(
        unchanged.version, loser.0.version,
        "the refusal wrote nothing"
    );
    assert_eq!(unchanged.state.status, Status::DocumentIssued);
    assert_eq!(h.provider.approved_charges(), 1);
    assert_eq!(
        held_of_limit(engine, no, ENDOWMENT).await,
        Won::new(300_000_000)
    );

    engine
        .request_withdrawal(winner_id)
        .await
        .expect("withdrawal");
    wait_status(engine, winner_id, Status::Withdrawn).await;
    assert_eq!(held_of_limit(engine, no, ENDOWMENT).await, Won::ZERO);

    let contracted = engine
        .submit_proposal(loser_id, PaymentMethod::Card)
        .await
        .expect("fits once the first is withdrawn");
    assert_eq!(contracted.state.status, Status::Contracted);
    assert_eq!(
        held_of_limit(engine, no, ENDOWMENT).await,
        Won::new(300_000_000)
    );
    assert_eq!(h.provider.approved_charges(), 2);
    engine.shutdown().await;
}

/// Two engines (two server copies) on one store: each has the enrollment's actor live,
/// one moves it on, the other, holding stale state, is asked next. Its write conflicts;
/// it decides again on what the store holds, never on its stale copy, and never errs
/// for a command that is legal on the fresh state.
pub async fn two_engines_on_one_store_decide_on_fresh_state(store: Arc<dyn Store>) {
    let config = EngineConfig {
        document_delay: Duration::from_secs(3600),
        ..test_config()
    };
    let a = start(Arc::clone(&store), config.clone(), healthy_provider(&store)).await;
    let b = start(Arc::clone(&store), config, healthy_provider(&store)).await;
    let customer = register_customer(&a.engine, "최영희").await;
    let no = customer.customer_no;
    let id = a
        .engine
        .save_plan(term_plan(no, 100_000_000))
        .await
        .expect("plan on A")
        .state
        .id;
    // B's actor loads version 1 and moves it to version 2; A's actor still holds 1.
    assert_eq!(
        b.engine
            .enrollment(id)
            .await
            .expect("read on B")
            .state
            .status,
        Status::Planned
    );
    let requested = b.engine.request_document(id).await.expect("document on B");
    assert_eq!(requested.state.status, Status::DocumentRequested);

    // Legal on the fresh state (a plan may be re-saved before the proposal): A conflicts,
    // reloads and succeeds, keeping B's document request.
    let resaved = a
        .engine
        .resave_plan(id, term_plan(no, 150_000_000))
        .await
        .expect("re-saved on A despite its stale copy");
    assert_eq!(resaved.state.plan.sum_insured, Won::new(150_000_000));
    assert_eq!(resaved.state.plan_revision, 2);
    let (version, state) = stored(&store, id).await;
    assert_eq!(version, resaved.version);
    assert_same_state(&state, &resaved.state);
    let types = event_types(&store.history(id).await.expect("history"));
    assert_eq!(
        types[..2],
        ["PlanSaved", "DocumentRequested"],
        "B's write kept: {types:?}"
    );

    // Illegal on the fresh state: refused naming the fresh status, not a conflict.
    let again = b.engine.request_document(id).await;
    match again {
        Ok(snapshot) => assert_eq!(snapshot.state.status, Status::DocumentRequested),
        Err(e) => assert!(
            matches!(e, EngineError::Domain(_)),
            "a domain answer on fresh state, got {e:?}"
        ),
    }
    a.engine.shutdown().await;
    b.engine.shutdown().await;
}

/// `save_plan_as` (a keyed `POST /enrollments`): a second save under the same id, by the
/// engine whose actor holds it or by another one that must find it in the store, is
/// refused with `AlreadyStarted` and writes nothing.
pub async fn a_plan_saved_under_a_chosen_id_is_saved_once(store: Arc<dyn Store>) {
    let a = start(Arc::clone(&store), test_config(), healthy_provider(&store)).await;
    let b = start(Arc::clone(&store), test_config(), healthy_provider(&store)).await;
    let no = register_customer(&a.engine, "한번만").await.customer_no;
    let id = EnrollmentId::for_request("http:POST:/enrollments:admin:once");
    assert_eq!(
        id,
        EnrollmentId::for_request("http:POST:/enrollments:admin:once")
    );
    assert_ne!(
        id,
        EnrollmentId::for_request("http:POST:/enrollments:admin:twice")
    );
    let saved = a
        .engine
        .save_plan_as(id, term_plan(no, 100_000_000))
        .await
        .expect("the first save");
    assert_eq!(saved.state.id, id);
    for (engine, which) in [
        (&a.engine, "the same engine"),
        (&b.engine, "another engine"),
    ] {
        match engine.save_plan_as(id, term_plan(no, 150_000_000)).await {
            Err(EngineError::Domain(DomainError::AlreadyStarted)) => {}
            other => panic!("{which}: a second save must be refused, got {other:?}"),
        }
    }
    let (version, state) = stored(&store, id).await;
    assert_eq!(version, saved.version);
    assert_eq!(state.plan.sum_insured, Won::new(100_000_000));
    let types = event_types(&store.history(id).await.expect("history"));
    assert_eq!(types, ["PlanSaved"]);
    a.engine.shutdown().await;
    b.engine.shutdown().await;
}
