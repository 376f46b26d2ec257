//! Staying polite to a dependency that is struggling: a [`CircuitBreaker`] per downstream, and
//! capped exponential back-off.
//!
//! The breaker counts consecutive failures of calls to one dependency. Past a threshold it
//! opens: calls are refused at once (no request leaves) for a cool-down, so a dead dependency
//! costs its callers nothing and gets room to recover. After the cool-down one call is let
//! through (half-open): success closes the breaker, failure opens it again. Only failures that
//! say something about the dependency's health count (unreachable, timed out, overloaded); a
//! business answer (declined, out of stock, not found) is a success for the breaker.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Where a breaker stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls flow.
    Closed,
    /// Calls are refused until the cool-down ends.
    Open,
    /// One trial call is in flight; others are refused until it reports.
    HalfOpen,
}

/// A call refused because the breaker is open; retry after `retry_after`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rejected {
    /// How long until the breaker lets a trial call through.
    pub retry_after: Duration,
}

/// How a breaker trips and recovers.
#[derive(Clone, Copy, Debug)]
pub struct BreakerConfig {
    /// Consecutive failures that open the breaker.
    pub failure_threshold: u32,
    /// How long it stays open before a trial call.
    pub cool_down: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            cool_down: Duration::from_secs(10),
        }
    }
}

#[derive(Debug)]
struct Inner {
    state: BreakerState,
    failures: u32,
    opened_at: Option<Instant>,
}

/// A circuit breaker for one dependency; share it (behind an `Arc`) between all callers of it.
#[derive(Debug)]
pub struct CircuitBreaker {
    name: String,
    config: BreakerConfig,
    inner: Mutex<Inner>,
}

impl CircuitBreaker {
    /// A closed breaker for the dependency `name` (used in logs and metrics).
    pub fn new(name: impl Into<String>, config: BreakerConfig) -> Self {
        let breaker = Self {
            name: name.into(),
            config,
            inner: Mutex::new(Inner {
                state: BreakerState::Closed,
                failures: 0,
                opened_at: None,
            }),
        };
        // Exported from the start (closed, nothing refused), so a dashboard shows every
        // breaker and an alert has a series to watch before the first failure.
        breaker.publish(&breaker.lock());
        metrics::counter!("circuit_breaker_rejections_total", "dependency" => breaker.name.clone())
            .increment(0);
        breaker
    }

    /// The dependency's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The current state (an open breaker whose cool-down has passed still reads `Open` until
    /// a call asks for permission).
    pub fn state(&self) -> BreakerState {
        self.lock().state
    }

    /// Asks to make a call. `Ok` means go ahead (and report the outcome with
    /// [`CircuitBreaker::record_success`] or [`CircuitBreaker::record_failure`]).
    pub fn acquire(&self) -> Result<(), Rejected> {
        let mut inner = self.lock();
        match inner.state {
            BreakerState::Closed => Ok(()),
            BreakerState::HalfOpen => Err(Rejected {
                retry_after: self.config.cool_down,
            }),
            BreakerState::Open => {
                let elapsed = inner.opened_at.map_or(Duration::MAX, |at| at.elapsed());
                if elapsed >= self.config.cool_down {
                    inner.state = BreakerState::HalfOpen;
                    tracing::info!(dependency = %self.name, "circuit half-open: trying one call");
                    Ok(())
                } else {
                    metrics::counter!("circuit_breaker_rejections_total", "dependency" => self.name.clone())
                        .increment(1);
                    Err(Rejected {
                        retry_after: self.config.cool_down.saturating_sub(elapsed),
                    })
                }
            }
        }
    }

    /// Reports a call that reached a healthy dependency.
    pub fn record_success(&self) {
        let mut inner = self.lock();
        if inner.state != BreakerState::Closed {
            tracing::info!(dependency = %self.name, "circuit closed: the dependency answers again");
        }
        inner.state = BreakerState::Closed;
        inner.failures = 0;
        inner.opened_at = None;
        self.publish(&inner);
    }

    /// Reports a call that failed because of the dependency (unreachable, timed out, overloaded).
    pub fn record_failure(&self) {
        let mut inner = self.lock();
        inner.failures = inner.failures.saturating_add(1);
        let trip = match inner.state {
            BreakerState::HalfOpen => true,
            BreakerState::Closed => inner.failures >= self.config.failure_threshold,
            BreakerState::Open => false,
        };
        if trip {
            inner.state = BreakerState::Open;
            inner.opened_at = Some(Instant::now());
            tracing::warn!(
                dependency = %self.name,
                failures = inner.failures,
                cool_down = ?self.config.cool_down,
                "circuit open: calls are refused until the cool-down ends"
            );
        }
        self.publish(&inner);
    }

    fn publish(&self, inner: &Inner) {
        let value = match inner.state {
            BreakerState::Closed => 0.0,
            BreakerState::HalfOpen => 1.0,
            BreakerState::Open => 2.0,
        };
        metrics::gauge!("circuit_breaker_state", "dependency" => self.name.clone()).set(value);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Exponential back-off: `base` doubled per attempt after the first, capped at `max`.
pub fn backoff(base: Duration, attempt: u32, max: Duration) -> Duration {
    let doublings = attempt.saturating_sub(1).min(20);
    base.saturating_mul(1 << doublings).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(cool_down: Duration) -> CircuitBreaker {
        CircuitBreaker::new(
            "payments",
            BreakerConfig {
                failure_threshold: 3,
                cool_down,
            },
        )
    }

    #[test]
    fn it_opens_after_consecutive_failures_and_refuses_calls() {
        let breaker = breaker(Duration::from_secs(60));
        for _ in 0..2 {
            breaker.acquire().unwrap();
            breaker.record_failure();
        }
        assert_eq!(breaker.state(), BreakerState::Closed);
        breaker.record_failure();
        assert_eq!(breaker.state(), BreakerState::Open);
        let rejected = breaker.acquire().unwrap_err();
        assert!(rejected.retry_after > Duration::from_secs(59));
    }

    #[test]
    fn a_success_resets_the_count() {
        let breaker = breaker(Duration::from_secs(60));
        breaker.record_failure();
        breaker.record_failure();
        breaker.record_success();
        breaker.record_failure();
        breaker.record_failure();
        assert_eq!(breaker.state(), BreakerState::Closed);
    }

    #[tokio::test]
    async fn after_the_cool_down_one_trial_call_decides() {
        let breaker = breaker(Duration::from_millis(50));
        for _ in 0..3 {
            breaker.record_failure();
        }
        tokio::time::sleep(Duration::from_millis(60)).await;
        breaker.acquire().unwrap();
        assert_eq!(breaker.state(), BreakerState::HalfOpen);
        assert!(breaker.acquire().is_err(), "only one trial at a time");
        breaker.record_failure();
        assert_eq!(
            breaker.state(),
            BreakerState::Open,
            "a failed trial reopens"
        );

        tokio::time::sleep(Duration::from_millis(60)).await;
        breaker.acquire().unwrap();
        breaker.record_success();
        assert_eq!(breaker.state(), BreakerState::Closed);
        assert!(breaker.acquire().is_ok());
    }

    #[test]
    fn back_off_doubles_and_is_capped() {
        let max = Duration::from_secs(30);
        assert_eq!(
            backoff(Duration::from_millis(200), 1, max),
            Duration::from_millis(200)
        );
        assert_eq!(
            backoff(Duration::from_millis(200), 3, max),
            Duration::from_millis(800)
        );
        assert_eq!(backoff(Duration::from_millis(200), 40, max), max);
    }
}
