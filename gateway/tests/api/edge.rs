//! What every response and request gets at the edge: body limits, CORS, security headers,
//! request ids, trace context.

use reqwest::Method;
use serde_json::Value;

use crate::helpers::{echo_setup, metric, problem};

#[tokio::test]
async fn a_body_over_the_limit_is_refused_with_413_whether_declared_or_streamed() {
    let setup = echo_setup(|config| config.http.body_limit_bytes = 1024).await;

    let response = setup
        .gateway
        .request(Method::POST, "/api/v1/echo")
        .body(vec![b'a'; 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "at the limit is fine");

    let response = setup
        .gateway
        .request(Method::POST, "/api/v1/echo")
        .body(vec![b'a'; 1025])
        .send()
        .await
        .unwrap();
    let body = problem(response, 413).await;
    assert_eq!(
        body["detail"],
        "the request body is 1025 bytes, larger than the limit of 1024 bytes"
    );
    assert_eq!(
        setup.upstream.hits(),
        1,
        "a declared length is refused before sending"
    );

    // Chunked: no length up front; the limit is enforced as the body streams.
    let chunks = (0..4).map(|_| Ok::<_, std::io::Error>(vec![b'b'; 512]));
    let response = setup
        .gateway
        .request(Method::POST, "/api/v1/echo/echo-body")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    let body = problem(response, 413).await;
    assert_eq!(
        body["detail"],
        "the request body is larger than the limit of 1024 bytes"
    );
}

/// Header blocks up to ~420 KiB (hyper's default buffer) used to be accepted and forwarded, and
/// hyper's own 431s were bare. Past the explicit limits, a request gets a 431 problem like any
/// other refusal (request id, security headers, counted) and never reaches the upstream.
#[tokio::test]
async fn a_request_head_over_the_limits_is_a_431_problem_and_is_not_forwarded() {
    let setup = echo_setup(|config| {
        config.server.max_header_bytes = 8 * 1024;
        config.server.max_headers = 40;
    })
    .await;

    let mut many = setup.gateway.get("/api/v1/echo");
    for index in 0..41 {
        many = many.header(format!("x-filler-{index}"), "1");
    }
    let response = many
        .header("x-request-id", "too-many-1")
        .send()
        .await
        .unwrap();
    let headers = response.headers().clone();
    let body = problem(response, 431).await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("at most 40 are accepted"),
        "{body}"
    );
    assert_eq!(headers["x-request-id"], "too-many-1");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(
        headers["content-security-policy"],
        "default-src 'none'; frame-ancestors 'none'"
    );

    let large = setup
        .gateway
        .get("/api/v1/echo")
        .header("x-large", "a".repeat(9 * 1024))
        .send()
        .await
        .unwrap();
    assert!(large.headers().contains_key("x-request-id"));
    let body = problem(large, 431).await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("at most 8192 are accepted"),
        "{body}"
    );
    // A long target counts too.
    let long = format!("/api/v1/echo?q={}", "b".repeat(9 * 1024));
    problem(setup.gateway.get(&long).send().await.unwrap(), 431).await;
    assert_eq!(setup.upstream.hits(), 0, "nothing was forwarded");

    // Within the limits, it goes through.
    let mut fine = setup.gateway.get("/api/v1/echo");
    for index in 0..30 {
        fine = fine.header(format!("x-filler-{index}"), "c".repeat(200));
    }
    assert_eq!(fine.send().await.unwrap().status(), 200);
    let metrics = setup.gateway.metrics().await;
    assert_eq!(
        metric::<u64>(
            &metrics,
            r#"gateway_requests_total{route="refused",upstream="none",status="431"}"#
        ),
        3
    );
}

