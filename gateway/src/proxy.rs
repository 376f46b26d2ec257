//! Forwarding a request to its upstream and the answer back: pooled keep-alive HTTP/1
//! connections (each worker's own, see [`crate::pool`]), bodies streamed both ways (never buffered), hop-by-hop headers dropped both ways,
//! `X-Forwarded-*` set, retries of idempotent requests that could not connect, a circuit
//! breaker per upstream and a deadline per route.

use std::time::{Duration, Instant};

use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::request::Parts;
use axum::http::uri::{PathAndQuery, Scheme};
use axum::http::{Method, Request, Response, StatusCode, Uri};
use axum::response::IntoResponse;
use http_body_util::Limited;
use hyper::body::{Body as _, Incoming};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use platform_http::{ApiError, Problem};
use platform_resilience::{BreakerConfig, BreakerState};

use crate::auth::Identity;
use crate::body::{BodySlot, EdgeBody, UpstreamBody};
use crate::breaker::Breaker;
use crate::config::ProxySettings;
use crate::metrics::RouteMetrics;
use crate::pool::{ConnectError, Pool, PoolSettings, PooledBody, SendError};

/// `x-user-id`: the authenticated user, for upstream logs (never taken from the client).
pub const X_USER_ID: HeaderName = HeaderName::from_static("x-user-id");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// Headers that describe one connection, not the message (RFC 9110 7.6.1): never forwarded.
const HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    KEEP_ALIVE,
    PROXY_CONNECTION,
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// A service the gateway forwards to.
#[derive(Debug)]
pub struct Upstream {
    name: String,
    base_url: String,
    host: HeaderValue,
    breaker: Breaker,
    pool: Pool,
}

impl Upstream {
    /// An upstream at `base_url` (`http://host:port`, nothing after the authority), with an
    /// empty pool of connections.
    pub fn new(
        name: &str,
        base_url: &str,
        breaker: BreakerConfig,
        pool: PoolSettings,
    ) -> anyhow::Result<Self> {
        let variable = format!("GATEWAY__UPSTREAMS__{}", name.to_ascii_uppercase());
        let uri: Uri = base_url
            .parse()
            .map_err(|error| anyhow::anyhow!("{variable} `{base_url}` is not a URL: {error}"))?;
        if uri.scheme() != Some(&Scheme::HTTP) {
            anyhow::bail!("{variable} `{base_url}` must be an http:// URL");
        }
        if uri
            .path_and_query()
            .is_some_and(|path| path.as_str() != "/")
        {
            anyhow::bail!("{variable} `{base_url}` must not have a path");
        }
        let authority = uri
            .authority()
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("{variable} `{base_url}` has no host"))?;
        let host = HeaderValue::from_str(authority.as_str())
            .map_err(|error| anyhow::anyhow!("{variable} `{base_url}`: {error}"))?;
        Ok(Self {
            name: name.to_owned(),
            base_url: base_url.trim_end_matches('/').to_owned(),
            pool: Pool::new(authority, pool),
            host,
            breaker: Breaker::new(name, breaker),
        })
    }

    /// The upstream's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Its circuit breaker's state.
    pub fn breaker_state(&self) -> BreakerState {
        self.breaker.state()
    }

    /// This worker's connections to it.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }
}

/// A pooled HTTP client for the gateway's own calls to upstreams (readiness probes, OpenAPI
/// documents); proxied requests go through each upstream's [`Pool`].
pub type HttpClient = Client<HttpConnector, UpstreamBody>;

/// Builds the client for the gateway's own calls: HTTP/1.1 keep-alive, `TCP_NODELAY`, a
/// connect timeout.
pub fn http_client(settings: &ProxySettings) -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(Duration::from_millis(
        settings.connect_timeout_ms.max(1),
    )));
    connector.set_keepalive(Some(Duration::from_secs(60)));
    Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(settings.pool_idle_timeout_secs.max(1)))
        .build(connector)
}

