//! The delivery worker: sends recorded notifications through the channel, records every
//! attempt, retries transient failures with back-off, and gives up on permanent ones (or after
//! the last attempt), copying the event to the dead-letter subject.
//!
//! Delivery is at least once: if the process dies after the mail server accepted a message
//! and before the attempt is recorded, the message is sent again when its lease lapses. It
//! carries the same `Message-ID` both times, so mail systems can recognise the repeat.

use std::sync::Arc;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, message::PublishMessage};
use platform_events::consumer::{dead_letter_headers, one_line};
use platform_events::{DeadLetter, Namespace, Replay, ReplayError, Replayed};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;
use uuid::Uuid;

use crate::channel::{Channel, ChannelError, OutgoingMessage};
use crate::config::DeliverySettings;
use crate::store::{self, NotificationRow, Outcome};

/// The name dead letters of failed deliveries carry (`dlq.notification-delivery.<event type>`).
pub const DELIVERY: &str = "notification-delivery";

/// The header of a delivery's dead letter that names the notification.
pub const NOTIFICATION_ID: &str = "Notification-Id";

/// How long a worker holds a notification it is sending.
const LEASE: Duration = Duration::from_secs(60);

/// Sends due notifications until stopped.
pub struct DeliveryWorker {
    pool: PgPool,
    channel: Arc<dyn Channel>,
    settings: DeliverySettings,
    jetstream: jetstream::Context,
    namespace: Namespace,
}

impl DeliveryWorker {
    /// A worker sending `pool`'s notifications through `channel`.
    pub fn new(
        pool: PgPool,
        channel: Arc<dyn Channel>,
        settings: DeliverySettings,
        jetstream: jetstream::Context,
        namespace: Namespace,
    ) -> Self {
        Self {
            pool,
            channel,
            settings,
            jetstream,
            namespace,
        }
    }

