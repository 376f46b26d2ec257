//! The order service: orders, their items and status history, and the checkout saga that drives
//! reservation, payment and confirmation.
//!
//! Status: not implemented yet (its API, store and saga worker); the crate holds its place in the
//! workspace.

/// Default port of the HTTP API (health, metrics and the public API behind the gateway).
pub const DEFAULT_HTTP_PORT: u16 = 8082;

/// Default port of the internal gRPC API.
pub const DEFAULT_GRPC_PORT: u16 = 9082;
