//! The JetStream streams the platform uses, and their provisioning.
//!
//! One stream per event domain of `services.toml` (`USERS` holds `users.>`, `ORDERS` holds
//! `orders.>`, ...) and one for dead letters (`DEAD_LETTERS` holds `dlq.>`), each with a
//! duplicate window: a message whose `Nats-Msg-Id` was seen within the window is acknowledged
//! but not stored again.
//!
//! A [`Namespace`] prefixes every subject and stream name, empty in production; tests use a
//! unique one each so they never see each other's events.

use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream;
use async_nats::jetstream::stream::{Config, DiscardPolicy, RetentionPolicy, StorageType};

/// The event domains, one per publishing service of `services.toml` (its `events`); each has
/// its own stream, named after it in upper case.
pub fn domains() -> Vec<&'static str> {
    platform_registry::event_domains()
}

/// The subject root of dead letters.
pub const DEAD_LETTER_ROOT: &str = "dlq";

/// How long the stream remembers message ids to drop re-publishes. It must exceed the longest
/// time between a relay publishing an event and another relay re-publishing it after the first
/// died (the outbox lease, plus retry back-off); consumers' inboxes catch anything older.
pub const DEFAULT_DUPLICATE_WINDOW: Duration = Duration::from_secs(10 * 60);

/// How long events stay in their stream (and so how long consumers' inboxes must remember).
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

/// A prefix for every subject and stream name: empty in production, unique per test.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Namespace {
    prefix: String,
}

impl Namespace {
    /// The production namespace: subjects as the event types name them.
    pub fn root() -> Self {
        Self::default()
    }

    /// A namespace whose subjects start with `prefix.` and streams with `prefix_`.
    ///
    /// The prefix must be a valid single subject token and stream-name part: ASCII letters,
    /// digits, `_` and `-`.
    pub fn prefixed(prefix: &str) -> anyhow::Result<Self> {
        anyhow::ensure!(
            !prefix.is_empty()
                && prefix
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
            "namespace prefix `{prefix}` must be non-empty ASCII letters, digits, `_` or `-`"
        );
        Ok(Self {
            prefix: prefix.to_owned(),
        })
    }

    /// The namespace a configuration names: prefixed when `prefix` is set and not empty, the
    /// root otherwise.
    pub fn from_prefix(prefix: Option<&str>) -> anyhow::Result<Self> {
        match prefix {
            Some(prefix) if !prefix.is_empty() => Self::prefixed(prefix),
            _ => Ok(Self::root()),
        }
    }

    /// The subject an event type is published on, e.g. `orders.created`.
    pub fn subject(&self, event_type: &str) -> String {
        if self.prefix.is_empty() {
            event_type.to_owned()
        } else {
            format!("{}.{event_type}", self.prefix)
        }
    }

    /// The event type a subject carries (the subject without the namespace prefix).
    pub fn event_type<'a>(&self, subject: &'a str) -> &'a str {
        if self.prefix.is_empty() {
            return subject;
        }
        subject
            .strip_prefix(self.prefix.as_str())
            .and_then(|rest| rest.strip_prefix('.'))
            .unwrap_or(subject)
    }

    /// A stream name, e.g. `ORDERS`.
    pub fn stream(&self, base: &str) -> String {
        if self.prefix.is_empty() {
            base.to_owned()
        } else {
            format!("{}_{base}", self.prefix)
        }
    }

    /// The stream that holds a domain's events (`orders` -> `ORDERS`).
    pub fn domain_stream(&self, domain: &str) -> String {
        self.stream(&domain.to_ascii_uppercase())
    }

    /// The stream that holds dead letters.
    pub fn dead_letter_stream(&self) -> String {
        self.stream("DEAD_LETTERS")
    }

    /// The subject a consumer's dead letters go to: `dlq.<consumer>.<original event type>`.
    pub fn dead_letter_subject(&self, consumer: &str, event_type: &str) -> String {
        self.subject(&format!("{DEAD_LETTER_ROOT}.{consumer}.{event_type}"))
    }
}

/// What a stream should look like.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamSpec {
    /// Stream name.
    pub name: String,
    /// Subjects it captures.
    pub subjects: Vec<String>,
    /// Window within which a repeated `Nats-Msg-Id` is dropped.
    pub duplicate_window: Duration,
    /// How long messages are kept.
    pub max_age: Duration,
}

