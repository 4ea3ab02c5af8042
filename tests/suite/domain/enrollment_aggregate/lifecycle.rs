//! Every arrow of the lifecycle, and the demo plans themselves.

use chrono::Duration;
use ezenroll::domain::enrollment::{DomainError, Event, PaymentFailure, PaymentMethod, Status};
use ezenroll::domain::money::Won;
use ezenroll::domain::period::CoveragePeriod;

use super::fixtures::*;

#[test]
fn the_demo_plans_are_priced_and_pin_their_product_version() {
    let term = term_plan();
    assert_eq!(term.product_code, "EZ-TERM");
    assert_eq!(term.product_version, 1);
    assert_eq!(term.product_name, "이지 정기보험");
    assert_eq!(term.quote.insurance_age.years(), 40);
    assert!(term.quote.installment >= Won::new(10_000), "{term:?}");
    assert_eq!(
        term.quote.annualized_premium,
        Won::new(term.quote.installment.get() * 12)
    );
    // Same insured, shorter cover that also pays at maturity: dearer per won insured.
    let endowment = endowment_plan();
    assert_eq!(endowment.product_code, "EZ-ENDOW");
    assert!(endowment.quote.installment > term.quote.installment);
    assert_eq!(whole_life_plan().coverage_period, CoveragePeriod::WholeLife);
}

#[test]
fn saving_a_plan_starts_an_enrollment_in_planned() {
    let state = given(vec![])
        .when(save_plan())
        .then_expect_events(vec![plan_saved()]);
    assert_eq!(state.id, enrollment_id());
    assert_eq!(state.customer_no, CUSTOMER);
    assert_eq!(state.status, Status::Planned);
    assert_eq!(*state.plan, term_plan());
    assert_eq!(state.plan_revision, 1);
    assert_eq!(state.plan_expires_at, plan_expires_at());
    assert_eq!(state.created_at, now());
}

#[test]
fn a_saved_plan_cannot_be_saved_as_new_again() {
    given(history(Status::Planned))
        .when(save_plan())
        .then_expect_error(DomainError::AlreadyStarted);
}

#[test]
fn re_saving_a_planned_plan_takes_the_new_quote_as_the_next_revision() {
    let state = given(history(Status::Planned))
        .when(resave_plan(endowment_plan()))
        .then_expect_events(vec![Event::PlanResaved {
            plan: endowment_plan().into(),
            revision: 2,
            expires_at: resaved_expires_at(),
        }]);
    assert_eq!(state.status, Status::Planned);
    assert_eq!(*state.plan, endowment_plan());
    assert_eq!(state.plan_revision, 2);
    assert_eq!(state.plan_expires_at, resaved_expires_at());
    assert_eq!(
        state.created_at,
        saved_at(),
        "a re-save is the same enrollment"
    );
}

#[test]
fn re_saving_while_the_document_is_being_issued_returns_to_planned() {
    let state = given(history(Status::DocumentRequested))
        .when(resave_plan(endowment_plan()))
        .then_expect_events(vec![Event::PlanResaved {
            plan: endowment_plan().into(),
            revision: 2,
            expires_at: resaved_expires_at(),
        }]);
    assert_eq!(state.status, Status::Planned);
    assert_eq!(state.plan_revision, 2);
    assert_eq!(state.document, None);
}

#[test]
fn re_saving_after_the_document_was_issued_drops_the_document() {
    let before = state_in(Status::DocumentIssued);
    assert_eq!(before.document.as_deref(), Some(&document(1).reference()));
    let state = given(history(Status::DocumentIssued))
        .when(resave_plan(endowment_plan()))
        .then_expect_events(vec![Event::PlanResaved {
            plan: endowment_plan().into(),
            revision: 2,
            expires_at: resaved_expires_at(),
        }]);
    assert_eq!(state.status, Status::Planned);
    assert_eq!(state.plan_revision, 2);
    assert_eq!(state.document, None, "the old document shows the old terms");
}

#[test]
fn every_re_save_is_one_revision_more() {
    let mut events = history(Status::Planned);
    for revision in 2..=5 {
        let state = given(events.clone())
            .when(resave_plan(term_plan()))
            .then_expect_events(vec![Event::PlanResaved {
                plan: term_plan().into(),
                revision,
                expires_at: resaved_expires_at(),
            }]);
        assert_eq!(state.plan_revision, revision);
        events.push(Event::PlanResaved {
            plan: term_plan().into(),
            revision,
            expires_at: resaved_expires_at(),
        });
    }
}

#[test]
fn requesting_the_document_of_a_planned_plan_names_its_revision() {
    let state = given(history(Status::Planned))
        .when(request_document())
        .then_expect_events(vec![Event::DocumentRequested { plan_revision: 1 }]);
    assert_eq!(state.status, Status::DocumentRequested);

    let mut resaved = history(Status::Planned);
    resaved.push(Event::PlanResaved {
        plan: endowment_plan().into(),
        revision: 2,
        expires_at: resaved_expires_at(),
    });
    given(resaved)
        .when(request_document())
        .then_expect_events(vec![Event::DocumentRequested { plan_revision: 2 }]);
}

