//! The integration tests of `platform-auth`: real servers on 127.0.0.1, no mocks.

mod grpc;
mod helpers;
mod http;
mod verifier;