/// What the proxy needs to know about the request besides its parts and body.
#[derive(Debug)]
pub struct Forward<'a> {
    /// The upstream.
    pub upstream: &'a Upstream,
    /// The route's deadline for the upstream's response head.
    pub timeout: Duration,
    /// The route's metrics (upstream latency).
    pub metrics: &'a RouteMetrics,
    /// The caller, when authenticated.
    pub identity: Option<&'a Identity>,
    /// The client's connection.
    pub peer: &'a Peer,
    /// Whether `X-Forwarded-*` from the client are kept (a trusted proxy is in front).
    pub trust_forwarded: bool,
    /// Whether a streamed body must be capped at `body_limit` as it is read.
    pub cap_body: Option<usize>,
}

/// The client end of a connection, with what every request on it needs precomputed.
#[derive(Clone, Debug)]
pub struct Peer {
    /// The client's socket address.
    pub addr: std::net::SocketAddr,
    /// Its IP address as a header value (`X-Forwarded-For`).
    pub address_header: HeaderValue,
}

impl Peer {
    /// The peer at `addr`.
    pub fn new(addr: std::net::SocketAddr) -> Self {
        Self {
            addr,
            address_header: HeaderValue::try_from(addr.ip().to_string())
                .expect("an IP address is a valid header value"),
        }
    }
}

/// Forwards requests, with retries and breakers.
#[derive(Debug)]
pub struct Proxy {
    client: HttpClient,
    retries: u32,
    retry_backoff: Duration,
}

/// Why no upstream response came back.
enum ProxyError {
    /// The breaker is open.
    Open(Duration),
    /// No connection could be established.
    Connect(ConnectError),
    /// The request body broke the limit while it was streamed.
    BodyTooLarge(usize),
    /// The client's body failed (the client went away mid-upload).
    ClientBody(hyper::Error),
    /// The connection failed after the request was sent.
    Upstream(hyper::Error),
}

impl Proxy {
    /// A proxy with its own pooled client for the gateway's own calls.
    pub fn new(settings: &ProxySettings) -> Self {
        Self {
            client: http_client(settings),
            retries: settings.retries,
            retry_backoff: Duration::from_millis(settings.retry_backoff_ms),
        }
    }

    /// The pooled client for readiness probes and the OpenAPI fetcher.
    pub fn client(&self) -> &HttpClient {
        &self.client
    }

    /// Sends the request upstream and returns the upstream's response (streaming), or the
    /// gateway's problem when there is none: 503 (breaker open), 502 (unreachable or broken),
    /// 504 (deadline), 413 (streamed body over the limit).
    pub async fn forward(
        &self,
        parts: &Parts,
        body: Incoming,
        forward: &Forward<'_>,
    ) -> Response<EdgeBody> {
        let upstream = forward.upstream;
        let path_and_query = parts
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        // Origin form: the connection is the upstream's, `Host` names it.
        let uri = Uri::from(path_and_query);
        let idempotent = is_idempotent(&parts.method);
        let body = if body.is_end_stream() {
            UpstreamBody::Empty
        } else {
            match forward.cap_body {
                Some(limit) => UpstreamBody::Capped(Limited::new(body, limit)),
                None => UpstreamBody::Client(body),
            }
        };
        let mut source = BodySource::new(body, idempotent && self.retries > 0);

        let started = Instant::now();
        let attempts = async {
            let mut attempt = 0u32;
            loop {
                let call = BreakerCall::start(&upstream.breaker).map_err(ProxyError::Open)?;
                let mut request = Request::new(source.body());
                *request.method_mut() = parts.method.clone();
                *request.uri_mut() = uri.clone();
                *request.headers_mut() = upstream_headers(&parts.headers, forward);
                match upstream.pool.send(request).await {
                    Ok(response) => {
                        if matches!(
                            response.status(),
                            StatusCode::BAD_GATEWAY
                                | StatusCode::SERVICE_UNAVAILABLE
                                | StatusCode::GATEWAY_TIMEOUT
                        ) {
                            call.failure();
                        } else {
                            call.success();
                        }
                        return Ok(response);
                    }
                    Err(SendError::Connect(error)) => {
                        call.failure();
                        if idempotent && attempt < self.retries && source.can_retry() {
                            attempt += 1;
                            let pause = platform_resilience::backoff(
                                self.retry_backoff,
                                attempt,
                                Duration::from_secs(1),
                            );
                            tracing::debug!(upstream = upstream.name(), attempt, ?pause, %error,
                                "upstream unreachable; retrying");
                            tokio::time::sleep(pause).await;
                            continue;
                        }
                        return Err(ProxyError::Connect(error));
                    }
                    Err(SendError::Exchange(error)) => {
                        if let Some(limit) = body_limit_error(&error, forward.cap_body) {
                            call.success();
                            return Err(ProxyError::BodyTooLarge(limit));
                        }
                        if is_client_body_error(&error) {
                            call.success();
                            return Err(ProxyError::ClientBody(error));
                        }
                        call.failure();
                        return Err(ProxyError::Upstream(error));
                    }
                }
            }
        };
        let outcome = tokio::time::timeout(forward.timeout, attempts).await;
        match outcome {
            Ok(Ok(response)) => {
                forward.metrics.upstream_duration(started.elapsed());
                into_client_response(response)
            }
            Ok(Err(error)) => error_response(upstream, error).map(EdgeBody::Local),
            Err(_elapsed) => {
                upstream.breaker.failure();
                ApiError::GatewayTimeout(format!(
                    "the upstream `{}` did not answer within {} ms",
                    upstream.name(),
                    forward.timeout.as_millis()
                ))
                .into_response()
                .map(EdgeBody::Local)
            }
        }
    }
}