#[test]
fn the_issued_document_is_kept_with_the_enrollment() {
    let state = given(history(Status::DocumentRequested))
        .when(issue_document(1))
        .then_expect_events(vec![Event::DocumentIssued {
            document: document(1).reference().into(),
        }]);
    assert_eq!(state.status, Status::DocumentIssued);
    assert_eq!(state.document.as_deref(), Some(&document(1).reference()));
}

#[test]
fn a_document_for_an_older_plan_revision_is_stale() {
    // Requested for revision 1, re-saved, requested again for revision 2: the issuer's
    // late answer for revision 1 must not pass for the new terms.
    let mut events = history(Status::DocumentRequested);
    events.push(Event::PlanResaved {
        plan: endowment_plan().into(),
        revision: 2,
        expires_at: resaved_expires_at(),
    });
    events.push(Event::DocumentRequested { plan_revision: 2 });
    given(events.clone())
        .when(issue_document(1))
        .then_expect_error(DomainError::StaleDocument {
            document_revision: 1,
            current_revision: 2,
        });
    given(events)
        .when(issue_document(2))
        .then_expect_events(vec![Event::DocumentIssued {
            document: document(2).reference().into(),
        }]);
}

#[test]
fn submitting_a_proposal_charges_the_plans_installment() {
    let state = given(history(Status::DocumentIssued))
        .when(submit_proposal())
        .then_expect_events(vec![Event::ProposalSubmitted {
            method: PaymentMethod::Card,
            amount: term_plan().quote.installment,
            withdrawal_deadline: withdrawal_deadline(),
        }]);
    assert_eq!(state.status, Status::Proposed);
    assert_eq!(state.payment_method, Some(PaymentMethod::Card));
    assert_eq!(state.proposed_at, Some(now()));
    assert_eq!(state.withdrawal_deadline, Some(withdrawal_deadline()));
    assert_eq!(state.payment_attempts, 1);
    assert_eq!(state.contract_no, None, "a proposal is not a contract yet");
}

#[test]
fn the_proposal_charges_the_re_saved_quote_not_the_first() {
    let events = vec![
        plan_saved(),
        Event::PlanResaved {
            plan: endowment_plan().into(),
            revision: 2,
            expires_at: resaved_expires_at(),
        },
        Event::DocumentRequested { plan_revision: 2 },
        Event::DocumentIssued {
            document: document(2).reference().into(),
        },
    ];
    given(events)
        .when(submit_proposal())
        .then_expect_events(vec![Event::ProposalSubmitted {
            method: PaymentMethod::Card,
            amount: endowment_plan().quote.installment,
            withdrawal_deadline: withdrawal_deadline(),
        }]);
}

#[test]
fn a_paid_first_premium_makes_a_contract() {
    let state = given(history(Status::Proposed))
        .when(record_payment_succeeded())
        .then_expect_events(vec![paid()]);
    assert_eq!(state.status, Status::Contracted);
    assert_eq!(state.contract_no.as_deref(), Some("K-2026-000001"));
    assert_eq!(state.payment_id.as_deref(), Some("PAY-0001"));
    assert_eq!(state.paid_amount, Some(first_premium()));
}

#[test]
fn a_declined_payment_leaves_the_proposal_unpaid() {
    let state = given(history(Status::Proposed))
        .when(record_payment_failed())
        .then_expect_events(vec![Event::PaymentFailed {
            failure: declined(),
        }]);
    assert_eq!(state.status, Status::PaymentFailed);
    assert_eq!(state.last_payment_failure, Some(declined()));
    assert_eq!(state.contract_no, None);
    assert_eq!(state.paid_amount, None);
}

#[test]
fn retrying_a_failed_payment_is_the_next_attempt_of_the_proposal() {
    let state = given(history(Status::PaymentFailed))
        .when(retry_payment())
        .then_expect_events(vec![Event::PaymentRetried { attempt: 2 }]);
    assert_eq!(state.status, Status::Proposed);
    assert_eq!(state.payment_attempts, 2);

    // Declined again, retried again: the third attempt, and it may still be paid.
    let mut events = history(Status::PaymentFailed);
    events.push(Event::PaymentRetried { attempt: 2 });
    events.push(Event::PaymentFailed {
        failure: PaymentFailure::Declined {
            reason: "잔액 부족".to_owned(),
        },
    });
    given(events.clone())
        .when(retry_payment())
        .then_expect_events(vec![Event::PaymentRetried { attempt: 3 }]);
    events.push(Event::PaymentRetried { attempt: 3 });
    let state = given(events)
        .when(record_payment_succeeded())
        .then_expect_events(vec![paid()]);
    assert_eq!(state.status, Status::Contracted);
    assert_eq!(state.payment_attempts, 3);
}

#[test]
fn withdrawing_a_contract_waits_for_the_refund_of_the_paid_premium() {
    let state = given(history(Status::Contracted))
        .when(request_withdrawal())
        .then_expect_events(vec![Event::WithdrawalRequested {
            refund_due: Some(first_premium()),
        }]);
    assert_eq!(state.status, Status::WithdrawalRequested);
    assert_eq!(state.refund_due, Some(first_premium()));
    assert_eq!(state.contract_no.as_deref(), Some("K-2026-000001"));
}

