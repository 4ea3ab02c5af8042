//! The engine end to end, as checks that take nothing but an `Arc<dyn Store>`, so the
//! memory backend and the Redis one run the very same suite: real actors, a real store, the
//! simulated payment provider. Nothing here asserts on how long something took;
//! eventually-consistent things (timers, the read model, alarms) are waited for with
//! generous timeouts, and "X happened before Y" is checked by what was observed when X
//! completed.
//!
//! Each check needs a fresh, empty store; a check that needs the same store twice (a second
//! engine on what the first left) reuses the one it is given. A runner mounts this file as a
//! module named `engine_suite` and expands [`engine_suite!`] with an expression that makes a
//! store (it may `.await`); the check that needs to corrupt a stored snapshot takes a
//! backend-specific closure and is written out by hand:
//!
//! ```ignore
//! #[macro_use]
//! #[path = "common/engine_suite.rs"]
//! mod engine_suite;
//! engine_suite!(engine_suite, Arc::new(MemoryStore::new(4)));
//! ```

/// One `#[actix_rt::test]` per backend-agnostic check. `$module` is the name this file is
/// mounted under; `$make` makes a fresh store and may `.await`.
macro_rules! engine_suite {
    ($module:ident, $make:expr) => {
        engine_suite!(
            @each $module, $make;
            seed_scenario_from_plan_to_withdrawal,
            payment_overload_answers_busy_at_once_and_plans_keep_working,
            provider_errors_open_the_breaker_and_a_good_trial_closes_it,
            declines_fail_the_payment_but_never_open_the_breaker,
            a_panic_restarts_only_that_enrollment_with_its_state_intact,
            passivated_actors_reactivate_from_the_store,
            the_sweeper_passivates_idle_actors,
            a_new_engine_on_the_same_store_finishes_what_the_old_one_left,
            concurrent_proposals_never_pass_the_cumulative_limit,
            a_plan_expires_by_itself_and_then_refuses_commands,
            illegal_transitions_are_refused_and_change_nothing,
            a_withdrawal_is_refunded_exactly_once_while_a_read_waits,
            an_interrupted_payment_is_reconciled_with_the_provider,
            an_interrupted_unpaid_proposal_can_be_retried,
            payments_run_concurrently_up_to_the_limit,
            two_engines_on_one_store_decide_on_fresh_state,
            a_plan_saved_under_a_chosen_id_is_saved_once,
            without_arbiters_everything_runs_on_the_system_thread,
        );
    };
    (@each $module:ident, $make:expr; $($check:ident),* $(,)?) => {
        $(
            #[actix_rt::test]
            async fn $check() {
                let store: ::std::sync::Arc<dyn ::ezenroll::store::Store> = $make;
                $module::$check(store).await;
            }
        )*
    };
}

/// The engine fixtures (tests/common/engine.rs), here for the checks and for runners.
#[path = "engine.rs"]
pub mod fixtures;

use ezenroll::actors::document::Issue;
use ezenroll::actors::engine::ChaosHook;
use ezenroll::actors::payment::{BreakerState, GatewayConfig, Simulation};
use ezenroll::actors::{EngineConfig, EngineError};
use ezenroll::domain::enrollment::{
    Command, DomainError, EnrollmentId, Event, PaymentFailure, PaymentMethod, Status,
};
use ezenroll::domain::money::Won;
use ezenroll::domain::premium::QuoteInput;
use ezenroll::store::{EventEnvelope, Store, StoreError, ViewFilter};
use fixtures::*;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// One customer's MyPage views, whatever their status.
fn customer_views(no: ezenroll::domain::enrollment::CustomerNo) -> ViewFilter {
    ViewFilter {
        customer_no: Some(no),
        status: None,
    }
}

fn event_types<E: std::borrow::Borrow<EventEnvelope>>(history: &[E]) -> Vec<&'static str> {
    history
        .iter()
        .map(|e| e.borrow().event.event_type())
        .collect()
}

fn assert_illegal<T: std::fmt::Debug>(
    result: Result<T, EngineError>,
    command: &'static str,
    status: Status,
) {
    match result {
        Err(EngineError::Domain(
            e @ DomainError::IllegalTransition {
                command: c,
                status: s,
            },
        )) => {
            assert_eq!((c, s), (command, status), "refused for the right reason");
            assert!(
                e.to_string().contains(status.as_str()),
                "the refusal names the state: {e}"
            );
        }
        other => panic!("{command} in {status} must be an illegal transition, got {other:?}"),
    }
}

