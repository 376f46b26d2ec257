//! The user service: accounts, credentials, refresh tokens and roles; serves the JWKS other
//! services verify access tokens with.
//!
//! Status: not implemented yet (its API, store and gRPC `GetUser`); the crate holds its place in
//! the workspace.

/// Default port of the HTTP API (health, metrics and the public API behind the gateway).
pub const DEFAULT_HTTP_PORT: u16 = 8081;

/// Default port of the internal gRPC API.
pub const DEFAULT_GRPC_PORT: u16 = 9081;