#[test]
fn a_confirmed_refund_completes_the_withdrawal() {
    let state = given(history(Status::WithdrawalRequested))
        .when(confirm_refund())
        .then_expect_events(vec![
            Event::RefundConfirmed {
                refund_id: "RF-0001".to_owned(),
                amount: first_premium(),
            },
            Event::Withdrawn {},
        ]);
    assert_eq!(state.status, Status::Withdrawn);
    assert_eq!(state.refund_id.as_deref(), Some("RF-0001"));
    assert_eq!(state.contract_no.as_deref(), Some("K-2026-000001"));
}

#[test]
fn withdrawing_an_unpaid_proposal_needs_no_refund() {
    for status in [Status::Proposed, Status::PaymentFailed] {
        let state = given(history(status))
            .when(request_withdrawal())
            .then_expect_events(vec![
                Event::WithdrawalRequested { refund_due: None },
                Event::Withdrawn {},
            ]);
        assert_eq!(state.status, Status::Withdrawn, "from {status}");
        assert_eq!(state.refund_due, None, "from {status}");
        assert_eq!(state.contract_no, None, "from {status}");
    }
}

#[test]
fn a_contract_can_be_withdrawn_up_to_the_deadline_and_not_after() {
    given(history(Status::Contracted))
        .when(at(request_withdrawal(), withdrawal_deadline()))
        .then_expect_events(vec![Event::WithdrawalRequested {
            refund_due: Some(first_premium()),
        }]);
    given(history(Status::Contracted))
        .when(at(
            request_withdrawal(),
            withdrawal_deadline() + Duration::seconds(1),
        ))
        .then_expect_error(DomainError::WithdrawalPeriodOver {
            deadline: withdrawal_deadline(),
        });
}

#[test]
fn a_plan_expires_from_every_state_before_the_proposal() {
    for status in [
        Status::Planned,
        Status::DocumentRequested,
        Status::DocumentIssued,
    ] {
        for when in [plan_expires_at(), plan_expires_at() + Duration::days(3)] {
            let state = given(history(status))
                .when(at(expire_plan(), when))
                .then_expect_events(vec![Event::PlanExpired {}]);
            assert_eq!(state.status, Status::Expired, "from {status} at {when}");
        }
    }
}

#[test]
fn a_plan_does_not_expire_before_its_time() {
    for status in [
        Status::Planned,
        Status::DocumentRequested,
        Status::DocumentIssued,
    ] {
        given(history(status))
            .when(at(expire_plan(), plan_expires_at() - Duration::seconds(1)))
            .then_expect_error(DomainError::NotExpired {
                expires_at: plan_expires_at(),
            });
    }
}

#[test]
fn a_re_save_moves_the_expiry_so_the_old_timer_finds_nothing_to_expire() {
    let mut events = history(Status::Planned);
    events.push(Event::PlanResaved {
        plan: endowment_plan().into(),
        revision: 2,
        expires_at: resaved_expires_at(),
    });
    assert!(plan_expires_at() < resaved_expires_at());
    given(events.clone())
        .when(at(expire_plan(), plan_expires_at()))
        .then_expect_error(DomainError::NotExpired {
            expires_at: resaved_expires_at(),
        });
    given(events)
        .when(at(expire_plan(), resaved_expires_at()))
        .then_expect_events(vec![Event::PlanExpired {}]);
}

#[test]
fn an_expired_plan_can_no_longer_be_used_even_before_the_timer_fires() {
    let expired = DomainError::PlanExpired {
        expires_at: plan_expires_at(),
    };
    for when in [plan_expires_at(), plan_expires_at() + Duration::hours(1)] {
        given(history(Status::Planned))
            .when(at(request_document(), when))
            .then_expect_error(expired.clone());
        for status in [
            Status::Planned,
            Status::DocumentRequested,
            Status::DocumentIssued,
        ] {
            given(history(status))
                .when(at(resave_plan(endowment_plan()), when))
                .then_expect_error(expired.clone());
        }
        given(history(Status::DocumentIssued))
            .when(at(submit_proposal(), when))
            .then_expect_error(expired.clone());
    }
    // One second earlier all three still work.
    let just_before = plan_expires_at() - Duration::seconds(1);
    given(history(Status::Planned))
        .when(at(request_document(), just_before))
        .then_expect_events(vec![Event::DocumentRequested { plan_revision: 1 }]);
    given(history(Status::DocumentIssued))
        .when(at(submit_proposal(), just_before))
        .then_expect_events(vec![proposal_submitted()]);
}

#[test]
fn a_proposal_no_longer_expires_with_its_plan() {
    // Past the plan's expiry, a proposal's payment and withdrawal go on as usual.
    let late = plan_expires_at() + Duration::hours(1);
    given(history(Status::Proposed))
        .when(at(record_payment_succeeded(), late))
        .then_expect_events(vec![paid()]);
    given(history(Status::PaymentFailed))
        .when(at(retry_payment(), late))
        .then_expect_events(vec![Event::PaymentRetried { attempt: 2 }]);
}
