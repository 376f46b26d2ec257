//! Fallback, method not allowed, timeout and metrics, as applied by `with_standard_layers`.

use std::time::{Duration, Instant};

use crate::helpers::{expected_problem, problem, spawn_app};

#[tokio::test]
async fn an_unknown_route_is_a_404_problem_naming_method_and_path() {
    let app = spawn_app().await;
    let response = app
        .client
        .delete(app.url("/no/such/thing?x=1"))
        .send()
        .await
        .unwrap();
    assert!(response.headers().contains_key("x-request-id"));
    let body = problem(response, 404).await;
    assert_eq!(
        body,
        expected_problem(404, "Not Found", "no route matches DELETE /no/such/thing")
    );
}

#[tokio::test]
async fn a_wrong_method_is_a_405_problem_that_keeps_the_allow_header() {
    let app = spawn_app().await;
    let response = app.client.put(app.url("/orders")).send().await.unwrap();
    assert_eq!(response.headers()["allow"], "POST");
    let body = problem(response, 405).await;
    assert_eq!(
        body,
        expected_problem(
            405,
            "Method Not Allowed",
            "method PUT is not allowed on /orders; the Allow header lists those that are"
        )
    );
}

#[tokio::test]
async fn a_request_slower_than_the_timeout_is_abandoned_with_a_503_problem() {
    let app = spawn_app().await;
    let started = Instant::now();
    let response = app.get("/slow?ms=10000").await;
    let elapsed = started.elapsed();
    let body = problem(response, 503).await;
    assert_eq!(
        body,
        expected_problem(
            503,
            "Service Unavailable",
            "the request did not complete within the 1s limit and was abandoned"
        )
    );
    assert!(
        elapsed < Duration::from_secs(5),
        "answered after {elapsed:?}"
    );
}

#[tokio::test]
async fn a_request_within_the_timeout_is_served() {
    let app = spawn_app().await;
    let response = app.get("/slow?ms=10").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "slept 10 ms");
}

#[tokio::test]
async fn requests_are_counted_by_route_template_including_timed_out_ones() {
    let app = spawn_app().await;
    let id = uuid::Uuid::now_v7();
    assert_eq!(app.get(&format!("/orders/{id}")).await.status(), 200);
    assert_eq!(app.get("/slow?ms=5000").await.status(), 503);

    let metrics = platform_telemetry::metrics::render();
    assert!(
        metrics.contains(
            r#"http_server_requests_total{method="GET",route="/orders/{id}",status="200"}"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"http_server_requests_total{method="GET",route="/slow",status="503"}"#),
        "{metrics}"
    );
    assert!(
        !metrics.contains(&id.to_string()),
        "raw paths must not become labels"
    );
}
