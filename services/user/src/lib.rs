//! The user service: accounts, credentials, refresh tokens and roles; serves the JWKS other
//! services verify access tokens with, and `GetUser` over gRPC.
//!
//! [`Application::build`] binds the listeners (port 0 in tests), and
//! [`Application::run_until_stopped`] serves until shutdown; `main.rs` only wires
//! configuration and telemetry to them.

pub mod accounts;
mod app;
pub mod config;
pub mod domain;
mod grpc;
pub mod http;
mod password;
mod store;
mod tokens;

pub use app::{Application, SERVICE_NAME, create_admin};
pub use config::Config;

/// Default port of the HTTP API.
pub const DEFAULT_HTTP_PORT: u16 = 8081;

/// Default port of the internal gRPC API.
pub const DEFAULT_GRPC_PORT: u16 = 9081;
