//! Tailing the log from its end, as the event feed does.

use ezenroll::domain::enrollment::{CustomerNo, EnrollmentId};
use ezenroll::store::{EventEnvelope, Store, StoreError};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

use super::fixtures::*;

/// Reads with `read_after` (no wait) until nothing is left; checks `max` on the way.
async fn tail_all(store: &dyn Store, positions: &mut [String], max: usize) -> Vec<EventEnvelope> {
    let mut all = Vec::new();
    loop {
        let batch = store
            .read_after(positions, max, Duration::ZERO)
            .await
            .expect("read_after");
        assert!(batch.len() <= max, "read_after returned more than max");
        if batch.is_empty() {
            return all;
        }
        all.extend(batch.iter().map(|e| (**e).clone()));
    }
}

/// Asserts `read` holds exactly the envelopes of `expected`, each once, and every
/// enrollment's events in version order.
fn assert_tailed(read: &[EventEnvelope], expected: &[EventEnvelope]) {
    let ids: Vec<Uuid> = read.iter().map(|e| e.id).collect();
    assert_no_duplicates(&ids);
    let expected_ids: HashSet<Uuid> = expected.iter().map(|e| e.id).collect();
    assert_eq!(ids.iter().copied().collect::<HashSet<_>>(), expected_ids);
    let by_id: HashMap<Uuid, &EventEnvelope> = expected.iter().map(|e| (e.id, e)).collect();
    let mut last_version: HashMap<EnrollmentId, u64> = HashMap::new();
    for e in read {
        assert_eq!(Some(&e), by_id.get(&e.id), "the envelope as appended");
        let last = last_version.insert(e.enrollment_id, e.version);
        assert!(last.is_none_or(|v| v < e.version), "out of order");
    }
}

pub async fn read_after_tails_the_log_from_its_end(store: Arc<dyn Store>) {
    let store = &*store;
    let partitions = usize::from(store.partitions());
    // Positions taken on an empty log.
    let mut from_start = store.log_end().await.expect("log_end");
    assert_eq!(from_start.len(), partitions, "one position per partition");

    let earlier = saved_plans(store, 3).await;
    let mut reader = store.log_end().await.expect("log_end");
    assert_eq!(reader.len(), partitions);
    assert!(
        store
            .read_after(&mut reader, 10, Duration::ZERO)
            .await
            .expect("read_after")
            .is_empty(),
        "the end of the log is after every earlier event"
    );
    let mut second = reader.clone();

    let mut later = Vec::new();
    for _ in 0..6 {
        let mut journey = Journey::new(CustomerNo::new(2));
        later.extend(
            journey
                .run(store, &[Step::SavePlan, Step::RequestDocument])
                .await,
        );
    }
    let read = tail_all(store, &mut reader, 3).await;
    assert_tailed(&read, &later);
    assert!(
        tail_all(store, &mut reader, 3).await.is_empty(),
        "nothing is read twice"
    );

    // Not a consumer group: another reader sees everything too, and one that started on
    // the empty log sees the earlier events as well.
    assert_tailed(&tail_all(store, &mut second, 100).await, &later);
    let everything: Vec<EventEnvelope> = earlier.iter().chain(&later).cloned().collect();
    assert_tailed(&tail_all(store, &mut from_start, 4).await, &everything);

    // Positions advance only past what was read; `max == 0` reads nothing.
    let more = saved_plans(store, 1).await;
    assert!(
        store
            .read_after(&mut reader, 0, Duration::ZERO)
            .await
            .expect("read_after")
            .is_empty()
    );
    assert_tailed(&tail_all(store, &mut reader, 10).await, &more);

    // Malformed positions are refused.
    let mut too_few = vec![reader[0].clone(); partitions - 1];
    match store.read_after(&mut too_few, 10, Duration::ZERO).await {
        Err(StoreError::Rejected(_)) => {}
        other => panic!(
            "expected Rejected for {} positions, got {other:?}",
            partitions - 1
        ),
    }
    let mut too_many = vec![reader[0].clone(); partitions + 1];
    match store.read_after(&mut too_many, 10, Duration::ZERO).await {
        Err(StoreError::Rejected(_)) => {}
        other => panic!(
            "expected Rejected for {} positions, got {other:?}",
            partitions + 1
        ),
    }
    let mut garbage = vec!["not a position".to_owned(); partitions];
    assert!(
        store
            .read_after(&mut garbage, 10, Duration::ZERO)
            .await
            .is_err(),
        "a position that does not parse"
    );
}

pub async fn blocked_read_after_is_woken_by_an_append(store: Arc<dyn Store>) {
    let start = store.log_end().await.expect("log_end");
    let reader = |mut positions: Vec<String>| {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            let read = store
                .read_after(&mut positions, 10, Duration::from_secs(10))
                .await
                .expect("read_after");
            (read, positions)
        })
    };
    // Two blocked readers: both are woken, both get the entry.
    let (a, b) = (reader(start.clone()), reader(start.clone()));
    // Give the readers time to start waiting (they return the event either way).
    tokio::time::sleep(Duration::from_millis(100)).await;
    let appended = saved_plans(&*store, 1).await;
    for task in [a, b] {
        let (read, mut positions) = task.await.expect("reader");
        assert_eq!(read.len(), 1);
        assert_eq!(*read[0], appended[0]);
        assert_ne!(positions, start, "the position moved past the entry");
        assert!(
            store
                .read_after(&mut positions, 10, Duration::from_millis(100))
                .await
                .expect("read_after")
                .is_empty(),
            "a blocked read on nothing new returns empty"
        );
    }
}
