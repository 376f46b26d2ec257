//! Idempotent JetStream consumers with bounded retries and dead-lettering.
//!
//! A [`Consumer`] pulls from a durable JetStream consumer with explicit acks. For each message
//! it opens a transaction in the service's own store, records the event id in the inbox, runs
//! the handler with that transaction, commits, and only then acks:
//! - processed once: the inbox row and the handler's effects commit together, so a redelivered
//!   event finds its id already there and is acked without running the handler again;
//! - transient failure: the transaction rolls back and the message is nak'ed with a growing
//!   delay, up to `max_attempts` deliveries;
//! - permanent failure (malformed event, a handler that says so) or attempts exhausted: the
//!   message is copied to the dead-letter subject `dlq.<consumer>.<event type>` (its own
//!   stream, with the error and delivery details in headers) and, once that copy is stored,
//!   acked; nothing is dropped, and the stream moves on;
//! - graceful stop: no new messages are taken; the messages in hand finish.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use async_nats::HeaderMap;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{self, AckKind, consumer::pull};
use futures::StreamExt as _;
use futures::stream::FuturesUnordered;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;
use uuid::Uuid;

use crate::dead_letters::{DeadLetter, Replay, ReplayError, Replayed};
use crate::envelope::{DecodeError, Envelope, Event, RawEnvelope};
use crate::streams::Namespace;

pub mod mongo;
pub mod postgres;

/// Header names on dead letters.
pub mod dead_letter_headers {
    /// The consumer that gave up.
    pub const CONSUMER: &str = "Dlq-Consumer";
    /// Why (the last error, one line).
    pub const ERROR: &str = "Dlq-Error";
    /// The subject the message was published on.
    pub const ORIGINAL_SUBJECT: &str = "Dlq-Original-Subject";
    /// The stream it came from.
    pub const STREAM: &str = "Dlq-Stream";
    /// Its sequence in that stream.
    pub const STREAM_SEQUENCE: &str = "Dlq-Stream-Sequence";
    /// How many times it was delivered.
    pub const DELIVERIES: &str = "Dlq-Deliveries";
}

/// A store that can record processed event ids in the same transaction as a handler's effects.
pub trait Inbox: Send + Sync + 'static {
    /// The transaction handlers write their effects in.
    type Tx: Send;

    /// Starts a transaction.
    fn begin(&self) -> impl Future<Output = anyhow::Result<Self::Tx>> + Send;

    /// Records in `tx` that `consumer` processed `event_id`; `false` if it already had.
    fn record(
        &self,
        tx: &mut Self::Tx,
        consumer: &str,
        event_id: Uuid,
    ) -> impl Future<Output = anyhow::Result<bool>> + Send;

    /// Commits `tx`.
    fn commit(&self, tx: Self::Tx) -> impl Future<Output = anyhow::Result<()>> + Send;

    /// Rolls `tx` back, releasing at once whatever it holds (a redelivery of the same event
    /// must not wait for an abandoned transaction to time out).
    fn abort(&self, tx: Self::Tx) -> impl Future<Output = ()> + Send;

    /// Forgets ids `consumer` processed more than `older_than` ago (after the stream itself has
    /// dropped those events, they cannot be redelivered).
    fn purge(
        &self,
        consumer: &str,
        older_than: Duration,
    ) -> impl Future<Output = anyhow::Result<u64>> + Send;
}

/// Why a handler did not process an event.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Worth retrying: a dependency was down, a deadlock, a timeout.
    #[error("transient: {0:#}")]
    Transient(anyhow::Error),
    /// Retrying cannot help: the event is invalid for this handler. It is dead-lettered at once.
    #[error("permanent: {0:#}")]
    Permanent(anyhow::Error),
}

impl From<DecodeError> for HandlerError {
    fn from(error: DecodeError) -> Self {
        Self::Permanent(error.into())
    }
}

/// A message as the handler sees it.
#[derive(Clone, Debug)]
pub struct ReceivedEvent {
    /// The envelope, payload not yet interpreted.
    pub envelope: RawEnvelope,
    /// The subject it arrived on.
    pub subject: String,
    /// How many times it has been delivered, this time included.
    pub delivered: i64,
    /// Its sequence in the stream.
    pub stream_sequence: u64,
}

