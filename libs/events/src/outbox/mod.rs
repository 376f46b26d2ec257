//! The transactional outbox and its relay.
//!
//! A service writes each event into an outbox table (or collection) in the same transaction as
//! the state change it describes: either both are stored or neither is. A [`Relay`] then claims
//! pending events with a lease, publishes them to JetStream with `Nats-Msg-Id` = event id, and
//! marks them published once JetStream has acknowledged them.
//!
//! Guarantees, and why they hold:
//! - Nothing is lost: an event is only marked published after JetStream's ack; a failed or
//!   unacknowledged publish leaves it pending, and the lease lets another relay retry it.
//! - No event is stored twice in its stream: relays claim disjoint batches (a claim is a
//!   conditional update), and when a relay dies after publishing but before marking, the event
//!   is re-published once its lease expires and JetStream's duplicate window drops it.
//! - Order: each relay publishes a batch in id (creation time) order; with several relays,
//!   events of different batches can interleave, so consumers must not rely on a global order.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use async_nats::jetstream::message::PublishMessage;
use bytes::Bytes;
use futures::future::join_all;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;
use uuid::Uuid;

pub mod mongo;
pub mod postgres;

/// An event claimed for publishing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingEvent {
    /// Event id, sent as `Nats-Msg-Id`.
    pub id: Uuid,
    /// NATS subject.
    pub subject: String,
    /// The envelope's JSON.
    pub payload: Bytes,
    /// Trace context of the span that emitted the event.
    pub traceparent: Option<String>,
}

/// Where pending events wait: the same contract for PostgreSQL and MongoDB.
pub trait OutboxStore: Send + Sync + 'static {
    /// Claims up to `limit` pending events whose lease is free, leasing them for `lease`;
    /// events come back in id order. Two concurrent claims never return the same event.
    fn claim(
        &self,
        limit: usize,
        lease: Duration,
    ) -> impl Future<Output = anyhow::Result<Vec<PendingEvent>>> + Send;

    /// Marks events published (JetStream acknowledged them).
    fn mark_published(&self, ids: &[Uuid]) -> impl Future<Output = anyhow::Result<()>> + Send;

    /// Records a failed publish; the events become claimable again after `retry_after`.
    fn release(
        &self,
        ids: &[Uuid],
        error: &str,
        retry_after: Duration,
    ) -> impl Future<Output = anyhow::Result<()>> + Send;

    /// How many events are still to be published: written and committed, not yet marked
    /// published (claimed, leased or waiting to be retried included). Zero means every event
    /// written so far is in its stream and no relay will publish it again.
    fn pending(&self) -> impl Future<Output = anyhow::Result<u64>> + Send;

    /// The id of the oldest event still to be published, if any. Event ids are UUIDv7, so the
    /// id tells when the event was written.
    fn oldest_pending(&self) -> impl Future<Output = anyhow::Result<Option<Uuid>>> + Send;

    /// Deletes events published more than `older_than` ago; returns how many.
    fn purge_published(
        &self,
        older_than: Duration,
    ) -> impl Future<Output = anyhow::Result<u64>> + Send;

    /// Resolves when new events may be pending (or after `timeout`). Stores without a
    /// notification mechanism just wait for the timeout.
    fn wait_for_events(&self, timeout: Duration) -> impl Future<Output = ()> + Send {
        tokio::time::sleep(timeout)
    }
}

/// Events written to the outbox and not yet published (a gauge).
pub const OUTBOX_PENDING: &str = "events_outbox_pending";
/// Seconds the oldest event not yet published has waited (a gauge; 0 when there is none).
pub const OUTBOX_OLDEST_AGE: &str = "events_outbox_oldest_age_seconds";
/// How often a running relay publishes [`OUTBOX_PENDING`] and [`OUTBOX_OLDEST_AGE`].
pub const BACKLOG_REPORT_INTERVAL: Duration = Duration::from_secs(10);

/// Seconds since a UUIDv7 was made (0 for another version, or one from the future).
fn age_seconds(id: Uuid) -> f64 {
    let Some(timestamp) = id.get_timestamp() else {
        return 0.0;
    };
    let (seconds, nanos) = timestamp.to_unix();
    let written = std::time::UNIX_EPOCH + Duration::new(seconds, nanos);
    std::time::SystemTime::now()
        .duration_since(written)
        .map_or(0.0, |age| age.as_secs_f64())
}

