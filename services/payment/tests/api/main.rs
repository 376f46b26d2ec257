//! The payment service over HTTP and gRPC, against real PostgreSQL and NATS.

mod charges;
mod helpers;
mod methods;
mod refunds;
mod secrecy;