impl ReceivedEvent {
    /// The payload as event type `T` (a mismatch is a permanent error).
    pub fn decode<T: Event>(&self) -> Result<Envelope<T>, HandlerError> {
        Ok(self.envelope.decode()?)
    }
}

/// What a consumer does with each event, in the inbox's transaction.
pub trait EventHandler<I: Inbox>: Send + Sync + 'static {
    /// Applies `event`; its writes go through `tx` so they commit with the inbox record.
    fn handle(
        &self,
        event: &ReceivedEvent,
        tx: &mut I::Tx,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send;
}

/// One handler behind several consumers (one per stream a service reads).
impl<I: Inbox, H: EventHandler<I>> EventHandler<I> for std::sync::Arc<H> {
    fn handle(
        &self,
        event: &ReceivedEvent,
        tx: &mut I::Tx,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send {
        H::handle(self, event, tx)
    }
}

/// A consumer's settings.
#[derive(Clone, Debug)]
pub struct ConsumerConfig {
    /// Durable consumer name: also the inbox key and part of the dead-letter subject. Replicas
    /// of a service share it, and so share the work.
    pub name: String,
    /// The stream to read (e.g. `ORDERS`, namespaced).
    pub stream: String,
    /// Subjects to receive (namespaced), e.g. `orders.confirmed`; empty means all.
    pub filter_subjects: Vec<String>,
    /// Deliveries before a failing message is dead-lettered.
    pub max_attempts: i64,
    /// Delay before redelivery after the n-th failure (the last one repeats).
    pub backoff: Vec<Duration>,
    /// How long a delivered message may go unacknowledged before JetStream redelivers it:
    /// longer than the slowest handler.
    pub ack_wait: Duration,
    /// Messages processed at once.
    pub concurrency: usize,
    /// How long processed ids are remembered: at least the stream's `max_age`.
    pub inbox_retention: Duration,
}

impl ConsumerConfig {
    /// Defaults for a consumer `name` of `stream`: 5 attempts, back-off 1 s, 5 s, 30 s, 2 min,
    /// 30 s ack wait, one message at a time.
    pub fn new(name: &str, stream: &str, filter_subjects: Vec<String>) -> Self {
        Self {
            name: name.to_owned(),
            stream: stream.to_owned(),
            filter_subjects,
            max_attempts: 5,
            backoff: vec![
                Duration::from_secs(1),
                Duration::from_secs(5),
                Duration::from_secs(30),
                Duration::from_secs(120),
            ],
            ack_wait: Duration::from_secs(30),
            concurrency: 1,
            inbox_retention: crate::streams::DEFAULT_MAX_AGE + Duration::from_secs(24 * 3600),
        }
    }

    fn delay_after(&self, delivered: i64) -> Duration {
        let index = usize::try_from(delivered.saturating_sub(1)).unwrap_or(0);
        self.backoff
            .get(index)
            .or(self.backoff.last())
            .copied()
            .unwrap_or(Duration::from_secs(1))
    }
}

/// What happened to one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Processed,
    Duplicate,
    Retried,
    DeadLettered,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Self::Processed => "processed",
            Self::Duplicate => "duplicate",
            Self::Retried => "retried",
            Self::DeadLettered => "dead_lettered",
        }
    }
}

/// Deliveries after the first, per consumer (a counter): an earlier delivery was not
/// acknowledged in time, or was handed back to be retried.
pub const REDELIVERIES: &str = "events_redeliveries_total";

/// Seconds from an event's time to the start of its first handling, per consumer (a
/// histogram): how far behind the changes a consumer is.
pub const CONSUME_LAG: &str = "events_consume_lag_seconds";

/// How long one pull request waits on the server for messages: an idle consumer asks again
/// this often, and one whose connection broke asks again within this plus five seconds.
const PULL_WAIT: Duration = Duration::from_secs(5);

/// An idempotent consumer: see the module documentation.
pub struct Consumer<I, H> {
    inner: Arc<Inner<I, H>>,
}

