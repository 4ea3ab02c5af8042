//! Membership and partition leases: heartbeats that run out, leases taken once, renewed by
//! their holder, released, and fencing numbers that refuse a former owner's append.

use ezenroll::domain::enrollment::CustomerNo;
use ezenroll::store::{Append, Member, Store, StoreError};
use std::sync::Arc;
use std::time::Duration;

use super::fixtures::*;

fn member(id: &str, port: u16) -> Member {
    Member {
        id: id.to_owned(),
        address: format!("127.0.0.1:{port}"),
    }
}

pub async fn members_heartbeat_leave_and_run_out(store: Arc<dyn Store>) {
    let (a, b) = (member("a", 1), member("b", 2));
    let live = store
        .heartbeat(&b, Duration::from_secs(30))
        .await
        .expect("b");
    assert_eq!(live, vec![b.clone()]);
    let live = store
        .heartbeat(&a, Duration::from_millis(300))
        .await
        .expect("a");
    assert_eq!(live, vec![a.clone(), b.clone()], "ordered by id");
    assert_eq!(store.members().await.expect("members"), live);
    // a stops renewing: it is gone once its time runs out.
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(store.members().await.expect("members"), vec![b.clone()]);
    store.leave("b").await.expect("leave");
    assert!(store.members().await.expect("members").is_empty());
}

pub async fn a_lease_has_one_holder_and_a_new_fence_per_take(store: Arc<dyn Store>) {
    let ttl = Duration::from_secs(30);
    let first = store.claim_partition(0, "a", ttl).await.expect("claim");
    let fence = first.expect("a free partition is taken");
    assert_eq!(
        store.claim_partition(0, "b", ttl).await.expect("claim"),
        None
    );
    assert_eq!(
        store.claim_partition(0, "a", ttl).await.expect("renew"),
        Some(fence),
        "renewing keeps the fencing number"
    );
    let leases = store.partition_leases().await.expect("leases");
    assert_eq!(leases.len(), usize::from(store.partitions()));
    let held = leases[0].as_ref().expect("partition 0 is held");
    assert_eq!((held.owner.as_str(), held.fence), ("a", fence));
    assert!(leases[1..].iter().all(Option::is_none));
    // Released only by its holder with its number.
    store
        .release_partition(0, "b", fence)
        .await
        .expect("release");
    store
        .release_partition(0, "a", fence + 1)
        .await
        .expect("release");
    assert!(store.partition_leases().await.expect("leases")[0].is_some());
    store
        .release_partition(0, "a", fence)
        .await
        .expect("release");
    assert!(store.partition_leases().await.expect("leases")[0].is_none());
    let next = store.claim_partition(0, "b", ttl).await.expect("claim");
    assert!(next.is_some_and(|f| f > fence), "{next:?} after {fence}");
}

pub async fn a_former_owners_append_is_fenced(store: Arc<dyn Store>) {
    let journey = Journey::new(CustomerNo::new(3));
    let p = u16::try_from(journey.id.partition_hash() % u64::from(store.partitions()))
        .expect("a partition");
    let old = store
        .claim_partition(p, "a", Duration::from_millis(200))
        .await
        .expect("claim")
        .expect("free");
    // a pauses past its lease; b takes over.
    tokio::time::sleep(Duration::from_millis(350)).await;
    let new = store
        .claim_partition(p, "b", Duration::from_secs(30))
        .await
        .expect("claim")
        .expect("the lease ran out");
    let (state, envelopes) = journey.decide(Step::SavePlan);
    let (state, events) = (Arc::new(state), shared(&envelopes));
    let append = |fence| Append {
        id: journey.id,
        expected_version: 0,
        state: &state,
        events: &events,
        timers: &[],
        document: None,
        fence: Some(fence),
    };
    let fenced = store.append(append(old)).await;
    assert!(
        matches!(fenced, Err(StoreError::Fenced { partition, fence }) if partition == p && fence == old),
        "{fenced:?}"
    );
    assert_eq!(
        store.load(journey.id).await.expect("load"),
        None,
        "nothing written"
    );
    let version = store
        .append(append(new))
        .await
        .expect("the holder's append is taken");
    assert_eq!(version, 1);
}

pub async fn the_cluster_secret_is_made_once(store: Arc<dyn Store>) {
    let first = store.cluster_secret().await.expect("secret");
    assert!(first.len() >= 32);
    assert_eq!(store.cluster_secret().await.expect("secret"), first);
}
