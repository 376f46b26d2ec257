//! The payment service: payment methods (provider tokens only), charges and refunds, with a
//! built-in test-mode provider.
//!
//! [`Application::build`] binds the listeners (port 0 in tests), and
//! [`Application::run_until_stopped`] serves until shutdown; `main.rs` only wires
//! configuration and telemetry to them.

mod app;
pub mod config;
pub mod domain;
mod grpc;
pub mod http;
pub mod payments;
pub mod provider;
pub mod store;

pub use app::{Application, SERVICE_NAME};
pub use config::Config;

/// Default port of the HTTP API.
pub const DEFAULT_HTTP_PORT: u16 = 8083;

/// Default port of the internal gRPC API.
pub const DEFAULT_GRPC_PORT: u16 = 9083;
