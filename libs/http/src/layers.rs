//! The middleware every service runs, and [`with_standard_layers`], which applies it in order.

use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, MatchedPath, OriginalUri, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tracing::Instrument as _;
use tracing::Span;
use tracing::field::Empty;

use crate::problem::{ApiError, INTERNAL_ERROR_DETAIL, InternalErrorCause, Problem};
use crate::request_id::{RequestId, request_id};

/// Limits every service applies to its HTTP requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpConfig {
    /// How long a request may take before it is abandoned with a 503 (default 10 s).
    pub request_timeout: Duration,
    /// The largest request body accepted, in bytes (default 1 MiB).
    pub body_limit: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(10),
            body_limit: 1024 * 1024,
        }
    }
}

impl From<&platform_config::HttpSettings> for HttpConfig {
    fn from(settings: &platform_config::HttpSettings) -> Self {
        Self {
            request_timeout: settings.request_timeout(),
            body_limit: settings.body_limit_bytes,
        }
    }
}

/// The body limit in force for a request (a request extension, so rejections can state it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BodyLimit(pub usize);

/// Applies the platform's middleware to a service's router, and a 404 problem fallback.
///
/// Call it on the complete router (after every `route`, `merge` and `nest`): like
/// `Router::layer`, it only wraps the routes that exist when it is called. It replaces any
/// fallback set before. From the outside in, a request meets:
///
/// 1. request id: first, so every response (even a 413 or a timeout) carries one, and the span
///    can record it;
/// 2. tracing: the request span, parented on the caller's `traceparent`, and the one log line
///    per response (with the cause of a 500). Outside everything below, so it sees the final
///    status and body;
/// 3. metrics (`track_http`, matched routes only): outside the timeout and the problem
///    mapping, so timed-out requests are counted, as 503s;
/// 4. bare errors to problems: outside the timeout and the body limit, to catch every error
///    response produced below it (axum's 405, a handler's bare `StatusCode`, text rejections);
/// 5. timeout: around the body limit and the handler, so a slow upload counts too;
/// 6. body limit: refuses a declared `Content-Length` over the limit at once, and caps bodies
///    of unknown length (chunked) while they are read, with axum's `DefaultBodyLimit` set to
///    the same value so axum's own extractors agree.
pub fn with_standard_layers<S>(router: Router<S>, config: &HttpConfig) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    // `layer` wraps what is already there: the first call here is the innermost layer.
    router
        .fallback(route_not_found)
        .layer(DefaultBodyLimit::max(config.body_limit))
        .layer(middleware::from_fn_with_state(
            config.body_limit,
            limit_body,
        ))
        .layer(middleware::from_fn_with_state(
            config.request_timeout,
            enforce_timeout,
        ))
        .layer(middleware::from_fn(problem_for_bare_errors))
        .route_layer(middleware::from_fn(platform_telemetry::metrics::track_http))
        .layer(middleware::from_fn(trace_request))
        .layer(middleware::from_fn(request_id))
}

/// Fallback handler: a 404 problem naming the method and path that matched no route.
pub async fn route_not_found(method: Method, OriginalUri(uri): OriginalUri) -> ApiError {
    ApiError::NotFound(format!("no route matches {method} {}", uri.path()))
}

/// Middleware: one `http.request` span per request, child of the caller's `traceparent`, and
/// one log line per response: info, or error for a 5xx, with the cause of a 500 if it has one.
pub async fn trace_request(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned());
    let request_id = request
        .extensions()
        .get::<RequestId>()
        .map(ToString::to_string)
        .unwrap_or_default();
    // OpenTelemetry's convention: "METHOD /template", or the method alone when no route
    // matched (raw paths would make one span name per URL).
    let otel_name = route
        .as_ref()
        .map_or_else(|| method.to_string(), |route| format!("{method} {route}"));
    let span = tracing::info_span!(
        "http.request",
        otel.name = %otel_name,
        otel.kind = "server",
        otel.status_code = Empty,
        http.request.method = %method,
        http.route = route.as_deref(),
        url.path = %request.uri().path(),
        request_id = %request_id,
        // Filled in by the authenticated-user extractor, when the route has one.
        user_id = Empty,
        http.response.status_code = Empty,
    );
    platform_telemetry::propagation::set_parent(
        &span,
        platform_telemetry::propagation::extract_http_headers(request.headers()),
    );

    let started = Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    record_response(&span, started, &mut response);
    response
}

/// Middleware: a request still running after `limit` is dropped and answered with a 503
/// problem that states the limit.
pub async fn enforce_timeout(
    State(limit): State<Duration>,
    request: Request,
    next: Next,
) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_elapsed) => ApiError::ServiceUnavailable(format!(
            "the request did not complete within the {limit:?} limit and was abandoned"
        ))
        .into_response(),
    }
}

/// Middleware: 413 problem for a declared `Content-Length` over `limit`; bodies of unknown
/// length are capped at `limit` bytes as they are read (reading past it fails, and the
/// extractors answer 413).
pub async fn limit_body(State(limit): State<usize>, mut request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
    if let Some(length) = declared.filter(|&length| length > limit as u64) {
        return ApiError::PayloadTooLarge(format!(
            "the request body is {length} bytes, larger than the limit of {limit} bytes"
        ))
        .into_response();
    }
    request.extensions_mut().insert(BodyLimit(limit));
    // Also caps handlers that read the body without axum's extractors (which apply
    // `DefaultBodyLimit` themselves).
    let request = request.map(|body| Body::new(http_body_util::Limited::new(body, limit)));
    next.run(request).await
}

