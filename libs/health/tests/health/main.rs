//! Liveness, readiness and gRPC health against real PostgreSQL, Redis, NATS and MongoDB, each
//! reached through a proxy the test can cut.

mod grpc;
mod helpers;
mod liveness;
mod mongo_outage;
mod nats_outage;
mod postgres_outage;
mod probe;
mod redis_outage;
mod timeouts;
