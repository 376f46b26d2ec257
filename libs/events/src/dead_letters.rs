//! Dead letters an operator can act on: list, read, replay, discard, count.
//!
//! A dead letter is a message on `dlq.<consumer>.<event type>` in the `DEAD_LETTERS` stream,
//! with the headers of [`crate::consumer::dead_letter_headers`]; it is known by its sequence in
//! that stream. [`DeadLetters`] reads them straight from the stream (no consumer is created):
//! listing walks the stream with "next message for subject" requests from a sequence on.
//!
//! Replaying hands a letter back to the code that gave up on it: each consumer name has a
//! [`Replay`] (an intake consumer's is [`crate::Consumer::replayer`], which runs the event
//! through the same inbox and handler, so an event already processed is not processed again).
//! Once a replay succeeds the letter is deleted from the stream, so it cannot be replayed twice
//! by accident; a concurrent second replay finds the work done ([`Replayed::AlreadyDone`]) or
//! the letter gone.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream::{self, stream::RawMessageErrorKind};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::TryStreamExt as _;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::consumer::dead_letter_headers;
use crate::streams::{DEAD_LETTER_ROOT, Namespace};

/// The gauge of dead letters waiting, by `consumer` and original `stream` (e.g. `USERS`).
pub const DEAD_LETTERS_GAUGE: &str = "events_dead_letters";

/// The most messages one listing reads from the stream (a page may end early, with
/// `next_after` set, when filters skip many letters).
pub const MAX_SCAN: usize = 2_000;

/// One dead letter.
#[derive(Clone, Debug)]
pub struct DeadLetter {
    /// Its sequence in the dead-letter stream: its id.
    pub sequence: u64,
    /// The consumer that gave up on it.
    pub consumer: String,
    /// The event type (`orders.confirmed`).
    pub event_type: String,
    /// The stream of its domain, without namespace (`ORDERS`).
    pub stream: String,
    /// Why it was given up.
    pub error: String,
    /// The subject the event was published on.
    pub original_subject: Option<String>,
    /// Its sequence in its own stream, when a consumer dead-lettered it.
    pub original_sequence: Option<u64>,
    /// How many times it was delivered (or, for a delivery, attempted).
    pub deliveries: Option<i64>,
    /// When it was dead-lettered.
    pub time: DateTime<Utc>,
    /// Every header, first value of each.
    pub headers: BTreeMap<String, String>,
    /// The original message's payload (for events, the envelope).
    pub payload: Bytes,
}

impl DeadLetter {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    fn from_message(namespace: &Namespace, message: &jetstream::message::StreamMessage) -> Self {
        let subject = namespace.event_type(message.subject.as_str());
        let rest = subject
            .strip_prefix(DEAD_LETTER_ROOT)
            .and_then(|rest| rest.strip_prefix('.'))
            .unwrap_or(subject);
        let (subject_consumer, event_type) = rest.split_once('.').unwrap_or((rest, ""));
        let headers: BTreeMap<String, String> = message
            .headers
            .iter()
            .filter_map(|(name, values)| {
                values
                    .first()
                    .map(|value| (name.to_string(), value.as_str().to_owned()))
            })
            .collect();
        let get = |name: &str| headers.get(name).cloned();
        let time = DateTime::<Utc>::from_timestamp_nanos(
            i64::try_from(message.time.unix_timestamp_nanos()).unwrap_or_default(),
        );
        Self {
            sequence: message.sequence,
            consumer: get(dead_letter_headers::CONSUMER)
                .unwrap_or_else(|| subject_consumer.to_owned()),
            event_type: event_type.to_owned(),
            stream: stream_of(event_type),
            error: get(dead_letter_headers::ERROR).unwrap_or_default(),
            original_subject: get(dead_letter_headers::ORIGINAL_SUBJECT),
            original_sequence: get(dead_letter_headers::STREAM_SEQUENCE)
                .and_then(|value| value.parse().ok()),
            deliveries: get(dead_letter_headers::DELIVERIES).and_then(|value| value.parse().ok()),
            time,
            headers,
            payload: message.payload.clone(),
        }
    }
}

