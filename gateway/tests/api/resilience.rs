//! Deadlines, retries and circuit breakers.

use std::time::{Duration, Instant};

use platform_testkit::unique_name;
use reqwest::Method;
use tokio::net::TcpListener;

use crate::helpers::{StandIn, config, metric, problem, route, spawn_app};

#[tokio::test]
async fn a_slow_upstream_times_out_with_a_504_problem_at_the_routes_deadline() {
    let upstream = StandIn::start("slow").await;
    let routes = route(
        "slow",
        "/api/v1/slow",
        "slow",
        "public",
        "none",
        "timeout_ms = 300",
    ) + &route("other", "/api/v1/other", "slow", "public", "none", "");
    let gateway =
        spawn_app(config(&routes, &[("slow", &upstream.url)], "http://127.0.0.1:9/j").await).await;

    let started = Instant::now();
    let response = gateway.get("/api/v1/slow/slow").send().await.unwrap();
    let elapsed = started.elapsed();
    let body = problem(response, 504).await;
    assert_eq!(
        body["detail"],
        "the upstream `slow` did not answer within 300 ms"
    );
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");

    // The deadline is the route's: the other route waits longer.
    let response = gateway.get("/api/v1/other").send().await.unwrap();
    assert_eq!(response.status(), 200);
}

async fn free_port() -> std::net::SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
}

#[tokio::test]
async fn a_get_is_retried_when_the_upstream_cannot_be_reached_but_a_post_is_not() {
    let (get_addr, post_addr) = (free_port().await, free_port().await);
    let routes = route("get", "/api/v1/get", "for-get", "public", "none", "")
        + &route("post", "/api/v1/post", "for-post", "public", "none", "");
    let mut config = config(
        &routes,
        &[
            ("for-get", &format!("http://{get_addr}")),
            ("for-post", &format!("http://{post_addr}")),
        ],
        "http://127.0.0.1:9/j",
    )
    .await;
    config.proxy.retries = 2;
    config.proxy.retry_backoff_ms = 300;
    let gateway = spawn_app(config).await;

    // In both cases the first attempt is refused (nothing listens yet), and the upstream comes
    // up 50 ms later, well before a retry would be sent.
    let late_upstream = |addr| async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        StandIn::start_on(TcpListener::bind(addr).await.unwrap(), "late", &[])
    };

    let post = tokio::spawn(
        gateway
            .request(Method::POST, "/api/v1/post")
            .body("{}")
            .send(),
    );
    let post_upstream = late_upstream(post_addr).await;
    let response = post.await.unwrap().unwrap();
    let body = problem(response, 502).await;
    assert_eq!(body["detail"], "the upstream `for-post` is unreachable");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(post_upstream.hits(), 0, "the POST was never sent again");

    let get = tokio::spawn(gateway.get("/api/v1/get/items").send());
    let get_upstream = late_upstream(get_addr).await;
    let response = get.await.unwrap().unwrap();
    assert_eq!(response.status(), 200, "the retry reached the upstream");
    assert_eq!(get_upstream.hits(), 1);
}

#[tokio::test]
async fn the_breaker_opens_after_failures_refuses_fast_and_closes_when_the_upstream_recovers() {
    let upstream = StandIn::start("flaky").await;
    let routes = route("flaky", "/api/v1/flaky", "flaky", "public", "none", "");
    let mut config = config(&routes, &[("flaky", &upstream.url)], "http://127.0.0.1:9/j").await;
    config.breaker.failure_threshold = 3;
    config.breaker.cool_down_ms = 500;
    let gateway = spawn_app(config).await;
    upstream
        .state
        .failing
        .store(true, std::sync::atomic::Ordering::SeqCst);

    for _ in 0..3 {
        let response = gateway.get("/api/v1/flaky/fail").send().await.unwrap();
        assert_eq!(response.status(), 503);
        assert!(
            response.headers().get("retry-after").is_none(),
            "the upstream's own 503"
        );
    }
    assert_eq!(upstream.hits(), 3);

    // Open: refused at the gateway, the upstream is not bothered.
    let response = gateway.get("/api/v1/flaky/fail").send().await.unwrap();
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(retry_after, 1);
    let body = problem(response, 503).await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("`flaky` is failing"),
        "{body}"
    );
    assert_eq!(upstream.hits(), 3);

    // After the cool-down one trial goes through; it fails, so the breaker opens again.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        gateway
            .get("/api/v1/flaky/fail")
            .send()
            .await
            .unwrap()
            .status(),
        503
    );
    assert_eq!(upstream.hits(), 4, "one trial request");
    problem(gateway.get("/api/v1/flaky/fail").send().await.unwrap(), 503).await;
    assert_eq!(upstream.hits(), 4, "open again");

    // The upstream recovers: the next trial closes the breaker, and traffic flows.
    upstream
        .state
        .failing
        .store(false, std::sync::atomic::Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(600)).await;
    for _ in 0..3 {
        assert_eq!(
            gateway
                .get("/api/v1/flaky/fail")
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
    }
    assert_eq!(upstream.hits(), 7);

    let metrics = gateway.metrics().await;
    assert_eq!(
        metric::<u8>(&metrics, r#"circuit_breaker_state{dependency="flaky"}"#),
        0,
        "closed"
    );
}

#[tokio::test]
async fn an_upstream_that_is_down_is_a_502_problem_and_trips_its_breaker() {
    let addr = free_port().await;
    let name = unique_name("down");
    let routes = route("down", "/api/v1/down", &name, "public", "none", "");
    let mut config = config(
        &routes,
        &[(&name, &format!("http://{addr}"))],
        "http://127.0.0.1:9/j",
    )
    .await;
    config.proxy.retries = 0;
    config.breaker.failure_threshold = 2;
    let gateway = spawn_app(config).await;
    for _ in 0..2 {
        problem(gateway.get("/api/v1/down").send().await.unwrap(), 502).await;
    }
    let response = gateway.get("/api/v1/down").send().await.unwrap();
    assert!(response.headers().contains_key("retry-after"));
    problem(response, 503).await;
}
