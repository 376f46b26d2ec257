//! The events of the user service (`users.*`).

use platform_events::Event;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// `users.registered`: a new account exists.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRegistered {
    /// The account.
    pub user_id: Uuid,
    /// Its normalised email address.
    pub email: String,
    /// The name to greet the user with.
    pub display_name: String,
}

impl Event for UserRegistered {
    const TYPE: &'static str = "users.registered";
}

#[cfg(test)]
mod tests {
    //! The payload's JSON, written out by hand: if this fails, a consumer somewhere would too.

    use serde_json::json;

    use super::*;
    use crate::pinning::{id, pinned};

    #[test]
    fn user_registered_is_pinned() {
        pinned(
            &UserRegistered {
                user_id: id(1),
                email: "ada@example.com".to_owned(),
                display_name: "Ada".to_owned(),
            },
            &json!({
                "user_id": "01010101-0101-0101-0101-010101010101",
                "email": "ada@example.com",
                "display_name": "Ada"
            }),
        );
    }
}
