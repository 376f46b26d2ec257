//! Axum extractors: the authenticated user of a request, and one that must be an admin.

use std::ops::Deref;

use axum::extract::{FromRef, FromRequestParts, OptionalFromRequestParts};
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use crate::claims::{AuthenticatedUser, Role};
use crate::error::AuthError;
use crate::jwks::JwksVerifier;

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, AuthError> {
    let value = headers.get(AUTHORIZATION).ok_or(AuthError::Missing)?;
    let value = value.to_str().map_err(|_| AuthError::NotBearer)?;
    parse_bearer(value).ok_or(AuthError::NotBearer)
}

/// The token of a `Bearer <token>` credential (the scheme is case-insensitive).
pub(crate) fn parse_bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && !token.contains(' '))
        .then_some(token)
}

/// Verifies the request's bearer token with the state's [`JwksVerifier`].
///
/// Rejections render as 401 problem+json (503 when the keys cannot be fetched). The identity
/// is kept in the request extensions, so extracting it twice verifies once; a middleware that
/// has already authenticated the request may put it there too.
impl<S> FromRequestParts<S> for AuthenticatedUser
where
    JwksVerifier: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(user) = parts.extensions.get::<Self>() {
            return Ok(user.clone());
        }
        let token = bearer_token(&parts.headers)?;
        let user = JwksVerifier::from_ref(state).verify(token).await?;
        // Lands in the request's span when it declares a `user_id` field (a no-op otherwise).
        tracing::Span::current().record("user_id", tracing::field::display(user.user_id));
        parts.extensions.insert(user.clone());
        Ok(user)
    }
}

/// `Option<AuthenticatedUser>`: `None` without an `Authorization` header, a rejection for a
/// token that does not verify (a bad token is never silently treated as anonymous).
impl<S> OptionalFromRequestParts<S> for AuthenticatedUser
where
    JwksVerifier: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AuthError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        match <Self as FromRequestParts<S>>::from_request_parts(parts, state).await {
            Ok(user) => Ok(Some(user)),
            Err(AuthError::Missing) => Ok(None),
            Err(error) => Err(error),
        }
    }
}

/// An authenticated user who holds the [`Role::Admin`] role; others get a 403 problem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminUser(pub AuthenticatedUser);

impl Deref for AdminUser {
    type Target = AuthenticatedUser;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl<S> FromRequestParts<S> for AdminUser
where
    JwksVerifier: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let user =
            <AuthenticatedUser as FromRequestParts<S>>::from_request_parts(parts, state).await?;
        user.require_role(Role::Admin)?;
        Ok(Self(user))
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(authorization: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_str(authorization).unwrap());
        headers
    }

    #[test]
    fn a_bearer_token_is_read_whatever_the_scheme_case() {
        assert_eq!(
            bearer_token(&headers("Bearer abc.def.ghi")),
            Ok("abc.def.ghi")
        );
        assert_eq!(bearer_token(&headers("bearer abc")), Ok("abc"));
    }

    #[test]
    fn a_missing_header_and_other_schemes_are_told_apart() {
        assert_eq!(bearer_token(&HeaderMap::new()), Err(AuthError::Missing));
        assert_eq!(
            bearer_token(&headers("Basic dXNlcjpwdw==")),
            Err(AuthError::NotBearer)
        );
        assert_eq!(bearer_token(&headers("Bearer")), Err(AuthError::NotBearer));
        assert_eq!(bearer_token(&headers("Bearer ")), Err(AuthError::NotBearer));
        assert_eq!(
            bearer_token(&headers("Bearer a b")),
            Err(AuthError::NotBearer)
        );
    }
}
