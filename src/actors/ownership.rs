//! Which copy owns which enrollment: this copy's view of the partition leases
//! ([`crate::store::OwnershipStore`]), kept current by the membership loop
//! ([`super::membership`]). An enrollment's actor lives only on the copy that holds its
//! partition's lease, and appends with the lease's fencing number, so there is one live
//! owner per enrollment across all copies; the others send its requests there.
//!
//! A single process (the memory store, or a Redis copy without cluster settings) takes no
//! part: it owns everything and appends without a fencing number.

use crate::domain::enrollment::EnrollmentId;
use crate::store::Member;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// How a copy takes part in ownership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// `host:port` the other copies reach this one at.
    pub advertise: String,
    /// How long a heartbeat and a partition lease last unless renewed: how long the
    /// partitions of a copy that died stay without an owner.
    pub lease: Duration,
}

impl ClusterConfig {
    /// How often the membership loop runs: often enough that a lease is renewed several
    /// times before it runs out.
    pub fn tick(&self) -> Duration {
        (self.lease / 8).clamp(Duration::from_millis(50), Duration::from_secs(2))
    }
}

/// Where a request for an enrollment goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// This copy owns it.
    Local,
    /// Another copy owns it, reached at this address.
    Remote(String),
    /// Nobody owns it right now (a hand-over, or its owner died and its lease has not
    /// run out yet).
    Unowned,
}

/// The owners of every partition as last read.
#[derive(Debug, Clone, Default)]
struct Table {
    /// By partition: the owner's member id and address.
    owners: Vec<Option<(String, String)>>,
    members: Vec<Member>,
}

/// This copy's view of who owns what; shared by the actors and the HTTP gateway.
#[derive(Debug)]
pub struct Ownership {
    /// `None`: a single process, owning everything.
    me: Option<Member>,
    partitions: u16,
    /// The fencing number this copy holds each partition's lease with; 0: not held.
    held: Box<[AtomicU64]>,
    /// Partitions being handed over: no new work starts on them here.
    leaving: Box<[AtomicBool]>,
    table: RwLock<Arc<Table>>,
    /// Holds every partition assigned to it (and is not stopping).
    ready: AtomicBool,
    draining: AtomicBool,
    /// Bumped whenever the table changes, so waiters for an owner look again.
    changed: tokio::sync::watch::Sender<u64>,
}

impl Ownership {
    /// A single process: owns every partition, no fencing.
    pub fn single(partitions: u16) -> Ownership {
        Ownership::build(None, partitions)
    }

    /// A copy among others, owning nothing until the membership loop takes its share.
    pub fn member(me: Member, partitions: u16) -> Ownership {
        Ownership::build(Some(me), partitions)
    }

    fn build(me: Option<Member>, partitions: u16) -> Ownership {
        let partitions = partitions.max(1);
        Ownership {
            ready: AtomicBool::new(me.is_none()),
            me,
            partitions,
            held: (0..partitions).map(|_| AtomicU64::new(0)).collect(),
            leaving: (0..partitions).map(|_| AtomicBool::new(false)).collect(),
            table: RwLock::new(Arc::new(Table::default())),
            draining: AtomicBool::new(false),
            changed: tokio::sync::watch::Sender::new(0),
        }
    }

    /// Whether this copy shares the store with others under leases.
    pub fn is_clustered(&self) -> bool {
        self.me.is_some()
    }

    pub fn me(&self) -> Option<&Member> {
        self.me.as_ref()
    }

    pub fn partitions(&self) -> u16 {
        self.partitions
    }

    pub fn partition_of(&self, id: EnrollmentId) -> u16 {
        // Less than the partition count, a u16: the cast is exact.
        (id.partition_hash() % u64::from(self.partitions)) as u16
    }

    fn index(&self, partition: u16) -> usize {
        usize::from(partition) % self.held.len()
    }

    /// The fencing number appends to `id` carry: `None` in a single process; 0 (which
    /// never holds) for a partition this copy does not hold.
    pub fn fence(&self, id: EnrollmentId) -> Option<u64> {
        self.me.as_ref()?;
        Some(self.held[self.index(self.partition_of(id))].load(Ordering::Acquire))
    }

    /// Whether work on `id` may start here now.
    pub fn owns(&self, id: EnrollmentId) -> bool {
        self.owns_partition(self.partition_of(id))
    }

    pub fn owns_partition(&self, partition: u16) -> bool {
        if self.me.is_none() {
            return true;
        }
        let i = self.index(partition);
        self.held[i].load(Ordering::Acquire) != 0 && !self.leaving[i].load(Ordering::Acquire)
    }

    /// The partitions this copy owns now (whose timers it runs); `None` for all.
    pub fn owned_partitions(&self) -> Option<Vec<u16>> {
        self.me.as_ref()?;
        Some(
            (0..self.partitions)
                .filter(|&p| self.owns_partition(p))
                .collect(),
        )
    }

