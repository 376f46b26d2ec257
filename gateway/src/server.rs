//! The gateway's HTTP server: HTTP/1.1 keep-alive connections served by hyper directly, so
//! that a proxied request goes through one hand-written service rather than a stack of boxed
//! middleware (the gateway's overhead is its whole point of measurement). The gateway's own
//! endpoints (`/health/*`, `/metrics`, `/openapi.json`, `/docs`) are an ordinary axum router
//! behind it.
//!
//! Every response, whatever produced it, carries the request's `x-request-id` (the client's
//! when sane, else a new UUIDv7, also sent upstream) and the security headers; CORS (when
//! configured) is tower-http's layer around both.
//!
//! Clients speak HTTP/1.1 to the gateway (TLS and HTTP/2 end at the load balancer in front);
//! upstreams are spoken to over pooled HTTP/1.1 keep-alive connections.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use axum::response::IntoResponse as _;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use platform_http::{Problem, RequestId, X_REQUEST_ID};
use tokio::net::TcpListener;
use tower::{Layer as _, ServiceExt as _};
use tower_http::cors::CorsLayer;

use crate::body::EdgeBody;
use crate::metrics::RouteMetrics;
use crate::pipeline::Pipeline;
use crate::proxy::Peer;

/// The API's Content-Security-Policy: it serves JSON, which needs no script, style or frame.
/// `/docs` sets its own, which is kept.
pub const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// The limits of a request's head, answered with a 431 problem like every other refusal.
///
/// hyper refuses a head larger than its read buffer, or with more fields than it parses, with
/// a bare 431 and a closed connection. Its buffer is four times the byte limit (see
/// [`HeaderLimits::hyper_buffer`]), and it parses up to 100 fields (its default) or four times
/// the field limit when that is 100 or more (see [`HeaderLimits::hyper_fields`]), so that a
/// head between these limits and hyper's gets a problem with the request id and the security
/// headers, and is counted.
#[derive(Clone, Copy, Debug)]
pub struct HeaderLimits {
    /// The largest head in bytes (request line and fields).
    pub max_bytes: usize,
    /// The most fields.
    pub max_count: usize,
}

impl HeaderLimits {
    /// hyper's read buffer: the hard limit past which a head gets hyper's own bare 431.
    pub fn hyper_buffer(self) -> usize {
        (self.max_bytes.saturating_mul(4)).max(8192)
    }

    /// hyper's limit on the number of fields parsed, when not its default of 100. Past 100,
    /// hyper allocates and fills a table of that many fields for every request (a tenth of
    /// the proxy's time in user space at the default limit of 100 with a limit of 400), so
    /// the default is kept while it leaves room above the gateway's limit.
    pub fn hyper_fields(self) -> Option<usize> {
        (self.max_count >= HYPER_DEFAULT_FIELDS).then(|| self.max_count.saturating_mul(4))
    }

    /// Why a request's head is refused, if it is.
    fn refusal<B>(self, request: &Request<B>) -> Option<String> {
        let headers = request.headers();
        if headers.len() > self.max_count {
            return Some(format!(
                "the request has {} header fields; at most {} are accepted",
                headers.len(),
                self.max_count
            ));
        }
        // `METHOD target HTTP/1.1\r\n`, then `name: value\r\n` per field.
        let line = request.method().as_str().len()
            + request
                .uri()
                .path_and_query()
                .map_or(1, |target| target.as_str().len())
            + 12;
        let fields: usize = headers
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len() + 4)
            .sum();
        let size = line + fields;
        (size > self.max_bytes).then(|| {
            format!(
                "the request line and header fields take {size} bytes; at most {} are accepted",
                self.max_bytes
            )
        })
    }
}

/// How many header fields hyper parses unless told otherwise.
const HYPER_DEFAULT_FIELDS: usize = 100;

/// Everything a connection needs.
pub struct Edge {
    /// The API.
    pub pipeline: Arc<Pipeline>,
    /// The gateway's own endpoints.
    pub own: Router,
    /// CORS, when origins are configured.
    pub cors: Option<CorsLayer>,
    /// `Strict-Transport-Security`, when configured.
    pub hsts: Option<HeaderValue>,
    /// The limits of a request's head.
    pub header_limits: HeaderLimits,
    /// The metrics of requests refused before routing (their heads were too large).
    pub refused: RouteMetrics,
}

impl std::fmt::Debug for Edge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Edge").finish_non_exhaustive()
    }
}

/// Whether a path is one of the gateway's own endpoints (never forwarded).
fn is_own(path: &str) -> bool {
    path == "/metrics"
        || path == crate::openapi::OPENAPI_PATH
        || path == crate::openapi::DOCS_PATH
        || path.starts_with("/docs/")
        || path.starts_with("/health/")
}

