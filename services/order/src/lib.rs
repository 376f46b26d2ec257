//! The order service: places orders and runs the checkout saga that reserves stock (inventory),
//! charges the card (payment), commits the reservation and confirms the order, or compensates
//! and cancels it with a reason.
//!
//! [`build`] assembles it on the service kit and binds its listener (port 0 in tests);
//! [`platform_kit::Application::run_until_stopped`] runs until shutdown.

mod app;
pub mod config;
pub mod domain;
pub mod downstream;
pub mod error;
pub mod http;
pub mod orders;
pub mod saga;
pub mod settled;
pub mod store;

pub use app::{build, build_with_worker};
pub use config::{Config, Settings};

/// The service's name: its entry in `services.toml` (variables, ports, store), the `source` of
/// its events, its name in logs and traces and in the credentials it presents.
pub const SERVICE_NAME: &str = "order-service";