    /// Where requests for `id` go.
    pub fn route(&self, id: EnrollmentId) -> Route {
        self.route_partition(self.partition_of(id))
    }

    pub fn route_partition(&self, partition: u16) -> Route {
        if self.owns_partition(partition) {
            return Route::Local;
        }
        let table = self.table();
        match table.owners.get(usize::from(partition)) {
            Some(Some((owner, address))) if self.me.as_ref().is_none_or(|me| &me.id != owner) => {
                Route::Remote(address.clone())
            }
            _ => Route::Unowned,
        }
    }

    /// Whether this copy owns any partition (and so can make new enrollments).
    pub fn owns_any(&self) -> bool {
        (0..self.partitions).any(|p| self.owns_partition(p))
    }

    /// A fresh id for a new enrollment in a partition this copy owns, so the copy that
    /// takes the request runs it; `None` if it owns none.
    pub fn new_local_id(&self) -> Option<EnrollmentId> {
        if self.me.is_none() {
            return Some(EnrollmentId::new());
        }
        if !self.owns_any() {
            return None;
        }
        let millis = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0);
        // Each try is independent and lands in an owned partition with probability
        // owned ÷ partitions, so a few tries do.
        (0..1024)
            .map(|_| EnrollmentId::from_parts(millis, &random_bytes()))
            .find(|&id| self.owns(id))
    }

    /// Any copy that owns something, for work that may run anywhere (a new enrollment
    /// on a copy that owns nothing).
    pub fn any_owner(&self) -> Option<String> {
        let table = self.table();
        let owners: Vec<&String> = table
            .owners
            .iter()
            .flatten()
            .filter(|(owner, _)| self.me.as_ref().is_none_or(|me| &me.id != owner))
            .map(|(_, address)| address)
            .collect();
        if owners.is_empty() {
            return None;
        }
        let pick = (uuid::Uuid::new_v4().as_u128() % owners.len() as u128) as usize;
        Some(owners[pick].clone())
    }

    /// The live copies as last seen.
    pub fn members(&self) -> Vec<Member> {
        self.table().members.clone()
    }

    /// Partitions this copy holds now.
    pub fn held_count(&self) -> usize {
        self.held
            .iter()
            .filter(|f| f.load(Ordering::Acquire) != 0)
            .count()
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire) && !self.draining.load(Ordering::Acquire)
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// A receiver told whenever the owners change.
    pub fn watch(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changed.subscribe()
    }

    fn table(&self) -> Arc<Table> {
        match self.table.read() {
            Ok(t) => Arc::clone(&t),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    // ---- kept current by the membership loop

    pub(super) fn held_fence(&self, partition: u16) -> u64 {
        self.held[self.index(partition)].load(Ordering::Acquire)
    }

    pub(super) fn set_held(&self, partition: u16, fence: u64) {
        self.held[self.index(partition)].store(fence, Ordering::Release);
    }

    pub(super) fn set_leaving(&self, partition: u16, leaving: bool) {
        self.leaving[self.index(partition)].store(leaving, Ordering::Release);
    }

    pub(super) fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }

    pub(super) fn begin_drain(&self) {
        self.draining.store(true, Ordering::Release);
        self.changed.send_modify(|n| *n += 1);
    }

    pub(super) fn publish(&self, owners: Vec<Option<(String, String)>>, members: Vec<Member>) {
        let table = Arc::new(Table { owners, members });
        match self.table.write() {
            Ok(mut t) => *t = table,
            Err(poisoned) => *poisoned.into_inner() = table,
        }
        self.changed.send_modify(|n| *n += 1);
    }
}

tokio::task_local! {
    /// The fencing number the running actor was started under.
    static ACTOR_FENCE: Option<u64>;
}

/// Runs an actor's operation under the fencing number the actor was started with: an
/// actor left over from before its partition was lost and taken again must not write
/// with the new lease's number (its state may be older than the store's).
pub async fn with_fence<F: std::future::Future>(fence: Option<u64>, work: F) -> F::Output {
    ACTOR_FENCE.scope(fence, work).await
}

/// The fencing number an append carries: the running actor's, else the partition's now.
pub fn append_fence(ownership: &Ownership, id: EnrollmentId) -> Option<u64> {
    ACTOR_FENCE
        .try_with(|fence| *fence)
        .unwrap_or_else(|_| ownership.fence(id))
}

fn random_bytes() -> [u8; 10] {
    let mut bytes = [0u8; 10];
    if getrandom::fill(&mut bytes).is_err() {
        // No OS randomness: a v4 UUID's generator instead.
        let fallback = uuid::Uuid::new_v4();
        bytes.copy_from_slice(&fallback.as_bytes()[6..]);
    }
    bytes
}

