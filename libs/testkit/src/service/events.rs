//! What a service published, asserted without fixed sleeps.
//!
//! Waiting for what should arrive is easy: poll until it is there ([`wait_for`]). Proving that
//! nothing more will arrive is the hard part, and a sleep only guesses. [`settled`] proves it
//! from the system's state instead: the producer's transactional outbox has nothing left to
//! publish (every event written so far is in the stream and marked published, so no relay will
//! publish it again), and the stream did not grow while that was checked. Afterwards, "exactly
//! one event" is a fact:
//!
//! ```no_run
//! # async fn example(pool: sqlx::PgPool, namespace: platform_events::Namespace,
//! #     jetstream: async_nats::jetstream::Context) -> anyhow::Result<()> {
//! use platform_events::outbox::postgres::PgOutbox;
//! use platform_testkit::service::events;
//!
//! let stream = namespace.domain_stream("users");
//! events::wait_for(&jetstream, &stream, "users.registered", 1).await?;
//! let outbox = PgOutbox::new(pool, namespace);
//! let stored = events::settled(&outbox, &jetstream, &stream).await?;
//! assert_eq!(stored.len(), 1);
//! # Ok(())
//! # }
//! ```
//!
//! Events a service writes later on its own (a consumer reacting to another event, a timer)
//! are not in its outbox yet: wait for their cause first (e.g. [`drained`] for a consumer).

use std::time::Duration;

use async_nats::jetstream::consumer::{self, pull};
use async_nats::jetstream::context::GetStreamErrorKind;
use async_nats::jetstream::message::StreamMessage;
use async_nats::jetstream::{self, ErrorCode};
use futures::TryStreamExt as _;
use platform_events::{Namespace, OutboxStore, RawEnvelope};

use crate::{eventually, stream_messages};

/// How long the functions of this module wait before they fail.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// How often they look again.
const POLL: Duration = Duration::from_millis(50);

/// The event type (`users.registered`) in a stored message's envelope; `None` if the message
/// is not an envelope.
pub fn event_type(message: &StreamMessage) -> Option<String> {
    RawEnvelope::from_slice(&message.payload)
        .ok()
        .map(|envelope| envelope.event_type)
}

/// The envelopes of stored messages, in order, each with its event type.
///
/// # Panics
/// When a message is not an envelope (a test reading a stream expects only events).
pub fn envelopes(messages: Vec<StreamMessage>) -> Vec<(String, RawEnvelope)> {
    messages
        .into_iter()
        .map(|message| {
            let envelope = RawEnvelope::from_slice(&message.payload)
                .expect("every message in an event stream is an envelope");
            (envelope.event_type.clone(), envelope)
        })
        .collect()
}

/// Waits until stream `stream` holds at least `count` events and the producer behind `outbox`
/// has [`settled`], then returns the events, failing unless there are exactly `count`: a
/// duplicate published late cannot slip past it.
pub async fn exactly<O: OutboxStore>(
    outbox: &O,
    jetstream: &jetstream::Context,
    stream: &str,
    count: usize,
) -> anyhow::Result<Vec<(String, RawEnvelope)>> {
    eventually(
        TIMEOUT,
        &format!("{count} events in stream {stream}"),
        || async {
            let stored = stream_messages(jetstream, stream).await.ok()?;
            (stored.len() >= count).then_some(())
        },
    )
    .await?;
    let events = envelopes(settled(outbox, jetstream, stream).await?);
    let types: Vec<&str> = events.iter().map(|(kind, _)| kind.as_str()).collect();
    anyhow::ensure!(
        events.len() == count,
        "stream {stream} holds {} events, not {count}: {types:?}",
        events.len()
    );
    Ok(events)
}

/// Waits until stream `stream` holds at least `count` events of type `event_type`, then
/// returns every message it holds, in sequence order. Fails after [`TIMEOUT`].
pub async fn wait_for(
    jetstream: &jetstream::Context,
    stream: &str,
    event_type: &str,
    count: usize,
) -> anyhow::Result<Vec<StreamMessage>> {
    eventually(
        TIMEOUT,
        &format!("{count} `{event_type}` events in stream {stream}"),
        || async {
            let messages = stream_messages(jetstream, stream).await.ok()?;
            let found = messages
                .iter()
                .filter(|message| self::event_type(message).as_deref() == Some(event_type))
                .count();
            (found >= count).then_some(messages)
        },
    )
    .await
}

