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

/// A service's `main`: installs the TLS crypto provider, reads the configuration (stopping with
/// a message naming the bad setting), sets up telemetry, then runs `serve` until it returns;
/// any error is logged and printed, and the process exits non-zero.
pub async fn run_main<C, F, Fut>(
    name: &'static str,
    config: Result<C, platform_config::ConfigError>,
    serve: F,
) -> std::process::ExitCode
where
    F: FnOnce(C) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    platform_http::install_crypto_provider();
    let config = match config {
        Ok(config) => config,
        Err(error) => {
            eprintln!("{name}: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let _telemetry =
        match platform_telemetry::init(&platform_telemetry::TelemetryConfig::from_env(name)) {
            Ok(guard) => guard,
            Err(error) => {
                eprintln!("{name}: {error}");
                return std::process::ExitCode::FAILURE;
            }
        };
    match serve(config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "{name} failed");
            eprintln!("{name}: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Connects a service to its PostgreSQL database and brings the schema up to date: the
/// service's own migrations, then the events library's (outbox and inbox). `variable` names the
/// setting, for the error message.
pub async fn connect_postgres(
    settings: &platform_config::DatabaseSettings,
    migrations: &sqlx::migrate::Migrator,
    variable: &str,
) -> anyhow::Result<sqlx::PgPool> {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(settings.max_connections)
        // Short, so readiness reports a database outage within its own timeout.
        .acquire_timeout(Duration::from_secs(1))
        .connect(settings.url.expose())
        .await
        .with_context(|| format!("connecting to PostgreSQL ({variable})"))?;
    migrations
        .run(&pool)
        .await
        .context("running the service's migrations")?;
    platform_events::outbox::postgres::migrate(&pool).await?;
    Ok(pool)
}

/// How long in-flight HTTP requests get to finish after a shutdown signal, by default.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(20);

/// A service's gRPC side.
pub struct GrpcApi {
    /// Where it listens.
    pub listener: TcpListener,
    /// The services (each wrapped in its interceptor by the caller).
    pub routes: Routes,
    /// Their names (`package.Service`), reported by `grpc.health.v1`.
    pub names: Vec<&'static str>,
}

/// Everything a service serves.
pub struct ServiceServer {
    /// The service's name, for logs.
    pub name: &'static str,
    /// Where HTTP listens.
    pub http_listener: TcpListener,
    /// Request timeout and body limit of the API routes.
    pub http_config: HttpConfig,
    /// The API routes, without layers (they are added here).
    pub api: Router,
    /// The API's OpenAPI document, served at `/openapi.json`.
    pub openapi: utoipa::openapi::OpenApi,
    /// Readiness checks.
    pub health: Health,
    /// The gRPC side, if the service has one.
    pub grpc: Option<GrpcApi>,
    /// How long in-flight HTTP requests get to finish after shutdown.
    pub drain_timeout: Duration,
}

impl ServiceServer {
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

    /// Serves until `shutdown` resolves, with the tasks `background` starts (given the token
    /// that tells them to stop); then shuts everything down and waits for it.
    pub async fn run(
        self,
        background: impl FnOnce(CancellationToken) -> Vec<JoinHandle<()>>,
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
        let mut tasks = background(stop.clone());

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