    /// Works until `stop`; finishes the message in hand.
    pub async fn run(self, stop: CancellationToken) {
        let idle = Duration::from_millis(self.settings.poll_interval_ms);
        while !stop.is_cancelled() {
            let sent = match self.deliver_due().await {
                Ok(count) => count,
                Err(error) => {
                    tracing::warn!(error = format!("{error:#}"), "a delivery round failed");
                    0
                }
            };
            if sent == 0 {
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep(idle) => {}
                }
            }
        }
    }

    /// One round: claims up to `concurrency` due notifications and tries each once, all at
    /// once. Returns how many it tried.
    pub async fn deliver_due(&self) -> anyhow::Result<usize> {
        let limit = i64::try_from(self.settings.concurrency.max(1)).unwrap_or(1);
        let due = store::claim_due(limit, LEASE, &self.pool).await?;
        let count = due.len();
        futures::future::join_all(
            due.into_iter()
                .map(|notification| self.deliver(notification)),
        )
        .await
        .into_iter()
        .collect::<anyhow::Result<Vec<()>>>()?;
        Ok(count)
    }

    /// One attempt at `notification`, in a `send {channel}` client span that is a child of
    /// the handling of the event it answers (so the email is in the trace of the checkout).
    async fn deliver(&self, notification: NotificationRow) -> anyhow::Result<()> {
        let span = tracing::info_span!(
            "notification.deliver",
            otel.name = %format!("send {}", self.channel.name()),
            otel.kind = "client",
            notification_id = %notification.id,
            event_type = %notification.event_type,
            attempt = notification.attempts + 1,
        );
        if let Some(traceparent) = &notification.traceparent {
            platform_telemetry::propagation::set_parent_from_traceparent(&span, traceparent);
        }
        self.attempt(notification).instrument(span).await
    }

    async fn attempt(&self, notification: NotificationRow) -> anyhow::Result<()> {
        let attempt = notification.attempts + 1;
        let message = OutgoingMessage {
            id: notification.id,
            recipient: notification.recipient.clone(),
            subject: notification.subject.clone(),
            text: notification.body_text.clone(),
            html: notification.body_html.clone(),
        };
        let result = self.channel.send(&message).await;
        let (outcome, error, retry_after) = match &result {
            Ok(()) => (Outcome::Sent, None, None),
            Err(ChannelError::Transient(error)) if attempt < self.settings.max_attempts => (
                Outcome::TransientFailure,
                Some(error.as_str()),
                Some(self.settings.retry_delay(attempt)),
            ),
            Err(ChannelError::Transient(error)) => {
                (Outcome::TransientFailure, Some(error.as_str()), None)
            }
            Err(ChannelError::Permanent(error)) => {
                (Outcome::PermanentFailure, Some(error.as_str()), None)
            }
        };
        store::record_attempt(
            notification.id,
            attempt,
            outcome,
            error,
            retry_after,
            &self.pool,
        )
        .await?;
        let channel = self.channel.name();
        match (outcome, retry_after) {
            (Outcome::Sent, _) => {
                metrics::counter!("notifications_sent_total", "channel" => channel).increment(1);
                tracing::info!(attempt, "notification delivered");
            }
            (_, Some(delay)) => {
                metrics::counter!("notifications_retried_total", "channel" => channel).increment(1);
                tracing::warn!(attempt, error, retry_in = ?delay, "delivery failed; it will be retried");
            }
            (_, None) => {
                metrics::counter!("notifications_failed_total", "channel" => channel).increment(1);
                tracing::error!(
                    attempt,
                    error,
                    "delivery failed for good; dead-lettering the event"
                );
                self.dead_letter(&notification, attempt, error.unwrap_or_default())
                    .await;
            }
        }
        Ok(())
    }

    /// Copies the event to the dead-letter stream, with why it could not be delivered. The
    /// notification row (with the event and every attempt) stays in the store whatever happens.
    async fn dead_letter(&self, notification: &NotificationRow, attempts: i32, error: &str) {
        let mut headers = HeaderMap::new();
        headers.insert(dead_letter_headers::CONSUMER, DELIVERY);
        headers.insert(dead_letter_headers::ERROR, one_line(error).as_str());
        headers.insert(
            dead_letter_headers::ORIGINAL_SUBJECT,
            self.namespace.subject(&notification.event_type).as_str(),
        );
        headers.insert(
            dead_letter_headers::DELIVERIES,
            attempts.to_string().as_str(),
        );
        headers.insert(NOTIFICATION_ID, notification.id.to_string().as_str());
        let subject = self
            .namespace
            .dead_letter_subject(DELIVERY, &notification.event_type);
        let payload = serde_json::to_vec(&notification.event).unwrap_or_default();
        let publish = PublishMessage::build()
            .payload(payload.into())
            .headers(headers)
            // One letter per giving-up: a notification replayed and failed again gets another.
            .message_id(format!("{DELIVERY}:{}:{attempts}", notification.id));
        let stored = async {
            self.jetstream
                .send_publish(subject, publish)
                .await?
                .await
                .map_err(anyhow::Error::from)
        };
        if let Err(error) = stored.await {
            tracing::error!(%error, "the dead letter could not be stored; the failed notification stays in the store");
        }
    }
}

/// Replays delivery dead letters: the failed notification is made due again, once, and the
/// worker sends it. Only a notification still `failed` is changed (one conditional update), so
/// replaying twice, or concurrently, sends one message; one delivered meanwhile is
/// [`Replayed::AlreadyDone`].
pub struct DeliveryReplay {
    pool: PgPool,
}

impl DeliveryReplay {
    /// Replays against `pool`'s notifications.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[async_trait::async_trait]
impl Replay for DeliveryReplay {
    async fn replay(&self, letter: &DeadLetter) -> Result<Replayed, ReplayError> {
        let id: Uuid = letter
            .header(NOTIFICATION_ID)
            .and_then(|id| id.parse().ok())
            .ok_or_else(|| {
                ReplayError::Refused(format!("the dead letter has no valid `{NOTIFICATION_ID}`"))
            })?;
        let unavailable = |error: sqlx::Error| ReplayError::Unavailable(error.into());
        if store::retry_failed(id, &self.pool)
            .await
            .map_err(unavailable)?
        {
            tracing::info!(notification_id = %id, "failed notification due again");
            return Ok(Replayed::Processed);
        }
        match store::status(id, &self.pool).await.map_err(unavailable)? {
            Some(_) => Ok(Replayed::AlreadyDone),
            None => Err(ReplayError::Refused(format!(
                "notification {id} is no longer in the store"
            ))),
        }
    }
}
