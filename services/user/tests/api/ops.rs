//! What operators and other components read: health, metrics, OpenAPI, JWKS.

use std::time::Duration;

use platform_testkit::eventually;
use serde_json::Value;

use crate::helpers::spawn_app;

#[tokio::test]
async fn readiness_checks_the_database_and_nats() {
    let app = spawn_app().await;
    // NATS connects in the background, so the service may be unready for a moment.
    let body: Value = eventually(Duration::from_secs(10), "readiness", || async {
        let response = app.http.get(app.url("/health/ready")).send().await.ok()?;
        (response.status() == 200).then_some(response.json().await.ok()?)
    })
    .await
    .unwrap();
    assert_eq!(body["status"], "ready");
    let names: Vec<&str> = body["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|check| check["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["postgres", "nats"]);
    let live = app.http.get(app.url("/health/live")).send().await.unwrap();
    assert_eq!(live.status(), 200);
}

#[tokio::test]
async fn metrics_count_requests_by_route_template() {
    let app = spawn_app().await;
    app.registered().await;
    let metrics = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|line| line.starts_with("http_server_requests_total")
                && line.contains("route=\"/api/v1/auth/register\"")
                && line.contains("status=\"201\"")),
        "{metrics}"
    );
}

#[tokio::test]
async fn the_openapi_document_describes_every_endpoint_with_examples() {
    let app = spawn_app().await;
    let doc: Value = app
        .http
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for path in [
        "/api/v1/auth/register",
        "/api/v1/auth/login",
        "/api/v1/auth/refresh",
        "/api/v1/auth/logout",
        "/api/v1/users/me",
        "/.well-known/jwks.json",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} is documented");
    }
    let schemas = &doc["components"]["schemas"];
    for schema in [
        "RegisterRequest",
        "LoginRequest",
        "TokenResponse",
        "UserResponse",
        "Problem",
    ] {
        assert!(schemas[schema].is_object(), "{schema}");
    }
    assert!(
        schemas["RegisterRequest"]["example"].is_object(),
        "requests carry examples"
    );
    assert!(doc["paths"]["/api/v1/users/me"]["get"]["security"].is_array());
}

#[tokio::test]
async fn the_jwks_publishes_only_the_public_signing_key() {
    let app = spawn_app().await;
    let response = app
        .http
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "public, max-age=300");
    let jwks: Value = response.json().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["kid"], "user-service-1");
    assert_eq!(keys[0]["kty"], "OKP");
    assert!(keys[0].get("d").is_none(), "no private part");
}
