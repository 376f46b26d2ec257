//! `GET` and `PATCH /api/v1/users/me`: the caller's own account.

use chrono::{TimeDelta, Utc};
use platform_auth::{Claims, Role, TokenSigner};
use serde_json::{Value, json};
use user_service::http::TokenResponse;

use crate::helpers::{PASSWORD, TestApp, invalid_fields, problem, spawn_app};

async fn signed_in(app: &TestApp) -> (String, TokenResponse) {
    let email = app.registered().await;
    let tokens = app.tokens(&email).await;
    (email, tokens)
}

async fn patch(app: &TestApp, token: &str, body: &Value) -> reqwest::Response {
    app.http
        .patch(app.url("/api/v1/users/me"))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap()
}

fn claims_for(app: &TestApp, user_id: uuid::Uuid, email: &str) -> Claims {
    Claims::new(
        user_id,
        email,
        vec![Role::Customer],
        app.config.own.tokens.issuer.clone(),
        app.config.own.tokens.audience.clone(),
        std::time::Duration::from_secs(600),
    )
}

#[tokio::test]
async fn me_returns_the_callers_own_account() {
    let app = spawn_app().await;
    let (email, tokens) = signed_in(&app).await;

    let response = app.me(&tokens.access_token).await;

    assert_eq!(response.status(), 200);
    let me: Value = response.json().await.unwrap();
    assert_eq!(me["email"], email);
    assert_eq!(me["roles"], json!(["customer"]));
}

#[tokio::test]
async fn me_without_a_token_is_401() {
    let app = spawn_app().await;
    let response = app
        .http
        .get(app.url("/api/v1/users/me"))
        .send()
        .await
        .unwrap();
    let body = problem(response, 401).await;
    assert!(body["detail"].as_str().unwrap().contains("token"), "{body}");
}

#[tokio::test]
async fn expired_tampered_and_foreign_tokens_are_401() {
    let app = spawn_app().await;
    let (email, tokens) = signed_in(&app).await;
    let user_id = app
        .verifier()
        .verify(&tokens.access_token)
        .await
        .unwrap()
        .user_id;

    let fresh = claims_for(&app, user_id, &email);
    let expired = Claims {
        iat: Utc::now() - TimeDelta::hours(2),
        exp: Utc::now() - TimeDelta::hours(1),
        ..fresh.clone()
    };
    let expired = app.identities.sign(&expired);
    let body = problem(app.me(&expired).await, 401).await;
    assert!(
        body["detail"].as_str().unwrap().contains("expired"),
        "{body}"
    );

    // Change one character of the payload: the signature no longer matches.
    let mut parts: Vec<String> = tokens.access_token.split('.').map(str::to_owned).collect();
    let mut payload: Vec<char> = parts[1].chars().collect();
    payload[10] = if payload[10] == 'A' { 'B' } else { 'A' };
    parts[1] = payload.into_iter().collect();
    problem(app.me(&parts.join(".")).await, 401).await;

    // A key the service never published, under the service's own kid.
    let impostor = TokenSigner::generate(app.identities.signer().kid());
    problem(app.me(&impostor.sign(&fresh).unwrap()).await, 401).await;

    // A valid signature, but minted for another audience.
    let other_audience = Claims {
        aud: "some-other-api".to_owned(),
        ..fresh
    };
    problem(app.me(&app.identities.sign(&other_audience)).await, 401).await;
}

#[tokio::test]
async fn the_display_name_can_be_changed() {
    let app = spawn_app().await;
    let (_, tokens) = signed_in(&app).await;

    let response = patch(
        &app,
        &tokens.access_token,
        &json!({"display_name": "Ada Lovelace"}),
    )
    .await;

    assert_eq!(response.status(), 200);
    let me: Value = app.me(&tokens.access_token).await.json().await.unwrap();
    assert_eq!(me["display_name"], "Ada Lovelace");
}

#[tokio::test]
async fn invalid_changes_are_422_and_change_nothing() {
    let app = spawn_app().await;
    let (_, tokens) = signed_in(&app).await;
    let before: Value = app.me(&tokens.access_token).await.json().await.unwrap();

    let blank = problem(
        patch(&app, &tokens.access_token, &json!({"display_name": "  "})).await,
        422,
    )
    .await;
    assert_eq!(invalid_fields(&blank), ["display_name"]);
    let email = problem(
        patch(
            &app,
            &tokens.access_token,
            &json!({"email": "new@example.com"}),
        )
        .await,
        422,
    )
    .await;
    assert!(email.to_string().contains("email"), "{email}");
    let no_current = problem(
        patch(
            &app,
            &tokens.access_token,
            &json!({"new_password": "a brand new passphrase"}),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(
        no_current["errors"],
        json!([{"field": "current_password", "message": "is required to change the password"}])
    );
    let wrong_current = problem(
        patch(
            &app,
            &tokens.access_token,
            &json!({"current_password": "not it at all", "new_password": "a brand new passphrase"}),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(
        wrong_current["errors"],
        json!([{"field": "current_password", "message": "is incorrect"}])
    );

    let after: Value = app.me(&tokens.access_token).await.json().await.unwrap();
    assert_eq!(before, after);
}

#[tokio::test]
async fn changing_the_password_signs_out_every_session() {
    let app = spawn_app().await;
    let (email, tokens) = signed_in(&app).await;
    let other_session = app.tokens(&email).await;

    let response = patch(
        &app,
        &tokens.access_token,
        &json!({"current_password": PASSWORD, "new_password": "a brand new passphrase"}),
    )
    .await;
    assert_eq!(response.status(), 200);

    assert_eq!(app.login(&email, PASSWORD).await.status(), 401);
    assert_eq!(
        app.login(&email, "a brand new passphrase").await.status(),
        200
    );
    problem(app.refresh(&tokens.refresh_token).await, 401).await;
    problem(app.refresh(&other_session.refresh_token).await, 401).await;
}
