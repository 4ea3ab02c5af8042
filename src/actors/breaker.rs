//! The payment gateway's circuit breaker: closed → open after consecutive provider
//! failures → half-open with one trial call → closed. Pure bookkeeping over `Instant`s,
//! so its transitions are tested without a provider.

use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

/// The breaker's bookkeeping; pure, so its transitions are unit-tested on their own.
#[derive(Debug, Clone)]
pub struct Breaker {
    threshold: u32,
    cooldown: Duration,
    failures: u32,
    open_until: Option<Instant>,
    state: BreakerState,
    /// Half-open lets one trial call through; the others wait for its outcome.
    trial_in_flight: bool,
}

impl Breaker {
    pub fn new(threshold: u32, cooldown: Duration) -> Breaker {
        Breaker {
            threshold: threshold.max(1),
            cooldown,
            failures: 0,
            open_until: None,
            state: BreakerState::Closed,
            trial_in_flight: false,
        }
    }

    /// Whether a call may go to the provider now; `Err(wait)` while open.
    pub fn admit(&mut self, now: Instant) -> Result<(), Duration> {
        match (self.state, self.open_until) {
            (BreakerState::Open, Some(until)) if now < until => Err(until - now),
            (BreakerState::Open, _) => {
                self.state = BreakerState::HalfOpen;
                self.trial_in_flight = true;
                Ok(())
            }
            (BreakerState::HalfOpen, _) if self.trial_in_flight => Err(Duration::from_secs(1)),
            (BreakerState::HalfOpen, _) => {
                self.trial_in_flight = true;
                Ok(())
            }
            (BreakerState::Closed, _) => Ok(()),
        }
    }

    pub fn success(&mut self) {
        self.trial_in_flight = false;
        self.failures = 0;
        self.open_until = None;
        self.state = BreakerState::Closed;
    }

    pub fn failure(&mut self, now: Instant) {
        self.trial_in_flight = false;
        self.failures += 1;
        if self.state == BreakerState::HalfOpen || self.failures >= self.threshold {
            self.state = BreakerState::Open;
            self.open_until = Some(now + self.cooldown);
        }
    }

    pub fn state(&self) -> BreakerState {
        self.state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breaker_opens_after_consecutive_failures_and_closes_after_a_good_trial() {
        let t0 = Instant::now();
        let mut b = Breaker::new(3, Duration::from_secs(10));
        b.failure(t0);
        b.failure(t0);
        b.success();
        b.failure(t0);
        b.failure(t0);
        assert_eq!(
            b.state(),
            BreakerState::Closed,
            "a success resets the count"
        );
        b.failure(t0);
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(
            b.admit(t0 + Duration::from_secs(4)),
            Err(Duration::from_secs(6))
        );
        assert_eq!(b.admit(t0 + Duration::from_secs(10)), Ok(()));
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert!(
            b.admit(t0 + Duration::from_secs(10)).is_err(),
            "half-open lets one trial through at a time"
        );
        b.failure(t0 + Duration::from_secs(10));
        assert_eq!(
            b.state(),
            BreakerState::Open,
            "a failed trial opens it again"
        );
        assert!(b.admit(t0 + Duration::from_secs(11)).is_err());
        assert_eq!(b.admit(t0 + Duration::from_secs(20)), Ok(()));
        b.success();
        assert_eq!(b.state(), BreakerState::Closed);
    }
}