/// 1. The seed scenario: 가입설계 → 상품설명서 → 청약 → 계약 → 청약철회 → 환불 → 철회 완료.
pub async fn seed_scenario_from_plan_to_withdrawal(store: Arc<dyn Store>) {
    let config = EngineConfig {
        // Long enough that a re-save right after a request overtakes it.
        document_delay: Duration::from_millis(300),
        ..test_config()
    };
    let h = start(Arc::clone(&store), config, healthy_provider()).await;
    let engine = &h.engine;
    let customer = register_customer(engine, "김보험").await;
    let no = customer.customer_no;

    // 가입설계 저장
    let planned = engine
        .save_plan(term_plan(no, 100_000_000))
        .await
        .expect("plan saved");
    let id = planned.state.id;
    assert_eq!(planned.version, 1);
    assert_eq!(planned.state.status, Status::Planned);
    assert_eq!(planned.state.plan_revision, 1);
    assert_eq!(planned.state.plan.product_code, TERM);
    assert_eq!(planned.state.plan.product_name, "이지 정기보험");
    assert!(planned.state.plan.quote.installment > Won::ZERO);
    assert_eq!(event_types(&planned.events), ["PlanSaved"]);

    // 상품설명서 발행
    let requested = engine.request_document(id).await.expect("requested");
    assert_eq!(requested.state.status, Status::DocumentRequested);
    let issued = wait_status(engine, id, Status::DocumentIssued).await;
    // The state and the event name the document; the store keeps its text.
    let reference = issued.state.document.clone().expect("document");
    assert_eq!(reference.plan_revision, 1);
    assert!(
        reference.title.contains("상품설명서"),
        "{}",
        reference.title
    );
    assert_eq!(reference.body_sha256.len(), 64, "a SHA-256 in hex");
    let document = engine.document(id).await.expect("document");
    assert_eq!(document.reference(), *reference);
    assert!(
        document.body.contains("이지 정기보험"),
        "the document names the product:\n{}",
        document.body
    );
    let installment = planned.state.plan.quote.installment.to_string();
    assert!(
        document.body.contains(&installment),
        "the document shows the installment {installment}:\n{}",
        document.body
    );

    // Re-save before the proposal: a new revision, back to Planned, the document cleared.
    let resaved = engine
        .resave_plan(id, term_plan(no, 180_000_000))
        .await
        .expect("re-saved");
    assert_eq!(resaved.state.status, Status::Planned);
    assert_eq!(resaved.state.plan_revision, 2);
    assert_eq!(resaved.state.document, None);
    assert_eq!(resaved.state.plan.sum_insured, Won::new(180_000_000));
    assert!(resaved.state.plan.quote.installment > planned.state.plan.quote.installment);
    assert!(matches!(
        engine.document(id).await,
        Err(EngineError::NotFound("document"))
    ));
    // The superseded document's text stays in the store, under its number.
    assert_eq!(
        engine
            .store()
            .document(id, &reference.document_no)
            .await
            .expect("read"),
        Some(document)
    );

    // A document requested and then overtaken by a re-save never lands.
    let requested = engine.request_document(id).await.expect("requested");
    let overtaken = engine
        .resave_plan(id, term_plan(no, 200_000_000))
        .await
        .expect("re-saved again");
    assert_eq!(
        overtaken.version,
        requested.version + 1,
        "nothing happened between the request and the re-save"
    );
    assert_eq!(overtaken.state.plan_revision, 3);
    assert_eq!(overtaken.state.status, Status::Planned);
    // The old request's issuance arriving anyway (a late timer) changes nothing.
    engine
        .document_issuer()
        .send(Issue { id })
        .await
        .expect("the issuer answers")
        .expect("a late issuance is a no-op");
    let after_late = engine.enrollment(id).await.expect("enrollment");
    assert_eq!(after_late.version, overtaken.version);
    assert_eq!(after_late.state.status, Status::Planned);
    assert_eq!(after_late.state.document, None);

    // The document of the current revision.
    engine.request_document(id).await.expect("requested");
    let issued = wait_status(engine, id, Status::DocumentIssued).await;
    assert_eq!(
        issued.state.document.as_ref().map(|d| d.plan_revision),
        Some(3)
    );
    let document = engine.document(id).await.expect("document");
    assert_eq!(document.plan_revision, 3);
    let installment = overtaken.state.plan.quote.installment;
    assert!(document.body.contains(&installment.to_string()));

    // 청약 + 초회보험료 결제 → 계약 성립
    let contracted = engine
        .submit_proposal(id, PaymentMethod::Card)
        .await
        .expect("contracted");
    assert_eq!(contracted.state.status, Status::Contracted);
    let contract_no = contracted.state.contract_no.clone().expect("contract no");
    assert!(contract_no.starts_with("CT-"), "{contract_no}");
    assert_eq!(contracted.state.paid_amount, Some(installment));
    assert!(contracted.state.payment_id.is_some());
    assert_eq!(
        event_types(&contracted.events),
        ["PaymentSucceeded"],
        "the answer carries the last step's events"
    );
    assert_eq!(h.provider.approved_charges(), 1);
    assert_eq!(
        held_of_limit(engine, no, TERM).await,
        Won::new(200_000_000),
        "the contract holds its sum insured of the cumulative limit"
    );

    // 내보험 조회 catches up.
    let view = eventually("the MyPage view to show the contract", || async move {
        engine
            .mypage_view(id)
            .await
            .ok()
            .filter(|v| v.status == Status::Contracted)
    })
    .await;
    assert_eq!(view.contract_no.as_deref(), Some(contract_no.as_str()));
    assert_eq!(view.customer_no, no);
    assert_eq!(view.product_name, "이지 정기보험");
    assert_eq!(view.sum_insured, Won::new(200_000_000));
    assert_eq!(view.installment, installment);
    let mine = engine.mypage(customer_views(no), 10).await.expect("views");
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].enrollment_id, id);

    // 청약철회 → 환불 → 철회 완료
    let withdrawing = engine.request_withdrawal(id).await.expect("withdrawal");
    assert_eq!(withdrawing.state.status, Status::WithdrawalRequested);
    assert_eq!(withdrawing.state.refund_due, Some(installment));
    let withdrawn = wait_status(engine, id, Status::Withdrawn).await;
    assert!(withdrawn.state.refund_id.is_some());
    // Exactly once: the provider saw one refund call (the timer's attempt found it done).
    assert_eq!(h.calls.refund_calls(), 1, "refunded once");
    assert_eq!(
        held_of_limit(engine, no, TERM).await,
        Won::ZERO,
        "the withdrawal released the limit"
    );

    let history = engine.history(id).await.expect("history");
    assert_eq!(
        event_types(&history),
        [
            "PlanSaved",
            "DocumentRequested",
            "DocumentIssued",
            "PlanResaved",
            "DocumentRequested",
            "PlanResaved",
            "DocumentRequested",
            "DocumentIssued",
            "ProposalSubmitted",
            "PaymentSucceeded",
            "WithdrawalRequested",
            "RefundConfirmed",
            "Withdrawn",
        ]
    );
    for (i, e) in history.iter().enumerate() {
        assert_eq!(e.version, i as u64 + 1, "versions count the events");
        assert_eq!((e.enrollment_id, e.customer_no), (id, no));
    }
    // Every issued document shows the plan revision in effect when it landed.
    let mut revision = 0;
    for e in &history {
        match &e.event {
            Event::PlanSaved { .. } => revision = 1,
            Event::PlanResaved { revision: r, .. } => revision = *r,
            Event::DocumentIssued { document } => assert_eq!(document.plan_revision, revision),
            _ => {}
        }
    }

    eventually("the MyPage view to show the withdrawal", || async move {
        engine
            .mypage_view(id)
            .await
            .ok()
            .filter(|v| v.status == Status::Withdrawn)
    })
    .await;

    // 알림: one per event, in Korean.
    let events = history.len();
    let alarms = eventually("an alarm for every event", || async move {
        let alarms = engine.alarms(Some(no), 100).await.ok()?;
        (alarms.len() >= events).then_some(alarms)
    })
    .await;
    assert_eq!(alarms.len(), events, "one alarm per event, no more");
    let alarmed: HashSet<_> = alarms.iter().map(|a| a.event_id).collect();
    let happened: HashSet<_> = history.iter().map(|e| e.id).collect();
    assert_eq!(alarmed, happened);
    for alarm in &alarms {
        assert_eq!((alarm.enrollment_id, alarm.customer_no), (id, no));
        assert!(
            alarm.message.starts_with("[이지보험] 김보험님"),
            "{}",
            alarm.message
        );
        assert!(has_hangul(&alarm.message));
        assert!(alarm.message.contains(&id.to_string()));
    }
    let alarm_of = |event_type: &str| {
        let event = history
            .iter()
            .find(|e| e.event.event_type() == event_type)
            .expect("the event happened");
        alarms
            .iter()
            .find(|a| a.event_id == event.id)
            .expect("the event has its alarm")
    };
    let paid = alarm_of("PaymentSucceeded");
    assert_eq!(paid.status, Status::Contracted);
    assert!(paid.message.contains(&contract_no), "{}", paid.message);
    assert!(paid.message.contains("계약이 성립"), "{}", paid.message);
    assert!(alarm_of("RefundConfirmed").message.contains("환불"));
    assert!(alarm_of("Withdrawn").message.contains("청약철회가 완료"));

    engine.shutdown().await;
}

