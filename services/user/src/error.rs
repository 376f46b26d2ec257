//! What the service can say went wrong; HTTP ([`ApiError`]) and gRPC (`tonic::Status`) each
//! translate it in one place.

use platform_http::{ApiError, FieldError};
use tonic::Status;

/// What can go wrong, in the service's words; [`ApiError`] and `tonic::Status` translate it.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// Registration with an email another account has.
    #[error("an account with this email already exists")]
    EmailTaken,
    /// Some fields are invalid.
    #[error("invalid input: {}", describe(.0))]
    Invalid(Vec<FieldError>),
    /// Login failed; deliberately silent on whether the account exists.
    #[error("the email or password is incorrect")]
    BadCredentials,
    /// The refresh token is unknown, expired or revoked.
    #[error("{0}")]
    BadRefreshToken(&'static str),
    /// An already used refresh token came back: its family is now revoked.
    #[error(
        "this refresh token was already used, so it may have been stolen; every session of \
         that login has been signed out: log in again"
    )]
    RefreshTokenReused,
    /// No such account.
    #[error("no such account")]
    NotFound,
    /// A failure that is not the caller's doing.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// `field message; field message`.
fn describe(fields: &[FieldError]) -> String {
    fields
        .iter()
        .map(|field| format!("`{}` {}", field.field, field.message))
        .collect::<Vec<_>>()
        .join("; ")
}

impl From<sqlx::Error> for AccountError {
    fn from(error: sqlx::Error) -> Self {
        Self::Unexpected(error.into())
    }
}

impl From<AccountError> for ApiError {
    fn from(error: AccountError) -> Self {
        match error {
            AccountError::EmailTaken => Self::Conflict(error.to_string()),
            AccountError::Invalid(fields) => Self::Validation(fields),
            AccountError::BadCredentials
            | AccountError::BadRefreshToken(_)
            | AccountError::RefreshTokenReused => Self::Unauthorized(error.to_string()),
            AccountError::NotFound => Self::NotFound(error.to_string()),
            AccountError::Unexpected(error) => Self::Internal(error),
        }
    }
}

impl From<AccountError> for Status {
    fn from(error: AccountError) -> Self {
        match error {
            AccountError::NotFound => Status::not_found(error.to_string()),
            AccountError::Invalid(fields) => Status::invalid_argument(
                fields
                    .iter()
                    .map(|field| format!("{} {}", field.field, field.message))
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            AccountError::Unexpected(error) => {
                tracing::error!(error = format!("{error:#}"), "gRPC call failed");
                Status::internal("an unexpected error occurred")
            }
            other => Status::failed_precondition(other.to_string()),
        }
    }
}