/// The stream an event type's domain is kept in, without namespace: `orders.confirmed` ->
/// `ORDERS`.
pub fn stream_of(event_type: &str) -> String {
    event_type
        .split('.')
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase()
}

/// Which dead letters to list.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Only this consumer's.
    pub consumer: Option<String>,
    /// Only events of this domain stream (`ORDERS`, any case).
    pub stream: Option<String>,
    /// Only those whose error contains this, ignoring case.
    pub reason: Option<String>,
    /// Only those after this dead-letter sequence (the previous page's `next_after`).
    pub after: u64,
    /// At most this many (at least 1).
    pub limit: usize,
}

/// A page of dead letters.
#[derive(Clone, Debug)]
pub struct Page {
    /// Oldest first.
    pub items: Vec<DeadLetter>,
    /// Pass as [`Filter::after`] for the next page; `None` when the stream has no more.
    pub next_after: Option<u64>,
}

/// What a replay did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Replayed {
    /// The work was done now.
    Processed,
    /// It had been done already (processed, or delivered, since it was dead-lettered);
    /// nothing was done again.
    AlreadyDone,
}

/// Why a replay did not succeed; the letter stays.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// It fails again for a reason retrying cannot fix (a malformed event, a notification that
    /// no longer exists).
    #[error("{0}")]
    Refused(String),
    /// It fails again for now (a dependency is down): try later.
    #[error("{0:#}")]
    Unavailable(anyhow::Error),
}

/// Replays the dead letters of one consumer.
#[async_trait::async_trait]
pub trait Replay: Send + Sync {
    /// Does again, idempotently, what `letter` records a failure of.
    async fn replay(&self, letter: &DeadLetter) -> Result<Replayed, ReplayError>;
}

/// Why an operation on dead letters failed.
#[derive(Debug, thiserror::Error)]
pub enum DeadLetterError {
    /// No dead letter with this sequence (of a consumer in scope).
    #[error("no dead letter {0}")]
    NotFound(u64),
    /// The letter's consumer has no replay here.
    #[error("dead letter {sequence} belongs to `{consumer}`, which cannot replay here")]
    NoReplay {
        /// The letter.
        sequence: u64,
        /// Its consumer.
        consumer: String,
    },
    /// The replay failed; the letter stays.
    #[error("replaying dead letter {sequence} failed: {source}")]
    Replay {
        /// The letter.
        sequence: u64,
        /// Why.
        source: ReplayError,
    },
    /// NATS (JetStream) could not be reached or answered with an error.
    #[error("the dead-letter stream is unavailable: {0:#}")]
    Unavailable(anyhow::Error),
}

/// The dead letters of a set of consumers (all of them if none has a replay registered).
#[derive(Clone)]
pub struct DeadLetters {
    jetstream: jetstream::Context,
    namespace: Namespace,
    replays: BTreeMap<String, Arc<dyn Replay>>,
}