/// 2. Payment overload: a bounded gateway mailbox answers "busy" at once instead of
///    queuing, and plans and quotes keep working while payments are stuck.
pub async fn payment_overload_answers_busy_at_once_and_plans_keep_working(store: Arc<dyn Store>) {
    const N: usize = 12;
    let config = EngineConfig {
        payment: GatewayConfig {
            mailbox_capacity: 2,
            max_in_flight: 1,
            ..GatewayConfig::default()
        },
        ..test_config()
    };
    let h = start(Arc::clone(&store), config, healthy_provider()).await;
    let engine = &h.engine;

    let mut driving = Vec::new();
    for i in 0..N {
        let engine = engine.clone();
        driving.push(actix_rt::spawn(async move {
            let customer = register_customer(&engine, &format!("고객{i}")).await;
            drive_to_document_issued(&engine, term_plan(customer.customer_no, 100_000_000))
                .await
                .state
                .id
        }));
    }
    let mut ids = Vec::new();
    for task in driving {
        ids.push(task.await.expect("driven to DocumentIssued"));
    }

    // The provider turns slow; all proposals arrive at once.
    h.provider.set(Simulation {
        latency: Duration::from_millis(300),
        decline_rate: 0.0,
        failure_rate: 0.0,
    });
    let answered = Arc::new(AtomicUsize::new(0));
    let mut proposals = Vec::new();
    for &id in &ids {
        let (engine, provider, answered) = (
            engine.clone(),
            Arc::clone(&h.provider),
            Arc::clone(&answered),
        );
        proposals.push(actix_rt::spawn(async move {
            let result = engine.submit_proposal(id, PaymentMethod::Card).await;
            let approved_by_then = provider.approved_charges();
            answered.fetch_add(1, Ordering::SeqCst);
            (id, result, approved_by_then)
        }));
    }

    // Once the gateway says busy, payments are stuck; plans and quotes are not.
    eventually("the payment gateway to answer busy", || async {
        (engine.payment_stats().busy.load(Ordering::SeqCst) > 0).then_some(())
    })
    .await;
    let other = register_customer(engine, "이영희").await;
    let plan = engine
        .save_plan(term_plan(other.customer_no, 80_000_000))
        .await
        .expect("a plan is saved while payment is overloaded");
    assert_eq!(plan.state.status, Status::Planned);
    let catalog = engine.catalog();
    let product = catalog.latest(TERM).expect("EZ-TERM");
    let request = term_plan(other.customer_no, 80_000_000);
    let quote = product
        .quote(&QuoteInput {
            insured: other.insured(),
            quote_date: plan.state.plan.quote_date,
            sum_insured: request.sum_insured,
            coverage: request.coverage_period,
            payment_period: request.payment_period,
            cycle: request.payment_cycle,
        })
        .expect("a quote is priced while payment is overloaded");
    assert_eq!(quote.installment, plan.state.plan.quote.installment);
    assert!(
        answered.load(Ordering::SeqCst) < N,
        "the plan and the quote completed while slow payments were still outstanding"
    );

    let (mut contracted, mut busy) = (Vec::new(), Vec::new());
    for task in proposals {
        let (id, result, approved_by_then) = task.await.expect("proposal task");
        match result {
            Ok(done) => {
                assert_eq!(done.state.status, Status::Contracted);
                contracted.push(id);
            }
            Err(EngineError::Payment {
                failure:
                    PaymentFailure::Unavailable {
                        reason,
                        retry_after_secs,
                    },
                state,
                ..
            }) => {
                assert!(reason.contains("busy"), "{reason}");
                assert!(retry_after_secs >= 1);
                assert_eq!(state.status, Status::PaymentFailed);
                busy.push((id, approved_by_then));
            }
            Err(other) => panic!("a proposal is paid or answered busy, got {other}"),
        }
    }
    assert!(!contracted.is_empty(), "the mailbox let some payments in");
    assert!(!busy.is_empty(), "a full mailbox answered busy");
    assert!(
        busy.iter().any(|&(_, approved)| approved == 0),
        "busy was answered while no payment had gone through yet (no queuing behind slow ones)"
    );
    assert_eq!(h.provider.approved_charges(), contracted.len() as u64);
    assert!(engine.payment_stats().busy.load(Ordering::SeqCst) >= busy.len() as u64);

    for &(id, _) in &busy {
        let now = engine.enrollment(id).await.expect("enrollment");
        assert_eq!(now.state.status, Status::PaymentFailed);
        assert!(matches!(
            now.state.last_payment_failure,
            Some(PaymentFailure::Unavailable { .. })
        ));
    }

    // Load gone: every busy one is paid on retry.
    h.provider.set(Simulation {
        latency: Duration::from_millis(2),
        decline_rate: 0.0,
        failure_rate: 0.0,
    });
    for &(id, _) in &busy {
        let retried = engine.retry_payment(id).await.expect("paid on retry");
        assert_eq!(retried.state.status, Status::Contracted);
        assert_eq!(retried.state.payment_attempts, 2);
        let history = engine.history(id).await.expect("history");
        assert_eq!(
            event_types(&history)[3..],
            [
                "ProposalSubmitted",
                "PaymentFailed",
                "PaymentRetried",
                "PaymentSucceeded"
            ]
        );
    }
    assert_eq!(h.provider.approved_charges(), N as u64);

    engine.shutdown().await;
}

