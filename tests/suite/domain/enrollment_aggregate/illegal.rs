//! Illegal transitions, and the invariants any sequence of commands keeps.

use chrono::{DateTime, Duration, Utc};
use ezenroll::domain::enrollment::{
    Command, DomainError, Enrollment, Event, Status, apply, handle, replay,
};
use proptest::prelude::*;

use super::fixtures::*;

/// The lifecycle diagram as a table: the statuses each command is allowed in.
fn allowed_in(command: &Command) -> &'static [Status] {
    use Status::*;
    match command {
        Command::SavePlan { .. } => &[],
        Command::ResavePlan { .. } => &[Planned, DocumentRequested, DocumentIssued],
        Command::RequestDocument { .. } => &[Planned],
        Command::IssueDocument { .. } => &[DocumentRequested],
        Command::SubmitProposal { .. } => &[DocumentIssued],
        Command::RecordPaymentSucceeded { .. } => &[Proposed],
        Command::RecordPaymentFailed { .. } => &[Proposed],
        Command::RetryPayment { .. } => &[PaymentFailed],
        Command::RequestWithdrawal { .. } => &[Contracted, Proposed, PaymentFailed],
        Command::ConfirmRefund { .. } => &[WithdrawalRequested],
        Command::ExpirePlan { .. } => &[Planned, DocumentRequested, DocumentIssued],
    }
}

#[test]
fn every_command_outside_its_states_is_an_illegal_transition_naming_the_status() {
    let mut refused = 0;
    let mut accepted = 0;
    for status in Status::ALL {
        for command in every_command() {
            let result = handle(Some(&state_in(status)), &command);
            let name = command.name();
            if matches!(command, Command::SavePlan { .. }) {
                assert_eq!(result, Err(DomainError::AlreadyStarted), "in {status}");
                refused += 1;
            } else if allowed_in(&command).contains(&status) {
                assert!(result.is_ok(), "{name} in {status}: {result:?}");
                accepted += 1;
            } else {
                let err = result.expect_err(name);
                assert_eq!(
                    err,
                    DomainError::IllegalTransition {
                        command: name,
                        status
                    },
                    "{name} in {status}"
                );
                assert_eq!(err.status(), Some(status));
                assert_eq!(
                    err.to_string(),
                    format!("{name} is not allowed while the enrollment is {status}")
                );
                refused += 1;
            }
        }
    }
    assert_eq!(accepted, 16, "the arrows of the diagram");
    assert_eq!(refused + accepted, Status::ALL.len() * 11);
}

#[test]
fn before_a_plan_is_saved_nothing_else_is_possible() {
    for command in every_command() {
        if matches!(command, Command::SavePlan { .. }) {
            continue;
        }
        let name = command.name();
        given(vec![])
            .when(command)
            .then_expect_error(DomainError::NotStarted { command: name });
    }
}

#[test]
fn a_refund_without_a_paid_premium_is_not_confirmed() {
    // A withdrawal that owed nothing has nothing to confirm, even if it stopped halfway.
    let mut events = history(Status::Proposed);
    events.push(Event::WithdrawalRequested { refund_due: None });
    given(events)
        .when(confirm_refund())
        .then_expect_error(DomainError::IllegalTransition {
            command: "ConfirmRefund",
            status: Status::WithdrawalRequested,
        });
}

#[test]
fn an_unpaid_proposal_never_becomes_a_contract() {
    let mut states: Vec<Option<Enrollment>> = vec![None];
    states.extend(Status::ALL.map(|s| Some(state_in(s))));
    for state in &states {
        for command in every_command() {
            let from = state.as_ref().map(|s| s.status);
            let Ok(events) = handle(state.as_ref(), &command) else {
                continue;
            };
            let after = fold(state.clone(), &events, |_| now()).expect("applies");
            let pays = events
                .iter()
                .any(|e| matches!(e, Event::PaymentSucceeded { .. }));
            let is_payment = matches!(command, Command::RecordPaymentSucceeded { .. });
            assert_eq!(
                pays,
                is_payment && from == Some(Status::Proposed),
                "{} from {from:?} gave {events:?}",
                command.name()
            );
            if after.status == Status::Contracted && from != Some(Status::Contracted) {
                assert!(pays, "{} from {from:?} made a contract", command.name());
            }
        }
    }
}

/// A command by number; `late` moves it past every deadline. Kind 11 is the document
/// for the revision the plan is at now (the issuer's normal answer).
fn command_for(kind: usize, late: bool, state: Option<&Enrollment>) -> Command {
    let command = match kind {
        11 => issue_document(state.map_or(1, |s| s.plan_revision)),
        k => every_command().swap_remove(k % 11),
    };
    if late {
        at(command, withdrawal_deadline() + Duration::days(1))
    } else {
        command
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_sequence_of_commands_keeps_the_invariants(
        steps in prop::collection::vec((0usize..12, prop::bool::weighted(0.1)), 0..30)
    ) {
        let mut state = fold(None, &[plan_saved()], |_| saved_at());
        let mut log: Vec<(Event, DateTime<Utc>)> = vec![(plan_saved(), saved_at())];
        for (kind, late) in steps {
            let command = command_for(kind, late, state.as_ref());
            let before = state.as_ref().map(|s| s.status);
            let Ok(events) = handle(state.as_ref(), &command) else { continue };
            prop_assert!(!events.is_empty(), "{} accepted with no events", command.name());
            for event in events {
                let status = state.as_ref().map(|s| s.status);
                let next = apply(state.clone(), enrollment_id(), &event, command.at())
                    .expect("an accepted event applies");
                prop_assert_eq!(next.status, event.status_after(status));
                if let Event::PaymentSucceeded { .. } = event {
                    prop_assert_eq!(before, Some(Status::Proposed));
                }
                log.push((event, command.at()));
                state = Some(next);
            }
            let s = state.as_ref().expect("started");
            // A contract exists exactly when the first premium was paid.
            let paid = log.iter().any(|(e, _)| matches!(e, Event::PaymentSucceeded { .. }));
            prop_assert_eq!(s.contract_no.is_some(), paid);
            prop_assert_eq!(s.paid_amount.is_some(), paid);
            // A refund is owed (and confirmed) only for a premium that was paid.
            if s.status == Status::Withdrawn {
                prop_assert_eq!(s.refund_due, s.paid_amount);
                prop_assert_eq!(s.refund_id.is_some(), paid);
            }
            if s.status == Status::Expired {
                prop_assert_eq!(s.proposed_at, None);
            }
            if let Some(doc) = &s.document {
                prop_assert_eq!(doc.plan_revision, s.plan_revision);
            }
        }
        let replayed = replay(enrollment_id(), log.iter().map(|(e, at)| (e, *at)));
        prop_assert_eq!(replayed, state);
    }
}
