//! A circuit breaker: after `threshold` consecutive transient failures, calls fail at once for `cooldown`,
//! then one trial call decides whether the circuit closes again. While Dremio is down, API requests get a
//! 503 in microseconds instead of each waiting out its own timeouts and retries.

use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    /// Failing fast until the instant; then one trial.
    Open {
        until: Instant,
    },
    /// A trial call is in flight; others fail fast until it ends.
    HalfOpen,
}

#[derive(Debug)]
struct Inner {
    state: BreakerState,
    consecutive_failures: u32,
}

#[derive(Debug)]
pub struct CircuitBreaker {
    threshold: u32,
    cooldown: Duration,
    inner: Mutex<Inner>,
}

/// Why a call may not go ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejected {
    pub retry_in: Duration,
    pub failures: u32,
}

impl CircuitBreaker {
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Self { threshold: threshold.max(1), cooldown, inner: Mutex::new(Inner { state: BreakerState::Closed, consecutive_failures: 0 }) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic elsewhere cannot leave the counters inconsistent (every update is one assignment).
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn state(&self) -> BreakerState {
        self.lock().state
    }

    /// Whether a call may start now (an open circuit past its cool-down lets exactly one trial through).
    pub fn admit(&self) -> Result<(), Rejected> {
        let mut inner = self.lock();
        let failures = inner.consecutive_failures;
        match inner.state {
            BreakerState::Closed => Ok(()),
            BreakerState::Open { until } => {
                let now = Instant::now();
                if now >= until {
                    inner.state = BreakerState::HalfOpen;
                    Ok(())
                } else {
                    Err(Rejected { retry_in: until - now, failures })
                }
            }
            BreakerState::HalfOpen => Err(Rejected { retry_in: self.cooldown, failures }),
        }
    }

    pub fn record_success(&self) {
        let mut inner = self.lock();
        inner.consecutive_failures = 0;
        inner.state = BreakerState::Closed;
    }

    /// A transient failure (unavailable, timed out). Statement errors are not failures of Dremio.
    pub fn record_failure(&self) {
        let mut inner = self.lock();
        inner.consecutive_failures = inner.consecutive_failures.saturating_add(1);
        let trial_failed = inner.state == BreakerState::HalfOpen;
        if trial_failed || inner.consecutive_failures >= self.threshold {
            inner.state = BreakerState::Open { until: Instant::now() + self.cooldown };
        }
    }

    /// A call that neither succeeded nor failed transiently (e.g. a rejected statement) ends a trial.
    pub fn record_neutral(&self) {
        let mut inner = self.lock();
        if inner.state == BreakerState::HalfOpen {
            inner.state = BreakerState::Closed;
            inner.consecutive_failures = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_threshold_and_lets_one_trial_through_after_cooldown() {
        let breaker = CircuitBreaker::new(3, Duration::from_millis(30));
        for _ in 0..2 {
            breaker.admit().unwrap();
            breaker.record_failure();
        }
        assert_eq!(breaker.state(), BreakerState::Closed, "below the threshold");
        breaker.record_failure();
        let rejected = breaker.admit().unwrap_err();
        assert_eq!(rejected.failures, 3);
        assert!(rejected.retry_in <= Duration::from_millis(30));
        std::thread::sleep(Duration::from_millis(40));
        breaker.admit().expect("the trial after the cool-down");
        assert!(breaker.admit().is_err(), "only one trial at a time");
        breaker.record_success();
        assert_eq!(breaker.state(), BreakerState::Closed);
        breaker.admit().unwrap();
    }

    #[test]
    fn a_failed_trial_reopens_at_once() {
        let breaker = CircuitBreaker::new(1, Duration::from_millis(10));
        breaker.record_failure();
        std::thread::sleep(Duration::from_millis(15));
        breaker.admit().unwrap();
        breaker.record_failure();
        assert!(matches!(breaker.state(), BreakerState::Open { .. }));
    }

    #[test]
    fn successes_reset_the_count() {
        let breaker = CircuitBreaker::new(2, Duration::from_secs(60));
        breaker.record_failure();
        breaker.record_success();
        breaker.record_failure();
        assert_eq!(breaker.state(), BreakerState::Closed);
    }
}