fn breaker_config() -> EngineConfig {
    EngineConfig {
        payment: GatewayConfig {
            breaker_threshold: 3,
            breaker_cooldown: Duration::from_millis(300),
            ..GatewayConfig::default()
        },
        ..test_config()
    }
}

/// 3. Consecutive provider errors open the breaker; an open breaker refuses without
///    calling the provider; after the cooldown a good trial closes it.
pub async fn provider_errors_open_the_breaker_and_a_good_trial_closes_it(store: Arc<dyn Store>) {
    let config = breaker_config();
    let cooldown = config.payment.breaker_cooldown;
    let h = start(Arc::clone(&store), config, healthy_provider()).await;
    let engine = &h.engine;
    let customer = register_customer(engine, "최나래").await;
    let mut ids = Vec::new();
    for _ in 0..4 {
        let issued =
            drive_to_document_issued(engine, term_plan(customer.customer_no, 100_000_000)).await;
        ids.push(issued.state.id);
    }
    assert_eq!(engine.payment_stats().breaker_state(), BreakerState::Closed);

    h.provider.set_failure_rate(1.0);
    for (n, &id) in ids[..3].iter().enumerate() {
        match engine.submit_proposal(id, PaymentMethod::Card).await {
            Err(EngineError::Payment {
                failure: PaymentFailure::Unavailable { reason, .. },
                state,
                ..
            }) => {
                assert!(reason.contains("provider error"), "{reason}");
                assert_eq!(state.status, Status::PaymentFailed);
            }
            other => panic!("a provider error fails the payment, got {other:?}"),
        }
        assert_eq!(
            h.calls.charge_calls(),
            n as u64 + 1,
            "it reached the provider"
        );
    }
    assert_eq!(engine.payment_stats().breaker_state(), BreakerState::Open);

    match engine.submit_proposal(ids[3], PaymentMethod::Card).await {
        Err(EngineError::Payment {
            failure:
                PaymentFailure::Unavailable {
                    reason,
                    retry_after_secs,
                },
            state,
            ..
        }) => {
            assert!(reason.contains("circuit open"), "{reason}");
            assert!(retry_after_secs >= 1);
            assert_eq!(state.status, Status::PaymentFailed);
        }
        other => panic!("the open breaker refuses, got {other:?}"),
    }
    assert_eq!(
        h.calls.charge_calls(),
        3,
        "the open breaker did not call the provider"
    );
    assert_eq!(engine.payment_stats().breaker_state(), BreakerState::Open);

    // The provider recovers; after the cooldown one trial goes through and closes it.
    h.provider.set_failure_rate(0.0);
    tokio::time::sleep(cooldown + Duration::from_millis(200)).await;
    for &id in &ids {
        let paid = engine.retry_payment(id).await.expect("paid on retry");
        assert_eq!(paid.state.status, Status::Contracted);
        assert_eq!(engine.payment_stats().breaker_state(), BreakerState::Closed);
    }
    assert_eq!(h.provider.approved_charges(), 4);
    assert_eq!(h.calls.charge_calls(), 7);

    engine.shutdown().await;
}

