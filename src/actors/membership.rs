//! The membership loop of a copy among others: heartbeats, takes the partitions assigned
//! to it ([`super::ownership::assign`]), renews their leases, hands over the ones assigned
//! elsewhere, and reads who owns the rest, into [`Ownership`].
//!
//! A hand-over first stops new work on the partition here, lets the calls in flight
//! finish, drops the partition's actors and only then releases the lease, so the next
//! owner loads what this one wrote last. A copy that stops hands over everything before it
//! exits; one that dies loses its partitions when its leases run out.

use super::ownership::{ClusterConfig, Ownership, assign};
use super::registry::Registry;
use crate::store::{Member, Store};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The longest a hand-over waits for the calls in flight on a partition (a payment
/// waiting for the provider) before it releases the lease anyway; the fencing number
/// keeps a late write from landing.
const HANDOVER_WAIT: Duration = Duration::from_secs(10);

/// Runs until `shutdown`, then returns without handing anything over (see [`hand_over_all`]).
pub async fn run(
    store: Arc<dyn Store>,
    ownership: Arc<Ownership>,
    registry: Arc<Registry>,
    config: ClusterConfig,
    mut shutdown: watch::Receiver<bool>,
) {
    let Some(me) = ownership.me().cloned() else {
        return;
    };
    loop {
        let settled = match tick(&store, &ownership, &registry, &config, &me).await {
            Ok(settled) => settled,
            Err(e) => {
                tracing::warn!(error = %e, "membership: the store does not answer; retrying");
                false
            }
        };
        // Quickly while partitions are still to take or hand over.
        let every = if settled {
            config.tick()
        } else {
            config.tick().min(Duration::from_millis(100))
        };
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

/// One round; `Ok(true)` when this copy holds exactly what is assigned to it.
async fn tick(
    store: &Arc<dyn Store>,
    ownership: &Ownership,
    registry: &Registry,
    config: &ClusterConfig,
    me: &Member,
) -> Result<bool, crate::store::StoreError> {
    let draining = ownership.is_draining();
    // A copy that is stopping takes nothing and hands everything over, but still routes.
    let (members, ids) = if draining {
        store.leave(&me.id).await?;
        (store.members().await?, Vec::new())
    } else {
        let members = store.heartbeat(me, config.lease).await?;
        let ids = members.iter().map(|m| m.id.clone()).collect();
        (members, ids)
    };
    let mine = ids.iter().position(|id| *id == me.id);
    let assigned = assign(&ids, ownership.partitions());
    let mut settled = true;
    for (p, owner) in (0..ownership.partitions()).zip(&assigned) {
        let held = ownership.held_fence(p);
        if owner.is_some() && *owner == mine {
            match store.claim_partition(p, &me.id, config.lease).await? {
                Some(fence) => {
                    if held != 0 && held != fence {
                        // The lease ran out and was taken again: what the actors hold
                        // may have been overwritten meanwhile.
                        registry.drop_partition(p, ownership);
                    }
                    if held != fence {
                        tracing::info!(partition = p, fence, "membership: took the partition");
                    }
                    ownership.set_held(p, fence);
                }
                None => {
                    if held != 0 {
                        tracing::warn!(
                            partition = p,
                            "membership: the lease was lost to another copy"
                        );
                        registry.drop_partition(p, ownership);
                        ownership.set_held(p, 0);
                    }
                    settled = false;
                }
            }
        } else if held != 0 {
            hand_over(store, ownership, registry, &me.id, p).await?;
            settled = false;
        }
    }
    let leases = store.partition_leases().await?;
    let owners = leases
        .into_iter()
        .map(|lease| {
            lease.and_then(|l| {
                members
                    .iter()
                    .find(|m| m.id == l.owner)
                    .map(|m| (m.id.clone(), m.address.clone()))
            })
        })
        .collect();
    ownership.publish(owners, members);
    ownership.set_ready(settled && !draining);
    Ok(settled)
}

/// Hands partition `p` over: no new work here, the calls in flight finish, the actors
/// go, then the lease.
async fn hand_over(
    store: &Arc<dyn Store>,
    ownership: &Ownership,
    registry: &Registry,
    me: &str,
    p: u16,
) -> Result<(), crate::store::StoreError> {
    let fence = ownership.held_fence(p);
    ownership.set_leaving(p, true);
    let deadline = tokio::time::Instant::now() + HANDOVER_WAIT;
    while registry.in_flight_in(p, ownership) > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    registry.drop_partition(p, ownership);
    let released = store.release_partition(p, me, fence).await;
    ownership.set_held(p, 0);
    ownership.set_leaving(p, false);
    tracing::info!(
        partition = p,
        fence,
        "membership: handed the partition over"
    );
    released
}

/// Stops taking work: leaves the membership and hands over every partition held, so the
/// other copies take them at once instead of after the leases run out.
pub async fn hand_over_all(store: &Arc<dyn Store>, ownership: &Ownership, registry: &Registry) {
    let Some(me) = ownership.me().cloned() else {
        return;
    };
    ownership.begin_drain();
    if let Err(e) = store.leave(&me.id).await {
        tracing::warn!(error = %e, "membership: could not leave; the heartbeat runs out instead");
    }
    // All at once: one slow payment holds up only its own partition.
    let me = me.id.as_str();
    let handovers = (0..ownership.partitions())
        .filter(|&p| ownership.held_fence(p) != 0)
        .map(|p| async move {
            if let Err(e) = hand_over(store, ownership, registry, me, p).await {
                tracing::warn!(partition = p, error = %e, "membership: could not release; the lease runs out instead");
            }
        });
    futures_util::future::join_all(handovers).await;
}