/// The most of a `text/plain` error body that is turned into a problem's detail.
const MAX_TEXT_DETAIL: usize = 4096;

/// Middleware: error responses (status >= 400) that are not problem+json become problems.
///
/// - No `Content-Type` (axum's 405, a handler's bare `StatusCode`): a problem for the status
///   with a generic detail (naming the method and path where that helps).
/// - `text/plain` (axum's own rejections, e.g. its `String` extractor's 413): the text becomes
///   the detail of a 4xx; the text of a 5xx is logged as its cause and the body is opaque.
/// - Any other type was chosen by the handler and is left alone.
///
/// The status and the other headers (`WWW-Authenticate`, `Retry-After`...) are kept.
pub async fn problem_for_bare_errors(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    let status = response.status();
    if status.as_u16() < 400 {
        return response;
    }
    let Some(body_kind) = BodyKind::of(response.headers()) else {
        return response;
    };

    let (parts, body) = response.into_parts();
    let mut cause = None;
    let detail = match body_kind {
        BodyKind::None => generic_detail(status, &method, &path),
        BodyKind::Text => {
            let text = axum::body::to_bytes(body, MAX_TEXT_DETAIL)
                .await
                .ok()
                .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_owned())
                .filter(|text| !text.is_empty());
            match text {
                Some(text) if status.is_server_error() => {
                    cause = Some(anyhow::anyhow!("{status} with the text body: {text}"));
                    generic_detail(status, &method, &path)
                }
                Some(text) => Some(text),
                None => generic_detail(status, &method, &path),
            }
        }
    };
    let problem = match detail {
        Some(detail) => Problem::new(status, detail),
        None => Problem::from_status(status),
    };

    let mut replaced = problem.into_response();
    *replaced.status_mut() = status;
    for (name, value) in &parts.headers {
        if ![
            header::CONTENT_TYPE,
            header::CONTENT_LENGTH,
            header::TRANSFER_ENCODING,
        ]
        .contains(name)
        {
            replaced.headers_mut().append(name.clone(), value.clone());
        }
    }
    replaced.extensions_mut().extend(parts.extensions);
    if let Some(cause) = cause
        && replaced.extensions().get::<InternalErrorCause>().is_none()
    {
        replaced
            .extensions_mut()
            .insert(InternalErrorCause(std::sync::Arc::new(cause)));
    }
    replaced
}

/// What an error response carries that [`problem_for_bare_errors`] replaces.
enum BodyKind {
    /// No `Content-Type`: an empty or untyped body.
    None,
    /// `text/plain`.
    Text,
}

impl BodyKind {
    fn of(headers: &HeaderMap) -> Option<Self> {
        let Some(content_type) = headers.get(header::CONTENT_TYPE) else {
            return Some(Self::None);
        };
        let content_type = content_type
            .to_str()
            .unwrap_or_default()
            .to_ascii_lowercase();
        content_type.starts_with("text/plain").then_some(Self::Text)
    }
}

/// A detail for an error status that came without one.
fn generic_detail(status: StatusCode, method: &Method, path: &str) -> Option<String> {
    let detail = match status {
        StatusCode::NOT_FOUND => format!("nothing was found at {path}"),
        // axum adds `Allow` outside the route's layers, so it is not visible here, but it is
        // on the response the client gets.
        StatusCode::METHOD_NOT_ALLOWED => format!(
            "method {method} is not allowed on {path}; the Allow header lists those that are"
        ),
        StatusCode::PAYLOAD_TOO_LARGE => {
            "the request body is larger than this endpoint accepts".to_owned()
        }
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            "the request body's media type is not accepted here".to_owned()
        }
        StatusCode::UNAUTHORIZED => "authentication is required".to_owned(),
        StatusCode::FORBIDDEN => "you are not allowed to do this".to_owned(),
        StatusCode::REQUEST_TIMEOUT => "the request took too long to arrive".to_owned(),
        StatusCode::TOO_MANY_REQUESTS => "too many requests; retry later".to_owned(),
        StatusCode::INTERNAL_SERVER_ERROR => INTERNAL_ERROR_DETAIL.to_owned(),
        StatusCode::BAD_GATEWAY => "an upstream service answered with an error".to_owned(),
        StatusCode::SERVICE_UNAVAILABLE => {
            "the service is temporarily unavailable; retry later".to_owned()
        }
        StatusCode::GATEWAY_TIMEOUT => "an upstream service did not answer in time".to_owned(),
        _ => return None,
    };
    Some(detail)
}

/// Ends a request's span: records the response status on it (a 5xx marks the span as an
/// error) and logs the one line per response, info, or error for a 5xx with the cause of a 500
/// if it has one (taken out of the response's extensions, so that it is logged once even if
/// another stack wraps this one). `started` is when the request arrived.
pub fn record_response<B>(span: &Span, started: Instant, response: &mut http::Response<B>) {
    // Microsecond resolution is plenty, and keeps log lines short (0.626, not 0.62600899...).
    let latency_ms = started.elapsed().as_micros() as f64 / 1000.0;
    let status = response.status();
    let cause = response.extensions_mut().remove::<InternalErrorCause>();

    span.record("http.response.status_code", status.as_u16());
    if status.is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
    span.in_scope(|| match cause {
        Some(cause) => tracing::error!(
            status = status.as_u16(),
            latency_ms,
            error = %cause,
            "request failed"
        ),
        None if status.is_server_error() => {
            tracing::error!(status = status.as_u16(), latency_ms, "request failed");
        }
        None => tracing::info!(status = status.as_u16(), latency_ms, "request served"),
    });
}
