//! Tower layers that give tonic servers and clients the same telemetry as HTTP: a span per call
//! whose parent is the caller's (via `traceparent` in the metadata), and call counts and
//! durations by method and status code.
//!
//! Server: `Server::builder().layer(GrpcServerLayer).add_service(...)`.
//! Client: `ServiceBuilder::new().layer(GrpcClientLayer).service(channel)`.
//!
//! The status code is read from the response headers, where tonic puts it for every error of a
//! unary call; a call whose headers carry no `grpc-status` counts as OK.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use tower::{Layer, Service};
use tracing::Instrument;

use crate::metrics::{GRPC_REQUEST_DURATION, GRPC_REQUESTS_TOTAL, record};
use crate::propagation::{extract_http_headers, inject_http_headers, set_parent};

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// `rpc.service` and `rpc.method` of a call's path, `/package.Service/Method`, as
/// OpenTelemetry's RPC conventions name them (the span's name is the path without its first
/// slash).
fn rpc_names(path: &str) -> (&str, &str) {
    path.trim_start_matches('/')
        .rsplit_once('/')
        .unwrap_or(("", path))
}

/// Server-side gRPC telemetry: span with the remote parent, metrics by method and code.
#[derive(Clone, Copy, Debug, Default)]
pub struct GrpcServerLayer;

impl<S> Layer<S> for GrpcServerLayer {
    type Service = GrpcServer<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcServer { inner }
    }
}

/// The service [`GrpcServerLayer`] wraps around a tonic server.
#[derive(Clone, Debug)]
pub struct GrpcServer<S> {
    inner: S,
}

impl<S, B, R> Service<http::Request<B>> for GrpcServer<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let method = request.uri().path().to_owned();
        let (service, short) = rpc_names(&method);
        let span = tracing::info_span!(
            "grpc.server",
            otel.name = %method.trim_start_matches('/'),
            otel.kind = "server",
            rpc.system = "grpc",
            rpc.service = service,
            rpc.method = short,
            rpc.grpc.status_code = tracing::field::Empty,
        );
        set_parent(&span, extract_http_headers(request.headers()));
        // The ready service handles this call; a fresh clone takes its place for the next one.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let started = Instant::now();
        let future = span.in_scope(|| inner.call(request));
        Box::pin(
            async move {
                let result = future.await;
                let code = match &result {
                    Ok(response) => response
                        .headers()
                        .get("grpc-status")
                        .and_then(|value| value.to_str().ok())
                        .unwrap_or("0")
                        .to_owned(),
                    // A transport-level failure: tonic reports it as UNKNOWN.
                    Err(_) => "2".to_owned(),
                };
                if let Ok(code) = code.parse::<i64>() {
                    tracing::Span::current().record("rpc.grpc.status_code", code);
                }
                record(
                    GRPC_REQUESTS_TOTAL,
                    GRPC_REQUEST_DURATION,
                    [("method", method), ("code", code)],
                    started.elapsed(),
                );
                result
            }
            .instrument(span),
        )
    }
}

/// Client-side gRPC (or HTTP) telemetry: a client span whose context travels in `traceparent`.
#[derive(Clone, Copy, Debug, Default)]
pub struct GrpcClientLayer;

impl<S> Layer<S> for GrpcClientLayer {
    type Service = GrpcClient<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcClient { inner }
    }
}

/// The service [`GrpcClientLayer`] wraps around a channel.
#[derive(Clone, Debug)]
pub struct GrpcClient<S> {
    inner: S,
}

impl<S, B> Service<http::Request<B>> for GrpcClient<S>
where
    S: Service<http::Request<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let method = request.uri().path();
        let (service, short) = rpc_names(method);
        let span = tracing::info_span!(
            "grpc.client",
            otel.name = %method.trim_start_matches('/'),
            otel.kind = "client",
            rpc.system = "grpc",
            rpc.service = service,
            rpc.method = short,
        );
        inject_http_headers(&span, request.headers_mut());
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let future = span.in_scope(|| inner.call(request));
        Box::pin(future.instrument(span))
    }
}