struct Inner<I, H> {
    jetstream: jetstream::Context,
    namespace: Namespace,
    config: ConsumerConfig,
    inbox: I,
    handler: H,
}

impl<I: Inbox, H: EventHandler<I>> Consumer<I, H> {
    /// A consumer that records processed events in `inbox` and applies them with `handler`.
    pub fn new(
        jetstream: jetstream::Context,
        namespace: Namespace,
        config: ConsumerConfig,
        inbox: I,
        handler: H,
    ) -> Self {
        // At zero from the start: a rate of redeliveries needs a series before the first one.
        metrics::counter!(REDELIVERIES, "consumer" => config.name.clone()).increment(0);
        Self {
            inner: Arc::new(Inner {
                jetstream,
                namespace,
                config,
                inbox,
                handler,
            }),
        }
    }

    /// The consumer's name (its durable name, inbox key and dead-letter subject token).
    pub fn name(&self) -> &str {
        &self.inner.config.name
    }

    /// What replays this consumer's dead letters: the event goes through the same inbox and
    /// handler, so an event processed meanwhile is only reported as
    /// [`Replayed::AlreadyDone`].
    pub fn replayer(&self) -> Arc<dyn Replay> {
        Arc::clone(&self.inner) as Arc<dyn Replay>
    }

    /// Creates the durable consumer on the stream, or updates it to this configuration.
    pub async fn provision(&self) -> anyhow::Result<jetstream::consumer::Consumer<pull::Config>> {
        let config = &self.inner.config;
        let stream = self
            .inner
            .jetstream
            .get_stream(&config.stream)
            .await
            .with_context(|| format!("stream {} (provision streams first)", config.stream))?;
        let consumer_config = pull::Config {
            durable_name: Some(config.name.clone()),
            filter_subjects: config.filter_subjects.clone(),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            ack_wait: config.ack_wait,
            // Unlimited: this consumer decides when to give up, and dead-letters the message
            // then; a server-side limit would silently stop redelivering instead.
            max_deliver: -1,
            max_ack_pending: i64::try_from(config.concurrency.max(1) * 4).unwrap_or(1000),
            ..pull::Config::default()
        };
        stream
            .create_consumer(consumer_config)
            .await
            .with_context(|| format!("creating consumer {} on {}", config.name, config.stream))
    }

