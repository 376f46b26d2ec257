//! The inventory service over HTTP and gRPC, against real MongoDB-wire, Redis and NATS servers.

mod admin;
mod cache;
mod demo;
mod expiry;
mod helpers;
mod products;
mod reservations;
