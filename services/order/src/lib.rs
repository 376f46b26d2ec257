//! The order service: places orders and runs the checkout saga that reserves stock (inventory),
//! charges the card (payment), commits the reservation and confirms the order, or compensates
//! and cancels it with a reason.
//!
//! [`Application::build`] binds the listener (port 0 in tests), and
//! [`Application::run_until_stopped`] runs until shutdown; `main.rs` only wires configuration
//! and telemetry to them.

mod app;
pub mod config;
pub mod domain;
pub mod downstream;
pub mod http;
pub mod orders;
pub mod saga;
pub mod store;

pub use app::{Application, SERVICE_NAME};
pub use config::Config;

/// Default port of the HTTP API.
pub const DEFAULT_HTTP_PORT: u16 = 8082;
