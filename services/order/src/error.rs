//! What the service can say went wrong; HTTP ([`ApiError`]) translates it in one place (the
//! service serves no gRPC).

use platform_http::{ApiError, FieldError};

/// What can go wrong, in the service's words; [`ApiError`] translates it.
#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    /// Some fields are invalid.
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    /// The idempotency key was used with another request.
    #[error("this Idempotency-Key was already used with a different request")]
    KeyReused,
    /// No such order (or not the caller's).
    #[error("no such order")]
    NotFound,
    /// The order is not in a state that allows this.
    #[error("{0}")]
    Conflict(String),
    /// A service the order needs did not answer.
    #[error("{0}")]
    Unavailable(String),
    /// A failure that is not the caller's doing.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<sqlx::Error> for OrderError {
    fn from(error: sqlx::Error) -> Self {
        Self::Unexpected(error.into())
    }
}

impl From<OrderError> for ApiError {
    fn from(error: OrderError) -> Self {
        match error {
            OrderError::Invalid(fields) => Self::Validation(fields),
            OrderError::KeyReused => Self::Unprocessable(error.to_string()),
            OrderError::NotFound => Self::NotFound(error.to_string()),
            OrderError::Conflict(what) => Self::Conflict(what),
            OrderError::Unavailable(what) => Self::ServiceUnavailable(what),
            OrderError::Unexpected(error) => Self::Internal(error),
        }
    }
}
