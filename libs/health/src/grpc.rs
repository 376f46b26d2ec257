//! `grpc.health.v1.Health`, kept in step with readiness.

use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tonic_health::ServingStatus;
use tonic_health::pb::health_server::HealthServer;
use tonic_health::server::{HealthReporter, HealthService};

use crate::health::Health;

/// The `grpc.health.v1.Health` service to add to a tonic server (`add_service`).
pub type GrpcHealthServer = HealthServer<HealthService>;

/// Builds the gRPC health service and the task that keeps it in step with readiness.
///
/// The overall server (`""`) and every name given to [`GrpcHealth::service`] are `SERVING` while
/// every check is up and `NOT_SERVING` otherwise. They start `NOT_SERVING`, the first check runs
/// at once, and then again every interval (5 s by default). When the shutdown token is
/// cancelled, everything turns `NOT_SERVING` (so clients and load balancers drain the server
/// during graceful shutdown) and the task ends.
#[derive(Clone, Debug)]
pub struct GrpcHealth {
    health: Health,
    services: Vec<String>,
    interval: Duration,
}

impl Health {
    /// Starts building the gRPC health service for these checks; see [`GrpcHealth`].
    pub fn grpc(&self) -> GrpcHealth {
        GrpcHealth::new(self.clone())
    }
}

impl GrpcHealth {
    /// The default time between two rounds of checks.
    pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);

    /// Reports on `health` for the overall server only, every [`Self::DEFAULT_INTERVAL`].
    pub fn new(health: Health) -> Self {
        Self {
            health,
            services: Vec::new(),
            interval: Self::DEFAULT_INTERVAL,
        }
    }

    /// Also reports for the fully qualified gRPC service `name`, e.g. `order.v1.OrderService`
    /// (`<OrderServiceServer<_> as tonic::server::NamedService>::NAME`).
    #[must_use]
    pub fn service(mut self, name: impl Into<String>) -> Self {
        self.services.push(name.into());
        self
    }

    /// Sets the time between two rounds of checks (default 5 s).
    #[must_use]
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Registers every name as `NOT_SERVING`, spawns the task that updates them until `shutdown`
    /// is cancelled, and returns the service with the task's handle.
    pub async fn start(self, shutdown: CancellationToken) -> (GrpcHealthServer, JoinHandle<()>) {
        let reporter = HealthReporter::new();
        let mut names = Vec::with_capacity(self.services.len() + 1);
        names.push(String::new());
        names.extend(self.services);
        set_all(&reporter, &names, ServingStatus::NotServing).await;

        let server = HealthServer::new(HealthService::from_health_reporter(reporter.clone()));
        let task = tokio::spawn(report_readiness(
            self.health,
            reporter,
            names,
            self.interval,
            shutdown,
        ));
        (server, task)
    }
}

async fn report_readiness(
    health: Health,
    reporter: HealthReporter,
    names: Vec<String>,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut current = ServingStatus::NotServing;
    loop {
        let report = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            report = async {
                ticks.tick().await;
                health.check_all().await
            } => report,
        };
        let status = if report.is_ready() {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        // Only on a change: every update wakes every `Watch` stream.
        if status != current {
            tracing::debug!(%status, "gRPC health status changed");
            set_all(&reporter, &names, status).await;
            current = status;
        }
    }
    set_all(&reporter, &names, ServingStatus::NotServing).await;
}

async fn set_all(reporter: &HealthReporter, names: &[String], status: ServingStatus) {
    for name in names {
        reporter.set_service_status(name, status).await;
    }
}