    /// Consumes until `stop` is cancelled, then returns once the messages in hand are done.
    /// Waits (with back-off) for its stream to exist. Processes up to `concurrency` messages at
    /// once, pulling with one short request at a time for as many as there are free slots: each
    /// request ends on its own, so a lost request or answer costs at most one `PULL_WAIT`,
    /// never a stalled consumer.
    pub async fn run(self, stop: CancellationToken) -> anyhow::Result<()> {
        let config = &self.inner.config;
        let mut failures = 0_u32;
        let consumer = loop {
            match self.provision().await {
                Ok(consumer) => break consumer,
                Err(error) => {
                    failures = failures.saturating_add(1);
                    let pause = crate::outbox::backoff(Duration::from_millis(500), failures);
                    tracing::warn!(consumer = %config.name, error = format!("{error:#}"), retry_in = ?pause, "cannot create the consumer yet");
                    tokio::select! {
                        () = stop.cancelled() => return Ok(()),
                        () = tokio::time::sleep(pause) => {}
                    }
                }
            }
        };
        failures = 0;
        let concurrency = config.concurrency.max(1);
        let inner = &self.inner;
        let mut in_flight = FuturesUnordered::new();
        let mut last_purge: Option<tokio::time::Instant> = None;
        'pulling: while !stop.is_cancelled() {
            if last_purge.is_none_or(|at| at.elapsed() >= Duration::from_secs(3600)) {
                // The messages in hand finish first: paused while holding a connection, with
                // the purge waiting for one, they could starve the pool.
                while in_flight.next().await.is_some() {}
                last_purge = Some(tokio::time::Instant::now());
                if let Err(error) = inner
                    .inbox
                    .purge(&config.name, config.inbox_retention)
                    .await
                {
                    tracing::warn!(consumer = %config.name, error = format!("{error:#}"), "purging the inbox failed");
                }
            }
            if in_flight.len() >= concurrency {
                in_flight.next().await;
                continue;
            }
            // One pull request for as many messages as there are free slots. It ends when they
            // have all come or after PULL_WAIT; a slot freed meanwhile is filled by the next one.
            let request = consumer
                .batch()
                .max_messages(concurrency - in_flight.len())
                .expires(PULL_WAIT)
                .messages();
            tokio::pin!(request);
            // The messages in hand go on meanwhile (NATS may be slow to answer, or away).
            let batch = loop {
                tokio::select! {
                    () = stop.cancelled() => break 'pulling,
                    batch = &mut request => break batch,
                    Some(()) = in_flight.next(), if !in_flight.is_empty() => {}
                }
            };
            let mut batch = match batch {
                Ok(batch) => {
                    failures = 0;
                    batch
                }
                Err(error) => {
                    failures = failures.saturating_add(1);
                    let pause = crate::outbox::backoff(Duration::from_millis(500), failures);
                    tracing::warn!(consumer = %config.name, %error, retry_in = ?pause, "cannot pull messages");
                    let paused = tokio::time::sleep(pause);
                    tokio::pin!(paused);
                    loop {
                        tokio::select! {
                            () = stop.cancelled() => break 'pulling,
                            () = &mut paused => continue 'pulling,
                            Some(()) = in_flight.next(), if !in_flight.is_empty() => {}
                        }
                    }
                }
            };
            loop {
                tokio::select! {
                    () = stop.cancelled() => break 'pulling,
                    Some(()) = in_flight.next(), if !in_flight.is_empty() => {}
                    message = batch.next() => match message {
                        Some(Ok(message)) => in_flight.push(inner.process(message)),
                        Some(Err(error)) => {
                            tracing::warn!(consumer = %config.name, %error, "pull request ended with an error");
                            break;
                        }
                        None => break,
                    },
                }
            }
        }
        // No new messages are taken; the ones in hand finish.
        while in_flight.next().await.is_some() {}
        tracing::debug!(consumer = %config.name, "consumer stopped");
        Ok(())
    }
}

impl<I: Inbox, H: EventHandler<I>> Inner<I, H> {
    async fn process(&self, message: jetstream::Message) {
        let (delivered, stream_sequence) = match message.info() {
            Ok(info) => (info.delivered, info.stream_sequence),
            Err(error) => {
                tracing::warn!(%error, "a message without JetStream metadata; skipping it");
                return;
            }
        };
        let subject = message.subject.to_string();
        let span = tracing::info_span!(
            "event.consume",
            otel.name = %format!("process {}", self.namespace.event_type(&subject)),
            otel.kind = "consumer",
            messaging.system = "nats",
            messaging.operation.type = "process",
            messaging.operation.name = "process",
            messaging.destination.name = %subject,
            messaging.consumer.group.name = %self.config.name,
            messaging.message.id = tracing::field::Empty,
            delivered,
            outcome = tracing::field::Empty,
        );
        let traceparent = message
            .headers
            .as_ref()
            .and_then(|headers| headers.get(platform_telemetry::propagation::TRACEPARENT))
            .map(|value| value.as_str().to_owned());
        if let Some(traceparent) = &traceparent {
            platform_telemetry::propagation::set_parent_from_traceparent(&span, traceparent);
        }
        if delivered > 1 {
            metrics::counter!(REDELIVERIES, "consumer" => self.config.name.clone()).increment(1);
        }
        let started = std::time::Instant::now();
        let outcome = self
            .handle(&message, &subject, delivered, stream_sequence)
            .instrument(span.clone())
            .await;
        span.record("outcome", outcome.label());
        metrics::counter!(
            "events_consumed_total",
            "consumer" => self.config.name.clone(),
            "outcome" => outcome.label()
        )
        .increment(1);
        metrics::histogram!("events_handle_duration_seconds", "consumer" => self.config.name.clone())
            .record(started.elapsed().as_secs_f64());
    }

