//! Per-caller rate limiting at the gateway's front door: a token bucket per caller, so one
//! client cannot take every request slot of a copy from the others.
//!
//! The caller is the principal of a bearer token that verifies (role and subject), else the
//! client's address (an IPv6 address by its /64, the block one host usually holds). A token
//! that does not verify counts against the address it came from, never against the subject
//! it claims: a forged token must not drain someone else's bucket.
//!
//! Each bucket is one atomic: the generic cell rate algorithm keeps the *theoretical arrival
//! time* (TAT) of the caller's next request, which runs ahead of the clock by one interval
//! per request and is refused once it would run more than `burst` intervals ahead. A bucket
//! whose TAT is in the past is full, exactly like one never made, so pruning drops those:
//! the map holds only callers that sent requests within the last `burst / rate` seconds.

use super::auth::Principal;
use dashmap::DashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Buckets kept at most: beyond them (callers all in debt at once, i.e. a flood from many
/// addresses) new callers share one bucket, so memory stays bounded whatever arrives.
pub const MAX_BUCKETS: usize = 100_000;

/// Buckets held before the first pruning pass.
const PRUNE_FLOOR: usize = 1024;

/// At [`MAX_BUCKETS`], the least time between two pruning passes: a flood of new callers
/// must not make every request walk the whole map.
const PRUNE_AT_CAP_EVERY: u64 = 100_000_000;

/// The limit of one copy: `per_second` requests a second per caller, with bursts of up to
/// `burst` at once. `per_second` 0 turns the limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub per_second: u32,
    pub burst: u32,
}

impl RateLimit {
    /// Generous: no person and no well-behaved integration sends a thousand requests a
    /// second to one copy.
    pub const DEFAULT: RateLimit = RateLimit::per_second(1000);

    /// `per_second`, with bursts of two seconds' worth.
    pub const fn per_second(per_second: u32) -> RateLimit {
        RateLimit {
            per_second,
            burst: per_second.saturating_mul(2),
        }
    }

    pub const OFF: RateLimit = RateLimit {
        per_second: 0,
        burst: 0,
    };

    pub fn is_off(&self) -> bool {
        self.per_second == 0
    }
}

/// Whose bucket a request is taken from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Caller {
    /// The principal of a bearer token that verified.
    Token(Principal),
    /// The client's address; an IPv6 one by its /64 prefix.
    Address(IpAddr),
    /// New callers while [`MAX_BUCKETS`] are in use.
    Overflow,
}

impl Caller {
    /// The caller behind `peer`: IPv4 (also mapped into IPv6) as it is, IPv6 by its /64.
    pub fn address(peer: IpAddr) -> Caller {
        let ip = match peer {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
            },
            v4 => v4,
        };
        Caller::Address(ip)
    }

    /// How a problem detail names the caller (nothing the caller did not send).
    pub fn describe(&self) -> &'static str {
        match self {
            Caller::Token(_) => "this token's subject",
            Caller::Address(IpAddr::V6(_)) => "this address's /64 network",
            Caller::Address(_) => "this address",
            Caller::Overflow => "the callers the server cannot tell apart right now",
        }
    }
}

/// A refusal: how long until the caller's next request would be accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    pub retry_after: Duration,
}

impl Limited {
    /// Whole seconds for `Retry-After`, rounded up and at least 1.
    pub fn retry_after_secs(&self) -> u32 {
        let secs = self.retry_after.as_nanos().div_ceil(1_000_000_000);
        u32::try_from(secs).unwrap_or(u32::MAX).max(1)
    }
}

/// The buckets of every caller of one copy.
pub struct RateLimiter {
    limit: RateLimit,
    /// Nanoseconds between two requests at the sustained rate.
    interval: u64,
    /// How far a TAT may run ahead of the clock: `burst` intervals.
    tolerance: u64,
    epoch: Instant,
    /// Each caller's TAT, in nanoseconds since `epoch`.
    buckets: DashMap<Caller, AtomicU64>,
    /// [`MAX_BUCKETS`], but for tests.
    max_buckets: usize,
    /// The size that triggers the next pruning pass.
    prune_at: AtomicUsize,
    /// When the last pass ran (nanoseconds since `epoch`); held while one runs, so there
    /// is one pass at a time.
    pruned: Mutex<u64>,
    /// Requests refused, for `/metrics`.
    limited: AtomicU64,
}

impl RateLimiter {
    pub fn new(limit: RateLimit) -> RateLimiter {
        let interval = if limit.is_off() {
            0
        } else {
            1_000_000_000 / u64::from(limit.per_second)
        };
        RateLimiter {
            limit,
            interval,
            tolerance: interval.saturating_mul(u64::from(limit.burst.max(1))),
            epoch: Instant::now(),
            buckets: DashMap::new(),
            max_buckets: MAX_BUCKETS,
            prune_at: AtomicUsize::new(PRUNE_FLOOR),
            pruned: Mutex::new(0),
            limited: AtomicU64::new(0),
        }
    }

    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    /// Requests refused so far.
    pub fn limited_total(&self) -> u64 {
        self.limited.load(Ordering::Relaxed)
    }

    /// Callers with a bucket (those that sent requests within `burst / rate` seconds, until
    /// the next pruning pass).
    pub fn tracked(&self) -> usize {
        self.buckets.len()
    }

