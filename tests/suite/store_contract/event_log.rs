//! The event log: consumer groups, claims, acknowledgements, lag, dead letters, blocked reads.

use ezenroll::domain::enrollment::{CustomerNo, EnrollmentId};
use ezenroll::store::{Delivery, EventEnvelope, Store};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

use super::fixtures::*;

pub async fn events_reach_their_partition_once(store: Arc<dyn Store>) {
    let store = &*store;
    store.ensure_group("g").await.expect("group");
    let partitions = u64::from(store.partitions());
    let mut appended: HashMap<Uuid, EventEnvelope> = HashMap::new();
    for _ in 0..12 {
        let mut journey = Journey::new(CustomerNo::new(1));
        for e in journey
            .run(store, &[Step::SavePlan, Step::RequestDocument])
            .await
        {
            appended.insert(e.id, e);
        }
    }
    let delivered = drain(store, "g", "c", 5).await;
    assert_eq!(delivered.len(), appended.len());
    assert_no_duplicates(&event_ids(&delivered));
    let mut last_version: HashMap<EnrollmentId, u64> = HashMap::new();
    let mut positions = HashSet::new();
    for d in &delivered {
        assert_eq!(Some(&*d.envelope), appended.get(&d.envelope.id));
        assert_eq!(d.deliveries, 1);
        let expected = d.envelope.enrollment_id.partition_hash() % partitions;
        assert_eq!(u64::from(d.partition), expected, "wrong partition");
        assert!(
            positions.insert((d.partition, d.entry_id.clone())),
            "entry ids repeat"
        );
        // One enrollment's events keep their order within its partition.
        let last = last_version.insert(d.envelope.enrollment_id, d.envelope.version);
        assert!(last.is_none_or(|v| v < d.envelope.version), "out of order");
    }
    assert!(drain(store, "g", "c", 5).await.is_empty(), "read twice");
    assert!(
        drain(store, "g", "other-consumer", 5).await.is_empty(),
        "another consumer of the group got them again"
    );
}

pub async fn consumers_of_a_group_share_entries(store: Arc<dyn Store>) {
    const EVENTS: usize = 60;
    let appended = saved_plans(&*store, EVENTS).await;
    let expected: HashSet<Uuid> = appended.iter().map(|e| e.id).collect();

    // Taking turns: both get some, nobody gets the same entry.
    store.ensure_group("turns").await.expect("group");
    let mut by: HashMap<&str, Vec<Uuid>> = HashMap::new();
    'outer: loop {
        for consumer in ["a", "b"] {
            let batch = store
                .read_group("turns", consumer, 7, Duration::ZERO)
                .await
                .expect("read");
            if batch.is_empty() {
                break 'outer;
            }
            store.ack("turns", &refs(&batch)).await.expect("ack");
            by.entry(consumer).or_default().extend(event_ids(&batch));
        }
    }
    assert!(by.get("a").is_some_and(|v| !v.is_empty()));
    assert!(by.get("b").is_some_and(|v| !v.is_empty()));
    let all: Vec<Uuid> = by.values().flatten().copied().collect();
    assert_no_duplicates(&all);
    assert_eq!(all.into_iter().collect::<HashSet<_>>(), expected);

    // Racing: three consumers at once.
    store.ensure_group("race").await.expect("group");
    let mut tasks = Vec::new();
    for consumer in ["x", "y", "z"] {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let batch = store
                    .read_group("race", consumer, 4, Duration::from_millis(50))
                    .await
                    .expect("read");
                if batch.is_empty() {
                    return got;
                }
                store.ack("race", &refs(&batch)).await.expect("ack");
                got.extend(event_ids(&batch));
            }
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("task"));
    }
    assert_no_duplicates(&all);
    assert_eq!(all.into_iter().collect::<HashSet<_>>(), expected);
    assert_eq!(store.lag("race").await.expect("lag"), 0);
}

