//! The service kit: what every service of the platform shares, written once.
//!
//! A service's `main.rs` is one call, [`main`]; its `app.rs` builds only what is its own on a
//! [`Kit`] and hands it its router (the payment service's `app.rs`, its provider left out):
//!
//! ```ignore
//! pub async fn build(settings: Settings<Config>) -> anyhow::Result<Application> {
//!     let mut kit = Kit::start(crate::SERVICE_NAME, &settings.common).await?;
//!     let pool = kit.postgres(&settings.own.database, &MIGRATIONS).await?;   // + health check
//!     kit.relay(PgOutbox::new(pool.clone(), kit.namespace().clone()));      // publish events
//!     let payments = Payments::new(pool, kit.namespace().clone(), provider);
//!     kit.grpc(PaymentServiceServer::new(PaymentGrpc::new(payments.clone())));
//!     let verifier = kit.verifier()?;
//!     kit.serve(http::router(AppState { payments, verifier }), http::openapi()).await
//! }
//! ```
//!
//! What the kit takes care of:
//! - configuration: [`Settings`] = the [`CommonSettings`] every service has (HTTP, gRPC, NATS,
//!   JWT, service credential, telemetry) + the service's own sections, read from
//!   `{PREFIX}__...` variables; the prefix and default ports come from `services.toml`
//!   (`platform_registry`);
//! - start-up: TLS provider, telemetry, a clear message and a non-zero exit on bad settings;
//! - stores: PostgreSQL with migrations (the service's and the outbox/inbox tables), MongoDB,
//!   each with its readiness check; NATS with its check;
//! - events: the outbox relay ([`Kit::relay`]) and idempotent consumers ([`Kit::consume`]);
//!   their dead letters counted on `/metrics` and, with [`Kit::dead_letter_api`], an
//!   operators' API to list, replay and discard them ([`dead_letters`]);
//! - calls to other services: [`downstream::Downstream`] (deadline, service credential,
//!   breaker, error classification);
//! - serving: the HTTP API with the standard layers, `/health/live|ready`, `/metrics`,
//!   `/openapi.json`, the gRPC API with its interceptor and `grpc.health.v1`, background
//!   tasks, and a graceful shutdown of all of it ([`Application::run_until_stopped`]).

mod builder;
pub mod dead_letters;
pub mod downstream;
mod run;
mod server;

pub use builder::{DEAD_LETTER_COUNT_PERIOD, Kit, STORE_WAIT, connect_postgres};
pub use platform_config::{CommonSettings, Settings};
pub use platform_registry as registry;
pub use run::{main, run_main, serve};
pub use server::{Application, DEFAULT_DRAIN_TIMEOUT};
