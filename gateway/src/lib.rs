//! The gateway: the single entry point of the platform. Clients talk to it and to nothing else.
//!
//! ```text
//! client ─> [server] request id, security headers, CORS
//!             ├─> /health/live, /health/ready (upstreams), /metrics, /openapi.json, /docs
//!             └─> [pipeline] request span ─> route table ─> JWT ─> rate limit (Redis)
//!                   ─> body limit ─> [proxy] breaker ─> upstream (pooled keep-alive, streamed,
//!                   retried when idempotent and unconnected, under the route's deadline)
//! ```
//!
//! - [`server`]: HTTP/1.1 connections served by hyper directly, and [`run_workers`]: one
//!   single-threaded worker per core sharing the port.
//! - [`routes`]: the route table (data: `routes.default.toml`, or `GATEWAY__ROUTES__FILE`).
//! - [`auth`]: bearer tokens verified against the user service's JWKS, with a per-thread
//!   cache of verified tokens.
//! - [`rate_limit`]: fixed-window counters in Redis, per user or client address and route
//!   class; fails open when Redis is down.
//! - [`proxy`]: the upstream client, header handling, retries, breakers, deadlines.
//! - [`pipeline`]: the order in which a request meets them.
//! - [`openapi`]: the merged document and the docs UI; [`readiness`]: upstream readiness.
//! - [`body`]: the request and response bodies of the proxy path; [`breaker`]: circuit
//!   breakers for the hot path; [`metrics`]: the gateway's metrics.
//! - [`config`]: every setting and its `GATEWAY__...` variable.
//!
//! [`Application::build`] binds the listener (port 0 in tests), and
//! [`Application::run_until_stopped`] serves until shutdown; `main.rs` only wires configuration
//! and telemetry to [`run_workers`], which runs one `Application` per worker.

mod app;
pub mod auth;
pub mod body;
pub mod breaker;
pub mod config;
pub mod metrics;
pub mod openapi;
pub mod pipeline;
pub mod pool;
pub mod proxy;
pub mod rate_limit;
pub mod readiness;
pub mod routes;
pub mod server;

pub use app::{Application, DRAIN_TIMEOUT, SERVICE_NAME, run_workers};
pub use config::Config;