/// How a [`Relay`] paces itself.
#[derive(Clone, Debug)]
pub struct RelayConfig {
    /// Events claimed and published per round.
    pub batch_size: usize,
    /// How long a claim is held. A relay that dies holding one delays those events by this much.
    pub lease: Duration,
    /// How long to wait for new events when there are none (a notification cuts it short).
    pub poll_interval: Duration,
    /// How long a failed publish waits before it is retried.
    pub retry_after: Duration,
    /// How long published events are kept before they are purged.
    pub retention: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            batch_size: 100,
            lease: Duration::from_secs(30),
            poll_interval: Duration::from_millis(500),
            retry_after: Duration::from_secs(2),
            retention: Duration::from_secs(24 * 3600),
        }
    }
}

/// The outcome of publishing one event.
#[derive(Debug)]
pub enum PublishOutcome {
    /// Stored in the stream (`duplicate`: it already was, and JetStream dropped this copy).
    Acked {
        /// True when the duplicate window dropped this publish.
        duplicate: bool,
    },
    /// Not acknowledged; the event stays pending.
    Failed(String),
}

/// Publishes an outbox's pending events to JetStream. Run one or more per service.
pub struct Relay<S> {
    store: Arc<S>,
    jetstream: jetstream::Context,
    config: RelayConfig,
    wake: Arc<Notify>,
}

impl<S: OutboxStore> Relay<S> {
    /// A relay draining `store` into JetStream.
    pub fn new(store: S, jetstream: jetstream::Context, config: RelayConfig) -> Self {
        // Exported at zero from the start, so rates and alerts have a series before the first
        // failure.
        for counter in [
            "events_outbox_published_total",
            "events_outbox_publish_failures_total",
            "events_outbox_duplicates_total",
        ] {
            metrics::counter!(counter).increment(0);
        }
        Self {
            store: Arc::new(store),
            jetstream,
            config,
            wake: Arc::new(Notify::new()),
        }
    }

    /// The store this relay drains.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// A handle that makes the relay look for events now instead of at its next poll (for
    /// writers in the same process, after their transaction commits).
    pub fn waker(&self) -> Arc<Notify> {
        Arc::clone(&self.wake)
    }

    /// Publishes pending events until `stop` is cancelled; finishes the batch in hand first.
    pub async fn run(self, stop: CancellationToken) {
        let mut last_purge = tokio::time::Instant::now();
        self.report_backlog().await;
        let mut last_report = tokio::time::Instant::now();
        let mut failures: u32 = 0;
        while !stop.is_cancelled() {
            match self.run_once().await {
                Ok(published) => {
                    failures = 0;
                    if published < self.config.batch_size {
                        tokio::select! {
                            () = stop.cancelled() => break,
                            () = self.wake.notified() => {}
                            () = self.store.wait_for_events(self.config.poll_interval) => {}
                        }
                    }
                }
                Err(error) => {
                    failures = failures.saturating_add(1);
                    let pause = backoff(self.config.poll_interval, failures);
                    tracing::warn!(error = format!("{error:#}"), retry_in = ?pause, "outbox relay round failed");
                    tokio::select! {
                        () = stop.cancelled() => break,
                        () = tokio::time::sleep(pause) => {}
                    }
                }
            }
            if last_report.elapsed() >= BACKLOG_REPORT_INTERVAL {
                last_report = tokio::time::Instant::now();
                self.report_backlog().await;
            }
            if last_purge.elapsed() >= Duration::from_secs(60) {
                last_purge = tokio::time::Instant::now();
                match self.store.purge_published(self.config.retention).await {
                    Ok(0) => {}
                    Ok(purged) => tracing::debug!(purged, "purged published outbox events"),
                    Err(error) => {
                        tracing::warn!(error = format!("{error:#}"), "purging the outbox failed");
                    }
                }
            }
        }
        tracing::debug!("outbox relay stopped");
    }

