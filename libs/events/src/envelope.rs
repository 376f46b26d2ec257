//! The event envelope: what every message on the bus looks like.
//!
//! Its fields follow CloudEvents' names where they exist (`id`, `type`, `source`, `time`,
//! `subject`, and the distributed-tracing extension's `traceparent`), so the JSON reads
//! familiarly to anyone who has met CloudEvents; `schema_version` says which shape of `data`
//! this is, so a payload can evolve without breaking older consumers.

use chrono::{DateTime, SubsecRound, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A payload type that travels in an [`Envelope`].
pub trait Event: Serialize + DeserializeOwned {
    /// The event type, which is also the NATS subject it is published on (before any
    /// namespace prefix), e.g. `orders.confirmed`.
    const TYPE: &'static str;
    /// The version of this payload's shape; bump it on a breaking change.
    const SCHEMA_VERSION: u32 = 1;
}

/// One event: metadata plus its payload `data`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Envelope<T = serde_json::Value> {
    /// Unique id (UUID v7, so ids sort by creation time). Also the `Nats-Msg-Id`, which makes
    /// JetStream drop a re-publish, and the key consumers remember in their inbox.
    pub id: Uuid,
    /// The event type, e.g. `orders.confirmed`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The service that emitted it, e.g. `order-service`.
    pub source: String,
    /// When the state change happened (UTC, microsecond precision).
    pub time: DateTime<Utc>,
    /// The id of the entity the event is about (the order id for `orders.*`).
    pub subject: String,
    /// The version of `data`'s shape.
    pub schema_version: u32,
    /// W3C trace context of the span that emitted the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    /// The payload.
    pub data: T,
}

/// An envelope whose payload has not been interpreted yet.
pub type RawEnvelope = Envelope<serde_json::Value>;

impl<T: Event> Envelope<T> {
    /// A new event about `subject`, emitted now by `source`, in the current trace: its
    /// `traceparent` is that of a `create {type}` producer span, a child of the current span,
    /// and the consumers' `process {type}` spans are children of it.
    pub fn new(source: &str, subject: &impl ToString, data: T) -> Self {
        let id = Uuid::now_v7();
        let span = tracing::info_span!(
            "event.create",
            otel.name = %format!("create {}", T::TYPE),
            otel.kind = "producer",
            messaging.system = "nats",
            messaging.operation.type = "create",
            messaging.operation.name = "create",
            messaging.destination.name = T::TYPE,
            messaging.message.id = %id,
        );
        Self {
            id,
            event_type: T::TYPE.to_owned(),
            source: source.to_owned(),
            // Microseconds: what PostgreSQL and most consumers keep, so the time survives a
            // round trip through a store unchanged.
            time: Utc::now().trunc_subsecs(6),
            subject: subject.to_string(),
            schema_version: T::SCHEMA_VERSION,
            traceparent: span.in_scope(platform_telemetry::propagation::current_traceparent),
            data,
        }
    }
}

impl<T: Serialize> Envelope<T> {
    /// The envelope with its payload as a JSON value.
    pub fn to_raw(&self) -> Result<RawEnvelope, serde_json::Error> {
        Ok(self.with_data(serde_json::to_value(&self.data)?))
    }
}

impl<T> Envelope<T> {
    /// The same metadata around another payload.
    fn with_data<U>(&self, data: U) -> Envelope<U> {
        Envelope {
            id: self.id,
            event_type: self.event_type.clone(),
            source: self.source.clone(),
            time: self.time,
            subject: self.subject.clone(),
            schema_version: self.schema_version,
            traceparent: self.traceparent.clone(),
            data,
        }
    }
}

/// Why a raw envelope could not be read as a given event type.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The bytes are not an envelope at all.
    #[error("not an event envelope: {0}")]
    Malformed(#[source] serde_json::Error),
    /// An envelope of another event type.
    #[error("expected a `{expected}` event, got `{actual}`")]
    WrongType {
        /// The type asked for.
        expected: &'static str,
        /// The type in the envelope.
        actual: String,
    },
    /// A schema version this code does not understand.
    #[error(
        "`{event_type}` schema version {actual} is not supported (this code reads {supported})"
    )]
    UnsupportedVersion {
        /// The event type.
        event_type: String,
        /// The version in the envelope.
        actual: u32,
        /// The version this code reads.
        supported: u32,
    },
    /// The payload does not have the shape of the event type.
    #[error("`{event_type}` payload does not match its schema: {source}")]
    BadPayload {
        /// The event type.
        event_type: String,
        /// What serde found wrong.
        #[source]
        source: serde_json::Error,
    },
}

