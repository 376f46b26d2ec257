//! Every `ApiError` kind, as a client sees it.

use serde_json::json;

use crate::helpers::{expected_problem, problem, spawn_app};

#[tokio::test]
async fn every_api_error_kind_renders_as_problem_json_with_its_status_and_detail() {
    let app = spawn_app().await;
    let cases = [
        ("bad_request", 400, "Bad Request", "the cursor is malformed"),
        ("unauthorized", 401, "Unauthorized", "the token has expired"),
        ("forbidden", 403, "Forbidden", "only admins may do this"),
        ("not_found", 404, "Not Found", "no order 42"),
        ("conflict", 409, "Conflict", "the email is taken"),
        (
            "payload_too_large",
            413,
            "Payload Too Large",
            "at most 10 lines",
        ),
        (
            "unsupported_media_type",
            415,
            "Unsupported Media Type",
            "send JSON",
        ),
        (
            "unprocessable",
            422,
            "Unprocessable Entity",
            "the order is already shipped",
        ),
        (
            "too_many_requests",
            429,
            "Too Many Requests",
            "at most 10 orders a minute",
        ),
        (
            "service_unavailable",
            503,
            "Service Unavailable",
            "the database is down",
        ),
        (
            "gateway_timeout",
            504,
            "Gateway Timeout",
            "payment did not answer",
        ),
    ];
    for (kind, status, title, detail) in cases {
        let body = problem(app.get(&format!("/errors/{kind}")).await, status).await;
        assert_eq!(body, expected_problem(status, title, detail), "{kind}");
    }
}

#[tokio::test]
async fn unauthorized_tells_the_client_to_send_a_bearer_token() {
    let app = spawn_app().await;
    let response = app.get("/errors/unauthorized").await;
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    problem(response, 401).await;
}

#[tokio::test]
async fn too_many_requests_says_when_to_retry() {
    let app = spawn_app().await;
    let response = app.get("/errors/too_many_requests").await;
    assert_eq!(response.headers()["retry-after"], "30");
    problem(response, 429).await;
}

#[tokio::test]
async fn a_validation_error_lists_each_invalid_field() {
    let app = spawn_app().await;
    let body = problem(app.get("/errors/validation").await, 422).await;
    assert_eq!(
        body,
        json!({
            "type": "about:blank",
            "title": "Unprocessable Entity",
            "status": 422,
            "detail": "the request has 2 invalid fields",
            "errors": [
                {"field": "email", "message": "must be an email address"},
                {"field": "items[0].quantity", "message": "must be at least 1"}
            ]
        })
    );
}

#[tokio::test]
async fn an_internal_error_is_an_opaque_500_that_does_not_leak_its_cause() {
    let app = spawn_app().await;
    let response = app.get("/boom").await;
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(response.status(), 500);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let text = response.text().await.unwrap();
    for secret in [
        "hunter2",
        "password",
        "loading the user",
        "connection refused",
    ] {
        assert!(!text.contains(secret), "the body leaks `{secret}`: {text}");
    }
    let body: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        body,
        expected_problem(
            500,
            "Internal Server Error",
            "an unexpected error occurred; it has been logged and can be traced by the \
             request's x-request-id"
        )
    );
    assert!(!request_id.is_empty());
}

#[tokio::test]
async fn a_handler_answering_a_bare_status_gets_a_problem_body_for_it() {
    let app = spawn_app().await;
    let body = problem(app.get("/bare/503").await, 503).await;
    assert_eq!(
        body,
        expected_problem(
            503,
            "Service Unavailable",
            "the service is temporarily unavailable; retry later"
        )
    );
    let body = problem(app.get("/bare/418").await, 418).await;
    assert_eq!(
        body,
        json!({"type": "about:blank", "title": "I'm a teapot", "status": 418})
    );
}

#[tokio::test]
async fn a_plain_text_client_error_becomes_a_problem_with_the_text_as_detail() {
    let app = spawn_app().await;
    let body = problem(app.get("/text-error/409").await, 409).await;
    assert_eq!(
        body,
        expected_problem(
            409,
            "Conflict",
            "cannot reach db at 10.0.0.7 with password=hunter2"
        )
    );
}

#[tokio::test]
async fn a_plain_text_server_error_becomes_an_opaque_problem_and_its_text_is_not_sent() {
    let app = spawn_app().await;
    let response = app.get("/text-error/500").await;
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let text = response.text().await.unwrap();
    assert!(!text.contains("hunter2"), "{text}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&text).unwrap()["detail"],
        "an unexpected error occurred; it has been logged and can be traced by the request's \
         x-request-id"
    );
}
