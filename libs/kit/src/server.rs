//! How every service runs: one call that serves its HTTP API (with the platform's standard
//! layers), its probes, metrics and OpenAPI document, its gRPC API (with telemetry and
//! `grpc.health.v1`), and its background tasks, and shuts all of it down gracefully.
//!
//! ```text
//! HTTP  /api/...           the service's routes, with request ids, tracing, metrics,
//!                          timeouts, body limits and problem+json errors
//!       /health/live|ready probes        (outside the request logging and metrics)
//!       /metrics           Prometheus
//!       /openapi.json      the service's OpenAPI document
//! gRPC  the service's APIs, with the telemetry layer, and grpc.health.v1 (no credential)
//! ```
//!
//! On shutdown the listeners stop accepting, in-flight HTTP requests get a drain deadline,
//! gRPC health turns NOT_SERVING, and background tasks are cancelled and awaited (an outbox
//! relay finishes its batch, a consumer its message).

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::routing::get;
use platform_health::Health;
use platform_http::HttpConfig;
use platform_telemetry::grpc::GrpcServerLayer;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;
use tonic::transport::server::TcpIncoming;

/// A task started when the service runs, given the token that tells it to stop.
pub(crate) type BackgroundTask = Box<dyn FnOnce(CancellationToken) -> JoinHandle<()> + Send>;

/// How long in-flight HTTP requests get to finish after a shutdown signal, by default.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(20);

/// A service's gRPC side.
pub(crate) struct GrpcApi {
    /// Where it listens.
    pub listener: TcpListener,
    /// The services (each wrapped in its interceptor by the caller).
    pub routes: Routes,
    /// Their names (`package.Service`), reported by `grpc.health.v1`.
    pub names: Vec<&'static str>,
}

/// A service, built and bound (its ports are known), ready to run.
pub struct Application {
    /// The service's name, for logs.
    pub(crate) name: &'static str,
    /// Where HTTP listens.
    pub(crate) http_listener: TcpListener,
    /// Request timeout and body limit of the API routes.
    pub(crate) http_config: HttpConfig,
    /// The API routes, without layers (they are added here).
    pub(crate) api: Router,
    /// The API's OpenAPI document, served at `/openapi.json`.
    pub(crate) openapi: utoipa::openapi::OpenApi,
    /// Readiness checks.
    pub(crate) health: Health,
    /// The gRPC side, if the service has one.
    pub(crate) grpc: Option<GrpcApi>,
    /// Started when the service runs.
    pub(crate) background: Vec<BackgroundTask>,
    /// How long in-flight HTTP requests get to finish after shutdown.
    pub(crate) drain_timeout: Duration,
}

impl Application {
    /// Where HTTP listens.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Where gRPC listens, if the service has a gRPC side.
    pub fn grpc_addr(&self) -> Option<SocketAddr> {
        self.grpc.as_ref().map(|grpc| {
            grpc.listener
                .local_addr()
                .expect("a bound listener has an address")
        })
    }

    /// Serves HTTP and gRPC and runs the background tasks until `shutdown` resolves; then
    /// stops taking requests, lets in-flight ones finish (up to the drain deadline), and stops
    /// the background tasks (each finishes what it has in hand) and waits for them.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let stop = CancellationToken::new();
        tokio::spawn({
            let stop = stop.clone();
            async move {
                shutdown.await;
                stop.cancel();
            }
        });
        let mut tasks: Vec<JoinHandle<()>> = self
            .background
            .into_iter()
            .map(|start| start(stop.clone()))
            .collect();

        let grpc = match self.grpc {
            Some(grpc) => {
                let mut health = self.health.grpc();
                for name in &grpc.names {
                    health = health.service(*name);
                }
                let (health_service, health_task) = health.start(stop.clone()).await;
                tasks.push(health_task);
                let server = tonic::transport::Server::builder()
                    .layer(GrpcServerLayer)
                    .add_routes(grpc.routes.add_service(health_service))
                    .serve_with_incoming_shutdown(
                        TcpIncoming::from(grpc.listener),
                        stop.clone().cancelled_owned(),
                    );
                Some(tokio::spawn(server))
            }
            None => None,
        };

        let router = platform_http::with_standard_layers(self.api, &self.http_config)
            // Probes and scrapes stay outside the request logging and metrics.
            .merge(self.health.router())
            .merge(platform_http::openapi::openapi_router(&self.openapi))
            .route(
                "/metrics",
                get(platform_telemetry::metrics::metrics_handler),
            );
        tracing::info!(service = self.name, "started");
        let http = platform_http::serve(
            self.http_listener,
            router,
            stop.clone().cancelled_owned(),
            self.drain_timeout,
        )
        .await;
        stop.cancel();
        let grpc = match grpc {
            Some(server) => Some(server.await.context("the gRPC server task failed")?),
            None => None,
        };
        for task in tasks {
            if let Err(error) = task.await {
                tracing::error!(%error, "a background task failed");
            }
        }
        http.context("serving HTTP")?;
        if let Some(grpc) = grpc {
            grpc.context("serving gRPC")?;
        }
        tracing::info!(service = self.name, "stopped");
        Ok(())
    }
}