    async fn handle(
        &self,
        message: &jetstream::Message,
        subject: &str,
        delivered: i64,
        stream_sequence: u64,
    ) -> Outcome {
        let envelope = match RawEnvelope::from_slice(&message.payload) {
            Ok(envelope) => envelope,
            Err(error) => {
                return self
                    .dead_letter(
                        message,
                        subject,
                        delivered,
                        stream_sequence,
                        &error.to_string(),
                    )
                    .await;
            }
        };
        tracing::Span::current()
            .record("messaging.message.id", tracing::field::display(envelope.id));
        if delivered == 1 {
            // From the change (the event is written in its transaction) to its first handling.
            let lag = (chrono::Utc::now() - envelope.time)
                .to_std()
                .unwrap_or_default();
            metrics::histogram!(CONSUME_LAG, "consumer" => self.config.name.clone())
                .record(lag.as_secs_f64());
        }
        let event = ReceivedEvent {
            envelope,
            subject: subject.to_owned(),
            delivered,
            stream_sequence,
        };
        match self.apply(&event).await {
            Ok(true) => {
                ack(message).await;
                Outcome::Processed
            }
            Ok(false) => {
                tracing::debug!(event.id = %event.envelope.id, "already processed; acking the redelivery");
                ack(message).await;
                Outcome::Duplicate
            }
            Err(HandlerError::Permanent(error)) => {
                tracing::error!(
                    error = format!("{error:#}"),
                    "event cannot be processed; dead-lettering it"
                );
                self.dead_letter(
                    message,
                    subject,
                    delivered,
                    stream_sequence,
                    &format!("{error:#}"),
                )
                .await
            }
            Err(HandlerError::Transient(error)) if delivered >= self.config.max_attempts => {
                tracing::error!(
                    error = format!("{error:#}"),
                    attempts = delivered,
                    "event still failing after its last attempt; dead-lettering it"
                );
                let reason = format!("failed {delivered} times; last error: {error:#}");
                self.dead_letter(message, subject, delivered, stream_sequence, &reason)
                    .await
            }
            Err(HandlerError::Transient(error)) => {
                let delay = self.config.delay_after(delivered);
                tracing::warn!(error = format!("{error:#}"), attempt = delivered, retry_in = ?delay, "event failed; it will be redelivered");
                nak(message, delay).await;
                Outcome::Retried
            }
        }
    }

    /// Inbox record + handler + commit. `Ok(false)`: already processed.
    async fn apply(&self, event: &ReceivedEvent) -> Result<bool, HandlerError> {
        let mut tx = self.inbox.begin().await.map_err(HandlerError::Transient)?;
        let applied = match self
            .inbox
            .record(&mut tx, &self.config.name, event.envelope.id)
            .await
        {
            Ok(true) => self.handler.handle(event, &mut tx).await.map(|()| true),
            Ok(false) => Ok(false),
            Err(error) => Err(HandlerError::Transient(error)),
        };
        match applied {
            Ok(true) => {
                self.inbox
                    .commit(tx)
                    .await
                    .map_err(HandlerError::Transient)?;
                Ok(true)
            }
            other => {
                self.inbox.abort(tx).await;
                other
            }
        }
    }

