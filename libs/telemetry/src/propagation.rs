//! W3C trace context (`traceparent`, `tracestate`) across process boundaries.
//!
//! The functions use the W3C propagator directly rather than the global one, so propagation works
//! the same in services, tests and tools whatever else was (or was not) initialised.

use std::collections::HashMap;

use opentelemetry::Context;
use opentelemetry::propagation::{Injector, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The header that carries the parent span.
pub const TRACEPARENT: &str = "traceparent";

/// Writes the context of `span` into a carrier through `set(name, value)`.
pub fn inject_span(span: &tracing::Span, mut set: impl FnMut(&str, String)) {
    struct Setter<'a, F>(&'a mut F);
    impl<F: FnMut(&str, String)> Injector for Setter<'_, F> {
        fn set(&mut self, key: &str, value: String) {
            (self.0)(key, value);
        }
    }
    let cx = span.context();
    if !cx.span().span_context().is_valid() {
        return;
    }
    TraceContextPropagator::new().inject_context(&cx, &mut Setter(&mut set));
}

/// The `traceparent` of the current span, if it has a valid OpenTelemetry context.
pub fn current_traceparent() -> Option<String> {
    let mut traceparent = None;
    inject_span(&tracing::Span::current(), |key, value| {
        if key == TRACEPARENT {
            traceparent = Some(value);
        }
    });
    traceparent
}

/// Reads a remote parent context from a carrier through `get(name)`.
pub fn extract(get: impl Fn(&str) -> Option<String>) -> Context {
    // Carriers (NATS, HTTP headers) own their values; copy the two W3C fields into a map, which
    // the propagator can borrow from.
    let fields: HashMap<String, String> = ["traceparent", "tracestate"]
        .into_iter()
        .filter_map(|key| get(key).map(|value| (key.to_owned(), value)))
        .collect();
    TraceContextPropagator::new().extract(&fields)
}

/// Makes `span` a child of the context a carrier delivered (no-op if it carried none).
pub fn set_parent(span: &tracing::Span, parent: Context) {
    if parent.span().span_context().is_valid() {
        // Fails only when the span was already started with another parent; nothing to do then.
        let _ = span.set_parent(parent);
    }
}

/// Makes `span` a child of the span described by a `traceparent` value.
pub fn set_parent_from_traceparent(span: &tracing::Span, traceparent: &str) {
    let traceparent = traceparent.to_owned();
    set_parent(
        span,
        extract(move |key| (key == TRACEPARENT).then(|| traceparent.clone())),
    );
}

/// Writes the current span's context into HTTP (or gRPC) headers.
pub fn inject_http_headers(span: &tracing::Span, headers: &mut http::HeaderMap) {
    inject_span(span, |key, value| {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            headers.insert(name, value);
        }
    });
}

/// Reads the remote parent context from HTTP (or gRPC) headers.
pub fn extract_http_headers(headers: &http::HeaderMap) -> Context {
    extract(|key| {
        headers
            .get(key)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_traceparent_header_becomes_the_remote_parent() {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            TRACEPARENT,
            http::HeaderValue::from_static(
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
        );
        let cx = extract_http_headers(&headers);
        let span = cx.span();
        let span_context = span.span_context();
        assert!(span_context.is_remote());
        assert_eq!(
            span_context.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(span_context.span_id().to_string(), "00f067aa0ba902b7");
    }

    #[test]
    fn a_malformed_traceparent_gives_no_parent() {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            TRACEPARENT,
            http::HeaderValue::from_static("not-a-traceparent"),
        );
        assert!(
            !extract_http_headers(&headers)
                .span()
                .span_context()
                .is_valid()
        );
    }
}
