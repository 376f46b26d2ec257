//! The events the service consumes ({{consumes}}): each records a {{record}} for the customer
//! it is about, once, however often it is delivered (the inbox and the `source_event` key).

use platform_events::consumer::postgres::PgInbox;
use platform_events::{EventHandler, HandlerError, Inbox, ReceivedEvent};
use serde_json::Value;
use uuid::Uuid;

use crate::domain::Reference;
use crate::store::{Cause, Store};

{% assign domains = consumes_domains | split: "," %}{% assign types = consumes | split: "," %}/// The durable consumers: one per stream, with the event types each reads.
pub const SUBSCRIPTIONS: [(&str, &str, &[&str]); {{ domains | size }}] = [
{% for domain in domains %}    (
        "{{service}}-{{domain}}",
        "{{domain}}",
        &[{% for type in types %}{% assign parts = type | split: "." %}{% if parts[0] == domain %}"{{type}}", {% endif %}{% endfor %}],
    ),
{% endfor %}];

/// Records a {{record}} for each event.
pub struct Intake {
    store: Store,
}

impl Intake {
    /// An intake writing through `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

/// The customer an event is about: its payload's `user_id`.
fn customer(event: &ReceivedEvent) -> Result<Uuid, HandlerError> {
    event
        .envelope
        .data
        .get("user_id")
        .and_then(Value::as_str)
        .and_then(|id| id.parse().ok())
        .ok_or_else(|| {
            HandlerError::Permanent(anyhow::anyhow!(
                "`{}` {} has no `user_id` in its data",
                event.envelope.event_type,
                event.envelope.id
            ))
        })
}

impl EventHandler<PgInbox> for Intake {
    async fn handle(
        &self,
        event: &ReceivedEvent,
        tx: &mut <PgInbox as Inbox>::Tx,
    ) -> Result<(), HandlerError> {
        let customer = customer(event)?;
        let reference = Reference::parse(&event.envelope.subject).map_err(|error| {
            HandlerError::Permanent(anyhow::anyhow!(
                "`{}` {}: its subject {}",
                event.envelope.event_type,
                event.envelope.id,
                error.message
            ))
        })?;
        let cause = Cause::Event(&event.envelope.event_type, event.envelope.id);
        let recorded = self
            .store
            .record(tx, customer, &reference, cause)
            .await
            .map_err(HandlerError::Transient)?;
        if recorded.is_some() {
            metrics::counter!("{{service}}_{{resource}}_recorded_total", "cause" => event.envelope.event_type.clone())
                .increment(1);
        }
        Ok(())
    }
}
