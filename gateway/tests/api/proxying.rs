//! Forwarding: methods, paths, queries, headers and bodies, both ways.

use std::time::Duration;

use futures::StreamExt as _;
use reqwest::Method;
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::helpers::{echo_setup, problem};

#[tokio::test]
async fn methods_queries_and_headers_reach_the_upstream_and_its_answer_comes_back() {
    let setup = echo_setup(|_| {}).await;
    for method in [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
    ] {
        let response = setup
            .gateway
            .request(method.clone(), "/api/v1/echo/items/7?colour=red&size=m%20l")
            .header("x-custom", "kept")
            .header("x-want-status", "201")
            .body(if method == Method::GET {
                ""
            } else {
                "{\"a\":1}"
            })
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "{method}: the upstream's status");
        assert_eq!(response.headers()["x-upstream"], "echo");
        let echoed: Value = response.json().await.unwrap();
        assert_eq!(echoed["method"], method.as_str());
        assert_eq!(
            echoed["path_and_query"],
            "/api/v1/echo/items/7?colour=red&size=m%20l"
        );
        assert_eq!(echoed["headers"]["x-custom"][0], "kept");
        let expected_body = if method == Method::GET {
            ""
        } else {
            "{\"a\":1}"
        };
        assert_eq!(echoed["body"], expected_body);
    }
    assert_eq!(setup.upstream.hits(), 5);
    assert_eq!(setup.upstream.last_seen().method, "DELETE");
    assert_eq!(
        setup.upstream.last_seen().path_and_query,
        "/api/v1/echo/items/7?colour=red&size=m%20l"
    );
}

#[tokio::test]
async fn hop_by_hop_headers_are_dropped_both_ways() {
    let setup = echo_setup(|_| {}).await;
    // A raw request, so that nothing between the test and the gateway edits its headers.
    let mut stream = tokio::net::TcpStream::connect(setup.gateway.addr)
        .await
        .unwrap();
    stream
        .write_all(
            b"GET /api/v1/echo/hop HTTP/1.1\r\n\
              Host: shop.example.com\r\n\
              Connection: close, x-client-hop\r\n\
              X-Client-Hop: secret\r\n\
              Keep-Alive: timeout=5\r\n\
              TE: trailers\r\n\
              Upgrade: websocket\r\n\
              Proxy-Authorization: Basic Zm9vOmJhcg==\r\n\
              X-End-To-End: kept\r\n\
              \r\n",
        )
        .await
        .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let raw = String::from_utf8_lossy(&raw).to_ascii_lowercase();
    let (head, _) = raw.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("x-upstream: echo"), "{head}");
    for hop in ["x-upstream-hop", "keep-alive"] {
        assert!(
            !head.contains(hop),
            "the upstream's `{hop}` reached the client: {head}"
        );
    }

    let seen = setup.upstream.last_seen();
    for hop in [
        "x-client-hop",
        "keep-alive",
        "te",
        "upgrade",
        "proxy-authorization",
    ] {
        assert!(
            !seen.headers.contains_key(hop),
            "the client's `{hop}` reached the upstream"
        );
    }
    assert_eq!(seen.headers["x-end-to-end"], "kept");
}

#[tokio::test]
async fn forwarded_headers_name_the_client_and_the_host_it_asked_for() {
    let setup = echo_setup(|_| {}).await;
    let response = setup
        .gateway
        .get("/api/v1/echo")
        .header("x-forwarded-for", "6.6.6.6")
        .header("x-user-id", "00000000-0000-0000-0000-000000000000")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let seen = setup.upstream.last_seen();
    assert_eq!(
        seen.headers["x-forwarded-for"], "127.0.0.1",
        "the client's own claim is replaced when no proxy is trusted"
    );
    assert_eq!(seen.headers["x-forwarded-proto"], "http");
    assert_eq!(
        seen.headers["x-forwarded-host"],
        setup.gateway.addr.to_string().as_str()
    );
    assert_eq!(
        seen.headers["host"],
        setup.upstream.addr.to_string().as_str()
    );
    assert!(
        !seen.headers.contains_key("x-user-id"),
        "a client cannot claim an identity"
    );
}