/// 3b. A decline is the provider working: the enrollment fails with `Declined`, the
///     breaker stays closed however many there are.
pub async fn declines_fail_the_payment_but_never_open_the_breaker(store: Arc<dyn Store>) {
    let h = start(Arc::clone(&store), breaker_config(), healthy_provider()).await;
    let engine = &h.engine;
    let customer = register_customer(engine, "정하늘").await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        let issued =
            drive_to_document_issued(engine, term_plan(customer.customer_no, 100_000_000)).await;
        ids.push(issued.state.id);
    }

    h.provider.set_decline_rate(1.0);
    for (n, &id) in ids.iter().enumerate() {
        match engine.submit_proposal(id, PaymentMethod::Card).await {
            Err(EngineError::Payment {
                failure: PaymentFailure::Declined { reason },
                state,
                ..
            }) => {
                assert!(has_hangul(&reason), "{reason}");
                assert_eq!(state.status, Status::PaymentFailed);
            }
            other => panic!("a decline fails the payment, got {other:?}"),
        }
        assert_eq!(
            h.calls.charge_calls(),
            n as u64 + 1,
            "every attempt reached the provider"
        );
        assert_eq!(engine.payment_stats().breaker_state(), BreakerState::Closed);
        let now = engine.enrollment(id).await.expect("enrollment");
        assert_eq!(now.state.status, Status::PaymentFailed);
        assert!(matches!(
            now.state.last_payment_failure,
            Some(PaymentFailure::Declined { .. })
        ));
    }
    assert_eq!(h.provider.approved_charges(), 0);

    h.provider.set_decline_rate(0.0);
    let paid = engine.retry_payment(ids[0]).await.expect("paid on retry");
    assert_eq!(paid.state.status, Status::Contracted);
    assert_eq!(h.provider.approved_charges(), 1);

    engine.shutdown().await;
}

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
    let h = start_with_chaos(Arc::clone(&store), config, healthy_provider(), Some(chaos)).await;
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
    let h = start(store, config, healthy_provider()).await;
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

