//! The inventory service: the product catalogue (public reads cached in Redis and served with
//! ETags; administrators' writes), stock, and the reservations the checkout saga makes over
//! gRPC, in MongoDB, with events through the transactional outbox.
//!
//! [`Application::build`] binds the listeners (port 0 in tests), and
//! [`Application::run_until_stopped`] serves until shutdown; `main.rs` only wires
//! configuration and telemetry to them.

mod app;
pub mod cache;
pub mod catalogue;
pub mod config;
pub mod demo;
pub mod domain;
pub mod error;
mod grpc;
pub mod http;
pub mod stock;
pub mod store;

pub use app::{Application, SERVICE_NAME};
pub use config::Config;

/// Default port of the HTTP API (health, metrics and the public API behind the gateway).
pub const DEFAULT_HTTP_PORT: u16 = 8084;

/// Default port of the internal gRPC API.
pub const DEFAULT_GRPC_PORT: u16 = 9084;
