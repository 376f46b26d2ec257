//! The notification service: consumes the platform's events (a welcome on registration, order
//! confirmed or cancelled, payment failed, low stock for operators), renders a message from
//! its templates, and delivers it by email, exactly one notification per event, every
//! delivery attempt recorded.
//!
//! [`Application::build`] binds the listener (port 0 in tests), and
//! [`Application::run_until_stopped`] runs until shutdown; `main.rs` only wires configuration
//! and telemetry to them.

mod app;
pub mod channel;
pub mod config;
pub mod delivery;
pub mod http;
pub mod intake;
pub mod store;
pub mod templates;
pub mod users;

pub use app::{Application, SERVICE_NAME};
pub use config::Config;

/// Default port of the HTTP API.
pub const DEFAULT_HTTP_PORT: u16 = 8085;
