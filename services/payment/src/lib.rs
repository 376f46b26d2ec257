//! The payment service: payment methods (provider tokens only), charges and refunds, with a test-
//! mode provider.
//!
//! Status: not implemented yet (its API, store and gRPC `Charge`/`Refund`); the crate holds its
//! place in the workspace.

/// Default port of the HTTP API (health, metrics and the public API behind the gateway).
pub const DEFAULT_HTTP_PORT: u16 = 8083;

/// Default port of the internal gRPC API.
pub const DEFAULT_GRPC_PORT: u16 = 9083;
