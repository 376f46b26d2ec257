//! Trace context travels with the event: the event is made in a `create` producer span, a
//! child of the span that wrote it to the outbox, and the consumer's `process` span is a child
//! of that.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry::trace::{SpanId, SpanKind, TraceContextExt as _, TraceId};
use platform_events::consumer::postgres::PgInbox;
use platform_events::outbox::postgres::PgOutbox;
use platform_events::{
    Consumer, ConsumerConfig, EventHandler, HandlerError, Inbox, ReceivedEvent, Relay, RelayConfig,
};
use platform_testkit::{eventually, fresh_pg_database};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::support::{Bus, captured_payment};

/// Remembers the trace the handler ran in.
struct TraceRecorder(Arc<Mutex<Option<TraceId>>>);

impl<I: Inbox> EventHandler<I> for TraceRecorder {
    async fn handle(&self, _event: &ReceivedEvent, _tx: &mut I::Tx) -> Result<(), HandlerError> {
        let context = tracing::Span::current().context();
        *self.0.lock().unwrap() = Some(context.span().span_context().trace_id());
        Ok(())
    }
}

fn ids(span: &tracing::Span) -> (TraceId, SpanId) {
    let context = span.context();
    let span_context = context.span().span_context().clone();
    (span_context.trace_id(), span_context.span_id())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_consumer_span_is_a_child_of_the_span_that_emitted_the_event() {
    let bus = Bus::new().await;
    let db = fresh_pg_database().await.unwrap();
    platform_events::outbox::postgres::migrate(&db.pool)
        .await
        .unwrap();
    let outbox = PgOutbox::new(db.pool.clone(), bus.namespace.clone());

    // The emitting side: a request span in which the service writes its event.
    let request = tracing::info_span!("capture_payment");
    let (trace_id, emitter_span_id) = ids(&request);
    assert_ne!(
        trace_id,
        TraceId::INVALID,
        "telemetry records spans in tests"
    );
    let event = async {
        let event = captured_payment();
        let mut tx = db.pool.begin().await.unwrap();
        outbox.enqueue(&mut *tx, &event).await.unwrap();
        tx.commit().await.unwrap();
        event
    }
    .instrument(request.clone())
    .await;
    assert!(
        event
            .traceparent
            .as_deref()
            .unwrap()
            .contains(&trace_id.to_string())
    );
    drop(request);

    // The relay runs in the background, outside any request.
    Relay::new(outbox, bus.js.clone(), RelayConfig::default())
        .run_once()
        .await
        .unwrap();

    let seen = Arc::new(Mutex::new(None));
    let consumer = Consumer::new(
        bus.js.clone(),
        bus.namespace.clone(),
        ConsumerConfig::new("tracer", &bus.payments_stream(), Vec::new()),
        PgInbox::new(db.pool.clone()),
        TraceRecorder(Arc::clone(&seen)),
    );
    let stop = CancellationToken::new();
    tokio::spawn(consumer.run(stop.clone()));
    let handler_trace = eventually(Duration::from_secs(20), "the handler to run", || async {
        *seen.lock().unwrap()
    })
    .await
    .unwrap();
    stop.cancel();
    assert_eq!(
        handler_trace, trace_id,
        "the handler ran in the emitter's trace"
    );

    let consume_span = eventually(
        Duration::from_secs(10),
        "the consumer span to finish",
        || async {
            platform_telemetry::testing::finished_spans()
                .into_iter()
                .find(|span| {
                    span.span_context.trace_id() == trace_id && span.name.starts_with("process ")
                })
        },
    )
    .await
    .unwrap();
    let create_span = platform_telemetry::testing::finished_spans()
        .into_iter()
        .find(|span| span.span_context.trace_id() == trace_id && span.name.starts_with("create "))
        .expect("the producer span was recorded");

    assert_eq!(create_span.name, "create payments.captured");
    assert_eq!(create_span.span_kind, SpanKind::Producer);
    assert_eq!(
        create_span.parent_span_id, emitter_span_id,
        "the event was made in the span that wrote it"
    );
    assert_eq!(
        create_span.span_context.span_id().to_string(),
        event.traceparent.as_deref().unwrap()[36..52],
        "the event carries the producer span"
    );
    assert_eq!(consume_span.name, "process payments.captured");
    assert_eq!(consume_span.span_kind, SpanKind::Consumer);
    assert_eq!(
        consume_span.parent_span_id,
        create_span.span_context.span_id(),
        "the consumer span's parent is the span that made the event"
    );
    assert_messaging_attributes(&consume_span, &event.id.to_string());
}

/// The consumer span carries OpenTelemetry's messaging attributes.
fn assert_messaging_attributes(
    consume_span: &platform_telemetry::testing::SpanData,
    event_id: &str,
) {
    let attribute = |name: &str| {
        consume_span
            .attributes
            .iter()
            .find(|kv| kv.key.as_str() == name)
            .map(|kv| kv.value.to_string())
    };
    assert_eq!(attribute("messaging.system").as_deref(), Some("nats"));
    assert_eq!(
        attribute("messaging.operation.type").as_deref(),
        Some("process")
    );
    assert_eq!(attribute("messaging.message.id").as_deref(), Some(event_id));
}
