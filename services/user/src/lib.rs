//! The user service: accounts, credentials, refresh tokens and roles; serves the JWKS other
//! services verify access tokens with, and `GetUser` over gRPC.
//!
//! [`build`] assembles it on the service kit and binds its listeners (port 0 in tests);
//! [`platform_kit::Application::run_until_stopped`] serves until shutdown.

pub mod accounts;
mod admin;
mod app;
pub mod config;
pub mod domain;
pub mod error;
mod grpc;
pub mod http;
mod password;
mod store;
mod tokens;

pub use admin::create_admin;
pub use app::build;
pub use config::{Config, Settings};

/// The service's name: its entry in `services.toml` (variables, ports, store), the `source` of
/// its events, its name in logs and traces, and the audience of the credentials other services
/// present to it.
pub const SERVICE_NAME: &str = "user-service";
