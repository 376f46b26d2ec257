//! Liveness, readiness and gRPC health for every service of the platform.
//!
//! A service lists what it depends on as [`HealthCheck`]s (PostgreSQL, Redis, NATS, MongoDB
//! behind the features of the same names, or its own), and gets:
//!
//! - `GET /health/live`: `200 {"status":"live"}` while the process is up; it never touches a
//!   dependency, so a database outage does not get the pod restarted;
//! - `GET /health/ready`: every check run concurrently, each under a timeout (2 s by default),
//!   `200 {"status":"ready","checks":[...]}` when all answer, `503 {"status":"unready",...}`
//!   when any does not, each check with its latency and, when down, why;
//! - `grpc.health.v1.Health` for gRPC servers ([`GrpcHealth`]), kept in step with readiness by a
//!   background task.
//!
//! ```no_run
//! # async fn wire(pool: sqlx::PgPool, shutdown: tokio_util::sync::CancellationToken) {
//! use platform_health::{Health, PostgresCheck};
//!
//! let health = Health::new().with_check(PostgresCheck::new(pool));
//! let app: axum::Router = axum::Router::new().merge(health.router());
//! let (grpc_health, reporter) = health
//!     .grpc()
//!     .service("order.v1.OrderService")
//!     .start(shutdown)
//!     .await;
//! # let _ = (app, grpc_health, reporter);
//! # }
//! ```
//!
//! Container images have no shell or curl: a binary answers `<binary> healthcheck [--live]` with
//! [`probe::run_if_asked`], a std-only `GET` of its own `/health/ready` (or `/health/live`).
//!
//! A warning is logged when a check goes down and an info line when it comes back, once per
//! transition rather than on every probe. The readiness body names dependencies and carries their
//! error messages: serve `/health/*` to the orchestrator, not through the public gateway.

mod check;
mod grpc;
mod health;
mod http;
pub mod probe;

#[cfg(feature = "mongo")]
mod mongo;
#[cfg(feature = "nats")]
mod nats;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "redis")]
mod redis;

pub use check::{CheckFuture, FnCheck, HealthCheck, check_fn};
pub use grpc::{GrpcHealth, GrpcHealthServer};
pub use health::{CheckReport, CheckStatus, DEFAULT_TIMEOUT, Health, Readiness, ReadinessReport};
#[cfg(feature = "mongo")]
pub use mongo::MongoCheck;
#[cfg(feature = "nats")]
pub use nats::NatsCheck;
#[cfg(feature = "postgres")]
pub use postgres::PostgresCheck;
#[cfg(feature = "redis")]
pub use redis::RedisCheck;
