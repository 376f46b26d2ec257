//! The HTTP plumbing, against a real server on a random port, through a real client.

mod errors;
mod extractors;
mod helpers;
mod layers;
mod observability;
mod openapi;
mod request_id;
mod shutdown;
