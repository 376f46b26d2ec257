//! From events to recorded notifications: the consumers' handler.
//!
//! The handler renders the message and records it in the inbox's transaction: an event leads
//! to exactly one notification, however often it is delivered. Sending is the delivery
//! worker's job (`delivery.rs`).

use std::sync::Arc;

use platform_contracts::{
    CancellationReason, LowStock, OrderCancelled, OrderConfirmed, PaymentFailed,
    PaymentFailureReason, UserRegistered,
};
use platform_events::consumer::postgres::PgInbox;
use platform_events::{Event as _, EventHandler, HandlerError, Inbox, ReceivedEvent};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::store::{self, NewNotification};
use crate::templates::Templates;
use crate::users::{LookupError, Recipient, UserDirectory};

/// The events this service turns into notifications: which types are read from which
/// domain's stream, by which durable consumer (one per stream, all handled by [`Intake`]).
pub const SUBSCRIPTIONS: [(&str, &str, &[&str]); 4] = [
    ("notification-users", "users", &[UserRegistered::TYPE]),
    (
        "notification-orders",
        "orders",
        &[OrderConfirmed::TYPE, OrderCancelled::TYPE],
    ),
    ("notification-payments", "payments", &[PaymentFailed::TYPE]),
    ("notification-inventory", "inventory", &[LowStock::TYPE]),
];

/// Renders and records a notification for each event.
pub struct Intake {
    templates: Arc<Templates>,
    users: UserDirectory,
    admin_email: String,
    channel: &'static str,
}

impl Intake {
    /// An intake rendering with `templates`, finding recipients in `users`, sending low-stock
    /// alerts to `admin_email`, over the channel named `channel`.
    pub fn new(
        templates: Arc<Templates>,
        users: UserDirectory,
        admin_email: String,
        channel: &'static str,
    ) -> Self {
        Self {
            templates,
            users,
            admin_email,
            channel,
        }
    }

    async fn user(&self, user_id: Uuid) -> Result<Recipient, HandlerError> {
        self.users
            .recipient(user_id)
            .await
            .map_err(|error| match error {
                LookupError::NotFound(_) => HandlerError::Permanent(error.into()),
                LookupError::Unavailable(_) => HandlerError::Transient(error.into()),
            })
    }

    /// Who gets which message, with what in it.
    async fn draft(&self, event: &ReceivedEvent) -> Result<Draft, HandlerError> {
        Ok(match event.envelope.event_type.as_str() {
            UserRegistered::TYPE => {
                let data = event.decode::<UserRegistered>()?.data;
                Draft {
                    user_id: Some(data.user_id),
                    recipient: data.email.clone(),
                    template: "welcome",
                    context: json!({"display_name": data.display_name, "email": data.email}),
                }
            }
            OrderConfirmed::TYPE => {
                let data = event.decode::<OrderConfirmed>()?.data;
                let user = self.user(data.user_id).await?;
                Draft {
                    user_id: Some(data.user_id),
                    recipient: user.email,
                    template: "order_confirmed",
                    context: json!({
                        "display_name": user.display_name,
                        "order_ref": order_ref(data.order_id),
                        "items": data.items,
                        "total": data.total,
                    }),
                }
            }
            OrderCancelled::TYPE => {
                let data = event.decode::<OrderCancelled>()?.data;
                let user = self.user(data.user_id).await?;
                Draft {
                    user_id: Some(data.user_id),
                    recipient: user.email,
                    template: "order_cancelled",
                    context: json!({
                        "display_name": user.display_name,
                        "order_ref": order_ref(data.order_id),
                        "reason_in_words": cancellation_in_words(data.reason, &data.detail),
                        "items": data.items,
                        "total": data.total,
                        "refunded": data.refunded,
                    }),
                }
            }
            PaymentFailed::TYPE => {
                let data = event.decode::<PaymentFailed>()?.data;
                let user = self.user(data.user_id).await?;
                Draft {
                    user_id: Some(data.user_id),
                    recipient: user.email,
                    template: "payment_failed",
                    context: json!({
                        "display_name": user.display_name,
                        "order_ref": order_ref(data.order_id),
                        "amount": data.amount,
                        "reason_in_words": payment_failure_in_words(data.reason, &data.message),
                    }),
                }
            }
            LowStock::TYPE => {
                let data = event.decode::<LowStock>()?.data;
                Draft {
                    user_id: None,
                    recipient: self.admin_email.clone(),
                    template: "low_stock",
                    context: serde_json::to_value(&data)
                        .map_err(|error| HandlerError::Permanent(error.into()))?,
                }
            }
            other => {
                return Err(HandlerError::Permanent(anyhow::anyhow!(
                    "no notification is sent for `{other}` events"
                )));
            }
        })
    }
}

