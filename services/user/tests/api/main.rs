//! The user service over HTTP and gRPC, against real PostgreSQL and NATS.

mod admin;
mod grpc;
mod helpers;
mod login;
mod me;
mod ops;
mod refresh;
mod register;
