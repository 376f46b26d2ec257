//! The inventory service: the product catalogue (public reads cached in Redis and served with
//! ETags; administrators' writes), stock, and the reservations the checkout saga makes over
//! gRPC, in MongoDB, with events through the transactional outbox.
//!
//! [`build`] assembles it on the service kit and binds its listeners (port 0 in tests);
//! [`platform_kit::Application::run_until_stopped`] serves until shutdown.

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

pub use app::build;
pub use config::{Config, Settings};

/// The service's name: its entry in `services.toml` (variables, ports, store), the `source` of
/// its events, its name in logs and traces, and the audience of the credentials other services
/// present to it.
pub const SERVICE_NAME: &str = "inventory-service";