/// Shares `partitions` out over `members` (ids, sorted): balanced (each gets the floor or
/// the ceiling of partitions ÷ members), and stable, since each partition goes to the
/// member that ranks it highest (rendezvous hashing) among those with room left, so a copy
/// that joins or leaves moves few partitions. Every copy computes the same answer from
/// the same member list.
pub fn assign(members: &[String], partitions: u16) -> Vec<Option<usize>> {
    let n = members.len();
    if n == 0 {
        return vec![None; usize::from(partitions)];
    }
    let base = usize::from(partitions) / n;
    let extra = usize::from(partitions) % n;
    // The members with the lowest ids get the extra partitions.
    let quota: Vec<usize> = (0..n).map(|i| base + usize::from(i < extra)).collect();
    let mut load = vec![0usize; n];
    let mut out = vec![None; usize::from(partitions)];
    // Every (partition, member) pair by rank, best first; the first that fits wins.
    let mut pairs: Vec<(u64, u16, usize)> = (0..partitions)
        .flat_map(|p| {
            members
                .iter()
                .enumerate()
                .map(move |(m, id)| (rank(id, p), p, m))
        })
        .collect();
    pairs.sort_unstable_by(|a, b| b.cmp(a));
    for (_, p, m) in pairs {
        let slot = &mut out[usize::from(p)];
        if slot.is_none() && load[m] < quota[m] {
            *slot = Some(m);
            load[m] += 1;
        }
    }
    out
}

/// A member's preference for a partition: a hash both compute the same everywhere.
fn rank(member: &str, partition: u16) -> u64 {
    // FNV-1a: stable across processes and builds, unlike the std hasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in member.bytes().chain(partition.to_le_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    // Finish with a mix so nearby inputs spread.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("copy-{i}")).collect()
    }

    fn counts(assigned: &[Option<usize>], n: usize) -> Vec<usize> {
        let mut c = vec![0; n];
        for m in assigned.iter().flatten() {
            c[*m] += 1;
        }
        c
    }

    #[test]
    fn every_partition_goes_to_one_member_and_the_shares_differ_by_at_most_one() {
        for n in 1..=7 {
            let assigned = assign(&ids(n), 16);
            assert!(assigned.iter().all(Option::is_some), "{n} members");
            let c = counts(&assigned, n);
            let (lo, hi) = (c.iter().min(), c.iter().max());
            assert!(hi.zip(lo).is_some_and(|(h, l)| h - l <= 1), "{n}: {c:?}");
        }
    }

    #[test]
    fn a_member_joining_moves_few_partitions() {
        let before = assign(&ids(2), 16);
        let after = assign(&ids(3), 16);
        let moved_between_old = before
            .iter()
            .zip(&after)
            .filter(|(b, a)| matches!(a, Some(m) if *m < 2 && Some(*m) != **b))
            .count();
        // The newcomer takes its share (5 or 6); the old members swap little among
        // themselves, not a reshuffle of all 16.
        assert!(moved_between_old <= 4, "{before:?} → {after:?}");
    }

    #[test]
    fn new_ids_land_in_the_one_partition_owned_however_fast_they_are_made() {
        let me = Member {
            id: "a".to_owned(),
            address: "127.0.0.1:1".to_owned(),
        };
        let o = Ownership::member(me, 16);
        o.set_held(11, 1);
        // Thousands within a millisecond or two: time-ordered ids of one millisecond
        // share a partition, these must not.
        let mut seen = std::collections::HashSet::new();
        for _ in 0..2000 {
            let id = o.new_local_id().expect("owns partition 11");
            assert_eq!(o.partition_of(id), 11);
            assert!(seen.insert(id), "ids are unique");
        }
    }

    #[test]
    fn no_members_no_owners() {
        assert!(assign(&[], 4).iter().all(Option::is_none));
    }

    #[test]
    fn a_single_process_owns_everything_without_fencing() {
        let o = Ownership::single(16);
        let id = EnrollmentId::new();
        assert_eq!(o.route(id), Route::Local);
        assert_eq!(o.fence(id), None);
        assert!(o.is_ready());
    }

    #[test]
    fn a_member_owns_what_it_holds_and_routes_the_rest() {
        let me = Member {
            id: "a".to_owned(),
            address: "127.0.0.1:1".to_owned(),
        };
        let o = Ownership::member(me, 2);
        o.set_held(0, 7);
        o.publish(
            vec![
                Some(("a".to_owned(), "127.0.0.1:1".to_owned())),
                Some(("b".to_owned(), "127.0.0.1:2".to_owned())),
            ],
            Vec::new(),
        );
        let local = o.new_local_id().expect("owns partition 0");
        assert_eq!(o.partition_of(local), 0);
        assert_eq!(o.fence(local), Some(7));
        assert_eq!(
            o.route_partition(1),
            Route::Remote("127.0.0.1:2".to_owned())
        );
        o.set_leaving(0, true);
        assert_eq!(o.route_partition(0), Route::Unowned);
        assert_eq!(o.new_local_id(), None, "owns nothing now");
        assert_eq!(o.owned_partitions(), Some(vec![]));
    }
}
