//! The notification service: consumes the platform's events (a welcome on registration, order
//! confirmed or cancelled, payment failed, low stock for operators), renders a message from
//! its templates, and delivers it by email, exactly one notification per event, every
//! delivery attempt recorded.
//!
//! [`build`] assembles it on the service kit and binds its listener (port 0 in tests);
//! [`platform_kit::Application::run_until_stopped`] runs until shutdown.

mod app;
pub mod channel;
pub mod config;
pub mod delivery;
pub mod error;
pub mod http;
pub mod intake;
pub mod store;
pub mod templates;
pub mod users;

pub use app::build;
pub use config::{Config, Settings};

/// The service's name: its entry in `services.toml` (variables, ports, store), its name in
/// logs and traces and in the credentials it presents.
pub const SERVICE_NAME: &str = "notification-service";