impl StreamSpec {
    fn config(&self) -> Config {
        Config {
            name: self.name.clone(),
            subjects: self.subjects.clone(),
            duplicate_window: self.duplicate_window,
            max_age: self.max_age,
            retention: RetentionPolicy::Limits,
            storage: StorageType::File,
            // Never drop an event to make room for another.
            discard: DiscardPolicy::New,
            ..Config::default()
        }
    }
}

/// The platform's streams in `namespace`: one per domain, plus dead letters.
pub fn platform_streams(namespace: &Namespace) -> Vec<StreamSpec> {
    let mut specs: Vec<StreamSpec> = domains()
        .into_iter()
        .map(|domain| StreamSpec {
            name: namespace.domain_stream(domain),
            subjects: vec![namespace.subject(&format!("{domain}.>"))],
            duplicate_window: DEFAULT_DUPLICATE_WINDOW,
            max_age: DEFAULT_MAX_AGE,
        })
        .collect();
    specs.push(StreamSpec {
        name: namespace.dead_letter_stream(),
        subjects: vec![namespace.subject(&format!("{DEAD_LETTER_ROOT}.>"))],
        duplicate_window: DEFAULT_DUPLICATE_WINDOW,
        // Dead letters wait for a human; keep them longer than events.
        max_age: DEFAULT_MAX_AGE * 4,
    });
    specs
}

/// Creates each stream, or updates it to match its spec. Safe to run from every replica at
/// every start.
pub async fn ensure_streams(js: &jetstream::Context, specs: &[StreamSpec]) -> anyhow::Result<()> {
    for spec in specs {
        js.create_or_update_stream(spec.config())
            .await
            .with_context(|| format!("creating or updating stream {}", spec.name))?;
        tracing::debug!(stream = %spec.name, subjects = ?spec.subjects, "stream ready");
    }
    Ok(())
}

/// Provisions the platform's streams in `namespace`, retrying with back-off while NATS is
/// away; `false` if `stop` came first.
pub async fn provision_until_ready(
    js: &jetstream::Context,
    namespace: &Namespace,
    stop: &tokio_util::sync::CancellationToken,
) -> bool {
    let streams = platform_streams(namespace);
    let mut failures = 0;
    while let Err(error) = ensure_streams(js, &streams).await {
        failures += 1;
        let pause = crate::outbox::backoff(Duration::from_millis(500), failures);
        tracing::warn!(error = format!("{error:#}"), retry_in = ?pause, "cannot provision the event streams yet");
        tokio::select! {
            () = stop.cancelled() => return false,
            () = tokio::time::sleep(pause) => {}
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_namespace_leaves_names_as_they_are() {
        let ns = Namespace::root();
        assert_eq!(ns.subject("orders.created"), "orders.created");
        assert_eq!(ns.domain_stream("orders"), "ORDERS");
        assert_eq!(
            ns.dead_letter_subject("notifications", "orders.created"),
            "dlq.notifications.orders.created"
        );
        assert_eq!(ns.event_type("orders.created"), "orders.created");
    }

    #[test]
    fn a_prefixed_namespace_prefixes_subjects_and_streams() {
        let ns = Namespace::prefixed("t_1").unwrap();
        assert_eq!(ns.subject("orders.created"), "t_1.orders.created");
        assert_eq!(ns.domain_stream("orders"), "t_1_ORDERS");
        assert_eq!(ns.event_type("t_1.orders.created"), "orders.created");
        let specs = platform_streams(&ns);
        // One per domain, and the dead letters'.
        assert_eq!(specs.len(), domains().len() + 1);
        assert!(
            specs
                .iter()
                .any(|s| s.name == "t_1_DEAD_LETTERS" && s.subjects == ["t_1.dlq.>"])
        );
    }

    #[test]
    fn an_unset_or_empty_prefix_is_the_root() {
        assert_eq!(Namespace::from_prefix(None).unwrap(), Namespace::root());
        assert_eq!(Namespace::from_prefix(Some("")).unwrap(), Namespace::root());
        assert_eq!(
            Namespace::from_prefix(Some("t_1")).unwrap(),
            Namespace::prefixed("t_1").unwrap()
        );
    }

    #[test]
    fn a_prefix_that_would_break_subjects_is_refused() {
        for bad in ["", "a.b", "a b", "a>", "*"] {
            assert!(Namespace::prefixed(bad).is_err(), "{bad:?}");
        }
    }
}
