//! The gateway against real servers on 127.0.0.1: stand-in upstreams for the proxy mechanics,
//! the real user service for authentication, the test Redis for rate limits.

mod auth;
mod docs_and_health;
mod edge;
mod helpers;
mod proxying;
mod rate_limit;
mod resilience;
mod workers;
