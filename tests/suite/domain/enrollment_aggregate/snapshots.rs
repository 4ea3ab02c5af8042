//! Snapshots: every status decodes to the same enrollment, damage is corrupt, and snapshots
//! in older formats still read.

use ezenroll::domain::enrollment::{Enrollment, Event, ProductDocument, Status};
use ezenroll::domain::period::CoveragePeriod;
use ezenroll::store::StoreError;
use ezenroll::store::codec::{
    decode_document, decode_snapshot, decode_stored, encode_document, encode_snapshot,
    needs_old_document,
};

use super::fixtures::*;
use crate::support::old_formats;

fn snapshot_key() -> String {
    format!("enrollment:{}", enrollment_id())
}

#[test]
fn a_snapshot_in_every_status_decodes_to_the_same_enrollment() {
    let mut states: Vec<Enrollment> = Status::ALL.map(state_in).to_vec();
    // Whole life (a coverage period without years) and a failure with its reason.
    let mut whole_life = history(Status::PaymentFailed);
    whole_life.insert(
        1,
        Event::PlanResaved {
            plan: whole_life_plan().into(),
            revision: 2,
            expires_at: resaved_expires_at(),
        },
    );
    for event in &mut whole_life {
        if let Event::DocumentRequested { plan_revision } = event {
            *plan_revision = 2;
        }
        if let Event::DocumentIssued { document: d } = event {
            *d = document(2).reference().into();
        }
        if let Event::ProposalSubmitted { amount, .. } = event {
            *amount = whole_life_plan().quote.installment;
        }
    }
    let state = given(whole_life).state.expect("started");
    assert_eq!(state.plan.coverage_period, CoveragePeriod::WholeLife);
    assert_eq!(state.document.as_ref().map(|d| d.plan_revision), Some(2));
    states.push(state);

    for state in states {
        let bytes = encode_snapshot(&state).expect("encodes");
        let back = decode_snapshot(&snapshot_key(), &bytes).expect("decodes");
        assert_eq!(back, state, "{}", state.status);
    }
}

#[track_caller]
fn assert_corrupt(result: Result<Enrollment, StoreError>, what: &str) {
    let err = result.expect_err(what);
    assert!(
        matches!(&err, StoreError::Corrupt { key, reason } if *key == snapshot_key() && !reason.is_empty()),
        "{what}: expected Corrupt for {}, got {err:?}",
        snapshot_key()
    );
    assert!(err.to_string().contains(&snapshot_key()), "{what}: {err}");
}

#[test]
fn a_damaged_snapshot_is_corrupt_and_names_its_key() {
    let bytes = encode_snapshot(&state_in(Status::Contracted)).expect("encodes");
    let key = snapshot_key();

    for cut in [1, 2, bytes.len() / 2, bytes.len() - 1] {
        assert_corrupt(
            decode_snapshot(&key, &bytes[..cut]),
            &format!("truncated to {cut}"),
        );
    }
    for format in [0u8, 2, 255] {
        let mut wrong = bytes.clone();
        wrong[0] = format;
        assert_corrupt(
            decode_snapshot(&key, &wrong),
            &format!("format byte {format}"),
        );
    }
    assert_corrupt(decode_snapshot(&key, &[]), "empty");
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert_corrupt(decode_snapshot(&key, &trailing), "a trailing byte");
}

/// The full document an enrollment's reference names, in these tests.
fn document_of(state: &Enrollment) -> Option<ProductDocument> {
    let reference = state.document.as_ref()?;
    let full = document(reference.plan_revision);
    assert_eq!(full.reference(), **reference);
    Some(full)
}

/// Snapshots are written in format 3: the state names its document, whose text is not in
/// it. Formats 1 (the document whole in the state) and 2 (the text apart, in `d`) still
/// read: the state comes back with the reference computed from the text, and the text with
/// it, for the store to keep where format 3 keeps texts.
#[test]
fn snapshots_in_formats_1_and_2_still_read_with_their_documents() {
    for state in Status::ALL.map(state_in) {
        let full = document_of(&state);
        let current = encode_snapshot(&state).expect("encodes");
        assert_eq!(current[0], 3, "format 3");
        assert!(!needs_old_document(&current));
        let back = decode_stored(&snapshot_key(), &current, None).expect("format 3");
        assert_eq!((back.state, back.old_document), (state.clone(), None));

        let old = old_formats::format1(&state, full.as_ref());
        assert!(!needs_old_document(&old));
        let back = decode_stored(&snapshot_key(), &old, None).expect("format 1");
        assert_eq!(back.state, state, "format 1, {}", state.status);
        assert_eq!(back.old_document, full);

        let split = old_formats::format2(&state, full.is_some());
        assert_eq!(needs_old_document(&split), full.is_some());
        let apart = full
            .as_ref()
            .map(|d| encode_document(state.id, d).expect("encodes the text"));
        let back = decode_stored(&snapshot_key(), &split, apart.as_deref()).expect("format 2");
        assert_eq!(back.state, state, "format 2, {}", state.status);
        assert_eq!(back.old_document, full);
        if let Some(document) = &full {
            // The text is not in a format-3 snapshot: shorter than format 1 by about its size.
            assert!(
                current.len() + document.body.len() <= old.len() + 64,
                "{} + {} vs {}",
                current.len(),
                document.body.len(),
                old.len()
            );
        }
    }
}

#[test]
fn a_damaged_old_snapshot_or_document_is_corrupt() {
    let state = state_in(Status::Contracted);
    let key = snapshot_key();
    let snapshot = old_formats::format2(&state, true);
    let document =
        encode_document(state.id, &document_of(&state).expect("a document")).expect("encodes");
    let decode = |snapshot: &[u8], document: Option<&[u8]>| {
        decode_stored(&key, snapshot, document).map(|stored| stored.state)
    };
    assert_corrupt(decode(&snapshot, None), "the document missing");
    for cut in [1, 2, snapshot.len() - 1] {
        assert_corrupt(
            decode(&snapshot[..cut], Some(&document)),
            &format!("snapshot truncated to {cut}"),
        );
    }
    for cut in [0, 1, document.len() - 1] {
        assert_corrupt(
            decode(&snapshot, Some(&document[..cut])),
            &format!("document truncated to {cut}"),
        );
    }
    let mut flag = snapshot.clone();
    flag[1] = 7;
    assert_corrupt(decode(&flag, Some(&document)), "document flag 7");
    let mut format = document.clone();
    format[0] = 9;
    assert_corrupt(decode(&snapshot, Some(&format)), "document format 9");
    assert!(
        matches!(
            decode_document(&key, &format),
            Err(StoreError::Corrupt { .. })
        ),
        "a document of an unknown format"
    );
    for format in [0u8, 4, 255] {
        let mut wrong = snapshot.clone();
        wrong[0] = format;
        assert_corrupt(
            decode(&wrong, Some(&document)),
            &format!("format byte {format}"),
        );
    }
    assert_corrupt(decode(&[], Some(&document)), "empty");
}
