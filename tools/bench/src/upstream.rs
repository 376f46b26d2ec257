//! The upstream every target ends at: a bare hyper HTTP/1.1 server answering every request
//! with the same small JSON document (what a product read looks like), and a JWKS server.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{Request, Response, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// The body of every answer (86 bytes).
const PRODUCT: &[u8] =
    br#"{"id":"0195b4d2-8a3e-7c1f-9d2a-3b4c5d6e7f80","name":"Widget","price_minor":1299,"cur":"EUR"}"#;

/// What the gateway fetches to build its merged document.
const OPENAPI: &[u8] = br#"{"openapi":"3.1.0","info":{"title":"bench","version":"1"},"paths":{}}"#;

/// Serves the fixed answer on `listener` until the process ends.
pub async fn serve(listener: TcpListener) -> anyhow::Result<()> {
    serve_with(listener, |request| {
        let body = if request.uri().path() == "/openapi.json" {
            OPENAPI
        } else {
            PRODUCT
        };
        let mut response = Response::new(Full::new(Bytes::from_static(body)));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        response
    })
    .await
}

/// Serves `body` as JSON at any path (the stand-in JWKS of the gateway).
pub async fn serve_json(listener: TcpListener, body: Bytes) -> anyhow::Result<()> {
    serve_with(listener, move |_| {
        let mut response = Response::new(Full::new(body.clone()));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        response
    })
    .await
}

async fn serve_with<F>(listener: TcpListener, answer: F) -> anyhow::Result<()>
where
    F: Fn(&Request<Incoming>) -> Response<Full<Bytes>> + Clone + Send + Sync + 'static,
{
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let answer = answer.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<Incoming>| {
                let response = answer(&request);
                async move { Ok::<_, Infallible>(response) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Binds 127.0.0.1 on a free port.
pub async fn bind() -> anyhow::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    Ok((listener, addr))
}
