//! `POST /api/v1/auth/login`.

use std::time::{Duration, Instant};

use platform_auth::Role;
use user_service::http::TokenResponse;

use crate::helpers::{PASSWORD, problem, spawn_app};

#[tokio::test]
async fn logging_in_returns_tokens_that_verify_against_the_published_jwks() {
    let app = spawn_app().await;
    let email = app.registered().await;

    let response = app.login(&email.to_uppercase(), PASSWORD).await;

    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let tokens: TokenResponse = response.json().await.unwrap();
    assert_eq!(tokens.token_type, "Bearer");
    assert_eq!(tokens.expires_in, 900);
    assert!(tokens.refresh_token.starts_with("rt_"));
    let user = app.verifier().verify(&tokens.access_token).await.unwrap();
    assert_eq!(user.email, email);
    assert_eq!(user.roles, vec![Role::Customer]);
    let header = jsonwebtoken::decode_header(&tokens.access_token).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::EdDSA);
    assert_eq!(header.kid.as_deref(), Some("user-service-1"));
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_email_get_the_same_401() {
    let app = spawn_app().await;
    let email = app.registered().await;

    let wrong_password = problem(app.login(&email, "not the password at all").await, 401).await;
    let unknown_email = problem(app.login("nobody@example.com", PASSWORD).await, 401).await;
    let malformed_email = problem(app.login("not-an-email", PASSWORD).await, 401).await;

    assert_eq!(wrong_password, unknown_email, "no account enumeration");
    assert_eq!(wrong_password, malformed_email);
    assert_eq!(
        wrong_password["detail"],
        "the email or password is incorrect"
    );
}

/// The median time of `attempts` logins.
async fn median_login_time(
    app: &crate::helpers::TestApp,
    email: &str,
    attempts: usize,
) -> Duration {
    let mut times = Vec::with_capacity(attempts);
    for _ in 0..attempts {
        let started = Instant::now();
        assert_eq!(
            app.login(email, "not the password at all").await.status(),
            401
        );
        times.push(started.elapsed());
    }
    times.sort();
    times[attempts / 2]
}

#[tokio::test]
async fn a_login_for_an_unknown_email_does_the_same_password_work_as_a_wrong_password() {
    // Without the decoy hash, an unknown email answers in about a millisecond and a wrong
    // password after an argon2 verification (tens of milliseconds): a factor of 20 or more.
    // The bounds are wide so that other tests running alongside cannot make this fail.
    let app = spawn_app().await;
    let email = app.registered().await;
    let known = median_login_time(&app, &email, 7).await;
    let unknown = median_login_time(&app, "nobody@example.com", 7).await;
    let ratio = unknown.as_secs_f64() / known.as_secs_f64();
    assert!(
        (0.33..3.0).contains(&ratio),
        "unknown email {unknown:?} vs wrong password {known:?}"
    );
}

#[tokio::test]
async fn login_fields_are_required() {
    let app = spawn_app().await;
    let body = problem(
        app.post(
            "/api/v1/auth/login",
            &serde_json::json!({"email": "ada@example.com"}),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "password");
}
