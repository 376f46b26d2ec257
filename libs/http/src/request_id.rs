//! `x-request-id`: taken from the client when it is sane, generated otherwise, echoed on every
//! response and available to handlers as the [`RequestId`] extractor.

use std::fmt;
use std::sync::Arc;

use axum::extract::{FromRequestParts, Request};
use axum::http::HeaderValue;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;

use crate::problem::ApiError;

/// The request id header.
pub const X_REQUEST_ID: &str = "x-request-id";

/// The longest client-sent request id we pass through.
const MAX_LEN: usize = 128;

/// The id of the request being served (the `x-request-id` header, validated or generated).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RequestId(Arc<str>);

impl RequestId {
    /// A new, time-ordered id (UUID v7).
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7().to_string().into())
    }

    /// The client's id if it is 1 to 128 visible ASCII characters (no spaces, no control
    /// characters: it ends up in log lines and other services' headers).
    pub fn parse(value: &[u8]) -> Option<Self> {
        let sane =
            !value.is_empty() && value.len() <= MAX_LEN && value.iter().all(u8::is_ascii_graphic);
        // All graphic ASCII, so this is valid UTF-8.
        sane.then(|| Self(String::from_utf8_lossy(value).into()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Self>().cloned().ok_or_else(|| {
            ApiError::Internal(anyhow::anyhow!(
                "RequestId extractor used on a router without the request id middleware \
                 (platform_http::with_standard_layers)"
            ))
        })
    }
}

/// Middleware: settles the request's id (client's if sane, else a new one), stores it in the
/// request headers and extensions, and sets it on the response.
pub async fn request_id(mut request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(X_REQUEST_ID)
        .and_then(|value| RequestId::parse(value.as_bytes()))
        .unwrap_or_else(RequestId::generate);
    // Valid by construction (graphic ASCII); the fallback can only be reached by a bug.
    let header = HeaderValue::from_str(id.as_str()).ok();
    if let Some(header) = &header {
        request.headers_mut().insert(X_REQUEST_ID, header.clone());
    }
    request.extensions_mut().insert(id);
    let mut response = next.run(request).await;
    if let Some(header) = header {
        response.headers_mut().insert(X_REQUEST_ID, header);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sane_client_id_is_kept_as_sent() {
        assert_eq!(
            RequestId::parse(b"abc-123_XYZ.~").map(|id| id.to_string()),
            Some("abc-123_XYZ.~".to_owned())
        );
        assert!(RequestId::parse("x".repeat(128).as_bytes()).is_some());
    }

    #[test]
    fn empty_long_spaced_or_non_ascii_ids_are_refused() {
        assert!(RequestId::parse(b"").is_none());
        assert!(RequestId::parse("x".repeat(129).as_bytes()).is_none());
        assert!(RequestId::parse(b"has space").is_none());
        assert!(RequestId::parse(b"tab\there").is_none());
        assert!(RequestId::parse("caf\u{e9}".as_bytes()).is_none());
    }

    #[test]
    fn generated_ids_are_uuid_v7() {
        let id = RequestId::generate();
        let uuid = uuid::Uuid::parse_str(id.as_str()).unwrap();
        assert_eq!(uuid.get_version_num(), 7);
    }
}
