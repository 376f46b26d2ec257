//! What can go wrong: verifying a request's credentials, fetching keys, handling signing keys.

use axum::response::{IntoResponse, Response};
use platform_http::ApiError;

use crate::claims::Role;

/// Why a request's user credentials were refused.
///
/// The messages are meant for the caller: they say what is wrong with the token without
/// revealing anything about keys or configuration.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization` header at all.
    #[error("the request needs an access token: `Authorization: Bearer <token>`")]
    Missing,
    /// An `Authorization` header that is not `Bearer <token>`.
    #[error("the Authorization header must be of the form `Bearer <token>`")]
    NotBearer,
    /// Not a JWT, or one whose header or claims do not have the expected shape.
    #[error("the access token is malformed")]
    Malformed,
    /// Past its `exp` (beyond the allowed clock leeway).
    #[error("the access token has expired")]
    Expired,
    /// Its `nbf` is still in the future.
    #[error("the access token is not valid yet")]
    NotYetValid,
    /// The signature does not verify with the key the token names.
    #[error("the access token's signature is invalid")]
    BadSignature,
    /// Signed with an algorithm that is never accepted (`none`, HS*), or that is not its key's.
    #[error("the access token is signed with an algorithm that is not accepted")]
    DisallowedAlgorithm,
    /// Names a key (`kid`) the issuer does not publish.
    #[error("the access token is signed with an unknown key")]
    UnknownKey,
    /// Issued for another audience.
    #[error("the access token is not meant for this API")]
    WrongAudience,
    /// Issued by someone other than the expected issuer.
    #[error("the access token was issued by an untrusted issuer")]
    WrongIssuer,
    /// The token's key is not cached and the issuer's key set cannot be fetched right now.
    #[error("the keys that verify access tokens are unavailable right now; retry later")]
    KeysUnavailable,
    /// Authenticated, but without the role the action needs.
    #[error("this action requires the `{0}` role")]
    MissingRole(Role),
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::MissingRole(_) => Self::Forbidden(error.to_string()),
            // Not the caller's fault, and a 401 would send clients to log in again, piling onto
            // the user service that is already not answering.
            AuthError::KeysUnavailable => Self::ServiceUnavailable(error.to_string()),
            _ => Self::Unauthorized(error.to_string()),
        }
    }
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        ApiError::from(self).into_response()
    }
}

/// Why the key set could not be fetched or used.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    /// The HTTP client could not be built (a TLS set-up problem).
    #[error("cannot build the HTTP client that fetches the JWKS")]
    Client(#[source] reqwest::Error),
    /// The request failed, timed out, answered an error status or a body that is not a JWKS.
    #[error("fetching the JWKS failed")]
    Fetch(#[source] reqwest::Error),
    /// The key set holds no key this crate can verify with (Ed25519 or RSA >= 2048 bits, with a `kid`).
    #[error("the JWKS holds no usable signing key")]
    NoUsableKeys,
}

/// A signing key or shared secret that cannot be used, or a token that cannot be signed.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Not a PEM-encoded PKCS#8 Ed25519 private key.
    #[error("the key is not a PEM-encoded PKCS#8 Ed25519 private key")]
    InvalidPrivateKey,
    /// A shared secret too short to be safe for HS256.
    #[error("the service secret must be at least {min} bytes long")]
    SecretTooShort {
        /// The minimum length, in bytes.
        min: usize,
    },
    /// Signing failed (the claims could not be serialised).
    #[error("signing the token failed")]
    Signing(#[source] jsonwebtoken::errors::Error),
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::*;

    #[test]
    fn credential_errors_are_401_a_missing_role_403_and_unavailable_keys_503() {
        assert_eq!(
            ApiError::from(AuthError::Expired).status(),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            ApiError::from(AuthError::MissingRole(Role::Admin)).status(),
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            ApiError::from(AuthError::KeysUnavailable).status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }

    #[test]
    fn the_problem_detail_says_what_is_wrong_with_the_token() {
        let problem = ApiError::from(AuthError::Expired).to_problem();
        assert_eq!(
            problem.detail.as_deref(),
            Some("the access token has expired")
        );
    }
}