/// Waits until the producer behind `outbox` has published everything it wrote and stream
/// `stream` stands still, then returns every message the stream holds, in sequence order.
/// Fails after [`TIMEOUT`], saying what was still moving.
///
/// Settled means: the outbox counts no pending event (so each event written so far has been
/// acknowledged by JetStream and marked published, and no relay will publish it again), and the
/// stream's last sequence was the same before and after that count.
pub async fn settled<O: OutboxStore>(
    outbox: &O,
    jetstream: &jetstream::Context,
    stream: &str,
) -> anyhow::Result<Vec<StreamMessage>> {
    settled_within(TIMEOUT, outbox, jetstream, stream).await
}

/// [`settled`], failing after `timeout` instead of [`TIMEOUT`].
pub async fn settled_within<O: OutboxStore>(
    timeout: Duration,
    outbox: &O,
    jetstream: &jetstream::Context,
    stream: &str,
) -> anyhow::Result<Vec<StreamMessage>> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let unsettled = match unsettled(outbox, jetstream, stream).await {
            Ok(None) => return stream_messages(jetstream, stream).await,
            Ok(Some(why)) => why,
            Err(error) => format!("{error:#}"),
        };
        if tokio::time::Instant::now() >= deadline {
            anyhow::bail!("stream {stream} did not settle within {timeout:?}: {unsettled}");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// What keeps the stream from being settled, if anything.
async fn unsettled<O: OutboxStore>(
    outbox: &O,
    jetstream: &jetstream::Context,
    stream: &str,
) -> anyhow::Result<Option<String>> {
    let before = last_sequence(jetstream, stream).await?;
    let pending = outbox.pending().await?;
    let after = last_sequence(jetstream, stream).await?;
    Ok(if pending > 0 {
        Some(format!("the outbox still has {pending} events to publish"))
    } else if before != after {
        Some(format!(
            "its last sequence moved from {before:?} to {after:?}"
        ))
    } else {
        None
    })
}

/// The stream's last sequence; `None` while it does not exist.
async fn last_sequence(
    jetstream: &jetstream::Context,
    stream: &str,
) -> anyhow::Result<Option<u64>> {
    match jetstream.get_stream(stream).await {
        Ok(mut found) => Ok(Some(found.info().await?.state.last_sequence)),
        Err(error)
            if matches!(error.kind(), GetStreamErrorKind::JetStream(inner)
                if inner.error_code() == ErrorCode::STREAM_NOT_FOUND) =>
        {
            Ok(None)
        }
        Err(error) => Err(error.into()),
    }
}

/// Waits until the durable consumer `consumer` of stream `stream` has nothing left to
/// deliver and nothing delivered but unacknowledged: everything published to it so far has
/// been handled. Fails after [`TIMEOUT`].
pub async fn drained(
    jetstream: &jetstream::Context,
    stream: &str,
    consumer: &str,
) -> anyhow::Result<()> {
    eventually(
        TIMEOUT,
        &format!("consumer {consumer} of stream {stream} to drain"),
        || async {
            let info = consumer_info(jetstream, stream, consumer).await?;
            (info.num_pending == 0 && info.num_ack_pending == 0).then_some(())
        },
    )
    .await
}

/// The state of the durable consumer `consumer` on `stream`; `None` while either does not exist
/// or NATS does not answer (for [`eventually`]).
pub async fn consumer_info(
    jetstream: &jetstream::Context,
    stream: &str,
    consumer: &str,
) -> Option<consumer::Info> {
    let mut consumer = jetstream
        .get_stream(stream)
        .await
        .ok()?
        .get_consumer::<pull::Config>(consumer)
        .await
        .ok()?;
    consumer.info().await.ok().cloned()
}

/// Waits until every durable consumer on every stream of `namespace` is [`drained`]: every
/// service of the test has handled everything published so far. Consumers created after the
/// call are not waited for.
pub async fn all_drained(
    jetstream: &jetstream::Context,
    namespace: &Namespace,
) -> anyhow::Result<()> {
    let prefix = namespace.stream("");
    let streams: Vec<String> = jetstream.stream_names().try_collect().await?;
    for stream in streams.iter().filter(|name| name.starts_with(&prefix)) {
        let consumers: Vec<String> = jetstream
            .get_stream(stream)
            .await?
            .consumer_names()
            .try_collect()
            .await?;
        for consumer in consumers {
            drained(jetstream, stream, &consumer).await?;
        }
    }
    Ok(())
}
