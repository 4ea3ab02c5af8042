//! An enrollment's whole life through the engine, expiry, and the transitions it refuses.

use ezenroll::actors::document::Issue;
use ezenroll::actors::{EngineConfig, EngineError};
use ezenroll::domain::enrollment::{DomainError, EnrollmentId, Event, PaymentMethod, Status};
use ezenroll::domain::money::Won;
use ezenroll::store::Store;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use super::fixtures::*;
use super::helpers::{assert_illegal, customer_views, event_types};

/// 1. The seed scenario: 가입설계 → 상품설명서 → 청약 → 계약 → 청약철회 → 환불 → 철회 완료.
pub async fn seed_scenario_from_plan_to_withdrawal(store: Arc<dyn Store>) {
    let config = EngineConfig {
        // Long enough that a re-save right after a request overtakes it.
        document_delay: Duration::from_millis(300),
        ..test_config()
    };
    let h = start(Arc::clone(&store), config, healthy_provider(&store)).await;
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

/// 9. A plan expires by its durable timer; after that every command is refused.
pub async fn a_plan_expires_by_itself_and_then_refuses_commands(store: Arc<dyn Store>) {
    let config = EngineConfig {
        plan_ttl: Duration::from_millis(200),
        // A document requested before the expiry never comes.
        document_delay: Duration::from_secs(3600),
        ..test_config()
    };
    let h = start(Arc::clone(&store), config, healthy_provider(&store)).await;
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
