//! What the service can say went wrong; HTTP ([`ApiError`]) and gRPC (`tonic::Status`) each
//! translate it in one place.

use platform_http::{ApiError, FieldError};
use tonic::Status;

use crate::provider::ProviderError;

/// What can go wrong, in the service's words; [`ApiError`] and `tonic::Status` translate it.
#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    /// Some fields are invalid.
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    /// No such thing, or not the caller's.
    #[error("{0}")]
    NotFound(String),
    /// A charge for this order is being processed right now; retry shortly.
    #[error("a charge for this order is already in progress; retry shortly")]
    InProgress,
    /// The idempotency key was used before with other details.
    #[error("{0}")]
    KeyReused(String),
    /// The request conflicts with the payment's state (refund of a failed charge, too much).
    #[error("{0}")]
    Precondition(String),
    /// The provider could not be reached; the same request may be retried.
    #[error("{0}")]
    ProviderUnavailable(String),
    /// A failure that is not the caller's doing.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<sqlx::Error> for PaymentError {
    fn from(error: sqlx::Error) -> Self {
        Self::Unexpected(error.into())
    }
}

impl From<ProviderError> for PaymentError {
    fn from(error: ProviderError) -> Self {
        match error {
            ProviderError::Unavailable(_) => Self::ProviderUnavailable(error.to_string()),
            ProviderError::Rejected(_) => Self::Precondition(error.to_string()),
            ProviderError::Unexpected(error) => Self::Unexpected(error),
        }
    }
}

impl From<PaymentError> for ApiError {
    fn from(error: PaymentError) -> Self {
        match error {
            PaymentError::Invalid(fields) => Self::Validation(fields),
            PaymentError::NotFound(what) => Self::NotFound(what),
            PaymentError::KeyReused(what) | PaymentError::Precondition(what) => {
                Self::Conflict(what)
            }
            PaymentError::InProgress => Self::Conflict(error.to_string()),
            PaymentError::ProviderUnavailable(what) => Self::ServiceUnavailable(what),
            PaymentError::Unexpected(error) => Self::Internal(error),
        }
    }
}

impl From<PaymentError> for Status {
    fn from(error: PaymentError) -> Self {
        match error {
            PaymentError::Invalid(fields) => Status::invalid_argument(
                fields
                    .iter()
                    .map(|field| format!("{} {}", field.field, field.message))
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            PaymentError::NotFound(what) => Status::not_found(what),
            PaymentError::InProgress => Status::aborted(error.to_string()),
            PaymentError::KeyReused(what) => Status::already_exists(what),
            PaymentError::Precondition(what) => Status::failed_precondition(what),
            PaymentError::ProviderUnavailable(what) => Status::unavailable(what),
            PaymentError::Unexpected(error) => {
                tracing::error!(error = format!("{error:#}"), "gRPC call failed");
                Status::internal("an unexpected error occurred")
            }
        }
    }
}