impl std::fmt::Debug for DeadLetters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadLetters")
            .field("namespace", &self.namespace)
            .field("consumers", &self.replays.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl DeadLetters {
    /// The dead letters in `namespace`'s dead-letter stream.
    pub fn new(jetstream: jetstream::Context, namespace: Namespace) -> Self {
        Self {
            jetstream,
            namespace,
            replays: BTreeMap::new(),
        }
    }

    /// Registers how `consumer`'s letters are replayed; from then on only the letters of
    /// consumers with a replay are in scope (listed, counted, found).
    pub fn add_replay(&mut self, consumer: &str, replay: Arc<dyn Replay>) {
        self.replays.insert(consumer.to_owned(), replay);
    }

    /// The consumers with a replay.
    pub fn consumers(&self) -> impl Iterator<Item = &str> {
        self.replays.keys().map(String::as_str)
    }

    /// Whether `consumer`'s letters are in scope.
    pub fn owns(&self, consumer: &str) -> bool {
        self.replays.is_empty() || self.replays.contains_key(consumer)
    }

    async fn stream(&self) -> Result<jetstream::stream::Stream, DeadLetterError> {
        // Say so at once rather than after a request's timeout (an operator is waiting).
        let state = self.jetstream.client().connection_state();
        if state != async_nats::connection::State::Connected {
            return Err(DeadLetterError::Unavailable(anyhow::anyhow!(
                "not connected to NATS ({state})"
            )));
        }
        let name = self.namespace.dead_letter_stream();
        self.jetstream
            .get_stream(&name)
            .await
            .with_context(|| format!("stream {name}"))
            .map_err(DeadLetterError::Unavailable)
    }

    /// A page of letters, oldest first.
    pub async fn list(&self, filter: &Filter) -> Result<Page, DeadLetterError> {
        let stream = self.stream().await?;
        let subject = match &filter.consumer {
            Some(consumer) => self
                .namespace
                .subject(&format!("{DEAD_LETTER_ROOT}.{consumer}.>")),
            None => self.namespace.subject(&format!("{DEAD_LETTER_ROOT}.>")),
        };
        let reason = filter.reason.as_deref().map(str::to_lowercase);
        let limit = filter.limit.max(1);
        let mut items = Vec::new();
        let mut next = filter.after.saturating_add(1);
        for _ in 0..MAX_SCAN {
            let message = match stream
                .get_first_raw_message_by_subject(&subject, next)
                .await
            {
                Ok(message) => message,
                Err(error) if matches!(error.kind(), RawMessageErrorKind::NoMessageFound) => {
                    return Ok(Page {
                        items,
                        next_after: None,
                    });
                }
                Err(error) => {
                    return Err(DeadLetterError::Unavailable(
                        anyhow::Error::new(error).context("reading dead letters"),
                    ));
                }
            };
            next = message.sequence.saturating_add(1);
            let letter = DeadLetter::from_message(&self.namespace, &message);
            let wanted = self.owns(&letter.consumer)
                && filter
                    .stream
                    .as_ref()
                    .is_none_or(|stream| letter.stream.eq_ignore_ascii_case(stream))
                && reason
                    .as_ref()
                    .is_none_or(|reason| letter.error.to_lowercase().contains(reason));
            if wanted {
                items.push(letter);
                if items.len() == limit {
                    break;
                }
            }
        }
        // A full page: is there anything after it at all?
        let more = match stream
            .get_first_raw_message_by_subject(&subject, next)
            .await
        {
            Ok(_) => true,
            Err(error) if matches!(error.kind(), RawMessageErrorKind::NoMessageFound) => false,
            Err(error) => {
                return Err(DeadLetterError::Unavailable(
                    anyhow::Error::new(error).context("reading dead letters"),
                ));
            }
        };
        Ok(Page {
            items,
            next_after: more.then(|| next - 1),
        })
    }

    /// The letter with this sequence.
    pub async fn get(&self, sequence: u64) -> Result<DeadLetter, DeadLetterError> {
        let stream = self.stream().await?;
        let message = match stream.get_raw_message(sequence).await {
            Ok(message) => message,
            Err(error) if matches!(error.kind(), RawMessageErrorKind::NoMessageFound) => {
                return Err(DeadLetterError::NotFound(sequence));
            }
            // Sequence 0 and other impossible ones are answered with a JetStream error.
            Err(error) if matches!(error.kind(), RawMessageErrorKind::JetStream(_)) => {
                tracing::debug!(sequence, %error, "no such dead letter");
                return Err(DeadLetterError::NotFound(sequence));
            }
            Err(error) => {
                return Err(DeadLetterError::Unavailable(
                    anyhow::Error::new(error).context("reading a dead letter"),
                ));
            }
        };
        let letter = DeadLetter::from_message(&self.namespace, &message);
        if self.owns(&letter.consumer) {
            Ok(letter)
        } else {
            Err(DeadLetterError::NotFound(sequence))
        }
    }

    /// Deletes the letter with this sequence.
    pub async fn discard(&self, sequence: u64) -> Result<(), DeadLetterError> {
        self.get(sequence).await?;
        self.delete(sequence).await
    }

    async fn delete(&self, sequence: u64) -> Result<(), DeadLetterError> {
        let stream = self.stream().await?;
        match stream.delete_message(sequence).await {
            Ok(_) => Ok(()),
            // Deleted meanwhile (a concurrent discard or replay).
            Err(error)
                if matches!(
                    error.kind(),
                    async_nats::jetstream::stream::DeleteMessageErrorKind::JetStream(_)
                ) =>
            {
                Err(DeadLetterError::NotFound(sequence))
            }
            Err(error) => Err(DeadLetterError::Unavailable(
                anyhow::Error::new(error).context("deleting a dead letter"),
            )),
        }
    }

    /// Replays the letter with this sequence through its consumer's [`Replay`], then deletes
    /// it. A failed replay leaves it where it is.
    pub async fn replay(&self, sequence: u64) -> Result<Replayed, DeadLetterError> {
        let letter = self.get(sequence).await?;
        let replay =
            self.replays
                .get(&letter.consumer)
                .ok_or_else(|| DeadLetterError::NoReplay {
                    sequence,
                    consumer: letter.consumer.clone(),
                })?;
        let replayed = replay
            .replay(&letter)
            .await
            .map_err(|source| DeadLetterError::Replay { sequence, source })?;
        match self.delete(sequence).await {
            // A concurrent replay deleted it first: the work is still done once.
            Ok(()) | Err(DeadLetterError::NotFound(_)) => {}
            Err(error) => {
                tracing::warn!(sequence, %error, "replayed, but the dead letter could not be deleted; a second replay will do nothing");
            }
        }
        tracing::info!(sequence, consumer = %letter.consumer, event_type = %letter.event_type, outcome = ?replayed, "dead letter replayed");
        Ok(replayed)
    }

    /// How many letters wait, by consumer and stream (only those with letters).
    pub async fn counts(&self) -> Result<BTreeMap<(String, String), u64>, DeadLetterError> {
        let stream = self.stream().await?;
        let filter = self.namespace.subject(&format!("{DEAD_LETTER_ROOT}.>"));
        let subjects: Vec<(String, usize)> = stream
            .info_with_subjects(&filter)
            .await
            .context("reading the dead-letter subjects")
            .map_err(DeadLetterError::Unavailable)?
            .try_collect()
            .await
            .context("reading the dead-letter subjects")
            .map_err(DeadLetterError::Unavailable)?;
        let mut counts = BTreeMap::new();
        for (subject, count) in subjects {
            let rest = self.namespace.event_type(&subject);
            let rest = rest
                .strip_prefix(DEAD_LETTER_ROOT)
                .and_then(|rest| rest.strip_prefix('.'))
                .unwrap_or(rest);
            let (consumer, event_type) = rest.split_once('.').unwrap_or((rest, ""));
            if !self.owns(consumer) {
                continue;
            }
            *counts
                .entry((consumer.to_owned(), stream_of(event_type)))
                .or_insert(0) += u64::try_from(count).unwrap_or(u64::MAX);
        }
        Ok(counts)
    }

    /// Sets [`DEAD_LETTERS_GAUGE`] from the stream every `period` until `stop`. A series that
    /// had letters stays exported at 0 once they are gone, so an alert on it resolves.
    pub async fn export_counts(self, period: Duration, stop: CancellationToken) {
        let mut exported: BTreeSet<(String, String)> = BTreeSet::new();
        loop {
            match self.counts().await {
                Ok(counts) => {
                    for labels in &exported {
                        if !counts.contains_key(labels) {
                            gauge(labels).set(0.0);
                        }
                    }
                    for (labels, count) in counts {
                        #[allow(clippy::cast_precision_loss)]
                        gauge(&labels).set(count as f64);
                        exported.insert(labels);
                    }
                }
                Err(error) => {
                    tracing::debug!(%error, "cannot count dead letters now");
                }
            }
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(period) => {}
            }
        }
    }
}

fn gauge((consumer, stream): &(String, String)) -> metrics::Gauge {
    metrics::gauge!(DEAD_LETTERS_GAUGE, "consumer" => consumer.clone(), "stream" => stream.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_types_stream_is_its_domain_in_upper_case() {
        assert_eq!(stream_of("orders.confirmed"), "ORDERS");
        assert_eq!(stream_of("users.registered"), "USERS");
        assert_eq!(stream_of(""), "");
    }
}
