//! What the service can say went wrong; HTTP ([`ApiError`]) and gRPC (`tonic::Status`) each
//! translate it in one place.

use mongodb::error::{Error as MongoError, ErrorKind, WriteFailure};
use platform_http::{ApiError, FieldError};
use tonic::Status;

/// What can go wrong, in the service's words.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    /// Some fields are invalid.
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    /// A malformed parameter (path or query).
    #[error("{0}")]
    BadRequest(String),
    /// No such product (or reservation).
    #[error("{0}")]
    NotFound(String),
    /// The write conflicts with what is stored (a duplicate SKU, a stale version).
    #[error("{0}")]
    Conflict(String),
    /// The request cannot be met in the current state (stock short, reservation expired).
    #[error("{0}")]
    Precondition(String),
    /// Concurrent changes kept the transaction from committing after every retry; the same
    /// request may be retried.
    #[error("{0}")]
    Contended(String),
    /// The database could not be reached; the same request may be retried.
    #[error("{0}")]
    Unavailable(String),
    /// A failure that is not the caller's doing.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<MongoError> for InventoryError {
    fn from(error: MongoError) -> Self {
        if is_unreachable(&error) {
            Self::Unavailable(format!("the database is unavailable: {}", error.kind))
        } else {
            Self::Unexpected(error.into())
        }
    }
}

impl From<InventoryError> for ApiError {
    fn from(error: InventoryError) -> Self {
        match error {
            InventoryError::Invalid(fields) => Self::Validation(fields),
            InventoryError::BadRequest(what) => Self::BadRequest(what),
            InventoryError::NotFound(what) => Self::NotFound(what),
            InventoryError::Conflict(what) | InventoryError::Precondition(what) => {
                Self::Conflict(what)
            }
            InventoryError::Contended(what) | InventoryError::Unavailable(what) => {
                Self::ServiceUnavailable(what)
            }
            InventoryError::Unexpected(error) => Self::Internal(error),
        }
    }
}

impl From<InventoryError> for Status {
    fn from(error: InventoryError) -> Self {
        match error {
            InventoryError::Invalid(fields) => Status::invalid_argument(
                fields
                    .iter()
                    .map(|field| format!("{} {}", field.field, field.message))
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            InventoryError::BadRequest(what) => Status::invalid_argument(what),
            InventoryError::NotFound(what) => Status::not_found(what),
            InventoryError::Conflict(what) => Status::already_exists(what),
            InventoryError::Precondition(what) => Status::failed_precondition(what),
            InventoryError::Contended(what) => Status::aborted(what),
            InventoryError::Unavailable(what) => Status::unavailable(what),
            InventoryError::Unexpected(error) => {
                tracing::error!(error = format!("{error:#}"), "gRPC call failed");
                Status::internal("an unexpected error occurred")
            }
        }
    }
}

/// MongoDB's duplicate-key error code.
const DUPLICATE_KEY: i32 = 11000;
/// A write that lost a race with another transaction.
const WRITE_CONFLICT: i32 = 112;
/// `create` of a collection that exists.
const NAMESPACE_EXISTS: i32 = 48;

/// The server's error code, however the driver wrapped it.
fn code(error: &MongoError) -> Option<i32> {
    match error.kind.as_ref() {
        ErrorKind::Command(command) => Some(command.code),
        ErrorKind::Write(WriteFailure::WriteError(write)) => Some(write.code),
        ErrorKind::InsertMany(insert) => insert
            .write_errors
            .iter()
            .flatten()
            .map(|write| write.code)
            .next(),
        _ => None,
    }
}

/// A unique index refused the write.
pub(crate) fn is_duplicate_key(error: &MongoError) -> bool {
    match error.kind.as_ref() {
        ErrorKind::InsertMany(insert) => insert
            .write_errors
            .iter()
            .flatten()
            .any(|write| write.code == DUPLICATE_KEY),
        _ => code(error) == Some(DUPLICATE_KEY),
    }
}

/// The collection already exists.
pub(crate) fn is_namespace_exists(error: &MongoError) -> bool {
    code(error) == Some(NAMESPACE_EXISTS)
}

/// Retrying the whole transaction may succeed: a write conflict, or anything the server or
/// driver labels transient.
pub(crate) fn is_transient(error: &MongoError) -> bool {
    error.contains_label(mongodb::error::TRANSIENT_TRANSACTION_ERROR)
        || error.contains_label(mongodb::error::UNKNOWN_TRANSACTION_COMMIT_RESULT)
        || code(error) == Some(WRITE_CONFLICT)
}

/// The server could not be reached at all.
fn is_unreachable(error: &MongoError) -> bool {
    matches!(
        error.kind.as_ref(),
        ErrorKind::ServerSelection { .. }
            | ErrorKind::Io(_)
            | ErrorKind::ConnectionPoolCleared { .. }
    )
}