pub async fn unacked_entries_are_claimable_after_min_idle(store: Arc<dyn Store>) {
    let store = &*store;
    store.ensure_group("g").await.expect("group");
    let appended = saved_plans(store, 3).await;
    let first = drain(store, "g", "a", 10).await;
    assert_eq!(first.len(), 3);

    let min_idle = Duration::from_millis(300);
    assert!(
        store
            .claim_stale("g", "b", min_idle, 10)
            .await
            .expect("claim")
            .is_empty(),
        "claimed before min_idle"
    );
    tokio::time::sleep(min_idle + Duration::from_millis(100)).await;

    let some = store
        .claim_stale("g", "b", min_idle, 2)
        .await
        .expect("claim");
    assert_eq!(some.len(), 2, "max is respected");
    let rest = store
        .claim_stale("g", "b", min_idle, 10)
        .await
        .expect("claim");
    assert_eq!(rest.len(), 1);
    let claimed: Vec<Delivery> = some.into_iter().chain(rest).collect();
    assert_no_duplicates(&event_ids(&claimed));
    let ids: HashSet<Uuid> = event_ids(&claimed).into_iter().collect();
    assert_eq!(ids, appended.iter().map(|e| e.id).collect());
    for d in &claimed {
        assert_eq!(d.deliveries, 2, "a claim counts as a delivery");
        let original = first
            .iter()
            .find(|f| f.envelope.id == d.envelope.id)
            .expect("the same entry");
        assert_eq!(
            (d.partition, &d.entry_id),
            (original.partition, &original.entry_id)
        );
        assert_eq!(d.envelope, original.envelope);
    }

    // Claiming resets the idle time; reading never hands out pending entries.
    assert!(
        store
            .claim_stale("g", "c", min_idle, 10)
            .await
            .expect("claim")
            .is_empty()
    );
    assert!(drain(store, "g", "c", 10).await.is_empty());
    assert_eq!(store.lag("g").await.expect("lag"), 3);
}

pub async fn ack_prevents_redelivery(store: Arc<dyn Store>) {
    let store = &*store;
    store.ensure_group("g").await.expect("group");
    saved_plans(store, 2).await;
    let read = drain(store, "g", "a", 10).await;
    assert_eq!(read.len(), 2);
    store.ack("g", &refs(&read[..1])).await.expect("ack");

    let again = store
        .claim_stale("g", "b", Duration::ZERO, 10)
        .await
        .expect("claim");
    assert_eq!(event_ids(&again), vec![read[1].envelope.id]);
    assert_eq!(again[0].deliveries, 2);
    store.ack("g", &refs(&again)).await.expect("ack");
    // Acknowledging twice is harmless.
    store.ack("g", &refs(&read)).await.expect("ack again");

    assert!(
        store
            .claim_stale("g", "b", Duration::ZERO, 10)
            .await
            .expect("claim")
            .is_empty()
    );
    assert!(drain(store, "g", "a", 10).await.is_empty());
    assert_eq!(store.lag("g").await.expect("lag"), 0);
}

pub async fn new_group_sees_earlier_events(store: Arc<dyn Store>) {
    let store = &*store;
    let before = saved_plans(store, 3).await;
    store.ensure_group("late").await.expect("group");
    store.ensure_group("late").await.expect("ensure again");
    let read = drain(store, "late", "a", 10).await;
    let ids: HashSet<Uuid> = event_ids(&read).into_iter().collect();
    assert_eq!(ids, before.iter().map(|e| e.id).collect());

    // Ensuring an existing group changes nothing: no rewind, pending entries stay pending.
    store.ensure_group("late").await.expect("ensure again");
    assert!(drain(store, "late", "a", 10).await.is_empty());
    assert_eq!(store.lag("late").await.expect("lag"), 3);
    store.ack("late", &refs(&read)).await.expect("ack");
    store.ensure_group("late").await.expect("ensure again");
    assert_eq!(store.lag("late").await.expect("lag"), 0);

    let after = saved_plans(store, 1).await;
    let read = drain(store, "late", "a", 10).await;
    assert_eq!(event_ids(&read), vec![after[0].id]);
}