/// 7. A restart on the same store: the next engine finishes durable work (a document due,
///    a refund pending) and the consumers resume without duplicates.
pub async fn a_new_engine_on_the_same_store_finishes_what_the_old_one_left(store: Arc<dyn Store>) {
    let config_a = EngineConfig {
        document_delay: Duration::from_millis(300),
        ..test_config()
    };
    let a = start(Arc::clone(&store), config_a, healthy_provider()).await;
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
    let b = start(Arc::clone(&store), test_config(), healthy_provider()).await;
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

/// 9. A plan expires by its durable timer; after that every command is refused.
pub async fn a_plan_expires_by_itself_and_then_refuses_commands(store: Arc<dyn Store>) {
    let config = EngineConfig {
        plan_ttl: Duration::from_millis(200),
        // A document requested before the expiry never comes.
        document_delay: Duration::from_secs(3600),
        ..test_config()
    };
    let h = start(Arc::clone(&store), config, healthy_provider()).await;
    let engine = &h.engine;
    let customer = register_customer(engine, "임수정").await;
    let planned = engine
        .save_plan(term_plan(customer.customer_no, 100_000_000))
        .await
        .expect("plan");
    let requesting = engine
        .save_plan(term_plan(customer.customer_no, 100_000_000))
        .await
        .expect("plan");
    let id = planned.state.id;
    engine
        .request_document(requesting.state.id)
        .await
        .expect("requested");

    let expired = wait_status(engine, id, Status::Expired).await;
    assert_eq!(expired.version, 2);
    assert_eq!(
        event_types(&engine.history(id).await.expect("history")),
        ["PlanSaved", "PlanExpired"]
    );
    wait_status(engine, requesting.state.id, Status::Expired).await;
    assert_eq!(
        event_types(&engine.history(requesting.state.id).await.expect("history")),
        ["PlanSaved", "DocumentRequested", "PlanExpired"]
    );

    assert_illegal(
        engine.request_document(id).await,
        "RequestDocument",
        Status::Expired,
    );
    assert_illegal(
        engine
            .resave_plan(id, term_plan(customer.customer_no, 100_000_000))
            .await,
        "ResavePlan",
        Status::Expired,
    );
    assert_illegal(
        engine.submit_proposal(id, PaymentMethod::Card).await,
        "SubmitProposal",
        Status::Expired,
    );
    assert_illegal(
        engine.request_withdrawal(id).await,
        "RequestWithdrawal",
        Status::Expired,
    );
    let after = engine.enrollment(id).await.expect("enrollment");
    assert_eq!(after.version, expired.version, "nothing changed");
    assert_eq!(h.provider.approved_charges(), 0);

    eventually("the MyPage view to show the expiry", || async move {
        engine
            .mypage_view(id)
            .await
            .ok()
            .filter(|v| v.status == Status::Expired)
    })
    .await;
    let no = customer.customer_no;
    eventually("the expiry alarm", || async move {
        let alarms = engine.alarms(Some(no), 100).await.ok()?;
        alarms
            .into_iter()
            .find(|a| a.enrollment_id == id && a.status == Status::Expired)
    })
    .await;
    engine.shutdown().await;
}

/// 10. Illegal transitions are refused with the state named, and nothing changes.
pub async fn illegal_transitions_are_refused_and_change_nothing(store: Arc<dyn Store>) {
    let h = start_default(Arc::clone(&store)).await;
    let engine = &h.engine;
    let customer = register_customer(engine, "서지호").await;
    let no = customer.customer_no;
    let planned = engine
        .save_plan(term_plan(no, 100_000_000))
        .await
        .expect("plan");
    let id = planned.state.id;

    assert_illegal(
        engine.submit_proposal(id, PaymentMethod::Card).await,
        "SubmitProposal",
        Status::Planned,
    );
    assert_illegal(
        engine.retry_payment(id).await,
        "RetryPayment",
        Status::Planned,
    );
    assert_illegal(
        engine.request_withdrawal(id).await,
        "RequestWithdrawal",
        Status::Planned,
    );
    assert!(matches!(
        engine.expire_plan(id).await,
        Err(EngineError::Domain(DomainError::NotExpired { .. }))
    ));
    let after = engine.enrollment(id).await.expect("enrollment");
    assert_eq!(after.version, planned.version);
    assert_same_state(&after.state, &planned.state);
    assert_eq!(engine.history(id).await.expect("history").len(), 1);
    assert_eq!(
        h.calls.charge_calls(),
        0,
        "a refused proposal never reaches payment"
    );
    assert_eq!(
        held_of_limit(engine, no, TERM).await,
        Won::ZERO,
        "nor reserves the limit"
    );

    // Someone else's plan cannot be re-saved through this enrollment.
    let stranger = register_customer(engine, "남궁민").await;
    assert!(matches!(
        engine
            .resave_plan(id, term_plan(stranger.customer_no, 100_000_000))
            .await,
        Err(EngineError::Domain(DomainError::WrongCustomer { .. }))
    ));

    // An enrollment that does not exist is not started by a command.
    let nobody = EnrollmentId::new();
    assert!(matches!(
        engine.request_document(nobody).await,
        Err(EngineError::Domain(DomainError::NotStarted { .. }))
    ));
    assert!(matches!(
        engine.enrollment(nobody).await,
        Err(EngineError::NotFound(_))
    ));
    assert!(matches!(
        engine.history(nobody).await,
        Err(EngineError::NotFound(_))
    ));

    // After the contract, pre-proposal commands are refused.
    engine.request_document(id).await.expect("requested");
    wait_status(engine, id, Status::DocumentIssued).await;
    let contracted = engine
        .submit_proposal(id, PaymentMethod::Card)
        .await
        .expect("contracted");
    assert_illegal(
        engine.request_document(id).await,
        "RequestDocument",
        Status::Contracted,
    );
    assert_illegal(
        engine.resave_plan(id, term_plan(no, 100_000_000)).await,
        "ResavePlan",
        Status::Contracted,
    );
    assert_illegal(
        engine.submit_proposal(id, PaymentMethod::Card).await,
        "SubmitProposal",
        Status::Contracted,
    );
    assert_illegal(
        engine.retry_payment(id).await,
        "RetryPayment",
        Status::Contracted,
    );
    let after = engine.enrollment(id).await.expect("enrollment");
    assert_eq!(after.version, contracted.version);
    assert_eq!(h.provider.approved_charges(), 1, "paid once");
    assert_eq!(
        held_of_limit(engine, no, TERM).await,
        Won::new(100_000_000),
        "the refused second proposal reserved nothing more"
    );
    engine.shutdown().await;
}

/// Each withdrawal is refunded exactly once, also when a message reaches the actor while
/// it handles the withdrawal.
///
/// This caught a real bug: the first refund attempt was started with `ctx.notify` from the
/// withdrawal's `AtomicResponse`; actix polls notified items right after a mailbox message
/// that called `ctx.wait`, before that wait is merged, so a queued read and the attempt
/// ran interleaved and the refund timer refunded a second time. The attempt now goes
/// through the mailbox.
///
/// The chaos hook holds the withdrawal (blocking its arbiter) until a read is queued.
pub async fn a_withdrawal_is_refunded_exactly_once_while_a_read_waits(store: Arc<dyn Store>) {
    let target: Arc<OnceLock<EnrollmentId>> = Arc::new(OnceLock::new());
    let entered = Arc::new(AtomicBool::new(false));
    let (release, released) = std::sync::mpsc::channel::<()>();
    let released = Arc::new(std::sync::Mutex::new(released));
    let chaos: ChaosHook = {
        let (target, entered) = (Arc::clone(&target), Arc::clone(&entered));
        Arc::new(move |id: EnrollmentId, command: &Command| {
            if target.get() == Some(&id)
                && matches!(command, Command::RequestWithdrawal { .. })
                && !entered.swap(true, Ordering::SeqCst)
            {
                let released = released.lock().expect("release channel");
                let _ = released.recv_timeout(WAIT);
            }
        })
    };
    let h = start_with_chaos(
        Arc::clone(&store),
        test_config(),
        healthy_provider(),
        Some(chaos),
    )
    .await;
    let engine = &h.engine;
    let customer = register_customer(engine, "조은비").await;
    let id = drive_to_document_issued(engine, term_plan(customer.customer_no, 100_000_000))
        .await
        .state
        .id;
    engine
        .submit_proposal(id, PaymentMethod::Card)
        .await
        .expect("contracted");
    target.set(id).expect("target set once");

    let withdrawal = {
        let engine = engine.clone();
        actix_rt::spawn(async move { engine.request_withdrawal(id).await })
    };
    eventually("the withdrawal to be in the actor", || async {
        entered.load(Ordering::SeqCst).then_some(())
    })
    .await;
    let read = {
        let engine = engine.clone();
        actix_rt::spawn(async move { engine.enrollment(id).await })
    };
    // Let the read reach the actor's mailbox, then let the withdrawal finish.
    tokio::time::sleep(Duration::from_millis(50)).await;
    release.send(()).expect("the hook waits");
    let withdrawing = withdrawal.await.expect("task").expect("withdrawal");
    assert_eq!(withdrawing.state.status, Status::WithdrawalRequested);
    read.await.expect("task").expect("read");

    eventually("the refund to be recorded", || {
        let store = Arc::clone(&store);
        async move { (stored(&store, id).await.1.status == Status::Withdrawn).then_some(()) }
    })
    .await;
    let answered = engine.enrollment(id).await.expect("enrollment");
    assert_eq!(
        answered.state.status,
        Status::Withdrawn,
        "the actor answers what the store holds"
    );
    // Later attempts (the refund timer's) see the withdrawal done and refund nothing.
    wait_status(engine, id, Status::Withdrawn).await;
    engine.enrollment(id).await.expect("enrollment");
    assert_eq!(h.calls.refund_calls(), 1, "refunded once");
    assert_eq!(
        engine.stats().restarts.load(Ordering::SeqCst),
        0,
        "no enrollment actor failed"
    );
    engine.shutdown().await;
}

/// A crash between taking the first premium and recording it (here: the append of
/// PaymentSucceeded panics once) leaves the enrollment Proposed with the money taken. The
/// restarted actor asks the provider and records the payment it finds: the contract is
/// established, and nothing is charged twice.
pub async fn an_interrupted_payment_is_reconciled_with_the_provider(store: Arc<dyn Store>) {
    let fired = Arc::new(AtomicBool::new(false));
    let chaos: ChaosHook = {
        let fired = Arc::clone(&fired);
        Arc::new(move |_: EnrollmentId, command: &Command| {
            if matches!(command, Command::RecordPaymentSucceeded { .. })
                && !fired.swap(true, Ordering::SeqCst)
            {
                panic!("chaos: the process died after the charge");
            }
        })
    };
    let h = start_with_chaos(
        Arc::clone(&store),
        test_config(),
        healthy_provider(),
        Some(chaos),
    )
    .await;
    let engine = &h.engine;
    let customer = register_customer(engine, "유재석").await;
    let id = drive_to_document_issued(engine, term_plan(customer.customer_no, 100_000_000))
        .await
        .state
        .id;

    let interrupted = engine.submit_proposal(id, PaymentMethod::Card).await;
    assert!(
        matches!(interrupted, Err(EngineError::Internal(_))),
        "{interrupted:?}"
    );
    assert_eq!(h.provider.approved_charges(), 1, "the charge went through");

    // The restarted actor reloads Proposed and reconciles before answering.
    let after = engine.enrollment(id).await.expect("enrollment");
    assert_eq!(after.state.status, Status::Contracted);
    assert!(after.state.payment_id.is_some());
    assert!(after.state.contract_no.is_some());
    assert_eq!(h.provider.approved_charges(), 1, "charged once");
    let types = event_types(&engine.history(id).await.expect("history"));
    assert_eq!(
        types[types.len() - 2..],
        ["ProposalSubmitted", "PaymentSucceeded"]
    );
    engine.shutdown().await;
}

/// A payment interrupted before the charge reached the provider is recorded as failed,
/// so the customer can retry; the retry charges once.
pub async fn an_interrupted_unpaid_proposal_can_be_retried(store: Arc<dyn Store>) {
    let fired = Arc::new(AtomicBool::new(false));
    let chaos: ChaosHook = {
        let fired = Arc::clone(&fired);
        Arc::new(move |_: EnrollmentId, command: &Command| {
            // The decline path: the provider declined, recording it "crashes".
            if matches!(command, Command::RecordPaymentFailed { .. })
                && !fired.swap(true, Ordering::SeqCst)
            {
                panic!("chaos: the process died before recording the decline");
            }
        })
    };
    let provider = healthy_provider();
    let h = start_with_chaos(
        Arc::clone(&store),
        test_config(),
        Arc::clone(&provider),
        Some(chaos),
    )
    .await;
    let engine = &h.engine;
    let customer = register_customer(engine, "강호동").await;
    let id = drive_to_document_issued(engine, term_plan(customer.customer_no, 100_000_000))
        .await
        .state
        .id;
    provider.set_decline_rate(1.0);
    let interrupted = engine.submit_proposal(id, PaymentMethod::Card).await;
    assert!(
        matches!(interrupted, Err(EngineError::Internal(_))),
        "{interrupted:?}"
    );

    let after = engine.enrollment(id).await.expect("enrollment");
    assert_eq!(
        after.state.status,
        Status::PaymentFailed,
        "no approved charge was found"
    );
    provider.set_decline_rate(0.0);
    let retried = engine.retry_payment(id).await.expect("retried");
    assert_eq!(retried.state.status, Status::Contracted);
    assert_eq!(h.provider.approved_charges(), 1);
    engine.shutdown().await;
}

/// The gateway runs several provider calls at once (up to `max_in_flight`): a slow PG
/// does not cap payments at one per round trip.
pub async fn payments_run_concurrently_up_to_the_limit(store: Arc<dyn Store>) {
    const N: usize = 6;
    let config = EngineConfig {
        payment: GatewayConfig {
            max_in_flight: 4,
            ..GatewayConfig::default()
        },
        ..test_config()
    };
    let provider = healthy_provider();
    provider.set(Simulation {
        latency: Duration::from_millis(200),
        ..Simulation::default()
    });
    let h = start(Arc::clone(&store), config, provider).await;
    let engine = &h.engine;
    let customer = register_customer(engine, "이효리").await;
    let mut ids = Vec::new();
    for _ in 0..N {
        let plan = term_plan(customer.customer_no, 100_000_000);
        ids.push(drive_to_document_issued(engine, plan).await.state.id);
    }
    let proposals: Vec<_> = ids
        .iter()
        .map(|id| engine.submit_proposal(*id, PaymentMethod::Card))
        .collect();
    for result in futures_util::future::join_all(proposals).await {
        assert_eq!(result.expect("contracted").state.status, Status::Contracted);
    }
    let most = h.calls.most_charges_at_once();
    assert!((2..=4).contains(&most), "{most} charges at once");
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
    let a = start(Arc::clone(&store), config.clone(), healthy_provider()).await;
    let b = start(Arc::clone(&store), config, healthy_provider()).await;
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
    let h = start_with_chaos(Arc::clone(&store), config, healthy_provider(), Some(chaos)).await;
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

/// `save_plan_as` (a keyed `POST /enrollments`): a second save under the same id, by the
/// engine whose actor holds it or by another one that must find it in the store, is
/// refused with `AlreadyStarted` and writes nothing.
pub async fn a_plan_saved_under_a_chosen_id_is_saved_once(store: Arc<dyn Store>) {
    let a = start(Arc::clone(&store), test_config(), healthy_provider()).await;
    let b = start(Arc::clone(&store), test_config(), healthy_provider()).await;
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
