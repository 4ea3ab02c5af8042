//! The store contract (tests/suite/store_contract) against the memory backend, plus
//! what only the memory backend has.

use crate::store_contract;

use ezenroll::domain::enrollment::CustomerNo;
use ezenroll::store::memory::MemoryStore;
use ezenroll::store::{EnrollmentStore, EventLog, Store};
use std::sync::Arc;
use std::time::Duration;
use store_contract::{JOURNEY, Journey, Step};

fn memory() -> Arc<dyn Store> {
    Arc::new(MemoryStore::new(4))
}

store_contract_suite!(store_contract, memory());

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn corrupt_snapshot_is_an_error() {
    let store = Arc::new(MemoryStore::new(4));
    let corrupted = Arc::clone(&store);
    store_contract::corrupt_snapshot_is_an_error(store, |id| async move {
        assert!(corrupted.corrupt_snapshot_for_test(id));
    })
    .await;
}

/// The contract again with one partition and with many: partitioning changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_log_contract_holds_for_any_partition_count() {
    for partitions in [1, 3, 64] {
        let make = || -> Arc<dyn Store> { Arc::new(MemoryStore::new(partitions)) };
        store_contract::events_reach_their_partition_once(make()).await;
        store_contract::consumers_of_a_group_share_entries(make()).await;
        store_contract::lag_counts_unread_and_pending(make()).await;
        store_contract::timers_claim_lease_move_and_cancel(make()).await;
        store_contract::read_after_tails_the_log_from_its_end(make()).await;
    }
}

#[tokio::test]
async fn memory_backend_basics() {
    let store = MemoryStore::default();
    assert_eq!(store.backend(), "memory");
    assert_eq!(store.partitions(), 16);
    assert_eq!(
        MemoryStore::new(0).partitions(),
        1,
        "at least one partition"
    );
    assert!(!store.corrupt_snapshot_for_test(ezenroll::domain::enrollment::EnrollmentId::new()));
    assert!(format!("{store:?}").contains("MemoryStore"));
}

#[tokio::test]
async fn dead_letters_keep_their_reason() {
    let store = MemoryStore::new(2);
    store.ensure_group("g").await.expect("group");
    let mut journey = Journey::new(CustomerNo::new(1));
    journey.commit(&store, Step::SavePlan, &[]).await;
    let read = store
        .read_group("g", "a", 10, Duration::ZERO)
        .await
        .expect("read");
    store
        .dead_letter("g", &read[0], "boom")
        .await
        .expect("dead letter");
    let kept = store.dead_letters_with_reasons("g");
    assert_eq!(kept, vec![((*read[0].envelope).clone(), "boom".to_owned())]);
}

/// With retention, the log keeps the newest entries; histories stay whole; a group that
/// falls behind skips what was trimmed, and trimmed pending entries are dropped on claim.
#[tokio::test]
async fn log_retention_trims_the_log_not_the_history() {
    let store = MemoryStore::new(1).with_log_retention(3);
    store.ensure_group("g").await.expect("group");
    let mut journey = Journey::new(CustomerNo::new(1));
    let first = journey.commit(&store, Step::SavePlan, &[]).await;
    let pending = store
        .read_group("g", "a", 10, Duration::ZERO)
        .await
        .expect("read");
    assert_eq!(pending.len(), 1);
    let rest = journey
        .run(
            &store,
            &[
                Step::RequestDocument,
                Step::IssueDocument,
                Step::SubmitProposal,
                Step::Pay,
            ],
        )
        .await;
    assert_eq!(store.history(journey.id).await.expect("history").len(), 5);

    store.ensure_group("late").await.expect("group");
    let late = store
        .read_group("late", "a", 10, Duration::ZERO)
        .await
        .expect("read");
    let versions: Vec<u64> = late.iter().map(|d| d.envelope.version).collect();
    assert_eq!(versions, [3, 4, 5], "only the retained entries");

    // "g" read version 1 (now trimmed, still pending) and missed version 2.
    assert_eq!(
        store.lag("g").await.expect("lag"),
        4,
        "3 unread + 1 pending"
    );
    let read = store
        .read_group("g", "a", 10, Duration::ZERO)
        .await
        .expect("read");
    assert_eq!(
        read.iter().map(|d| d.envelope.id).collect::<Vec<_>>(),
        rest[1..].iter().map(|e| e.id).collect::<Vec<_>>()
    );
    let claimed = store
        .claim_stale("g", "b", Duration::ZERO, 10)
        .await
        .expect("claim");
    assert!(claimed.iter().all(|d| d.envelope.id != first[0].id));
    assert_eq!(claimed.len(), 3);
}

/// The Redis backend carries events as JSON (`codec::encode_event`): every envelope of a
/// whole journey must come back equal, floats and all.
#[tokio::test]
async fn envelopes_survive_the_json_codec() {
    use ezenroll::store::codec::{decode_event, encode_event};
    let store = MemoryStore::new(1);
    let mut journey = Journey::new(CustomerNo::new(1));
    let mut envelopes = journey.run(&store, &JOURNEY).await;
    let mut withdrawn = Journey::new(CustomerNo::new(2));
    envelopes.extend(
        withdrawn
            .run(
                &store,
                &[
                    Step::SavePlan,
                    Step::RequestDocument,
                    Step::IssueDocument,
                    Step::SubmitProposal,
                    Step::Withdraw,
                ],
            )
            .await,
    );
    for envelope in envelopes {
        let text = encode_event(&envelope).expect("encode");
        assert_eq!(
            decode_event("test", &text).expect("decode"),
            envelope,
            "{text}"
        );
    }
}

/// `read_after` positions are sequence numbers here; anything else is refused as such, and
/// entries trimmed before a reader got to them are skipped.
#[tokio::test]
async fn read_after_positions_are_sequence_numbers_and_skip_trimmed_entries() {
    let store = MemoryStore::new(1).with_log_retention(2);
    let mut empty = store.log_end().await.expect("log_end");
    assert_eq!(empty, ["0"]);
    let mut journey = Journey::new(CustomerNo::new(1));
    let events = journey
        .run(
            &store,
            &[Step::SavePlan, Step::RequestDocument, Step::IssueDocument],
        )
        .await;
    assert_eq!(store.log_end().await.expect("log_end"), ["3"]);
    let read = store
        .read_after(&mut empty, 10, Duration::ZERO)
        .await
        .expect("read_after");
    let versions: Vec<u64> = read.iter().map(|e| e.version).collect();
    assert_eq!(versions, [2, 3], "version 1 was trimmed before it was read");
    assert_eq!(*read[1], events[2]);
    assert_eq!(empty, ["3"]);

    for bad in ["-1", "1-0", "", "x"] {
        let mut positions = vec![bad.to_owned()];
        assert!(matches!(
            store.read_after(&mut positions, 10, Duration::ZERO).await,
            Err(ezenroll::store::StoreError::Rejected(_))
        ));
        assert_eq!(positions, [bad], "a refused call moves nothing");
    }
}
