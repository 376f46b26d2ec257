//! The {{service}} service's events (stream `{{events_domain | upcase}}`).

use platform_events::Event;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// `{{emitted_event}}`: a {{record}} was recorded, over the API or from an event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct {{EmittedEvent}} {
    /// The {{record}}.
    pub {{record}}_id: Uuid,
    /// The customer it belongs to.
    pub user_id: Uuid,
    /// What it is about (the subject of the event that caused it: an order's id for
    /// `orders.*`).
    pub reference: String,
    /// The type of the event that caused it; absent when created over the API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
}

impl Event for {{EmittedEvent}} {
    const TYPE: &'static str = "{{emitted_event}}";
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::pinning::{id, pinned};

    #[test]
    fn the_payload_is_pinned() {
        pinned(
            &{{EmittedEvent}} {
                {{record}}_id: id(1),
                user_id: id(2),
                reference: id(3).to_string(),
                cause: Some("orders.confirmed".to_owned()),
            },
            &json!({
                "{{record}}_id": id(1),
                "user_id": id(2),
                "reference": id(3).to_string(),
                "cause": "orders.confirmed"
            }),
        );
    }
}
