//! A bare hyper reverse proxy (server connection + hyper-util's pooled legacy client,
//! nothing else), for reference: what the common Rust building blocks do with no gateway
//! logic at all.

use std::convert::Infallible;
use std::net::SocketAddr;

use http::{Request, Uri};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

/// Proxies every request on `listener` to `upstream`.
pub async fn serve(listener: TcpListener, upstream: SocketAddr) -> anyhow::Result<()> {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: Client<HttpConnector, Incoming> =
        Client::builder(TokioExecutor::new()).build(connector);
    let authority: http::uri::Authority = upstream.to_string().parse()?;
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let client = client.clone();
        let authority = authority.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<Incoming>| {
                let client = client.clone();
                let authority = authority.clone();
                async move {
                    let (mut parts, body) = request.into_parts();
                    let mut uri = http::uri::Parts::default();
                    uri.scheme = Some(http::uri::Scheme::HTTP);
                    uri.authority = Some(authority);
                    uri.path_and_query = parts.uri.path_and_query().cloned();
                    parts.uri = Uri::from_parts(uri).expect("valid URI");
                    parts.headers.remove(http::header::HOST);
                    let response = match client.request(Request::from_parts(parts, body)).await {
                        Ok(response) => response.map(http_body_util::Either::Left),
                        Err(_) => {
                            let mut response = http::Response::new(http_body_util::Either::Right(
                                http_body_util::Empty::new(),
                            ));
                            *response.status_mut() = http::StatusCode::BAD_GATEWAY;
                            response
                        }
                    };
                    Ok::<_, Infallible>(response)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
