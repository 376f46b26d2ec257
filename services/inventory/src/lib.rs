//! The inventory service: the product catalogue, stock and reservations (MongoDB, with a Redis read
//! cache).
//!
//! Status: not implemented yet (its API, store and gRPC `Reserve`/`Release`/`Commit`); the crate
//! holds its place in the workspace.

/// Default port of the HTTP API (health, metrics and the public API behind the gateway).
pub const DEFAULT_HTTP_PORT: u16 = 8084;

/// Default port of the internal gRPC API.
pub const DEFAULT_GRPC_PORT: u16 = 9084;
