//! A {{record}}: what the service keeps, and the checks a new one passes at the edge.

use chrono::{DateTime, Utc};
use platform_http::FieldError;
use uuid::Uuid;

/// The longest reference accepted.
pub const MAX_REFERENCE: usize = 200;

/// A {{record}}, as stored.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct {{Record}} {
    /// Its id (UUID v7: ids sort by creation time).
    pub id: Uuid,
    /// The customer it belongs to.
    pub user_id: Uuid,
    /// What it is about: given over the API, or the subject of the event that caused it (an
    /// order's id for `orders.*`).
    pub reference: String,
    /// The type of the event that caused it; `None` when created over the API.
    pub cause: Option<String>,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
}

/// A reference, checked: trimmed, 1 to [`MAX_REFERENCE`] characters, no control characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference(String);

impl Reference {
    /// Checks `raw`; the error names the field.
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(FieldError::new("reference", "must not be empty"));
        }
        if trimmed.chars().count() > MAX_REFERENCE {
            return Err(FieldError::new(
                "reference",
                format!("must be at most {MAX_REFERENCE} characters"),
            ));
        }
        if trimmed.chars().any(char::is_control) {
            return Err(FieldError::new(
                "reference",
                "must not contain control characters",
            ));
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// The checked text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_trimmed_and_bounded() {
        assert_eq!(Reference::parse("  A-42 ").unwrap().as_str(), "A-42");
        assert_eq!(Reference::parse(" ").unwrap_err().field, "reference");
        assert!(Reference::parse(&"x".repeat(MAX_REFERENCE)).is_ok());
        assert!(Reference::parse(&"x".repeat(MAX_REFERENCE + 1)).is_err());
        assert!(Reference::parse("a\u{0}b").is_err());
    }
}
