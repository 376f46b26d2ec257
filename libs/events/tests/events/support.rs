//! Shared fixtures: an isolated namespace on the bus, reading streams back, test events.

use std::collections::HashSet;
use std::time::Duration;

use async_nats::jetstream::{self, message::StreamMessage};
use platform_events::{Envelope, Event, Namespace, ensure_streams, platform_streams};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A test payload of the shape `payments.captured` has; the library knows no real payload.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PaymentCaptured {
    pub payment_id: Uuid,
    pub order_id: Uuid,
    pub user_id: Uuid,
    pub amount: Amount,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Amount {
    pub minor: i64,
    pub currency: String,
}

impl Event for PaymentCaptured {
    const TYPE: &'static str = "payments.captured";
}

/// A namespace of its own on the test NATS server, with the platform's streams in it.
pub struct Bus {
    pub namespace: Namespace,
    pub js: jetstream::Context,
}

impl Bus {
    pub async fn new() -> Self {
        let client = platform_testkit::nats_client().await.unwrap();
        Self::with_client(client).await
    }

    /// A bus whose JetStream context uses `client` (e.g. one connected through a proxy).
    pub async fn with_client(client: async_nats::Client) -> Self {
        platform_telemetry::init_for_tests();
        let namespace = Namespace::prefixed(&platform_testkit::unique_name("t")).unwrap();
        let js = jetstream::ContextBuilder::new()
            .timeout(Duration::from_secs(2))
            .build(client.clone());
        ensure_streams(&js, &platform_streams(&namespace))
            .await
            .unwrap();
        Self { namespace, js }
    }

    /// Every message stored in a stream, in sequence order.
    pub async fn stored(&self, stream: &str) -> Vec<StreamMessage> {
        self.js.get_stream(stream).await.expect("the stream exists");
        platform_testkit::stream_messages(&self.js, stream)
            .await
            .unwrap()
    }

    pub fn payments_stream(&self) -> String {
        self.namespace.domain_stream("payments")
    }

    pub fn dead_letters_stream(&self) -> String {
        self.namespace.dead_letter_stream()
    }
}

/// The `Nats-Msg-Id` of each stored message.
pub fn message_ids(messages: &[StreamMessage]) -> Vec<String> {
    messages
        .iter()
        .map(|message| {
            message
                .headers
                .get(async_nats::header::NATS_MESSAGE_ID)
                .expect("every outbox message carries Nats-Msg-Id")
                .to_string()
        })
        .collect()
}

/// Asserts the stream holds each of `expected` exactly once and nothing else.
pub fn assert_exactly_once(messages: &[StreamMessage], expected: &[Uuid]) {
    let ids = message_ids(messages);
    let distinct: HashSet<&String> = ids.iter().collect();
    assert_eq!(
        ids.len(),
        distinct.len(),
        "some event is stored more than once"
    );
    let expected: HashSet<String> = expected.iter().map(Uuid::to_string).collect();
    let stored: HashSet<String> = ids.into_iter().collect();
    assert_eq!(
        stored, expected,
        "the stream does not hold exactly the events written"
    );
}

/// A test event: a captured payment for a new order.
pub fn captured_payment() -> Envelope<PaymentCaptured> {
    let order_id = Uuid::now_v7();
    Envelope::new(
        "payment-service",
        &order_id,
        PaymentCaptured {
            payment_id: Uuid::now_v7(),
            order_id,
            user_id: Uuid::now_v7(),
            amount: Amount {
                minor: 1999,
                currency: "EUR".to_owned(),
            },
        },
    )
}
