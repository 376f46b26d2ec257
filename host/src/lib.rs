//! The whole platform on one machine.
//!
//! [`Platform::start`] runs every service of `services.toml` and the gateway as separate
//! processes, each its own binary, each with its own database (as the registry says: PostgreSQL
//! or MongoDB) on the local infrastructure, and waits until all are ready. This crate links no
//! service: what it knows of them comes from the registry. The end-to-end tests, `platform run` (`make run`) and `platform bench` (`make bench`)
//! all start the platform this way. [`Deployed`] is a platform already running elsewhere (a
//! deployment reached through its gateway), which the end-to-end tests and `platform bench`
//! target instead when `E2E_GATEWAY_URL` names one. `platform dead-letters` ([`dead_letters`])
//! is an operator's client of a running platform's dead-letter API.

pub mod bench;
pub mod client;
pub mod dead_letters;
pub mod deployed;
pub mod launcher;

pub use client::{Client, Customer};
pub use deployed::Deployed;
pub use launcher::{Infra, Platform, PlatformConfig, Ports, Service};