/// Reports the outcome of one call to the breaker. When the call is the half-open breaker's
/// trial and is abandoned without an outcome (the client went away), the breaker opens again
/// rather than waiting forever for a trial that will never report. Other abandoned calls say
/// nothing (one that started before the breaker opened must not spoil the trial of another).
struct BreakerCall<'a> {
    breaker: &'a Breaker,
    /// This call is the trial of a half-open breaker (only the trial is let through then).
    trial: bool,
    reported: bool,
}

impl<'a> BreakerCall<'a> {
    fn start(breaker: &'a Breaker) -> Result<Self, Duration> {
        breaker
            .acquire()
            .map(|()| Self {
                breaker,
                trial: breaker.state() == BreakerState::HalfOpen,
                reported: false,
            })
            .map_err(|rejected| rejected.retry_after)
    }

    fn success(mut self) {
        self.reported = true;
        self.breaker.success();
    }

    fn failure(mut self) {
        self.reported = true;
        self.breaker.failure();
    }
}

impl Drop for BreakerCall<'_> {
    fn drop(&mut self) {
        if !self.reported && self.trial && self.breaker.state() == BreakerState::HalfOpen {
            self.breaker.failure();
        }
    }
}

fn error_response(upstream: &Upstream, error: ProxyError) -> axum::response::Response {
    match error {
        ProxyError::Open(retry_after) => {
            let mut response = ApiError::ServiceUnavailable(format!(
                "the upstream `{}` is failing; requests to it are refused for now",
                upstream.name()
            ))
            .into_response();
            let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
            response
        }
        ProxyError::Connect(error) => {
            tracing::warn!(upstream = upstream.name(), error = %error_chain(&error),
                "upstream unreachable");
            Problem::new(
                StatusCode::BAD_GATEWAY,
                format!("the upstream `{}` is unreachable", upstream.name()),
            )
            .into_response()
        }
        ProxyError::Upstream(error) => {
            tracing::warn!(upstream = upstream.name(), error = %error_chain(&error),
                "upstream request failed");
            Problem::new(
                StatusCode::BAD_GATEWAY,
                format!(
                    "the upstream `{}` failed to answer the request",
                    upstream.name()
                ),
            )
            .into_response()
        }
        ProxyError::BodyTooLarge(limit) => ApiError::PayloadTooLarge(format!(
            "the request body is larger than the limit of {limit} bytes"
        ))
        .into_response(),
        ProxyError::ClientBody(error) => ApiError::BadRequest(format!(
            "the request body could not be read: {}",
            error_chain(&error)
        ))
        .into_response(),
    }
}

