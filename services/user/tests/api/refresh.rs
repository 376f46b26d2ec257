//! `POST /api/v1/auth/refresh` and `/logout`: rotation, reuse detection, revocation.

use std::time::Duration;

use user_service::http::TokenResponse;

use crate::helpers::{problem, spawn_app, spawn_app_with};

#[tokio::test]
async fn refreshing_rotates_both_tokens() {
    let app = spawn_app().await;
    let email = app.registered().await;
    let first = app.tokens(&email).await;

    let response = app.refresh(&first.refresh_token).await;

    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let second: TokenResponse = response.json().await.unwrap();
    assert_ne!(second.refresh_token, first.refresh_token);
    assert_eq!(app.me(&second.access_token).await.status(), 200);
    let third: TokenResponse = app
        .refresh(&second.refresh_token)
        .await
        .json()
        .await
        .unwrap();
    assert_ne!(third.refresh_token, second.refresh_token);
}

#[tokio::test]
async fn reusing_a_refresh_token_revokes_its_whole_family_but_not_other_sessions() {
    let app = spawn_app().await;
    let email = app.registered().await;
    let stolen = app.tokens(&email).await;
    let other_login = app.tokens(&email).await;
    let rotated: TokenResponse = app
        .refresh(&stolen.refresh_token)
        .await
        .json()
        .await
        .unwrap();

    let replay = problem(app.refresh(&stolen.refresh_token).await, 401).await;

    assert!(
        replay["detail"].as_str().unwrap().contains("already used"),
        "{replay}"
    );
    let descendant = problem(app.refresh(&rotated.refresh_token).await, 401).await;
    assert!(
        descendant["detail"].as_str().unwrap().contains("revoked"),
        "{descendant}"
    );
    assert_eq!(
        app.refresh(&other_login.refresh_token).await.status(),
        200,
        "another login is another family"
    );
}

#[tokio::test]
async fn two_concurrent_refreshes_with_one_token_leave_at_most_one_session() {
    let app = spawn_app().await;
    let email = app.registered().await;
    let tokens = app.tokens(&email).await;

    let (a, b) = tokio::join!(
        app.refresh(&tokens.refresh_token),
        app.refresh(&tokens.refresh_token)
    );

    let mut statuses = [a.status().as_u16(), b.status().as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 401], "the second use is a reuse");
    let winner: TokenResponse = if a.status() == 200 { a } else { b }.json().await.unwrap();
    assert_eq!(
        app.refresh(&winner.refresh_token).await.status(),
        401,
        "the reuse revoked the family, the winner's token included"
    );
}

#[tokio::test]
async fn logging_out_revokes_the_session_and_is_idempotent() {
    let app = spawn_app().await;
    let email = app.registered().await;
    let tokens = app.tokens(&email).await;
    let body = serde_json::json!({"refresh_token": tokens.refresh_token});

    assert_eq!(app.post("/api/v1/auth/logout", &body).await.status(), 204);
    assert_eq!(app.post("/api/v1/auth/logout", &body).await.status(), 204);
    let after = problem(app.refresh(&tokens.refresh_token).await, 401).await;
    assert!(
        after["detail"].as_str().unwrap().contains("revoked"),
        "{after}"
    );
}

#[tokio::test]
async fn garbage_and_expired_refresh_tokens_are_401() {
    let app = spawn_app_with(|config| config.own.tokens.refresh_ttl_secs = 1).await;
    let email = app.registered().await;
    let tokens = app.tokens(&email).await;

    problem(app.refresh("rt_not-a-token").await, 401).await;
    problem(app.refresh(&tokens.access_token).await, 401).await;

    // Wait until the expiry the service stored has passed, not for a guessed time.
    let expires_at: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("SELECT max(expires_at) FROM refresh_tokens")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let remaining = (expires_at - chrono::Utc::now())
        .to_std()
        .unwrap_or_default();
    tokio::time::sleep(remaining + Duration::from_millis(1)).await;
    let expired = problem(app.refresh(&tokens.refresh_token).await, 401).await;
    assert!(
        expired["detail"].as_str().unwrap().contains("expired"),
        "{expired}"
    );
}

#[tokio::test]
async fn refresh_tokens_are_stored_only_as_hashes() {
    let app = spawn_app().await;
    let email = app.registered().await;
    let tokens = app.tokens(&email).await;
    let stored: Vec<Vec<u8>> = sqlx::query_scalar("SELECT token_hash FROM refresh_tokens")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].len(), 32);
    assert!(
        !String::from_utf8_lossy(&stored[0]).contains(&tokens.refresh_token[3..20]),
        "not the token itself"
    );
}
