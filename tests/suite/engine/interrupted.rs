//! Payments and refunds interrupted halfway: reconciled, retried, refunded once.

use ezenroll::actors::ChaosHook;
use ezenroll::actors::EngineError;
use ezenroll::domain::enrollment::{Command, EnrollmentId, PaymentMethod, Status};
use ezenroll::store::Store;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use super::fixtures::*;
use super::helpers::event_types;

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
        healthy_provider(&store),
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
        healthy_provider(&store),
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
    let provider = healthy_provider(&store);
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
