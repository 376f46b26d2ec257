//! The request span and its log lines, as OpenTelemetry records them (in-memory exporter).

use std::time::Duration;

use opentelemetry::trace::{SpanKind, Status};
use platform_telemetry::testing::finished_spans;

use crate::helpers::spawn_app;

/// A W3C trace id and span id, fresh for each test so the spans can be told apart.
fn caller_context() -> (String, String) {
    let trace_id = uuid::Uuid::new_v4().simple().to_string();
    let span_id = uuid::Uuid::new_v4().simple().to_string()[..16].to_owned();
    (trace_id, span_id)
}

/// Polls `find` until it returns something (spans are exported as they end).
async fn eventually<T>(mut find: impl FnMut() -> Option<T>) -> T {
    for _ in 0..100 {
        if let Some(found) = find() {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("not found in time");
}

#[tokio::test]
async fn the_request_span_is_a_server_span_named_after_the_route_and_parented_on_the_caller() {
    let app = spawn_app().await;
    let (trace_id, parent_id) = caller_context();
    let id = uuid::Uuid::now_v7();
    let response = app
        .client
        .get(app.url(&format!("/orders/{id}")))
        .header("traceparent", format!("00-{trace_id}-{parent_id}-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();

    let span = eventually(|| {
        finished_spans()
            .into_iter()
            .find(|span| span.span_context.trace_id().to_string() == trace_id)
    })
    .await;
    assert_eq!(span.name, "GET /orders/{id}");
    assert_eq!(span.span_kind, SpanKind::Server);
    assert_eq!(span.parent_span_id.to_string(), parent_id);
    let attribute = |key: &str| {
        span.attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.as_str().into_owned())
    };
    assert_eq!(attribute("http.route").as_deref(), Some("/orders/{id}"));
    assert_eq!(attribute("http.request.method").as_deref(), Some("GET"));
    assert_eq!(attribute("request_id"), Some(request_id));
    assert_eq!(
        attribute("http.response.status_code").as_deref(),
        Some("200")
    );
    let served = span
        .events
        .iter()
        .filter(|event| event.name == "request served")
        .count();
    assert_eq!(served, 1, "one log line per response");
}

#[tokio::test]
async fn an_internal_error_is_logged_once_with_its_cause_chain_inside_the_request_span() {
    let app = spawn_app().await;
    let (trace_id, parent_id) = caller_context();
    let response = app
        .client
        .get(app.url("/boom"))
        .header("traceparent", format!("00-{trace_id}-{parent_id}-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 500);

    let span = eventually(|| {
        finished_spans()
            .into_iter()
            .find(|span| span.span_context.trace_id().to_string() == trace_id)
    })
    .await;
    assert_eq!(span.name, "GET /boom");
    assert!(
        matches!(span.status, Status::Error { .. }),
        "{:?}",
        span.status
    );
    let mentioning_the_cause: Vec<_> = span
        .events
        .iter()
        .filter(|event| {
            event
                .attributes
                .iter()
                .any(|kv| kv.value.as_str().contains("hunter2"))
        })
        .collect();
    assert_eq!(mentioning_the_cause.len(), 1, "{:#?}", span.events);
    let event = mentioning_the_cause[0];
    let values: Vec<String> = event
        .attributes
        .iter()
        .map(|kv| format!("{}={}", kv.key, kv.value))
        .collect();
    assert!(values.contains(&"level=ERROR".to_owned()), "{values:?}");
    assert!(values.contains(&"status=500".to_owned()), "{values:?}");
    assert!(
        values.iter().any(|value| value
            .ends_with("=loading the user: connection refused: db password=hunter2 user=orders")),
        "the whole cause chain: {values:?}"
    );
    assert_eq!(
        span.events.len(),
        1,
        "one log line per response: {:#?}",
        span.events
    );
}

#[tokio::test]
async fn an_unmatched_request_gets_a_span_named_after_its_method_only() {
    let app = spawn_app().await;
    let (trace_id, parent_id) = caller_context();
    let response = app
        .client
        .get(app.url("/nowhere/123"))
        .header("traceparent", format!("00-{trace_id}-{parent_id}-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let span = eventually(|| {
        finished_spans()
            .into_iter()
            .find(|span| span.span_context.trace_id().to_string() == trace_id)
    })
    .await;
    assert_eq!(span.name, "GET");
    assert!(
        !span
            .attributes
            .iter()
            .any(|kv| kv.key.as_str() == "http.route")
    );
}

#[tokio::test]
async fn the_text_of_a_plain_text_server_error_is_logged_as_its_cause() {
    let app = spawn_app().await;
    let (trace_id, parent_id) = caller_context();
    let response = app
        .client
        .get(app.url("/text-error/502"))
        .header("traceparent", format!("00-{trace_id}-{parent_id}-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    let span = eventually(|| {
        finished_spans()
            .into_iter()
            .find(|span| span.span_context.trace_id().to_string() == trace_id)
    })
    .await;
    let logged: Vec<String> = span
        .events
        .iter()
        .flat_map(|event| event.attributes.iter().map(|kv| kv.value.to_string()))
        .filter(|value| value.contains("hunter2"))
        .collect();
    assert_eq!(
        logged,
        ["502 Bad Gateway with the text body: cannot reach db at 10.0.0.7 with password=hunter2"]
    );
}