impl RawEnvelope {
    /// Parses an envelope from the bytes of a message.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, DecodeError> {
        serde_json::from_slice(bytes).map_err(DecodeError::Malformed)
    }

    /// Reads the payload as event type `T`, checking the type and schema version first.
    pub fn decode<T: Event>(&self) -> Result<Envelope<T>, DecodeError> {
        if self.event_type != T::TYPE {
            return Err(DecodeError::WrongType {
                expected: T::TYPE,
                actual: self.event_type.clone(),
            });
        }
        if self.schema_version != T::SCHEMA_VERSION {
            return Err(DecodeError::UnsupportedVersion {
                event_type: self.event_type.clone(),
                actual: self.schema_version,
                supported: T::SCHEMA_VERSION,
            });
        }
        let data = T::deserialize(&self.data).map_err(|source| DecodeError::BadPayload {
            event_type: self.event_type.clone(),
            source,
        })?;
        Ok(self.with_data(data))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// A payload of the shape `payments.captured` has, written here so the envelope's tests
    /// need no contracts crate.
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    struct PaymentCaptured {
        payment_id: Uuid,
        order_id: Uuid,
        user_id: Uuid,
        amount: Amount,
    }

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    struct Amount {
        minor: i64,
        currency: String,
    }

    impl Event for PaymentCaptured {
        const TYPE: &'static str = "payments.captured";
    }

    fn captured() -> Envelope<PaymentCaptured> {
        Envelope {
            id: "01936b2e-7c41-7d3a-9f10-2b3c4d5e6f70".parse().unwrap(),
            event_type: "payments.captured".to_owned(),
            source: "payment-service".to_owned(),
            time: "2026-11-21T10:15:30.123456Z".parse().unwrap(),
            subject: "02020202-0202-0202-0202-020202020202".to_owned(),
            schema_version: 1,
            traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned()),
            data: PaymentCaptured {
                payment_id: Uuid::from_bytes([3; 16]),
                order_id: Uuid::from_bytes([2; 16]),
                user_id: Uuid::from_bytes([1; 16]),
                amount: Amount {
                    minor: 2500,
                    currency: "EUR".to_owned(),
                },
            },
        }
    }

    #[test]
    fn the_envelope_json_is_pinned() {
        let json = serde_json::to_value(captured()).unwrap();
        assert_eq!(
            json,
            json!({
                "id": "01936b2e-7c41-7d3a-9f10-2b3c4d5e6f70",
                "type": "payments.captured",
                "source": "payment-service",
                "time": "2026-11-21T10:15:30.123456Z",
                "subject": "02020202-0202-0202-0202-020202020202",
                "schema_version": 1,
                "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                "data": {
                    "payment_id": "03030303-0303-0303-0303-030303030303",
                    "order_id": "02020202-0202-0202-0202-020202020202",
                    "user_id": "01010101-0101-0101-0101-010101010101",
                    "amount": {"minor": 2500, "currency": "EUR"}
                }
            })
        );
    }

    #[test]
    fn an_envelope_without_trace_context_omits_the_field_and_still_parses() {
        let mut envelope = captured();
        envelope.traceparent = None;
        let bytes = serde_json::to_vec(&envelope).unwrap();
        assert!(!String::from_utf8_lossy(&bytes).contains("traceparent"));
        let raw = RawEnvelope::from_slice(&bytes).unwrap();
        assert_eq!(raw.decode::<PaymentCaptured>().unwrap(), envelope);
    }

    #[test]
    fn a_new_envelope_has_a_v7_id_the_type_and_the_schema_version() {
        let envelope = Envelope::new("payment-service", &"order-1", captured().data);
        assert_eq!(envelope.id.get_version_num(), 7);
        assert_eq!(envelope.event_type, "payments.captured");
        assert_eq!(envelope.schema_version, 1);
        assert_eq!(envelope.subject, "order-1");
    }

    #[test]
    fn decoding_checks_type_version_and_shape() {
        let raw = captured().to_raw().unwrap();
        assert!(raw.decode::<PaymentCaptured>().is_ok());

        let mut other_type = raw.clone();
        other_type.event_type = "payments.failed".to_owned();
        assert!(matches!(
            other_type.decode::<PaymentCaptured>(),
            Err(DecodeError::WrongType { .. })
        ));

        let mut newer = raw.clone();
        newer.schema_version = 2;
        assert!(matches!(
            newer.decode::<PaymentCaptured>(),
            Err(DecodeError::UnsupportedVersion { actual: 2, .. })
        ));

        let mut broken = raw;
        broken.data = json!({"payment_id": "not a uuid"});
        assert!(matches!(
            broken.decode::<PaymentCaptured>(),
            Err(DecodeError::BadPayload { .. })
        ));

        assert!(matches!(
            RawEnvelope::from_slice(b"{not json"),
            Err(DecodeError::Malformed(_))
        ));
    }
}