    /// Stores a copy on the dead-letter subject, then acks the original. If the copy cannot be
    /// stored, the original is nak'ed instead, so it is never lost.
    async fn dead_letter(
        &self,
        message: &jetstream::Message,
        subject: &str,
        delivered: i64,
        stream_sequence: u64,
        error: &str,
    ) -> Outcome {
        let event_type = self.namespace.event_type(subject);
        let dead_letter_subject = self
            .namespace
            .dead_letter_subject(&self.config.name, event_type);
        let mut headers = HeaderMap::new();
        if let Some(original) = &message.headers {
            for (name, values) in original.iter() {
                // The copy gets its own id below; the original's would make the DLQ stream
                // drop it as a duplicate of nothing.
                if name
                    .to_string()
                    .eq_ignore_ascii_case(async_nats::header::NATS_MESSAGE_ID.as_ref())
                {
                    continue;
                }
                for value in values {
                    headers.append(name.clone(), value.clone());
                }
            }
        }
        headers.insert(dead_letter_headers::CONSUMER, self.config.name.as_str());
        headers.insert(dead_letter_headers::ERROR, one_line(error).as_str());
        headers.insert(dead_letter_headers::ORIGINAL_SUBJECT, subject);
        headers.insert(dead_letter_headers::STREAM, self.config.stream.as_str());
        headers.insert(
            dead_letter_headers::STREAM_SEQUENCE,
            stream_sequence.to_string().as_str(),
        );
        headers.insert(
            dead_letter_headers::DELIVERIES,
            delivered.to_string().as_str(),
        );
        // One dead letter per original message, even if this runs twice.
        let id = format!(
            "{}:{}:{stream_sequence}",
            self.config.name, self.config.stream
        );
        let publish = PublishMessage::build()
            .payload(message.payload.clone())
            .headers(headers)
            .message_id(id);
        let stored = async {
            self.jetstream
                .send_publish(dead_letter_subject.clone(), publish)
                .await?
                .await
                .map_err(anyhow::Error::from)
        }
        .await;
        match stored {
            Ok(_) => {
                ack(message).await;
                tracing::warn!(%dead_letter_subject, reason = %error, "event dead-lettered");
                Outcome::DeadLettered
            }
            Err(publish_error) => {
                let delay = self.config.delay_after(delivered);
                tracing::error!(error = %publish_error, retry_in = ?delay, "dead-lettering failed; the event will be redelivered");
                nak(message, delay).await;
                Outcome::Retried
            }
        }
    }
}

#[async_trait::async_trait]
impl<I: Inbox, H: EventHandler<I>> Replay for Inner<I, H> {
    async fn replay(&self, letter: &DeadLetter) -> Result<Replayed, ReplayError> {
        let envelope = RawEnvelope::from_slice(&letter.payload).map_err(|error| {
            ReplayError::Refused(format!("the dead letter does not hold an event: {error}"))
        })?;
        let event = ReceivedEvent {
            envelope,
            subject: letter
                .original_subject
                .clone()
                .unwrap_or_else(|| self.namespace.subject(&letter.event_type)),
            delivered: letter.deliveries.unwrap_or(0).saturating_add(1),
            stream_sequence: letter.original_sequence.unwrap_or(0),
        };
        let outcome = match self.apply(&event).await {
            Ok(true) => Ok(Replayed::Processed),
            Ok(false) => Ok(Replayed::AlreadyDone),
            Err(HandlerError::Permanent(error)) => Err(ReplayError::Refused(format!("{error:#}"))),
            Err(HandlerError::Transient(error)) => Err(ReplayError::Unavailable(error)),
        };
        let label = match &outcome {
            Ok(Replayed::Processed) => "processed",
            Ok(Replayed::AlreadyDone) => "duplicate",
            Err(_) => "replay_failed",
        };
        metrics::counter!(
            "events_replayed_total",
            "consumer" => self.config.name.clone(),
            "outcome" => label
        )
        .increment(1);
        outcome
    }
}

async fn ack(message: &jetstream::Message) {
    // A lost ack only means a redelivery, which the inbox absorbs.
    if let Err(error) = message.ack().await {
        tracing::warn!(%error, "ack failed; the event will be redelivered and found in the inbox");
    }
}

async fn nak(message: &jetstream::Message, delay: Duration) {
    if let Err(error) = message.ack_with(AckKind::Nak(Some(delay))).await {
        tracing::warn!(%error, "nak failed; the event will be redelivered after the ack wait");
    }
}

/// A header-safe, bounded, single-line version of an error message: what the
/// [`dead_letter_headers::ERROR`] header of every dead letter holds.
pub fn one_line(text: &str) -> String {
    let line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(1024)
        .collect();
    line.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_back_off_follows_the_configured_steps_and_repeats_the_last() {
        let config = ConsumerConfig::new("c", "S", Vec::new());
        assert_eq!(config.delay_after(1), Duration::from_secs(1));
        assert_eq!(config.delay_after(2), Duration::from_secs(5));
        assert_eq!(config.delay_after(4), Duration::from_secs(120));
        assert_eq!(config.delay_after(9), Duration::from_secs(120));
    }

    #[test]
    fn dead_letter_errors_become_one_bounded_header_line() {
        assert_eq!(one_line("a\r\nb\tc "), "a  b c");
        assert_eq!(one_line(&"x".repeat(5000)).len(), 1024);
    }
}
