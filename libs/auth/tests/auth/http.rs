//! The axum extractors, through a real router served on 127.0.0.1.

use platform_auth::{Role, TokenSigner};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{customer, problem, spawn_app};

#[tokio::test]
async fn a_request_without_a_token_gets_a_401_problem() {
    let app = spawn_app().await;

    let response = app.get("/me", None).await;

    let detail = problem(response, StatusCode::UNAUTHORIZED).await;
    assert!(detail.contains("Bearer"), "{detail}");
}

#[tokio::test]
async fn a_request_with_a_garbled_authorization_header_gets_a_401_problem() {
    let app = spawn_app().await;

    for authorization in [
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "Bearer not a jwt",
        "Token abc",
    ] {
        let response = app.get("/me", Some(authorization)).await;
        let detail = problem(response, StatusCode::UNAUTHORIZED).await;
        assert_eq!(
            detail, "the Authorization header must be of the form `Bearer <token>`",
            "for {authorization:?}"
        );
    }
}

#[tokio::test]
async fn a_request_with_a_bad_token_gets_a_401_problem_that_says_why() {
    let app = spawn_app().await;
    // The issuer's key id, another key.
    let impostor = TokenSigner::generate(app.signer().kid());
    let mut expired = customer();
    expired.exp = expired.iat - chrono::TimeDelta::hours(1);
    let cases = [
        (
            "Bearer not.a.jwt".to_owned(),
            "the access token is malformed",
        ),
        (
            format!("Bearer {}", impostor.sign(&customer()).unwrap()),
            "the access token's signature is invalid",
        ),
        (app.bearer_for(&expired), "the access token has expired"),
    ];

    for (authorization, expected) in cases {
        let response = app.get("/me", Some(&authorization)).await;
        assert_eq!(problem(response, StatusCode::UNAUTHORIZED).await, expected);
    }
}

#[tokio::test]
async fn a_request_with_a_valid_token_gets_200_and_the_users_identity() {
    let app = spawn_app().await;
    let claims = customer();
    let authorization = app.bearer_for(&claims);

    let response = app.get("/me", Some(&authorization)).await;

    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"id": claims.sub, "email": claims.email, "roles": ["customer"]})
    );
}

#[tokio::test]
async fn a_customer_on_an_admin_only_route_gets_a_403_problem() {
    let app = spawn_app().await;
    let authorization = app.bearer(&[Role::Customer]);

    for path in ["/admin/restock", "/admin/sales-report"] {
        let response = app.get(path, Some(&authorization)).await;
        let detail = problem(response, StatusCode::FORBIDDEN).await;
        assert_eq!(detail, "this action requires the `admin` role", "on {path}");
    }
}

#[tokio::test]
async fn an_admin_on_an_admin_only_route_gets_200() {
    let app = spawn_app().await;
    let authorization = app.bearer(&[Role::Admin]);

    for path in ["/admin/restock", "/admin/sales-report"] {
        let response = app.get(path, Some(&authorization)).await;
        assert_eq!(response.status(), StatusCode::OK, "on {path}");
    }
}

#[tokio::test]
async fn an_anonymous_caller_is_served_where_the_user_is_optional_but_a_bad_token_is_not() {
    let app = spawn_app().await;

    let anonymous = app.get("/greeting", None).await;
    assert_eq!(anonymous.text().await.unwrap(), "hello stranger");
    let claims = customer();
    let known = app.get("/greeting", Some(&app.bearer_for(&claims))).await;
    assert_eq!(
        known.text().await.unwrap(),
        format!("hello {}", claims.email)
    );
    let bad = app.get("/greeting", Some("Bearer not.a.jwt")).await;
    problem(bad, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn a_request_whose_key_cannot_be_fetched_gets_a_503_problem_not_a_401() {
    let mut app = spawn_app().await;
    app.jwks.stop().await;

    let response = app.get("/me", Some(&app.bearer(&[Role::Customer]))).await;

    let detail = problem(response, StatusCode::SERVICE_UNAVAILABLE).await;
    assert!(detail.contains("retry later"), "{detail}");
}
