//! The {{service}} service: {{resource}}, each a customer's, created over its API{% if consumes != "" %} and
//! recorded from the events it consumes ({{consumes}}){% endif %}{% if emitted_event != "" %}; each new one is announced as
//! `{{emitted_event}}`, through the outbox, in the same transaction{% endif %}.
//!
//! [`build`] assembles it on the service kit and binds its listener (port 0 in tests);
//! [`platform_kit::Application::run_until_stopped`] serves until shutdown.

mod app;
pub mod config;
pub mod domain;
{% if consumes != "" %}pub mod intake;
{% endif %}pub mod http;
pub mod store;

pub use app::build;
pub use config::{Config, Settings};

/// The service's name: its entry in `services.toml` (variables, ports, store), the `source` of
/// its events, its name in logs and traces.
pub const SERVICE_NAME: &str = "{{binary}}";
