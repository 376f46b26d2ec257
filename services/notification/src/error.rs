//! What the service's API can say went wrong; HTTP ([`ApiError`]) translates it in one place
//! (the service serves no gRPC).
//!
//! The errors of delivery stay with what raises them: [`crate::channel::ChannelError`] is a
//! channel's own transient-or-permanent verdict, which the delivery loop retries on, and
//! [`crate::users::LookupError`] the user service client's; neither reaches a caller of the API.

use platform_http::ApiError;

/// What can go wrong, in the service's words. The API only reads the caller's notifications,
/// so all it can fail with is the unexpected.
#[derive(Debug, thiserror::Error)]
pub enum NotificationError {
    /// A failure that is not the caller's doing.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<sqlx::Error> for NotificationError {
    fn from(error: sqlx::Error) -> Self {
        Self::Unexpected(error.into())
    }
}

impl From<NotificationError> for ApiError {
    fn from(error: NotificationError) -> Self {
        match error {
            NotificationError::Unexpected(error) => Self::Internal(error),
        }
    }
}
