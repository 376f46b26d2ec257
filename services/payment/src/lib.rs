//! The payment service: payment methods (provider tokens only), charges and refunds, with a
//! built-in test-mode provider.
//!
//! [`build`] assembles it on the service kit and binds its listeners (port 0 in tests);
//! [`platform_kit::Application::run_until_stopped`] serves until shutdown.

mod app;
pub mod config;
pub mod domain;
pub mod error;
mod grpc;
pub mod http;
pub mod payments;
pub mod provider;
pub mod store;

pub use app::build;
pub use config::{Config, Settings};

/// The service's name: its entry in `services.toml` (variables, ports, store), the `source` of
/// its events, its name in logs and traces, and the audience of the credentials other services
/// present to it.
pub const SERVICE_NAME: &str = "payment-service";