/// Serves `edge` on `listener` until `shutdown` resolves; then stops accepting, and waits up
/// to `drain_timeout` for in-flight requests (idle keep-alive connections are closed at once).
pub async fn serve(
    listener: TcpListener,
    edge: Arc<Edge>,
    shutdown: impl Future<Output = ()> + Send + 'static,
    drain_timeout: Duration,
) {
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30))
        .max_buf_size(edge.header_limits.hyper_buffer());
    if let Some(fields) = edge.header_limits.hyper_fields() {
        http.max_headers(fields);
    }
    tokio::pin!(shutdown);
    loop {
        let (stream, addr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, usually: back off instead of spinning.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = EdgeService {
            edge: edge.clone(),
            peer: Arc::new(Peer::new(addr)),
        };
        let connection =
            http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tracing::info!(
        ?drain_timeout,
        "stopped accepting connections; draining in-flight requests"
    );
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all in-flight requests completed"),
        () = tokio::time::sleep(drain_timeout) => tracing::warn!(
            ?drain_timeout,
            "gave up waiting for in-flight requests after the drain deadline"
        ),
    }
}

/// The service of one connection.
#[derive(Clone)]
struct EdgeService {
    edge: Arc<Edge>,
    peer: Arc<Peer>,
}

type EdgeFuture = Pin<Box<dyn Future<Output = Result<Response<EdgeBody>, Infallible>> + Send>>;

impl tower::Service<Request<Incoming>> for EdgeService {
    type Response = Response<EdgeBody>;
    type Error = Infallible;
    type Future = EdgeFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: Request<Incoming>) -> EdgeFuture {
        let edge = self.edge.clone();
        let peer = self.peer.clone();
        Box::pin(async move {
            // The client's id when it is sane, else a new one (a UUIDv7, as
            // `platform_http::RequestId::generate` makes them); the upstream gets it too.
            let sent = request
                .headers()
                .get(X_REQUEST_ID)
                .filter(|value| RequestId::parse(value.as_bytes()).is_some())
                .cloned();
            let id_header = match sent {
                Some(header) => header,
                None => {
                    let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
                    let id = uuid::Uuid::now_v7().hyphenated();
                    let header = HeaderValue::from_str(id.encode_lower(&mut text))
                        .expect("a UUID is a valid header value");
                    request.headers_mut().insert(X_REQUEST_ID, header.clone());
                    header
                }
            };
            let refusal = edge.header_limits.refusal(&request);
            let mut response = match (refusal, &edge.cors) {
                (Some(detail), _) => {
                    tracing::info!(
                        request_id = %id_header.to_str().unwrap_or_default(),
                        %detail,
                        "request refused: header fields too large"
                    );
                    edge.refused
                        .count(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
                    Problem::new(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, detail)
                        .into_response()
                        .map(EdgeBody::Local)
                }
                (None, Some(cors)) => {
                    let dispatch = Dispatch {
                        edge: edge.clone(),
                        peer,
                        id: id_header.clone(),
                    };
                    cors.layer(dispatch)
                        .oneshot(request)
                        .await
                        .unwrap_or_else(|never| match never {})
                }
                (None, None) => dispatch(&edge, &peer, &id_header, request).await,
            };
            let headers = response.headers_mut();
            headers.insert(X_REQUEST_ID, id_header);
            headers.insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
            headers.insert(
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            );
            headers
                .entry(header::CONTENT_SECURITY_POLICY)
                .or_insert_with(|| HeaderValue::from_static(API_CSP));
            if let Some(hsts) = &edge.hsts {
                headers.insert(header::STRICT_TRANSPORT_SECURITY, hsts.clone());
            }
            Ok(response)
        })
    }
}

/// Own endpoints to the router, everything else to the pipeline.
async fn dispatch(
    edge: &Edge,
    peer: &Peer,
    id: &HeaderValue,
    mut request: Request<Incoming>,
) -> Response<EdgeBody> {
    if is_own(request.uri().path()) {
        if let Some(id) = RequestId::parse(id.as_bytes()) {
            request.extensions_mut().insert(id);
        }
        let request = request.map(axum::body::Body::new);
        return match edge.own.clone().oneshot(request).await {
            Ok(response) => response.map(EdgeBody::Local),
            Err(never) => match never {},
        };
    }
    // Graphic ASCII by construction (parsed or generated).
    let id = id.to_str().unwrap_or_default();
    edge.pipeline.handle(request, peer, id).await
}

/// [`dispatch`] as a tower service, for the CORS layer to wrap.
#[derive(Clone)]
struct Dispatch {
    edge: Arc<Edge>,
    peer: Arc<Peer>,
    id: HeaderValue,
}

impl tower::Service<Request<Incoming>> for Dispatch {
    type Response = Response<EdgeBody>;
    type Error = Infallible;
    type Future = EdgeFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Incoming>) -> EdgeFuture {
        let Self { edge, peer, id } = self.clone();
        Box::pin(async move { Ok(dispatch(&edge, &peer, &id, request).await) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hyper_parses_more_fields_than_the_gateway_accepts_on_its_cheap_path_when_it_can() {
        let limits = |max_count| HeaderLimits {
            max_bytes: 16 * 1024,
            max_count,
        };
        // Below 100, hyper's default table of 100 fields on the stack leaves the room.
        assert_eq!(limits(64).hyper_fields(), None);
        assert_eq!(limits(99).hyper_fields(), None);
        // From 100, hyper is told to parse four times as many.
        assert_eq!(limits(100).hyper_fields(), Some(400));
        assert_eq!(limits(16 * 1024).hyper_buffer(), 64 * 1024);
    }
}
