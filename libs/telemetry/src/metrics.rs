//! Prometheus metrics: the process-wide recorder, the `/metrics` handler and the HTTP middleware
//! that counts and times every request by matched route and status.
//!
//! Business counters are plain `metrics::counter!` calls in the services; the recorder installed
//! here collects them all.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Requests served, by `method`, `route` (the matched template, never the raw path) and `status`.
pub const HTTP_REQUESTS_TOTAL: &str = "http_server_requests_total";
/// Request duration in seconds, same labels as [`HTTP_REQUESTS_TOTAL`].
pub const HTTP_REQUEST_DURATION: &str = "http_server_request_duration_seconds";
/// gRPC calls served, by `method` (`/package.Service/Method`) and `code`.
pub const GRPC_REQUESTS_TOTAL: &str = "grpc_server_requests_total";
/// gRPC call duration in seconds, same labels as [`GRPC_REQUESTS_TOTAL`].
pub const GRPC_REQUEST_DURATION: &str = "grpc_server_request_duration_seconds";

/// Latency buckets (seconds) for every `*_duration_seconds` histogram: 1 ms to 10 s.
const DURATION_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Buckets (seconds) for every `*_lag_seconds` histogram (how far a consumer is behind):
/// 1 ms to 5 min.
const LAG_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    120.0, 300.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the Prometheus recorder for this process (idempotent) and returns its handle.
pub fn install_recorder() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Suffix("duration_seconds".to_owned()),
                DURATION_BUCKETS,
            )
            .expect("the duration buckets are a non-empty constant")
            .set_buckets_for_metric(Matcher::Suffix("lag_seconds".to_owned()), LAG_BUCKETS)
            .expect("the lag buckets are a non-empty constant");
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics will be empty");
        }
        // Histograms buffer raw samples until upkeep folds them into buckets; without a scrape
        // that would grow without bound, so fold them on a timer.
        let upkeep = handle.clone();
        std::thread::Builder::new()
            .name("metrics-upkeep".to_owned())
            .spawn(move || {
                loop {
                    std::thread::sleep(Duration::from_secs(5));
                    upkeep.run_upkeep();
                }
            })
            .expect("spawning the metrics upkeep thread");
        handle
    })
}

/// The metrics of this process in the Prometheus text format.
pub fn render() -> String {
    let handle = install_recorder();
    handle.run_upkeep();
    handle.render()
}

/// `GET /metrics`.
#[allow(clippy::unused_async)] // an axum handler must be async
pub async fn metrics_handler() -> Response {
    (
        [(
            http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        render(),
    )
        .into_response()
}

/// Axum middleware recording [`HTTP_REQUESTS_TOTAL`] and [`HTTP_REQUEST_DURATION`].
///
/// Add it with `Router::route_layer`, so the matched route template is known and labels never
/// hold raw paths (which would make one series per order id). Requests that match no route
/// are not recorded.
pub async fn track_http(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let Some(route) = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
    else {
        return next.run(request).await;
    };
    let response = next.run(request).await;
    record(
        HTTP_REQUESTS_TOTAL,
        HTTP_REQUEST_DURATION,
        [
            ("method", method),
            ("route", route),
            ("status", response.status().as_u16().to_string()),
        ],
        started.elapsed(),
    );
    response
}

/// Records one request in a counter/histogram pair with the same labels.
pub(crate) fn record<const N: usize>(
    counter: &'static str,
    histogram: &'static str,
    labels: [(&'static str, String); N],
    elapsed: Duration,
) {
    let labels: Vec<metrics::Label> = labels
        .into_iter()
        .map(|(key, value)| metrics::Label::new(key, value))
        .collect();
    metrics::counter!(counter, labels.clone()).increment(1);
    metrics::histogram!(histogram, labels).record(elapsed.as_secs_f64());
}
