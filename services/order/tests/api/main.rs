//! The order service and its checkout saga, against the real inventory and payment services
//! (each on port 0 with its own store), real NATS and a stand-in for the user service's JWKS.

mod checkout;
mod helpers;
mod invariants;
mod orders;
mod recovery;
mod waiting;
