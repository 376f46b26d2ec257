//! The set of checks a service runs, and the report they make.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::check::HealthCheck;

/// How long a check may take before it counts as down, unless [`Health::with_timeout`] says
/// otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// The named checks of one service; cheap to clone (clones share the checks and their state).
///
/// Built once at start-up with [`Health::with_check`], then handed to [`Health::router`] and
/// [`Health::grpc`].
#[derive(Clone)]
pub struct Health {
    checks: Arc<[Registered]>,
    timeout: Duration,
}

/// A check with what it last reported, so a transition is logged once, whoever probed.
#[derive(Clone)]
struct Registered {
    check: Arc<dyn HealthCheck>,
    last: Arc<AtomicU8>,
}

const NEVER_RUN: u8 = 0;
const LAST_UP: u8 = 1;
const LAST_DOWN: u8 = 2;

impl Health {
    /// No checks yet (ready by definition) and the [`DEFAULT_TIMEOUT`].
    pub fn new() -> Self {
        Self {
            checks: Arc::from([]),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Adds a check; it appears in the readiness report under [`HealthCheck::name`].
    #[must_use]
    pub fn with_check(self, check: impl HealthCheck + 'static) -> Self {
        let mut checks = self.checks.to_vec();
        checks.push(Registered {
            check: Arc::new(check),
            last: Arc::new(AtomicU8::new(NEVER_RUN)),
        });
        Self {
            checks: checks.into(),
            ..self
        }
    }

    /// Sets how long each check may take before it is reported down (default 2 s).
    ///
    /// Keep it below the orchestrator's probe timeout, so a hung dependency yields a clear 503
    /// rather than a probe that times out without saying which dependency hung.
    #[must_use]
    pub fn with_timeout(self, timeout: Duration) -> Self {
        Self { timeout, ..self }
    }

    /// The per-check timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Runs every check concurrently, each under the timeout, and reports on all of them.
    ///
    /// Takes at most about the timeout, however many checks hang.
    pub async fn check_all(&self) -> ReadinessReport {
        let checks =
            futures::future::join_all(self.checks.iter().map(|registered| self.run(registered)))
                .await;
        let status = if checks.iter().all(|check| check.status == CheckStatus::Up) {
            Readiness::Ready
        } else {
            Readiness::Unready
        };
        ReadinessReport { status, checks }
    }

    async fn run(&self, registered: &Registered) -> CheckReport {
        let name = registered.check.name();
        let started = Instant::now();
        let outcome = match tokio::time::timeout(self.timeout, registered.check.check()).await {
            Ok(outcome) => outcome,
            Err(_) => Err(format!("timed out after {:?}", self.timeout)),
        };
        let latency_ms = round_to_tenth(started.elapsed().as_secs_f64() * 1000.0);

        let now = if outcome.is_ok() { LAST_UP } else { LAST_DOWN };
        let before = registered.last.swap(now, Ordering::Relaxed);
        match (&outcome, before) {
            (Err(error), NEVER_RUN | LAST_UP) => {
                tracing::warn!(check = name, error = %error, "dependency `{name}` is down");
            }
            (Ok(()), LAST_DOWN) => {
                tracing::info!(check = name, latency_ms, "dependency `{name}` is up again");
            }
            _ => {}
        }

        let (status, error) = match outcome {
            Ok(()) => (CheckStatus::Up, None),
            Err(error) => (CheckStatus::Down, Some(error)),
        };
        CheckReport {
            name: name.to_owned(),
            status,
            latency_ms,
            error,
        }
    }
}

impl Default for Health {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Health")
            .field(
                "checks",
                &self
                    .checks
                    .iter()
                    .map(|registered| registered.check.name())
                    .collect::<Vec<_>>(),
            )
            .field("timeout", &self.timeout)
            .finish()
    }
}

fn round_to_tenth(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

/// The body of `GET /health/ready`: the overall verdict and every check.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReadinessReport {
    /// `ready` when every check is up.
    pub status: Readiness,
    /// One entry per check, in the order they were added.
    pub checks: Vec<CheckReport>,
}

impl ReadinessReport {
    /// Whether every check is up.
    pub fn is_ready(&self) -> bool {
        self.status == Readiness::Ready
    }
}

/// The overall verdict of a readiness report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Readiness {
    /// Every dependency answered: send traffic.
    Ready,
    /// At least one dependency did not: send traffic elsewhere.
    Unready,
}