/// A message to render.
struct Draft {
    user_id: Option<Uuid>,
    recipient: String,
    template: &'static str,
    context: Value,
}

impl EventHandler<PgInbox> for Intake {
    async fn handle(
        &self,
        event: &ReceivedEvent,
        tx: &mut <PgInbox as Inbox>::Tx,
    ) -> Result<(), HandlerError> {
        let draft = self.draft(event).await?;
        let rendered = self
            .templates
            .render(draft.template, &draft.context)
            .map_err(|error| {
                HandlerError::Permanent(anyhow::anyhow!(
                    "rendering `{}`: {error:#}",
                    draft.template
                ))
            })?;
        let envelope = serde_json::to_value(&event.envelope)
            .map_err(|error| HandlerError::Permanent(error.into()))?;
        let recorded = store::insert(
            &NewNotification {
                id: Uuid::now_v7(),
                event_id: event.envelope.id,
                event_type: event.envelope.event_type.clone(),
                event: envelope,
                user_id: draft.user_id,
                channel: self.channel.to_owned(),
                recipient: draft.recipient,
                template: draft.template.to_owned(),
                subject: rendered.subject,
                body_text: rendered.text,
                body_html: rendered.html,
                traceparent: platform_telemetry::propagation::current_traceparent(),
            },
            &mut **tx,
        )
        .await
        .map_err(|error| HandlerError::Transient(error.into()))?;
        if recorded {
            metrics::counter!("notifications_recorded_total", "template" => draft.template)
                .increment(1);
        }
        Ok(())
    }
}

/// The short reference customers see: the random end of the order id.
fn order_ref(order_id: Uuid) -> String {
    let simple = order_id.simple().to_string().to_uppercase();
    simple[simple.len() - 8..].to_owned()
}

fn cancellation_in_words(reason: CancellationReason, detail: &str) -> String {
    match reason {
        CancellationReason::OutOfStock => {
            "an item ran out of stock before we could reserve it.".to_owned()
        }
        CancellationReason::PaymentDeclined => "your card was declined.".to_owned(),
        CancellationReason::PaymentTimeout => {
            "the payment did not go through in time; you have not been charged.".to_owned()
        }
        CancellationReason::ReservationExpired => {
            "we could not hold the items long enough to complete it.".to_owned()
        }
        CancellationReason::CustomerRequest => "you asked us to cancel it.".to_owned(),
        CancellationReason::Other => detail.to_owned(),
    }
}

fn payment_failure_in_words(reason: PaymentFailureReason, message: &str) -> String {
    match reason {
        PaymentFailureReason::Declined => "the card was declined.".to_owned(),
        PaymentFailureReason::InsufficientFunds => "the card has insufficient funds.".to_owned(),
        PaymentFailureReason::ExpiredCard => "the card has expired.".to_owned(),
        PaymentFailureReason::ProviderUnavailable => {
            "the payment provider was unavailable; please try again.".to_owned()
        }
        PaymentFailureReason::Other => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_subscriptions_read_exactly_the_domains_the_registry_says_this_service_consumes() {
        let entry = platform_kit::registry::service(crate::SERVICE_NAME);
        let domains: Vec<&str> = SUBSCRIPTIONS.iter().map(|(_, domain, _)| *domain).collect();
        assert_eq!(domains, entry.consumes);
    }

    #[test]
    fn the_order_reference_is_the_random_end_of_the_id() {
        let id: Uuid = "01936b2e-7c41-7d3a-9f10-2b3c4d5e6f70".parse().unwrap();
        assert_eq!(order_ref(id), "4D5E6F70");
    }

    #[test]
    fn reasons_are_put_in_words() {
        assert_eq!(
            cancellation_in_words(CancellationReason::PaymentDeclined, "ignored"),
            "your card was declined."
        );
        assert_eq!(
            cancellation_in_words(CancellationReason::Other, "fraud check failed"),
            "fraud check failed"
        );
        assert_eq!(
            payment_failure_in_words(PaymentFailureReason::InsufficientFunds, ""),
            "the card has insufficient funds."
        );
    }
}