/// The error and its causes, `: `-separated.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The limit, if the request failed because the streamed body passed it.
fn body_limit_error(error: &hyper::Error, limit: Option<usize>) -> Option<usize> {
    let limit = limit?;
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(cause) = source {
        if cause.is::<http_body_util::LengthLimitError>() {
            return Some(limit);
        }
        source = cause.source();
    }
    None
}

/// Whether the request failed because the client's body did (not the upstream).
fn is_client_body_error(error: &hyper::Error) -> bool {
    error.is_user()
}

/// GET, HEAD, OPTIONS, PUT, DELETE: repeating them has the effect of doing them once
/// (RFC 9110 9.2.2), so a request that never reached the upstream may be sent again.
fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE
    )
}

/// The headers sent upstream: the client's, minus hop-by-hop ones and those the gateway owns
/// (`Host`, `x-user-id`, `X-Forwarded-*` unless trusted), plus the gateway's.
fn upstream_headers(incoming: &HeaderMap, forward: &Forward<'_>) -> HeaderMap {
    let listed = connection_listed(incoming);
    let mut headers = HeaderMap::with_capacity(incoming.len() + 6);
    for (name, value) in incoming {
        if is_hop_by_hop(name)
            || *name == header::HOST
            || *name == header::EXPECT
            || *name == X_USER_ID
            || (!forward.trust_forwarded
                && (*name == X_FORWARDED_FOR
                    || *name == X_FORWARDED_PROTO
                    || *name == X_FORWARDED_HOST))
            || listed.as_ref().is_some_and(|listed| listed.contains(name))
        {
            continue;
        }
        headers.append(name.clone(), value.clone());
    }
    headers.insert(header::HOST, forward.upstream.host.clone());
    let forwarded_for = match headers.get(X_FORWARDED_FOR).map(HeaderValue::to_str) {
        // Appended to what a trusted proxy in front already recorded.
        Some(Ok(earlier)) if forward.trust_forwarded => {
            HeaderValue::try_from(format!("{earlier}, {}", forward.peer.addr.ip())).ok()
        }
        _ => None,
    };
    headers.insert(
        X_FORWARDED_FOR,
        forwarded_for.unwrap_or_else(|| forward.peer.address_header.clone()),
    );
    if !headers.contains_key(X_FORWARDED_PROTO) {
        headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
    }
    if !headers.contains_key(X_FORWARDED_HOST)
        && let Some(host) = incoming.get(header::HOST)
    {
        headers.insert(X_FORWARDED_HOST, host.clone());
    }
    if let Some(identity) = forward.identity {
        headers.insert(X_USER_ID, identity.user_id_header.clone());
    }
    // The upstream's spans become children of the gateway's request span. Without one
    // (tracing filtered out), the client's `traceparent`, copied above, carries the trace on.
    platform_telemetry::propagation::inject_http_headers(&tracing::Span::current(), &mut headers);
    headers
}

fn is_hop_by_hop(name: &HeaderName) -> bool {
    HOP_BY_HOP.contains(name)
}

/// The header names a `Connection` header lists (beyond `close` and `keep-alive`), which are
/// hop-by-hop too; `None` when there are none (the usual case: no allocation).
fn connection_listed(headers: &HeaderMap) -> Option<Vec<HeaderName>> {
    let mut listed: Option<Vec<HeaderName>> = None;
    for value in headers.get_all(header::CONNECTION) {
        let Ok(value) = value.to_str() else { continue };
        for token in value.split(',').map(str::trim) {
            if token.is_empty()
                || token.eq_ignore_ascii_case("close")
                || token.eq_ignore_ascii_case("keep-alive")
            {
                continue;
            }
            if let Ok(name) = HeaderName::from_bytes(token.as_bytes()) {
                listed.get_or_insert_with(Vec::new).push(name);
            }
        }
    }
    listed
}

