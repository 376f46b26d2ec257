//! The whole platform on one machine.
//!
//! [`Platform::start`] runs every service and the gateway as separate processes (the
//! `platform node <service>` command of this crate's binary, which runs that service's own
//! `Application`), each with its own database (PostgreSQL for user, order, payment and
//! notification, MongoDB for inventory) on the local infrastructure, and waits until all are
//! ready. The end-to-end tests, `platform run` (`make run`) and `platform bench` (`make bench`)
//! all start the platform this way.

pub mod bench;
pub mod client;
pub mod launcher;
pub mod node;

pub use client::{Client, Customer};
pub use launcher::{Infra, Platform, PlatformConfig, Ports, Service};
