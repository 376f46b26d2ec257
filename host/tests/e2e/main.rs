//! The whole platform as real processes on free ports, driven only through the gateway, as a
//! client would; the stores are read directly only to check the invariants.
//!
//! With `E2E_GATEWAY_URL` set, the tests target that deployment instead of starting platforms
//! (`platform_host::deployed` lists its variables). They touch only what they create there, so
//! the journeys may run side by side; the chaos tests kill services, so one at a time:
//!
//! ```text
//! cargo nextest run -p platform-host --test e2e -E 'test(/^journeys::/)'
//! cargo nextest run -p platform-host --test e2e -E 'test(/^chaos::/)' --test-threads 1
//! ```
//!
//! The faults tests (a store or the broker restarted, a partition, a slow provider) break
//! servers of their own platform, so they need one: against a deployment, leave them out with
//! `-E 'not test(/^faults::/)'`. `dead_letters.rs` always starts a platform of its own (it
//! routes the mail through a proxy it cuts), with or without `E2E_GATEWAY_URL`,
//! and so does `observability.rs` (its processes export traces to a collector in the test), and
//! `walkthrough.rs` (the README's walkthrough expects the demo catalogue as `make run` seeds it).

mod chaos;
mod dead_letters;
mod faults;
mod helpers;
mod hostile;
mod journeys;
mod observability;
mod storefront;
mod walkthrough;