#[tokio::test]
async fn cors_answers_preflights_for_allowed_origins_only() {
    let setup = echo_setup(|config| {
        "https://shop.example.com, https://admin.example.com"
            .clone_into(&mut config.cors.allowed_origins);
    })
    .await;

    let preflight = |origin: &'static str| {
        setup
            .gateway
            .request(Method::OPTIONS, "/api/v1/private")
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type",
            )
            .send()
    };
    let response = preflight("https://shop.example.com").await.unwrap();
    assert!(response.status().is_success());
    let headers = response.headers();
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://shop.example.com"
    );
    let methods = headers["access-control-allow-methods"].to_str().unwrap();
    assert!(methods.contains("POST"), "{methods}");
    let allowed = headers["access-control-allow-headers"].to_str().unwrap();
    assert!(allowed.contains("authorization"), "{allowed}");
    assert_eq!(headers["access-control-max-age"], "600");

    let response = preflight("https://evil.example.com").await.unwrap();
    assert!(
        !response
            .headers()
            .contains_key("access-control-allow-origin"),
        "a denied origin gets no permission"
    );
    assert_eq!(
        setup.upstream.hits(),
        0,
        "preflights are answered at the edge"
    );

    let response = setup
        .gateway
        .get("/api/v1/echo")
        .header("origin", "https://admin.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers();
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://admin.example.com"
    );
    let exposed = headers["access-control-expose-headers"].to_str().unwrap();
    assert!(exposed.contains("ratelimit-remaining"), "{exposed}");
    assert!(exposed.contains("x-request-id"), "{exposed}");

    let response = setup
        .gateway
        .get("/api/v1/echo")
        .header("origin", "https://evil.example.com")
        .send()
        .await
        .unwrap();
    assert!(
        !response
            .headers()
            .contains_key("access-control-allow-origin")
    );
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let setup = echo_setup(|config| config.security.hsts_max_age_secs = Some(31_536_000)).await;
    for path in [
        "/api/v1/echo",
        "/api/v1/private",
        "/nowhere",
        "/health/live",
        "/openapi.json",
    ] {
        let response = setup.gateway.get(path).send().await.unwrap();
        let headers = response.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
        assert_eq!(headers["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(
            headers["strict-transport-security"], "max-age=31536000; includeSubDomains",
            "{path}"
        );
        assert_eq!(
            headers["content-security-policy"], "default-src 'none'; frame-ancestors 'none'",
            "{path}"
        );
    }
    let response = setup.gateway.get("/docs/").send().await.unwrap();
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap();
    assert!(
        csp.contains("script-src 'self'"),
        "the docs page runs its own scripts: {csp}"
    );
    assert_eq!(response.headers()["x-frame-options"], "DENY");

    let setup = echo_setup(|_| {}).await;
    let response = setup.gateway.get("/api/v1/echo").send().await.unwrap();
    assert!(
        !response.headers().contains_key("strict-transport-security"),
        "HSTS only when configured"
    );
}

#[tokio::test]
async fn a_request_id_is_generated_or_passed_through_and_returned() {
    let setup = echo_setup(|_| {}).await;
    let response = setup.gateway.get("/api/v1/echo").send().await.unwrap();
    let generated = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        uuid::Uuid::parse_str(&generated).unwrap().get_version_num(),
        7
    );
    assert_eq!(
        setup.upstream.last_seen().headers["x-request-id"],
        generated.as_str()
    );

    let response = setup
        .gateway
        .get("/api/v1/echo")
        .header("x-request-id", "client-chosen-42")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "client-chosen-42");
    assert_eq!(
        setup.upstream.last_seen().headers["x-request-id"],
        "client-chosen-42"
    );

    // The gateway's own answers carry it too.
    let response = setup
        .gateway
        .get("/api/v1/private")
        .header("x-request-id", "refused-1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["x-request-id"], "refused-1");
}

#[tokio::test]
async fn the_upstream_sees_a_child_of_the_callers_trace() {
    let setup = echo_setup(|_| {}).await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let response = setup
        .gateway
        .get("/api/v1/echo")
        .header("traceparent", format!("00-{trace_id}-{caller_span}-01"))
        .send()
        .await
        .unwrap();
    let echoed: Value = response.json().await.unwrap();
    let traceparent = echoed["headers"]["traceparent"][0].as_str().unwrap();
    let fields: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(fields.len(), 4, "{traceparent}");
    assert_eq!(fields[1], trace_id, "same trace");
    assert_ne!(
        fields[2], caller_span,
        "the gateway's span is the parent now"
    );
    assert_eq!(fields[2].len(), 16);
}
