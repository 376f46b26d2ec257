//! A [`CircuitBreaker`] for the hot path: reporting a success to a breaker that has seen no
//! failure since the last success is skipped, so the common case costs one relaxed atomic load
//! instead of a lock and a gauge update.

use std::sync::atomic::{AtomicBool, Ordering};

use platform_resilience::{BreakerConfig, BreakerState, CircuitBreaker, Rejected};

/// A circuit breaker for one dependency (an upstream, or Redis).
#[derive(Debug)]
pub struct Breaker {
    inner: CircuitBreaker,
    /// Set after every failure, cleared by the success that reports to the breaker: while it
    /// is clear, the breaker is closed with no failure counted, and a success changes nothing.
    dirty: AtomicBool,
}

impl Breaker {
    /// A closed breaker for `name` (the `dependency` label of the breaker metrics).
    pub fn new(name: impl Into<String>, config: BreakerConfig) -> Self {
        Self {
            inner: CircuitBreaker::new(name, config),
            dirty: AtomicBool::new(false),
        }
    }

    /// May a call go ahead? (See [`CircuitBreaker::acquire`].)
    pub fn acquire(&self) -> Result<(), Rejected> {
        self.inner.acquire()
    }

    /// The call reached a healthy dependency.
    pub fn success(&self) {
        if self.dirty.load(Ordering::Relaxed) && self.dirty.swap(false, Ordering::AcqRel) {
            self.inner.record_success();
        }
    }

    /// The call failed because of the dependency.
    pub fn failure(&self) {
        self.inner.record_failure();
        self.dirty.store(true, Ordering::Release);
    }

    /// The breaker's state.
    pub fn state(&self) -> BreakerState {
        self.inner.state()
    }

    /// The dependency's name.
    pub fn name(&self) -> &str {
        self.inner.name()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn it_opens_half_opens_and_closes_like_the_breaker_it_wraps() {
        let breaker = Breaker::new(
            "test",
            BreakerConfig {
                failure_threshold: 2,
                cool_down: Duration::from_millis(30),
            },
        );
        breaker.failure();
        breaker.success();
        breaker.failure();
        assert_eq!(
            breaker.state(),
            BreakerState::Closed,
            "the success in between reset the count"
        );
        breaker.failure();
        assert_eq!(breaker.state(), BreakerState::Open);
        assert!(breaker.acquire().is_err());
        tokio::time::sleep(Duration::from_millis(40)).await;
        breaker.acquire().unwrap();
        assert_eq!(breaker.state(), BreakerState::HalfOpen);
        breaker.success();
        assert_eq!(breaker.state(), BreakerState::Closed);
        breaker.failure();
        assert_eq!(breaker.state(), BreakerState::Closed, "the count restarted");
    }
}
