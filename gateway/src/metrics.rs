//! The gateway's Prometheus metrics, on `/metrics` with everything else the process records
//! (the circuit breakers publish `circuit_breaker_state{dependency}` and
//! `circuit_breaker_rejections_total{dependency}` themselves).
//!
//! Handles are registered once per label set and kept, so recording a request costs an atomic
//! add rather than a registry lookup with freshly allocated labels.

use std::sync::OnceLock;
use std::time::Duration;

use axum::http::StatusCode;
use metrics::{Counter, Histogram};

use crate::routes::RateClass;

/// Requests answered, by `route` (the route table's name), `upstream` and `status`.
pub const REQUESTS_TOTAL: &str = "gateway_requests_total";
/// Time from sending a request upstream to its response head, by `route` and `upstream`.
pub const UPSTREAM_DURATION: &str = "gateway_upstream_duration_seconds";
/// Rate-limit decisions, by `class` and `decision` (`allowed`, `limited`, `failed_open`).
pub const RATE_LIMIT_DECISIONS: &str = "gateway_rate_limit_decisions_total";
/// Requests let through unlimited because Redis could not be asked.
pub const RATE_LIMIT_FAILURES: &str = "gateway_rate_limit_failures_total";

/// The label of requests that matched no route.
pub const UNMATCHED: &str = "unmatched";

/// The `route` label of requests refused before routing (their heads were too large).
pub const REFUSED: &str = "refused";

/// The metrics of one route.
#[derive(Debug)]
pub struct RouteMetrics {
    route: String,
    upstream: String,
    /// One counter per status code, 100 to 599, registered on first use.
    statuses: Box<[OnceLock<Counter>]>,
    duration: OnceLock<Histogram>,
}

impl RouteMetrics {
    /// Metrics labelled with `route` and `upstream`.
    pub fn new(route: &str, upstream: &str) -> Self {
        Self {
            route: route.to_owned(),
            upstream: upstream.to_owned(),
            statuses: (100..600).map(|_| OnceLock::new()).collect(),
            duration: OnceLock::new(),
        }
    }

    /// Counts a response.
    pub fn count(&self, status: StatusCode) {
        let index = usize::from(status.as_u16()).saturating_sub(100);
        if let Some(slot) = self.statuses.get(index) {
            slot.get_or_init(|| {
                metrics::counter!(
                    REQUESTS_TOTAL,
                    "route" => self.route.clone(),
                    "upstream" => self.upstream.clone(),
                    "status" => status.as_u16().to_string()
                )
            })
            .increment(1);
        }
    }

    /// Records how long the upstream took to answer.
    pub fn upstream_duration(&self, elapsed: Duration) {
        self.duration
            .get_or_init(|| {
                metrics::histogram!(
                    UPSTREAM_DURATION,
                    "route" => self.route.clone(),
                    "upstream" => self.upstream.clone()
                )
            })
            .record(elapsed.as_secs_f64());
    }
}

/// What the rate limiter decided about a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateDecision {
    /// Under the limit.
    Allowed,
    /// Over it: 429.
    Limited,
    /// Redis could not be asked: let through.
    FailedOpen,
}

/// Counters of rate-limit decisions.
#[derive(Debug)]
pub struct RateMetrics {
    decisions: [[OnceLock<Counter>; 3]; 3],
    failures: Counter,
}

impl Default for RateMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl RateMetrics {
    /// The counters, with [`RATE_LIMIT_FAILURES`] exported at zero from the start (an alert
    /// or a rate needs a series before the first failure).
    pub fn new() -> Self {
        let failures = metrics::counter!(RATE_LIMIT_FAILURES);
        failures.increment(0);
        Self {
            decisions: Default::default(),
            failures,
        }
    }

    /// Counts a decision.
    pub fn decision(&self, class: RateClass, decision: RateDecision) {
        let (row, class_label) = match class {
            RateClass::Auth => (0, "auth"),
            RateClass::Read => (1, "read"),
            RateClass::Write => (2, "write"),
        };
        let (column, decision_label) = match decision {
            RateDecision::Allowed => (0, "allowed"),
            RateDecision::Limited => (1, "limited"),
            RateDecision::FailedOpen => (2, "failed_open"),
        };
        self.decisions[row][column]
            .get_or_init(|| {
                metrics::counter!(
                    RATE_LIMIT_DECISIONS,
                    "class" => class_label,
                    "decision" => decision_label
                )
            })
            .increment(1);
    }

    /// Counts a request let through because Redis failed.
    pub fn failure(&self) {
        self.failures.increment(1);
    }
}
