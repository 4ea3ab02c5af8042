//! Replay and the event contract: names, JSON shape, round trips.

use chrono::{DateTime, Duration, Utc};
use ezenroll::domain::enrollment::{Enrollment, Event, Status, apply, replay};
use serde_json::{Value, json};
use std::collections::HashSet;

use super::fixtures::*;

#[test]
fn replay_is_folding_one_event_after_another() {
    for status in Status::ALL {
        let events = history(status);
        let times: Vec<DateTime<Utc>> = (0..events.len())
            .map(|i| saved_at() + Duration::minutes(i as i64))
            .collect();
        let mut folded = None;
        for (event, at) in events.iter().zip(&times) {
            folded = apply(folded, enrollment_id(), event, *at);
            assert!(folded.is_some(), "{} applies", event.event_type());
        }
        let replayed = replay(enrollment_id(), events.iter().zip(times.iter().copied()));
        assert_eq!(replayed, folded, "{status}");
        let state = replayed.expect("started");
        assert_eq!(state.created_at, saved_at());
        assert_eq!(state.updated_at, *times.last().expect("one event at least"));
    }
}

#[test]
fn a_history_that_does_not_start_with_a_saved_plan_replays_to_nothing() {
    assert_eq!(replay(enrollment_id(), []), None);
    let orphan = [Event::DocumentRequested { plan_revision: 1 }];
    assert_eq!(
        replay(enrollment_id(), orphan.iter().map(|e| (e, now()))),
        None
    );
    let mut tail = history(Status::Contracted);
    tail.remove(0);
    assert_eq!(
        replay(enrollment_id(), tail.iter().map(|e| (e, now()))),
        None
    );
}

/// One of every event; the match makes a new variant fail to compile here until it is
/// added to the contract tests.
fn every_event() -> Vec<Event> {
    let events = vec![
        plan_saved(),
        Event::PlanResaved {
            plan: whole_life_plan().into(),
            revision: 2,
            expires_at: resaved_expires_at(),
        },
        Event::DocumentRequested { plan_revision: 2 },
        Event::DocumentIssued {
            document: document(2).reference().into(),
        },
        proposal_submitted(),
        paid(),
        Event::PaymentFailed {
            failure: declined(),
        },
        Event::PaymentRetried { attempt: 2 },
        Event::WithdrawalRequested {
            refund_due: Some(first_premium()),
        },
        Event::RefundConfirmed {
            refund_id: "RF-0001".to_owned(),
            amount: first_premium(),
        },
        Event::Withdrawn {},
        Event::PlanExpired {},
    ];
    for event in &events {
        match event {
            Event::PlanSaved { .. }
            | Event::PlanResaved { .. }
            | Event::DocumentRequested { .. }
            | Event::DocumentIssued { .. }
            | Event::ProposalSubmitted { .. }
            | Event::PaymentSucceeded { .. }
            | Event::PaymentFailed { .. }
            | Event::PaymentRetried { .. }
            | Event::WithdrawalRequested { .. }
            | Event::RefundConfirmed { .. }
            | Event::Withdrawn {}
            | Event::PlanExpired {} => {}
        }
    }
    events
}

#[test]
fn event_names_are_stable_and_unique() {
    let names: Vec<&str> = every_event().iter().map(Event::event_type).collect();
    assert_eq!(
        names,
        [
            "PlanSaved",
            "PlanResaved",
            "DocumentRequested",
            "DocumentIssued",
            "ProposalSubmitted",
            "PaymentSucceeded",
            "PaymentFailed",
            "PaymentRetried",
            "WithdrawalRequested",
            "RefundConfirmed",
            "Withdrawn",
            "PlanExpired",
        ]
    );
    assert_eq!(names.iter().collect::<HashSet<_>>().len(), names.len());
    let versions: Vec<(&str, u16)> = every_event()
        .iter()
        .map(|e| (e.event_type(), e.event_version()))
        .filter(|&(_, version)| version != 1)
        .collect();
    assert_eq!(
        versions,
        [("DocumentIssued", 2)],
        "schema 2: the document by reference"
    );
}

