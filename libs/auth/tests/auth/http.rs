//! The axum extractors, through a real router served on 127.0.0.1.

use std::net::SocketAddr;

use axum::extract::FromRef;
use axum::routing::get;
use axum::{Json, Router};
use platform_auth::{AdminUser, AuthenticatedUser, JwksVerifier, Role, TokenSigner};
use platform_http::ApiError;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{JwksServer, claims, customer, http_client, spawn_http};

#[derive(Clone, FromRef)]
struct AppState {
    verifier: JwksVerifier,
}

async fn me(user: AuthenticatedUser) -> Json<Value> {
    Json(json!({"id": user.user_id, "email": user.email, "roles": user.roles}))
}

async fn restock(admin: AdminUser) -> Json<Value> {
    Json(json!({"restocked_by": admin.user_id}))
}

async fn sales_report(user: AuthenticatedUser) -> Result<Json<Value>, ApiError> {
    user.require_role(Role::Admin)?;
    Ok(Json(json!({"report": "all good"})))
}

async fn greeting(user: Option<AuthenticatedUser>) -> String {
    match user {
        Some(user) => format!("hello {}", user.email),
        None => "hello stranger".to_owned(),
    }
}

struct TestApp {
    address: SocketAddr,
    signer: TokenSigner,
    jwks: JwksServer,
    client: reqwest::Client,
}

impl TestApp {
    async fn spawn() -> Self {
        let signer = TokenSigner::generate("key-1");
        let jwks = JwksServer::start(signer.jwk_set()).await;
        let router = Router::new()
            .route("/me", get(me))
            .route("/admin/restock", get(restock))
            .route("/admin/sales-report", get(sales_report))
            .route("/greeting", get(greeting))
            .with_state(AppState {
                verifier: jwks.verifier(),
            });
        Self {
            address: spawn_http(router).await,
            signer,
            jwks,
            client: http_client(),
        }
    }

    async fn get(&self, path: &str, authorization: Option<&str>) -> reqwest::Response {
        let mut request = self.client.get(format!("http://{}{path}", self.address));
        if let Some(authorization) = authorization {
            request = request.header("authorization", authorization);
        }
        request.send().await.unwrap()
    }

    fn bearer(&self, roles: &[Role]) -> String {
        format!("Bearer {}", self.signer.sign(&claims(roles)).unwrap())
    }
}

/// Asserts an RFC 9457 problem with `status` and returns its `detail`.
async fn problem(response: reqwest::Response, status: StatusCode) -> String {
    assert_eq!(response.status(), status);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    if status == StatusCode::UNAUTHORIZED {
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
    }
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], json!(status.as_u16()));
    body["detail"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_request_without_a_token_gets_a_401_problem() {
    platform_telemetry::init_for_tests();
    let app = TestApp::spawn().await;

    let response = app.get("/me", None).await;

    let detail = problem(response, StatusCode::UNAUTHORIZED).await;
    assert!(detail.contains("Bearer"), "{detail}");
}

#[tokio::test]
async fn a_request_with_a_garbled_authorization_header_gets_a_401_problem() {
    platform_telemetry::init_for_tests();
    let app = TestApp::spawn().await;

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
    platform_telemetry::init_for_tests();
    let app = TestApp::spawn().await;
    let impostor = TokenSigner::generate("key-1");
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
        (
            format!("Bearer {}", app.signer.sign(&expired).unwrap()),
            "the access token has expired",
        ),
    ];

    for (authorization, expected) in cases {
        let response = app.get("/me", Some(&authorization)).await;
        assert_eq!(problem(response, StatusCode::UNAUTHORIZED).await, expected);
    }
}

#[tokio::test]
async fn a_request_with_a_valid_token_gets_200_and_the_users_identity() {
    platform_telemetry::init_for_tests();
    let app = TestApp::spawn().await;
    let claims = customer();
    let authorization = format!("Bearer {}", app.signer.sign(&claims).unwrap());

    let response = app.get("/me", Some(&authorization)).await;

    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"id": claims.sub, "email": "ada@example.com", "roles": ["customer"]})
    );
}

#[tokio::test]
async fn a_customer_on_an_admin_only_route_gets_a_403_problem() {
    platform_telemetry::init_for_tests();
    let app = TestApp::spawn().await;
    let authorization = app.bearer(&[Role::Customer]);

    for path in ["/admin/restock", "/admin/sales-report"] {
        let response = app.get(path, Some(&authorization)).await;
        let detail = problem(response, StatusCode::FORBIDDEN).await;
        assert_eq!(detail, "this action requires the `admin` role", "on {path}");
    }
}

#[tokio::test]
async fn an_admin_on_an_admin_only_route_gets_200() {
    platform_telemetry::init_for_tests();
    let app = TestApp::spawn().await;
    let authorization = app.bearer(&[Role::Admin]);

    for path in ["/admin/restock", "/admin/sales-report"] {
        let response = app.get(path, Some(&authorization)).await;
        assert_eq!(response.status(), StatusCode::OK, "on {path}");
    }
}

#[tokio::test]
async fn an_anonymous_caller_is_served_where_the_user_is_optional_but_a_bad_token_is_not() {
    platform_telemetry::init_for_tests();
    let app = TestApp::spawn().await;

    let anonymous = app.get("/greeting", None).await;
    assert_eq!(anonymous.text().await.unwrap(), "hello stranger");
    let known = app
        .get("/greeting", Some(&app.bearer(&[Role::Customer])))
        .await;
    assert_eq!(known.text().await.unwrap(), "hello ada@example.com");
    let bad = app.get("/greeting", Some("Bearer not.a.jwt")).await;
    problem(bad, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn a_request_whose_key_cannot_be_fetched_gets_a_503_problem_not_a_401() {
    platform_telemetry::init_for_tests();
    let mut app = TestApp::spawn().await;
    app.jwks.stop().await;

    let response = app.get("/me", Some(&app.bearer(&[Role::Customer]))).await;

    let detail = problem(response, StatusCode::SERVICE_UNAVAILABLE).await;
    assert!(detail.contains("retry later"), "{detail}");
}
