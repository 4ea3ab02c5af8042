//! Idempotency: kept answers put if absent with a TTL, and exclusive claims.

use ezenroll::store::{IdempotencyClaim, Store};
use std::sync::Arc;
use std::time::Duration;

pub async fn idempotency_is_put_if_absent_with_ttl(store: Arc<dyn Store>) {
    let store = &*store;
    let hour = Duration::from_secs(3600);
    assert!(
        store
            .idempotent_put("k", b"first", hour)
            .await
            .expect("put")
    );
    assert!(
        !store
            .idempotent_put("k", b"second", hour)
            .await
            .expect("put")
    );
    assert_eq!(
        store.idempotent_get("k").await.expect("get"),
        Some(b"first".to_vec())
    );
    assert_eq!(store.idempotent_get("missing").await.expect("get"), None);

    let short = Duration::from_millis(50);
    assert!(
        store
            .idempotent_put("short", b"x", short)
            .await
            .expect("put")
    );
    assert!(
        store
            .idempotent_put("short-2", b"x", short)
            .await
            .expect("put")
    );
    assert_eq!(
        store.idempotent_get("short").await.expect("get"),
        Some(b"x".to_vec())
    );
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(
        store.idempotent_get("short").await.expect("get"),
        None,
        "expired"
    );
    // An expired key is absent to a put, too (with or without a read first).
    assert!(
        store
            .idempotent_put("short", b"y", hour)
            .await
            .expect("put")
    );
    assert!(
        store
            .idempotent_put("short-2", b"z", hour)
            .await
            .expect("put")
    );
    assert_eq!(
        store.idempotent_get("short").await.expect("get"),
        Some(b"y".to_vec())
    );
    assert_eq!(
        store.idempotent_get("short-2").await.expect("get"),
        Some(b"z".to_vec())
    );
}

pub async fn idempotency_claims_are_exclusive(store: Arc<dyn Store>) {
    let hour = Duration::from_secs(3600);
    assert_eq!(
        store.idempotent_claim("k", hour, "a").await.expect("claim"),
        IdempotencyClaim::Claimed
    );
    assert_eq!(
        store.idempotent_claim("k", hour, "b").await.expect("claim"),
        IdempotencyClaim::InProgress {
            holder: "a".to_owned()
        },
        "claimed by someone else, who is named"
    );
    assert_eq!(
        store.idempotent_get("k").await.expect("get"),
        None,
        "a claim is not an answer"
    );
    assert!(
        store
            .idempotent_put("k", b"answer", hour)
            .await
            .expect("put")
    );
    assert_eq!(
        store.idempotent_claim("k", hour, "b").await.expect("claim"),
        IdempotencyClaim::Done(b"answer".to_vec())
    );
    store.idempotent_release("k").await.expect("release");
    assert_eq!(
        store.idempotent_get("k").await.expect("get"),
        Some(b"answer".to_vec()),
        "releasing never drops an answer"
    );
    assert!(
        !store
            .idempotent_put("k", b"other", hour)
            .await
            .expect("put")
    );

    // A released claim can be claimed again; so can one whose lease ran out.
    store.idempotent_claim("r", hour, "a").await.expect("claim");
    store.idempotent_release("r").await.expect("release");
    assert_eq!(
        store.idempotent_claim("r", hour, "a").await.expect("claim"),
        IdempotencyClaim::Claimed
    );
    let short = Duration::from_millis(100);
    store
        .idempotent_claim("l", short, "a")
        .await
        .expect("claim");
    tokio::time::sleep(short * 3).await;
    assert_eq!(
        store.idempotent_claim("l", hour, "b").await.expect("claim"),
        IdempotencyClaim::Claimed,
        "the dead holder's lease ran out"
    );

    // Racing claims: exactly one wins.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            store
                .idempotent_claim("race", hour, "a")
                .await
                .expect("claim")
        }));
    }
    let mut claimed = 0;
    for task in tasks {
        match task.await.expect("task") {
            IdempotencyClaim::Claimed => claimed += 1,
            IdempotencyClaim::InProgress { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(claimed, 1);
}

pub async fn a_dead_holders_claim_can_be_taken_over(store: Arc<dyn Store>) {
    let hour = Duration::from_secs(3600);
    store
        .idempotent_claim("t", hour, "dead")
        .await
        .expect("claim");
    assert!(
        !store
            .idempotent_take_over("t", "someone-else", "me", hour)
            .await
            .expect("take over"),
        "only from the holder"
    );
    assert!(
        store
            .idempotent_take_over("t", "dead", "me", hour)
            .await
            .expect("take over")
    );
    assert!(
        !store
            .idempotent_take_over("t", "dead", "another", hour)
            .await
            .expect("take over"),
        "taken over once"
    );
    assert_eq!(
        store.idempotent_claim("t", hour, "x").await.expect("claim"),
        IdempotencyClaim::InProgress {
            holder: "me".to_owned()
        }
    );
    assert!(store.idempotent_put("t", b"done", hour).await.expect("put"));
    assert!(
        !store
            .idempotent_take_over("t", "me", "another", hour)
            .await
            .expect("take over"),
        "an answered key is not a claim"
    );
    store.idempotent_release("t").await.expect("release");
    assert_eq!(
        store.idempotent_get("t").await.expect("get"),
        Some(b"done".to_vec())
    );
}
