//! The gateway: the single entry point. Routes the public API to the services, verifies JWTs, rate
//! limits, and serves the merged OpenAPI document.
//!
//! Status: not implemented yet (its proxy, auth, rate limiting and docs); the crate holds its place
//! in the workspace.

/// Default port of the public HTTP entry point.
pub const DEFAULT_HTTP_PORT: u16 = 8080;
