//! `Json`, `Path` and `Query` rejections.

use serde_json::json;

use crate::helpers::{expected_problem, post_chunked, problem, spawn_app};

#[tokio::test]
async fn a_well_formed_order_is_accepted() {
    let app = spawn_app().await;
    let response = app
        .post_json(
            "/orders",
            r#"{"customer":"ada","priority":"express","items":[{"sku":"a","quantity":2},{"sku":"b","quantity":3}]}"#,
        )
        .await;
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"customer": "ada", "units": 5, "express": true})
    );
}

#[tokio::test]
async fn malformed_json_is_a_400_that_says_where() {
    let app = spawn_app().await;
    let body = problem(
        app.post_json("/orders", "{\"customer\": \"ada\",\n \"items\": [}")
            .await,
        400,
    )
    .await;
    assert_eq!(
        body,
        expected_problem(
            400,
            "Bad Request",
            "the request body is not valid JSON: expected value at line 2 column 12"
        )
    );
}

#[tokio::test]
async fn a_body_without_a_content_type_is_a_415() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/orders"))
        .body(r#"{"customer":"ada","priority":"standard","items":[]}"#)
        .send()
        .await
        .unwrap();
    let body = problem(response, 415).await;
    assert_eq!(
        body["detail"],
        "the request body must be JSON, sent with `Content-Type: application/json`; the request \
         had no Content-Type"
    );
}

#[tokio::test]
async fn a_body_with_a_non_json_content_type_is_a_415_naming_it() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/orders"))
        .header("content-type", "text/plain")
        .body(r#"{"customer":"ada","priority":"standard","items":[]}"#)
        .send()
        .await
        .unwrap();
    let body = problem(response, 415).await;
    assert_eq!(
        body["detail"],
        "the request body must be JSON, sent with `Content-Type: application/json`; the request \
         had `text/plain`"
    );
}

#[tokio::test]
async fn a_field_of_the_wrong_type_is_a_422_naming_its_nested_path() {
    let app = spawn_app().await;
    let body = problem(
        app.post_json(
            "/orders",
            r#"{"customer":"ada","priority":"standard","items":[{"sku":"a","quantity":1},{"sku":"b","quantity":"two"}]}"#,
        )
        .await,
        422,
    )
    .await;
    assert_eq!(
        body,
        json!({
            "type": "about:blank",
            "title": "Unprocessable Entity",
            "status": 422,
            "detail": "`items[1].quantity` invalid type: string \"two\", expected u32",
            "errors": [{"field": "items[1].quantity", "message": "invalid type: string \"two\", expected u32"}]
        })
    );
}

#[tokio::test]
async fn a_missing_field_is_a_422_naming_the_field_itself() {
    let app = spawn_app().await;
    let body = problem(
        app.post_json(
            "/orders",
            r#"{"customer":"ada","priority":"standard","items":[{"sku":"a"}]}"#,
        )
        .await,
        422,
    )
    .await;
    assert_eq!(
        body["errors"],
        json!([{"field": "items[0].quantity", "message": "is required"}])
    );
}

#[tokio::test]
async fn an_unknown_enum_variant_is_a_422_listing_the_known_ones() {
    let app = spawn_app().await;
    let body = problem(
        app.post_json(
            "/orders",
            r#"{"customer":"ada","priority":"overnight","items":[]}"#,
        )
        .await,
        422,
    )
    .await;
    assert_eq!(
        body["errors"],
        json!([{
            "field": "priority",
            "message": "unknown variant `overnight`, expected `standard` or `express`"
        }])
    );
}

#[tokio::test]
async fn a_body_over_the_limit_with_a_content_length_is_a_413() {
    let app = spawn_app().await;
    let oversized = format!(r#"{{"customer":"{}"}}"#, "a".repeat(5000));
    let length = oversized.len();
    let body = problem(app.post_json("/orders", oversized).await, 413).await;
    assert_eq!(
        body,
        expected_problem(
            413,
            "Payload Too Large",
            &format!("the request body is {length} bytes, larger than the limit of 4096 bytes")
        )
    );
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_is_a_413() {
    let app = spawn_app().await;
    let chunks = vec![vec![b' '; 2048]; 3];
    let response = post_chunked(app.addr, "/orders", "application/json", &chunks).await;
    assert_eq!(response.status, 413);
    assert_eq!(
        response.content_type.as_deref(),
        Some("application/problem+json")
    );
    let body: serde_json::Value = serde_json::from_str(&response.body).unwrap();
    assert_eq!(
        body,
        expected_problem(
            413,
            "Payload Too Large",
            "the request body is larger than the limit of 4096 bytes"
        )
    );
}

#[tokio::test]
async fn a_chunked_body_within_the_limit_is_read_whole() {
    let app = spawn_app().await;
    let chunks = vec![
        br#"{"customer":"ada","priority":"standard","#.to_vec(),
        br#""items":[{"sku":"a","quantity":4}]}"#.to_vec(),
    ];
    let response = post_chunked(app.addr, "/orders", "application/json", &chunks).await;
    assert_eq!(response.status, 201, "{}", response.body);
}

#[tokio::test]
async fn axum_extractors_rejecting_an_oversized_chunked_body_also_answer_a_problem() {
    let app = spawn_app().await;
    let chunks = vec![vec![b'x'; 2048]; 3];
    let response = post_chunked(app.addr, "/echo", "text/plain", &chunks).await;
    assert_eq!(response.status, 413);
    assert_eq!(
        response.content_type.as_deref(),
        Some("application/problem+json")
    );
    let body: serde_json::Value = serde_json::from_str(&response.body).unwrap();
    assert_eq!(body["status"], 413);
    assert_eq!(body["title"], "Payload Too Large");
    assert_eq!(
        body["detail"],
        "Failed to buffer the request body: length limit exceeded"
    );
}

#[tokio::test]
async fn a_malformed_uuid_in_the_path_is_a_400_naming_the_parameter() {
    let app = spawn_app().await;
    let body = problem(app.get("/orders/not-a-uuid").await, 400).await;
    assert_eq!(body["title"], "Bad Request");
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.starts_with(
            "path parameter `id` has an invalid value `not-a-uuid`: UUID parsing failed: "
        ),
        "{detail}"
    );
}

#[tokio::test]
async fn a_bad_second_path_parameter_is_named() {
    let app = spawn_app().await;
    let id = uuid::Uuid::now_v7();
    let body = problem(app.get(&format!("/orders/{id}/lines/first")).await, 400).await;
    assert_eq!(
        body["detail"],
        "path parameter `line` has an invalid value `first`: expected a u32"
    );
    let response = app.get(&format!("/orders/{id}/lines/3")).await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_query_parameter_of_the_wrong_type_is_a_400_naming_it() {
    let app = spawn_app().await;
    let body = problem(app.get("/search?q=shoes&limit=ten").await, 400).await;
    assert_eq!(
        body,
        expected_problem(
            400,
            "Bad Request",
            "query parameter `limit` is invalid: invalid digit found in string"
        )
    );
}

#[tokio::test]
async fn a_missing_query_parameter_is_a_400_naming_it() {
    let app = spawn_app().await;
    let body = problem(app.get("/search?q=shoes").await, 400).await;
    assert_eq!(body["detail"], "query parameter `limit` is required");
    let response = app.get("/search?q=shoes&limit=10").await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body, json!({"q": "shoes", "limit": 10}));
}
