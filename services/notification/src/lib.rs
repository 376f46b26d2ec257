//! The notification service: turns events into messages (email over SMTP), once per event, and
//! records every delivery attempt.
//!
//! Status: not implemented yet (its consumers, templates and channels); the crate holds its place
//! in the workspace.

/// Default port of the HTTP API (health, metrics and the public API behind the gateway).
pub const DEFAULT_HTTP_PORT: u16 = 8085;

/// Default port of the internal gRPC API.
pub const DEFAULT_GRPC_PORT: u16 = 9085;
