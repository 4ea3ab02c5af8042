//! The registry: which enrollments have a live actor, on which arbiter. It activates an
//! enrollment's actor on its first message and passivates it after an idle time: the
//! registry drops the only long-lived `Addr`, the actor stops once its mailbox is empty,
//! and the next message activates a fresh one from the store. Memory stays bounded by the
//! number of recently active enrollments.

use super::context::Deps;
use super::enrollment::{Committed, Do, EnrollmentActor, Op, Outcome};
use super::error::EngineError;
use super::ownership::Ownership;
use crate::domain::enrollment::{Enrollment, EnrollmentId};
use actix::{Addr, Supervisor};
use actix_rt::ArbiterHandle;
use dashmap::DashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

struct Slot {
    addr: Addr<EnrollmentActor>,
    /// Milliseconds since the registry's epoch.
    last_used: AtomicU64,
    /// Calls sent and not answered: an actor with work in hand is never passivated, so
    /// a second activation can't run beside it.
    in_flight: Arc<AtomicUsize>,
    /// What the actor last committed (it writes, readers peek).
    committed: Arc<Committed>,
}

/// Counts a call in flight until dropped.
struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

pub struct Registry {
    actors: DashMap<EnrollmentId, Slot, crate::domain::enrollment::IdHash>,
    arbiters: Vec<ArbiterHandle>,
    epoch: Instant,
}

impl Registry {
    pub fn new(arbiters: Vec<ArbiterHandle>) -> Registry {
        Registry {
            actors: DashMap::default(),
            arbiters,
            epoch: Instant::now(),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Sends `op` to the enrollment's actor, started (supervised, on its arbiter) if it
    /// is not live, and waits for the answer.
    pub async fn call(
        &self,
        id: EnrollmentId,
        deps: &Arc<Deps>,
        op: Op,
    ) -> Result<Outcome, EngineError> {
        self.call_with(id, deps, op, false).await
    }

    /// [`call`](Self::call) for an enrollment id just made up (a new plan): a new actor
    /// knows there is nothing to load and skips the store read. Were the id taken after
    /// all, the append's version check would refuse the write.
    pub async fn call_new(
        &self,
        id: EnrollmentId,
        deps: &Arc<Deps>,
        op: Op,
    ) -> Result<Outcome, EngineError> {
        self.call_with(id, deps, op, true).await
    }

    async fn call_with(
        &self,
        id: EnrollmentId,
        deps: &Arc<Deps>,
        op: Op,
        new: bool,
    ) -> Result<Outcome, EngineError> {
        // One live actor per enrollment across the copies: only on its owner.
        if !deps.ownership.owns(id) {
            return Err(EngineError::NotOwner {
                partition: deps.ownership.partition_of(id),
            });
        }
        let (addr, in_flight) = self.checkout(id, deps, new);
        let answer = addr
            .send(Do {
                op,
                request: super::request::current(),
            })
            .await;
        drop(in_flight);
        answer.map_err(|e| {
            EngineError::Internal(format!("the enrollment actor did not answer: {e}"))
        })?
    }

    fn checkout(
        &self,
        id: EnrollmentId,
        deps: &Arc<Deps>,
        new: bool,
    ) -> (Addr<EnrollmentActor>, InFlight) {
        let now = self.now_ms();
        let take = |slot: &Slot| {
            slot.last_used.store(now, Ordering::Relaxed);
            slot.in_flight.fetch_add(1, Ordering::AcqRel);
            (slot.addr.clone(), InFlight(Arc::clone(&slot.in_flight)))
        };
        if let Some(slot) = self.actors.get(&id) {
            return take(&slot);
        }
        let slot = self.actors.entry(id).or_insert_with(|| {
            let committed = Arc::new(Committed::default());
            Slot {
                addr: self.start(id, deps, new, Arc::clone(&committed)),
                last_used: AtomicU64::new(now),
                in_flight: Arc::new(AtomicUsize::new(0)),
                committed,
            }
        });
        take(&slot)
    }

    fn start(
        &self,
        id: EnrollmentId,
        deps: &Arc<Deps>,
        new: bool,
        committed: Arc<Committed>,
    ) -> Addr<EnrollmentActor> {
        let deps = Arc::clone(deps);
        let make = move |_: &mut actix::Context<EnrollmentActor>| {
            if new {
                EnrollmentActor::new_enrollment(id, deps, committed)
            } else {
                EnrollmentActor::new(id, deps, committed)
            }
        };
        // Spread enrollments over the arbiters (one per core) by their id.
        match self.arbiters.len() {
            0 => Supervisor::start(make),
            n => {
                let index = (id.partition_hash() % n as u64) as usize;
                Supervisor::start_in_arbiter(&self.arbiters[index], make)
            }
        }
    }

    /// The state the enrollment's live actor last committed, without a message to it (no
    /// hop to its arbiter and back); `None` if no actor is live or it does not know its
    /// state yet. It is what an `Op::Get` would answer, less a command still in flight,
    /// whose caller has not been answered either.
    pub fn peek(&self, id: EnrollmentId) -> Option<(u64, Arc<Enrollment>)> {
        let slot = self.actors.get(&id)?;
        slot.last_used.store(self.now_ms(), Ordering::Relaxed);
        slot.committed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Drops the actors idle for at least `idle`; returns how many.
    pub fn passivate_idle(&self, idle: Duration) -> usize {
        let cutoff = self
            .now_ms()
            .saturating_sub(u64::try_from(idle.as_millis()).unwrap_or(u64::MAX));
        let before = self.actors.len();
        self.actors.retain(|_, slot| {
            slot.last_used.load(Ordering::Relaxed) > cutoff
                || slot.in_flight.load(Ordering::Acquire) > 0
        });
        before.saturating_sub(self.actors.len())
    }

    /// Calls in flight on the actors of `partition`.
    pub fn in_flight_in(&self, partition: u16, ownership: &Ownership) -> usize {
        self.actors
            .iter()
            .filter(|slot| ownership.partition_of(*slot.key()) == partition)
            .map(|slot| slot.in_flight.load(Ordering::Acquire))
            .sum()
    }

    /// Drops every actor of `partition` (handed over, or its lease lost): the next owner
    /// loads their state from the store.
    pub fn drop_partition(&self, partition: u16, ownership: &Ownership) {
        self.actors
            .retain(|id, _| ownership.partition_of(*id) != partition);
    }

    /// Live actors.
    pub fn active(&self) -> usize {
        self.actors.len()
    }

    pub fn clear(&self) {
        self.actors.clear();
    }
}