fn keys_not_camel_case(value: &Value, path: &str, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                let camel = key.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                    && key.chars().all(|c| c.is_ascii_alphanumeric());
                if !camel {
                    out.push(format!("{path}.{key}"));
                }
                keys_not_camel_case(inner, &format!("{path}.{key}"), out);
            }
        }
        Value::Array(items) => {
            for (i, inner) in items.iter().enumerate() {
                keys_not_camel_case(inner, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn events_are_json_type_and_camel_case_data_and_round_trip() {
    for event in every_event() {
        let value = serde_json::to_value(&event).expect("serializes");
        let object = value.as_object().expect("an object");
        let mut keys: Vec<&String> = object.keys().collect();
        keys.sort();
        assert_eq!(keys, ["data", "type"], "{value}");
        assert_eq!(value["type"], event.event_type());
        assert!(value["data"].is_object(), "{value}");
        let mut bad = Vec::new();
        keys_not_camel_case(&value["data"], "data", &mut bad);
        assert!(
            bad.is_empty(),
            "{}: not camelCase: {bad:?}",
            event.event_type()
        );

        let text = serde_json::to_string(&event).expect("serializes");
        let back: Event = serde_json::from_str(&text).expect("deserializes");
        assert_eq!(back, event);
    }
}

#[test]
fn event_json_reads_as_documented() {
    let json_of = |e: &Event| serde_json::to_value(e).expect("serializes");
    assert_eq!(
        json_of(&Event::DocumentRequested { plan_revision: 2 }),
        json!({"type": "DocumentRequested", "data": {"planRevision": 2}})
    );
    assert_eq!(
        json_of(&Event::WithdrawalRequested { refund_due: None }),
        json!({"type": "WithdrawalRequested", "data": {"refundDue": null}})
    );
    assert_eq!(
        json_of(&Event::Withdrawn {}),
        json!({"type": "Withdrawn", "data": {}})
    );
    assert_eq!(
        json_of(&paid()),
        json!({"type": "PaymentSucceeded", "data": {
            "paymentId": "PAY-0001",
            "amount": first_premium().get(),
            "contractNo": "K-2026-000001",
        }})
    );
    assert_eq!(
        json_of(&proposal_submitted())["data"],
        json!({
            "method": "card",
            "amount": first_premium().get(),
            "withdrawalDeadline": "2026-12-25T10:00:00Z",
        })
    );
    // DocumentIssued names the document and the SHA-256 of its text, which is not in it.
    let issued = json_of(&Event::DocumentIssued {
        document: document(2).reference().into(),
    });
    assert_eq!(
        issued,
        json!({"type": "DocumentIssued", "data": {"document": {
            "documentNo": "D-2026-000002",
            "planRevision": 2,
            "issuedAt": "2026-11-25T10:00:00Z",
            "title": "이지 정기보험 상품설명서",
            // printf '%s' '보험기간 20년, 납입기간 20년, 월납' | sha256sum
            "bodySha256": SAMPLE_BODY_SHA256,
        }}})
    );
    // A schema-1 event (the whole document in it) still reads, as a reference without a
    // digest.
    let mut old = issued.clone();
    let data = &mut old["data"]["document"];
    data["body"] = json!("보험기간 20년, 납입기간 20년, 월납");
    if let Some(fields) = data.as_object_mut() {
        fields.remove("bodySha256");
    }
    let read: Event = serde_json::from_value(old).expect("a schema-1 event reads");
    let Event::DocumentIssued {
        document: reference,
    } = read
    else {
        panic!("not DocumentIssued: {read:?}");
    };
    assert_eq!(reference.document_no, "D-2026-000002");
    assert_eq!(reference.body_sha256, "");
    assert!(document(2).is_named_by(&reference), "named by number alone");
    // With a digest, a text changed by one character is not the one named.
    let named = document(2).reference();
    let mut changed = document(2);
    changed.body = changed.body.replace("월납", "연납");
    assert!(document(2).is_named_by(&named));
    assert!(!changed.is_named_by(&named), "another text");
    assert!(!document(3).is_named_by(&named), "another document");
    let saved = json_of(&plan_saved());
    assert_eq!(saved["data"]["customerNo"], "C123456789");
    assert_eq!(saved["data"]["plan"]["productCode"], "EZ-TERM");
    assert_eq!(saved["data"]["plan"]["coveragePeriod"], 20);
    assert_eq!(saved["data"]["plan"]["paymentCycle"], "monthly");
    assert_eq!(
        json_of(&Event::PaymentFailed {
            failure: declined()
        })["data"],
        json!({"failure": {"declined": {"reason": "한도 초과"}}})
    );
}

#[test]
fn status_after_agrees_with_apply() {
    let mut histories: Vec<Vec<Event>> = Status::ALL.map(history).to_vec();
    let mut unpaid_withdrawal = history(Status::PaymentFailed);
    unpaid_withdrawal.extend([
        Event::PaymentRetried { attempt: 2 },
        Event::WithdrawalRequested { refund_due: None },
        Event::Withdrawn {},
    ]);
    histories.push(unpaid_withdrawal);
    for events in histories {
        let mut state: Option<Enrollment> = None;
        for event in &events {
            let before = state.as_ref().map(|s| s.status);
            state = apply(state, enrollment_id(), event, now());
            let after = state.as_ref().expect("applies").status;
            assert_eq!(
                event.status_after(before),
                after,
                "{} after {before:?}",
                event.event_type()
            );
        }
    }
}
