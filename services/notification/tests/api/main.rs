//! The notification service against real NATS, PostgreSQL, an SMTP server that keeps what it
//! receives, and the real user service.

mod dead_letters;
mod delivery;
mod events;
mod helpers;
