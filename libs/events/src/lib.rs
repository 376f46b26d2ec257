//! The platform's events: what they look like, how they leave a service reliably, and how they
//! are consumed exactly once in effect.
//!
//! - [`envelope`]: the [`Envelope`] every event travels in, and the [`Event`] trait.
//! - [`streams`]: the JetStream streams (one per domain, plus dead letters) and their
//!   provisioning, and the [`Namespace`] that isolates tests.
//! - [`outbox`]: the transactional outbox (PostgreSQL and MongoDB) and the [`outbox::Relay`]
//!   that publishes it.
//! - [`consumer`]: idempotent consumers with an inbox, bounded retries and dead letters.
//! - [`dead_letters`]: what operators do with dead letters: list, read, replay, discard, count.
//!
//! The payloads are not here: they are contracts between services, in `platform-contracts`.
//! `docs/events.md` explains the design and its guarantees in plain words.

mod connect;
pub mod consumer;
pub mod dead_letters;
pub mod envelope;
mod mongo;
pub mod outbox;
pub mod streams;

pub use connect::connect;
pub use consumer::{Consumer, ConsumerConfig, EventHandler, HandlerError, Inbox, ReceivedEvent};
pub use dead_letters::{DeadLetter, DeadLetters, Replay, ReplayError, Replayed};
pub use envelope::{DecodeError, Envelope, Event, RawEnvelope};
pub use outbox::{OutboxStore, PendingEvent, Relay, RelayConfig};
pub use streams::{Namespace, StreamSpec, ensure_streams, platform_streams};