/// The upstream's response for the client: hop-by-hop headers dropped, the body streamed.
fn into_client_response(response: Response<PooledBody>) -> Response<EdgeBody> {
    let mut response = response.map(EdgeBody::Upstream);
    let headers = response.headers_mut();
    if let Some(listed) = connection_listed(headers) {
        for name in listed {
            headers.remove(name);
        }
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
    response
}

/// The request body, handed to each attempt. A body that has not been polled yet (the
/// connection was never established) can be sent again.
enum BodySource {
    /// No body: every attempt gets an empty one.
    Empty,
    /// A body that may be retried.
    Shared(BodySlot),
    /// A body sent once.
    Once(Option<UpstreamBody>),
}

impl BodySource {
    fn new(body: UpstreamBody, retryable: bool) -> Self {
        if body.is_end_stream() {
            Self::Empty
        } else if retryable {
            Self::Shared(BodySlot::new(body))
        } else {
            Self::Once(Some(body))
        }
    }

    fn body(&mut self) -> UpstreamBody {
        match self {
            Self::Empty => UpstreamBody::Empty,
            Self::Shared(slot) => UpstreamBody::Slot(slot.attempt()),
            Self::Once(body) => body.take().unwrap_or_default(),
        }
    }

    fn can_retry(&self) -> bool {
        match self {
            Self::Empty => true,
            Self::Shared(slot) => slot.is_untouched(),
            Self::Once(body) => body.is_some(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool() -> PoolSettings {
        ProxySettings::default().pool_settings()
    }

    #[test]
    fn hop_by_hop_and_connection_listed_headers_are_not_forwarded() {
        let upstream = Upstream::new(
            "order",
            "http://127.0.0.1:1",
            BreakerConfig::default(),
            pool(),
        )
        .unwrap();
        let metrics = RouteMetrics::new("r", "order");
        let forward = Forward {
            upstream: &upstream,
            timeout: Duration::from_secs(1),
            metrics: &metrics,
            identity: None,
            peer: &Peer::new("10.0.0.7:5555".parse().unwrap()),
            trust_forwarded: false,
            cap_body: None,
        };
        let mut incoming = HeaderMap::new();
        for (name, value) in [
            ("connection", "keep-alive, x-secret-hop"),
            ("keep-alive", "timeout=5"),
            ("x-secret-hop", "1"),
            ("te", "trailers"),
            ("upgrade", "websocket"),
            ("proxy-authorization", "Basic x"),
            ("host", "shop.example.com"),
            ("x-user-id", "spoofed"),
            ("x-forwarded-for", "1.2.3.4"),
            ("accept", "application/json"),
            ("x-custom", "kept"),
        ] {
            incoming.append(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        let headers = upstream_headers(&incoming, &forward);
        for gone in [
            "connection",
            "keep-alive",
            "x-secret-hop",
            "te",
            "upgrade",
            "proxy-authorization",
            "x-user-id",
        ] {
            assert!(!headers.contains_key(gone), "{gone} was forwarded");
        }
        assert_eq!(headers["host"], "127.0.0.1:1");
        assert_eq!(headers["x-forwarded-host"], "shop.example.com");
        assert_eq!(
            headers["x-forwarded-for"], "10.0.0.7",
            "not trusted: replaced"
        );
        assert_eq!(headers["x-forwarded-proto"], "http");
        assert_eq!(headers["accept"], "application/json");
        assert_eq!(headers["x-custom"], "kept");

        let trusted = Forward {
            trust_forwarded: true,
            ..forward
        };
        assert_eq!(
            upstream_headers(&incoming, &trusted)["x-forwarded-for"],
            "1.2.3.4, 10.0.0.7"
        );
    }

    #[test]
    fn an_upstream_url_must_be_plain_http_without_a_path() {
        let config = BreakerConfig::default();
        assert!(Upstream::new("user", "http://user:8081", config, pool()).is_ok());
        assert!(Upstream::new("user", "http://user:8081/", config, pool()).is_ok());
        let error = Upstream::new("user", "https://user", config, pool()).unwrap_err();
        assert!(
            error.to_string().contains("GATEWAY__UPSTREAMS__USER"),
            "{error}"
        );
        assert!(Upstream::new("user", "http://user/api", config, pool()).is_err());
        assert!(Upstream::new("user", "not a url", config, pool()).is_err());
    }
}
