//! Payments: overload, the circuit breaker, declines, and how many run at once.

use ezenroll::actors::payment::{BreakerState, GatewayConfig, Simulation};
use ezenroll::actors::{EngineConfig, EngineError};
use ezenroll::domain::enrollment::{PaymentFailure, PaymentMethod, Status};
use ezenroll::domain::premium::QuoteInput;
use ezenroll::store::Store;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::fixtures::*;
use super::helpers::event_types;

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
    let h = start(Arc::clone(&store), config, healthy_provider(&store)).await;
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
    let h = start(Arc::clone(&store), config, healthy_provider(&store)).await;
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
    let h = start(
        Arc::clone(&store),
        breaker_config(),
        healthy_provider(&store),
    )
    .await;
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
    let provider = healthy_provider(&store);
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
