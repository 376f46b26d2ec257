//! Common axum plumbing for every HTTP service of the platform.
//!
//! - [`problem`]: RFC 9457 problem+json errors ([`ApiError`], [`Problem`]).
//! - [`extract`]: `Json`, `Path` and `Query` whose rejections are problems.
//! - [`layers`]: request id, tracing, metrics, timeout, body limit and bare-error mapping, all
//!   applied in order by [`with_standard_layers`].
//! - [`serve`]: serving with graceful shutdown under a drain deadline.
//! - [`openapi`]: `GET /openapi.json` and the components every document shares.
//! - [`memory`]: the allocator settings every process starts with.

pub mod extract;
pub mod layers;
pub mod memory;
pub mod openapi;
pub mod paging;
pub mod problem;
pub mod request_id;
pub mod serve;
pub mod text;

pub use extract::{Json, Path, Query};
pub use layers::{HttpConfig, record_response, with_standard_layers};
pub use paging::{PageQuery, paginate};
pub use problem::{ApiError, FieldError, InternalErrorCause, PROBLEM_JSON, Problem};
pub use request_id::{RequestId, X_REQUEST_ID};
pub use serve::{bind, serve, shutdown_signal};

/// Installs rustls' ring provider as the process default; call it before building any TLS
/// client or server (reqwest is built without a provider). Idempotent.
pub fn install_crypto_provider() {
    // An error means a default is already installed (by an earlier call, or by someone else
    // on purpose): either way there is one, which is all that is needed.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