pub async fn reading_an_unknown_group_fails(store: Arc<dyn Store>) {
    saved_plans(&*store, 1).await;
    assert!(
        store
            .read_group("never-created", "a", 10, Duration::ZERO)
            .await
            .is_err()
    );
}

pub async fn lag_counts_unread_and_pending(store: Arc<dyn Store>) {
    let store = &*store;
    store.ensure_group("g").await.expect("group");
    store.ensure_group("other").await.expect("group");
    assert_eq!(store.lag("g").await.expect("lag"), 0);
    saved_plans(store, 5).await;
    assert_eq!(store.lag("g").await.expect("lag"), 5);

    let two = store
        .read_group("g", "a", 2, Duration::ZERO)
        .await
        .expect("read");
    assert_eq!(two.len(), 2);
    assert_eq!(
        store.lag("g").await.expect("lag"),
        5,
        "3 unread + 2 pending"
    );
    store.ack("g", &refs(&two[..1])).await.expect("ack");
    assert_eq!(store.lag("g").await.expect("lag"), 4);
    let rest = drain(store, "g", "a", 10).await;
    assert_eq!(rest.len(), 3);
    assert_eq!(store.lag("g").await.expect("lag"), 4, "all pending now");
    store.ack("g", &refs(&two)).await.expect("ack");
    store.ack("g", &refs(&rest)).await.expect("ack");
    assert_eq!(store.lag("g").await.expect("lag"), 0);
    assert_eq!(
        store.lag("other").await.expect("lag"),
        5,
        "groups are independent"
    );
}

pub async fn dead_letters_are_kept_and_acknowledged(store: Arc<dyn Store>) {
    let store = &*store;
    store.ensure_group("g").await.expect("group");
    store.ensure_group("other").await.expect("group");
    saved_plans(store, 2).await;
    let read = drain(store, "g", "a", 10).await;
    assert_eq!(read.len(), 2);
    store
        .dead_letter("g", &read[0], "handler failed 5 times")
        .await
        .expect("dead letter");
    store
        .dead_letter("g", &read[1], "undecodable")
        .await
        .expect("dead letter");

    let dead = store.dead_letters("g").await.expect("dead letters");
    assert_eq!(
        dead,
        vec![(*read[0].envelope).clone(), (*read[1].envelope).clone()]
    );
    assert_eq!(
        store.lag("g").await.expect("lag"),
        0,
        "dead-lettering acknowledges"
    );
    assert!(
        store
            .claim_stale("g", "b", Duration::ZERO, 10)
            .await
            .expect("claim")
            .is_empty()
    );
    assert!(
        store
            .dead_letters("other")
            .await
            .expect("dead letters")
            .is_empty()
    );
    assert_eq!(store.lag("other").await.expect("lag"), 2);
}

pub async fn blocked_read_returns_an_event_appended_meanwhile(store: Arc<dyn Store>) {
    store.ensure_group("g").await.expect("group");
    let reader = {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            store
                .read_group("g", "a", 10, Duration::from_secs(10))
                .await
                .expect("read")
        })
    };
    // Give the reader time to start waiting (it returns the event either way).
    tokio::time::sleep(Duration::from_millis(100)).await;
    let appended = saved_plans(&*store, 1).await;
    let read = reader.await.expect("reader");
    assert_eq!(read.len(), 1);
    assert_eq!(*read[0].envelope, appended[0]);
}

pub async fn blocked_read_on_nothing_returns_empty(store: Arc<dyn Store>) {
    store.ensure_group("g").await.expect("group");
    let read = store
        .read_group("g", "a", 10, Duration::from_millis(100))
        .await
        .expect("read");
    assert!(read.is_empty());
}