#[tokio::test]
async fn large_bodies_stream_through_both_ways() {
    let setup = echo_setup(|config| config.http.body_limit_bytes = 64 * 1024 * 1024).await;
    let size = 16 * 1024 * 1024 + 5;

    let response = setup
        .gateway
        .get(&format!("/api/v1/echo/large?bytes={size}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = response.bytes().await.unwrap();
    assert_eq!(body.len(), size);
    assert!(body.iter().all(|byte| *byte == b'x'));

    // Uploaded in chunks of unknown total length (chunked), echoed back as it arrives.
    let chunks =
        (0..256).map(|index| Ok::<_, std::io::Error>(vec![(index % 251) as u8; 32 * 1024]));
    let expected: Vec<u8> = (0..256)
        .flat_map(|index| vec![(index % 251) as u8; 32 * 1024])
        .collect();
    let response = setup
        .gateway
        .request(Method::PUT, "/api/v1/echo/echo-body")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let echoed = response.bytes().await.unwrap();
    assert_eq!(echoed.len(), expected.len());
    assert!(echoed == expected, "the body came back intact");
}

#[tokio::test]
async fn a_response_reaches_the_client_before_the_upstream_has_finished_it() {
    let setup = echo_setup(|_| {}).await;
    let response = setup.gateway.get("/api/v1/echo/gate").send().await.unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    let first = tokio::time::timeout(Duration::from_secs(5), body.next())
        .await
        .expect("the first chunk arrives while the upstream is still holding the rest")
        .unwrap()
        .unwrap();
    assert_eq!(&first[..], b"first;");
    setup.upstream.state.release.notify_one();
    let rest = body.next().await.unwrap().unwrap();
    assert_eq!(&rest[..], b"rest");
}

#[tokio::test]
async fn a_request_body_reaches_the_upstream_before_the_client_has_finished_it() {
    let setup = echo_setup(|_| {}).await;
    let (chunks, receiver) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let body = reqwest::Body::wrap_stream(tokio_stream_from(receiver));
    let request = setup
        .gateway
        .request(Method::POST, "/api/v1/echo/upload-gate")
        .body(body)
        .send();
    let response = tokio::spawn(request);

    chunks.send(Ok(b"first chunk".to_vec())).await.unwrap();
    tokio::time::timeout(
        Duration::from_secs(5),
        setup.upstream.state.first_chunk.notified(),
    )
    .await
    .expect("the upstream got the first chunk while the client still held the rest");
    chunks.send(Ok(b" and the rest".to_vec())).await.unwrap();
    drop(chunks);

    let response = response.await.unwrap().unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["received"], 24);
}

fn tokio_stream_from<T: Send + 'static>(
    mut receiver: tokio::sync::mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> + Send + 'static {
    futures::stream::poll_fn(move |cx| receiver.poll_recv(cx))
}

#[tokio::test]
async fn a_path_no_route_serves_is_a_404_problem_and_services_internals_are_not_exposed() {
    let setup = echo_setup(|_| {}).await;
    let body = problem(
        setup.gateway.get("/api/v1/unknown").send().await.unwrap(),
        404,
    )
    .await;
    assert_eq!(body["detail"], "no route matches GET /api/v1/unknown");
    problem(
        setup.gateway.get("/api/v1/echoes").send().await.unwrap(),
        404,
    )
    .await;
    assert_eq!(setup.upstream.hits(), 0);
}

#[tokio::test]
async fn dot_segments_in_a_path_are_refused() {
    let setup = echo_setup(|_| {}).await;
    // reqwest would normalise `..` away: write it raw.
    let mut stream = tokio::net::TcpStream::connect(setup.gateway.addr)
        .await
        .unwrap();
    stream
        .write_all(
            b"GET /api/v1/echo/%2e%2e/private HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await
        .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let raw = String::from_utf8_lossy(&raw);
    assert!(raw.starts_with("HTTP/1.1 400"), "{raw}");
    assert!(raw.contains("segments"), "{raw}");
    assert_eq!(setup.upstream.hits(), 0);
}

#[tokio::test]
async fn on_shutdown_the_gateway_stops_accepting_and_finishes_what_is_in_flight() {
    let mut setup = echo_setup(|_| {}).await;
    let response = setup.gateway.get("/api/v1/echo/gate").send().await.unwrap();
    let mut body = response.bytes_stream();
    let first = body.next().await.unwrap().unwrap();
    assert_eq!(&first[..], b"first;");

    setup.gateway.stop();
    platform_testkit::eventually(Duration::from_secs(5), "the listener to close", || async {
        tokio::net::TcpStream::connect(setup.gateway.addr)
            .await
            .is_err()
            .then_some(())
    })
    .await
    .unwrap();

    setup.upstream.state.release.notify_one();
    let rest = tokio::time::timeout(Duration::from_secs(5), body.next())
        .await
        .expect("the in-flight response is finished")
        .unwrap()
        .unwrap();
    assert_eq!(&rest[..], b"rest");
}