    /// Takes one request from `caller`'s bucket, or says how long to wait.
    pub fn check(&self, caller: Caller) -> Result<(), Limited> {
        if self.limit.is_off() {
            return Ok(());
        }
        let now = self.now();
        // The common case: a caller seen recently; a shard read lock and one CAS.
        if let Some(tat) = self.buckets.get(&caller) {
            return self.take(&tat, now);
        }
        let caller = if self.buckets.len() >= self.max_buckets {
            self.prune(now, PRUNE_AT_CAP_EVERY);
            if self.buckets.len() >= self.max_buckets {
                Caller::Overflow
            } else {
                caller
            }
        } else {
            caller
        };
        let taken = {
            let tat = self
                .buckets
                .entry(caller)
                .or_insert_with(|| AtomicU64::new(0));
            self.take(&tat, now)
        };
        if self.buckets.len() >= self.prune_at.load(Ordering::Relaxed) {
            self.prune(now, 0);
        }
        taken
    }

    fn take(&self, tat: &AtomicU64, now: u64) -> Result<(), Limited> {
        let mut current = tat.load(Ordering::Relaxed);
        loop {
            let next = current.max(now).saturating_add(self.interval);
            let ahead = next - now;
            if ahead > self.tolerance {
                self.limited.fetch_add(1, Ordering::Relaxed);
                return Err(Limited {
                    retry_after: Duration::from_nanos(ahead - self.tolerance),
                });
            }
            match tat.compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return Ok(()),
                Err(seen) => current = seen,
            }
        }
    }

    /// Drops the full buckets, unless a pass ran less than `every` nanoseconds ago; the
    /// next pass comes when the map has doubled since, so pruning costs amortized O(1)
    /// per new caller.
    fn prune(&self, now: u64, every: u64) {
        // Another thread pruning does the same work: skip rather than wait.
        let Ok(mut pruned) = self.pruned.try_lock() else {
            return;
        };
        if now.saturating_sub(*pruned) < every {
            return;
        }
        self.buckets
            .retain(|_, tat| tat.load(Ordering::Relaxed) > now);
        *pruned = now;
        self.prune_at
            .store((self.buckets.len() * 2).max(PRUNE_FLOOR), Ordering::Relaxed);
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn ip(last: u8) -> Caller {
        Caller::address(IpAddr::V4(Ipv4Addr::new(10, 0, 0, last)))
    }

    #[test]
    fn a_burst_passes_then_the_rate_applies_per_caller() {
        let limiter = RateLimiter::new(RateLimit {
            per_second: 1,
            burst: 3,
        });
        for _ in 0..3 {
            assert_eq!(limiter.check(ip(1)), Ok(()));
        }
        let refused = limiter
            .check(ip(1))
            .expect_err("the fourth is over the burst");
        assert!(refused.retry_after <= Duration::from_secs(1));
        assert_eq!(refused.retry_after_secs(), 1);
        assert_eq!(
            limiter.check(ip(2)),
            Ok(()),
            "another caller has its own bucket"
        );
        assert_eq!(limiter.limited_total(), 1);
    }

    #[test]
    fn off_refuses_nothing() {
        let limiter = RateLimiter::new(RateLimit::OFF);
        for _ in 0..10_000 {
            assert_eq!(limiter.check(ip(1)), Ok(()));
        }
        assert_eq!(limiter.tracked(), 0);
    }

    #[test]
    fn an_ipv6_host_is_one_caller_by_its_64() {
        let a: Ipv6Addr = "2001:db8:1:2::1".parse().expect("an address");
        let b: Ipv6Addr = "2001:db8:1:2:ffff::9".parse().expect("an address");
        let c: Ipv6Addr = "2001:db8:1:3::1".parse().expect("an address");
        assert_eq!(
            Caller::address(IpAddr::V6(a)),
            Caller::address(IpAddr::V6(b))
        );
        assert_ne!(
            Caller::address(IpAddr::V6(a)),
            Caller::address(IpAddr::V6(c))
        );
        let mapped = Ipv4Addr::new(192, 0, 2, 7).to_ipv6_mapped();
        assert_eq!(
            Caller::address(IpAddr::V6(mapped)),
            Caller::address(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)))
        );
    }

    #[test]
    fn full_buckets_are_pruned() {
        // A high rate: every bucket is full again a microsecond after its request.
        let limiter = RateLimiter::new(RateLimit::per_second(1_000_000));
        let caller = |n: u32| Caller::address(IpAddr::V4(Ipv4Addr::from(n)));
        for n in 0..(PRUNE_FLOOR as u32 - 1) {
            assert_eq!(limiter.check(caller(n)), Ok(()));
        }
        assert_eq!(limiter.tracked(), PRUNE_FLOOR - 1);
        std::thread::sleep(Duration::from_millis(1));
        assert_eq!(limiter.check(caller(u32::MAX)), Ok(()));
        assert!(limiter.tracked() <= 1, "{} buckets kept", limiter.tracked());
    }

    #[test]
    fn buckets_never_pass_the_cap() {
        // A low rate: every bucket stays in debt for a second, so none can be pruned
        // while the test runs.
        let limiter = RateLimiter {
            max_buckets: 64,
            ..RateLimiter::new(RateLimit::per_second(1))
        };
        for n in 0..100 {
            let _ = limiter.check(Caller::address(IpAddr::V4(Ipv4Addr::from(n))));
        }
        assert!(limiter.tracked() <= 64 + 1, "{}", limiter.tracked());
        assert!(limiter.buckets.contains_key(&Caller::Overflow));
    }
}