/// What one check found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckReport {
    /// The check's name, e.g. `postgres`.
    pub name: String,
    /// Up or down.
    pub status: CheckStatus,
    /// How long the check took, in milliseconds (to a tenth).
    pub latency_ms: f64,
    /// Why the check is down; absent when up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Whether a dependency answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    /// It answered within the timeout.
    Up,
    /// It failed or did not answer in time.
    Down,
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;
    use std::sync::{Arc, Mutex};

    use tracing::Level;
    use tracing_subscriber::layer::{Context, SubscriberExt};

    use super::*;
    use crate::check_fn;

    /// Records the level and message of every event.
    #[derive(Clone, Default)]
    struct Recorder(Arc<Mutex<Vec<(Level, String)>>>);

    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Recorder {
        fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
            struct Message(String);
            impl tracing::field::Visit for Message {
                fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
                    if field.name() == "message" {
                        self.0 = format!("{value:?}");
                    }
                }
            }
            let mut message = Message(String::new());
            event.record(&mut message);
            self.0
                .lock()
                .unwrap()
                .push((*event.metadata().level(), message.0));
        }
    }

    #[tokio::test]
    async fn a_check_logs_a_warning_when_it_goes_down_and_info_when_it_recovers_not_every_probe() {
        let recorder = Recorder::default();
        let _guard =
            tracing::subscriber::set_default(tracing_subscriber::registry().with(recorder.clone()));
        let up = Arc::new(AtomicBool::new(true));
        let probe = up.clone();
        let health = Health::new().with_check(check_fn("cache", move || {
            let up = probe.load(Ordering::SeqCst);
            async move {
                if up {
                    Ok(())
                } else {
                    Err("refused".to_owned())
                }
            }
        }));

        for state in [true, true, false, false, false, true, true] {
            up.store(state, Ordering::SeqCst);
            // Clones share the last state, as the HTTP probe and the gRPC reporter do.
            assert_eq!(health.clone().check_all().await.is_ready(), state);
        }

        let events = recorder.0.lock().unwrap().clone();
        assert_eq!(
            events,
            vec![
                (Level::WARN, "dependency `cache` is down".to_owned()),
                (Level::INFO, "dependency `cache` is up again".to_owned()),
            ]
        );
    }

    #[tokio::test]
    async fn a_check_that_is_down_from_the_start_logs_one_warning() {
        let recorder = Recorder::default();
        let _guard =
            tracing::subscriber::set_default(tracing_subscriber::registry().with(recorder.clone()));
        let health =
            Health::new().with_check(check_fn("queue", || async { Err("refused".to_owned()) }));

        for _ in 0..3 {
            assert!(!health.check_all().await.is_ready());
        }

        let levels: Vec<Level> = recorder
            .0
            .lock()
            .unwrap()
            .iter()
            .map(|(level, _)| *level)
            .collect();
        assert_eq!(levels, vec![Level::WARN]);
    }

    #[test]
    fn the_report_serialises_as_the_documented_json() {
        let report = ReadinessReport {
            status: Readiness::Unready,
            checks: vec![
                CheckReport {
                    name: "postgres".to_owned(),
                    status: CheckStatus::Up,
                    latency_ms: 1.3,
                    error: None,
                },
                CheckReport {
                    name: "redis".to_owned(),
                    status: CheckStatus::Down,
                    latency_ms: 2000.0,
                    error: Some("timed out after 2s".to_owned()),
                },
            ],
        };

        assert_eq!(
            serde_json::to_value(&report).unwrap(),
            serde_json::json!({
                "status": "unready",
                "checks": [
                    {"name": "postgres", "status": "up", "latency_ms": 1.3},
                    {"name": "redis", "status": "down", "latency_ms": 2000.0,
                     "error": "timed out after 2s"},
                ],
            })
        );
    }

    #[tokio::test]
    async fn a_service_without_checks_is_ready() {
        let report = Health::new().check_all().await;

        assert_eq!(
            report,
            ReadinessReport {
                status: Readiness::Ready,
                checks: vec![]
            }
        );
    }
}
