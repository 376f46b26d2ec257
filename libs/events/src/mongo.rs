//! Small helpers shared by the MongoDB outbox and inbox.

use mongodb::error::{Error, ErrorKind, WriteFailure};

/// MongoDB's duplicate-key error code.
const DUPLICATE_KEY: i32 = 11000;

/// Whether an error is a unique-index violation (however the server chose to report it).
pub(crate) fn is_duplicate_key(error: &Error) -> bool {
    match error.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(write)) => write.code == DUPLICATE_KEY,
        ErrorKind::Command(command) => command.code == DUPLICATE_KEY,
        ErrorKind::InsertMany(insert) => insert
            .write_errors
            .iter()
            .flatten()
            .any(|write| write.code == DUPLICATE_KEY),
        _ => false,
    }
}

/// A `std::time::Duration` added to a BSON date.
pub(crate) fn after(now: bson::DateTime, duration: std::time::Duration) -> bson::DateTime {
    let millis = i64::try_from(duration.as_millis()).unwrap_or(i64::MAX);
    bson::DateTime::from_millis(now.timestamp_millis().saturating_add(millis))
}

/// A `std::time::Duration` before a BSON date.
pub(crate) fn before(now: bson::DateTime, duration: std::time::Duration) -> bson::DateTime {
    let millis = i64::try_from(duration.as_millis()).unwrap_or(i64::MAX);
    bson::DateTime::from_millis(now.timestamp_millis().saturating_sub(millis))
}
