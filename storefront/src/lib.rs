//! The web shop: a backend-for-frontend on the gateway's public API.
//!
//! Pages are rendered on the server ([`views`]) from what the gateway answers ([`gateway`]);
//! a customer's tokens and cart stay on the server, in a Redis session the browser knows only
//! by an HttpOnly cookie ([`session`]); every form carries the session's CSRF token. A little
//! JavaScript (`static/app.js`) enhances the pages: the order page follows the status live,
//! a submitted checkout cannot be submitted twice. Without it every page still works.

pub mod app;
pub mod config;
pub mod gateway;
pub mod pages;
pub mod session;
pub mod views;

pub use app::{App, router};
pub use config::Config;

/// The process's name in logs, traces and metrics.
pub const SERVICE_NAME: &str = "storefront";
