//! The events library against real PostgreSQL, MongoDB-wire and NATS JetStream servers.

mod consumer;
mod dead_letters;
mod outbox;
mod support;
mod trace;