    /// Publishes the backlog: `events_outbox_pending` (events written and not yet published)
    /// and `events_outbox_oldest_age_seconds` (how long the oldest of them has waited; 0 when
    /// there is none). Every relay over the same outbox reports the same figures.
    pub async fn report_backlog(&self) {
        match tokio::try_join!(self.store.pending(), self.store.oldest_pending()) {
            Ok((pending, oldest)) => {
                #[allow(clippy::cast_precision_loss)] // counts far below 2^52
                metrics::gauge!(OUTBOX_PENDING).set(pending as f64);
                metrics::gauge!(OUTBOX_OLDEST_AGE).set(oldest.map_or(0.0, age_seconds));
            }
            Err(error) => {
                tracing::warn!(
                    error = format!("{error:#}"),
                    "reading the outbox backlog failed"
                );
            }
        }
    }

    /// One round: claim a batch, publish it, record the outcome. Returns how many events were
    /// published (acknowledged by JetStream).
    pub async fn run_once(&self) -> anyhow::Result<usize> {
        let events = self
            .store
            .claim(self.config.batch_size, self.config.lease)
            .await?;
        if events.is_empty() {
            return Ok(0);
        }
        let span = tracing::debug_span!("outbox.relay", events = events.len());
        async {
            let outcomes = self.publish(&events).await;
            let mut published = Vec::with_capacity(events.len());
            let mut failed = Vec::new();
            let mut first_error = None;
            for (event, outcome) in events.iter().zip(outcomes) {
                match outcome {
                    PublishOutcome::Acked { duplicate } => {
                        if duplicate {
                            metrics::counter!("events_outbox_duplicates_total").increment(1);
                        }
                        published.push(event.id);
                    }
                    PublishOutcome::Failed(error) => {
                        failed.push(event.id);
                        first_error.get_or_insert(error);
                    }
                }
            }
            self.store.mark_published(&published).await?;
            metrics::counter!("events_outbox_published_total").increment(published.len() as u64);
            if let Some(error) = first_error {
                metrics::counter!("events_outbox_publish_failures_total")
                    .increment(failed.len() as u64);
                tracing::warn!(failed = failed.len(), %error, "publishing outbox events failed; they will be retried");
                self.store
                    .release(&failed, &error, self.config.retry_after)
                    .await?;
            }
            Ok(published.len())
        }
        .instrument(span)
        .await
    }

    /// Publishes events in order and waits for JetStream's acknowledgements. Does not touch
    /// the store: [`Relay::run_once`] records the outcomes.
    pub async fn publish(&self, events: &[PendingEvent]) -> Vec<PublishOutcome> {
        let mut acks = Vec::with_capacity(events.len());
        for event in events {
            let mut message = PublishMessage::build()
                .payload(event.payload.clone())
                .message_id(event.id.to_string())
                .header("Content-Type", "application/json");
            if let Some(traceparent) = &event.traceparent {
                message = message.header(
                    platform_telemetry::propagation::TRACEPARENT,
                    traceparent.as_str(),
                );
            }
            acks.push(
                self.jetstream
                    .send_publish(event.subject.clone(), message)
                    .await,
            );
        }
        join_all(acks.into_iter().map(|sent| async move {
            match sent {
                Ok(ack) => match ack.await {
                    Ok(ack) => PublishOutcome::Acked {
                        duplicate: ack.duplicate,
                    },
                    Err(error) => PublishOutcome::Failed(format!("no acknowledgement: {error}")),
                },
                Err(error) => PublishOutcome::Failed(format!("not sent: {error}")),
            }
        }))
        .await
    }
}

/// What a service runs in the background for its outbox: provisions the platform's streams
/// (retrying while NATS is away), then relays the outbox until `stop` is cancelled.
pub async fn provision_and_relay<S: OutboxStore>(
    store: S,
    nats: async_nats::Client,
    namespace: crate::Namespace,
    config: RelayConfig,
    stop: CancellationToken,
) {
    let jetstream = jetstream::new(nats);
    if crate::streams::provision_until_ready(&jetstream, &namespace, &stop).await {
        Relay::new(store, jetstream, config).run(stop).await;
    }
}

/// Exponential back-off from `base`, doubling per failure, capped at 30 s.
pub(crate) fn backoff(base: Duration, failures: u32) -> Duration {
    let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(16));
    base.saturating_mul(factor).min(Duration::from_secs(30))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_doubles_and_is_capped() {
        let base = Duration::from_millis(500);
        assert_eq!(backoff(base, 1), base);
        assert_eq!(backoff(base, 2), Duration::from_secs(1));
        assert_eq!(backoff(base, 3), Duration::from_secs(2));
        assert_eq!(backoff(base, 40), Duration::from_secs(30));
    }
}
