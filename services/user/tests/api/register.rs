//! `POST /api/v1/auth/register`.

use platform_contracts::UserRegistered;
use platform_events::RawEnvelope;
use platform_testkit::unique_name;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, invalid_fields, problem, spawn_app};

#[tokio::test]
async fn registering_creates_a_customer_account_with_a_normalised_email() {
    let app = spawn_app().await;
    let name = unique_name("ada");
    let response = app
        .post(
            "/api/v1/auth/register",
            &json!({"email": format!("  {}@Example.COM ", name.to_uppercase()), "password": PASSWORD, "display_name": " Ada "}),
        )
        .await;

    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["location"], "/api/v1/users/me");
    let user: Value = response.json().await.unwrap();
    assert_eq!(user["email"], format!("{name}@example.com"));
    assert_eq!(user["display_name"], "Ada");
    assert_eq!(user["roles"], json!(["customer"]));
    assert!(user["id"].as_str().unwrap().parse::<uuid::Uuid>().is_ok());
    assert!(user.get("password_hash").is_none());
}

#[tokio::test]
async fn the_display_name_defaults_to_the_name_of_the_email() {
    let app = spawn_app().await;
    let name = unique_name("grace");
    let user: Value = app
        .register(&format!("{name}@example.com"), PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(user["display_name"], name);
}

#[tokio::test]
async fn the_password_is_stored_only_as_an_argon2id_hash() {
    let app = spawn_app().await;
    let email = app.registered().await;
    let stored: String = sqlx::query_scalar("SELECT password_hash FROM users WHERE email = $1")
        .bind(&email)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(stored.starts_with("$argon2id$"), "{stored}");
    assert!(!stored.contains(PASSWORD));
}

#[tokio::test]
async fn an_email_registered_twice_in_any_case_is_a_409() {
    let app = spawn_app().await;
    let email = app.registered().await;

    let again = problem(app.register(&email.to_uppercase(), PASSWORD).await, 409).await;

    assert_eq!(again["title"], "Conflict");
    assert_eq!(again["detail"], "an account with this email already exists");
    let accounts: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(accounts, 1);
}

#[tokio::test]
async fn a_malformed_email_is_a_422_naming_the_field() {
    let app = spawn_app().await;
    for email in ["ada", "ada@", "ada@example", "ada lovelace@example.com", ""] {
        let body = problem(app.register(email, PASSWORD).await, 422).await;
        assert_eq!(invalid_fields(&body), ["email"], "{email:?}: {body}");
        assert!(body["errors"][0]["message"].as_str().unwrap().len() > 5);
    }
}

/// The mail sender speaks plain SMTP: an address it cannot deliver to (a non-ASCII name before
/// the @) used to be accepted, and every mail to it went to dead letters.
#[tokio::test]
async fn an_address_mail_cannot_be_delivered_to_is_a_422_and_an_international_domain_is_kept_in_ascii()
 {
    let app = spawn_app().await;
    for email in [
        "josé@example.com",
        "\"ada\"@example.com",
        "ada..l@example.com",
    ] {
        let body = problem(app.register(email, PASSWORD).await, 422).await;
        assert_eq!(invalid_fields(&body), ["email"], "{email:?}: {body}");
    }
    let body = problem(app.register("josé@example.com", PASSWORD).await, 422).await;
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("ASCII"),
        "{body}"
    );

    let name = unique_name("ada");
    let response = app
        .register(&format!("{name}@Bücher.example"), PASSWORD)
        .await;
    assert_eq!(response.status(), 201);
    let user: Value = response.json().await.unwrap();
    assert_eq!(user["email"], format!("{name}@xn--bcher-kva.example"));
    // Either spelling signs in.
    for spelling in [
        format!("{name}@bücher.example"),
        format!("{name}@xn--bcher-kva.example"),
    ] {
        let response = app
            .post(
                "/api/v1/auth/login",
                &json!({"email": spelling, "password": PASSWORD}),
            )
            .await;
        assert_eq!(response.status(), 200, "{spelling}");
    }
}

/// Control characters are refused in every text, wherever they are in the body.
#[tokio::test]
async fn control_characters_are_refused_in_every_field() {
    let app = spawn_app().await;
    let name = unique_name("ada");
    for (body, field) in [
        (
            json!({"email": format!("{name}@example.com"), "password": PASSWORD, "display_name": "Ada\u{0}"}),
            "display_name",
        ),
        (
            json!({"email": format!("{name}\u{0}@example.com"), "password": PASSWORD}),
            "email",
        ),
        (
            json!({"email": format!("{name}@example.com"), "password": format!("{PASSWORD}\u{0}")}),
            "password",
        ),
    ] {
        let body = problem(app.post("/api/v1/auth/register", &body).await, 422).await;
        assert_eq!(invalid_fields(&body), [field], "{body}");
    }
    let body = problem(
        app.post(
            "/api/v1/auth/login",
            &json!({"email": format!("{name}@example.com"), "password": "a\u{1b}b"}),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(invalid_fields(&body), ["password"], "{body}");
}

#[tokio::test]
async fn a_weak_password_is_a_422_that_explains_the_policy() {
    let app = spawn_app().await;
    let cases = [
        ("short-pw", "must be at least 12 characters long (it has 8)"),
        (
            "password1234",
            "is one of the most common passwords; choose another",
        ),
        ("zzzzzzzzzzzzzzzz", "must not be one character repeated"),
        ("my name is lovelace", "must not contain your email address"),
    ];
    for (password, message) in cases {
        let body = problem(app.register("lovelace@example.com", password).await, 422).await;
        assert_eq!(
            body["errors"],
            json!([{"field": "password", "message": message}]),
            "{password:?}"
        );
        assert_eq!(body["detail"], format!("`password` {message}"));
    }
}

#[tokio::test]
async fn every_invalid_field_is_reported_at_once() {
    let app = spawn_app().await;
    let body = problem(
        app.post(
            "/api/v1/auth/register",
            &json!({"email": "nope", "password": "short", "display_name": "   "}),
        )
        .await,
        422,
    )
    .await;
    let mut fields = invalid_fields(&body);
    fields.sort();
    // The password cannot be judged against an email that does not parse.
    assert_eq!(fields, ["display_name", "email"]);
}

#[tokio::test]
async fn missing_fields_unknown_fields_and_malformed_json_are_refused() {
    let app = spawn_app().await;
    let missing = problem(
        app.post(
            "/api/v1/auth/register",
            &json!({"email": "ada@example.com"}),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(invalid_fields(&missing), ["password"]);

    // Roles cannot be chosen at registration: there is no open way to become an admin.
    let escalation = problem(
        app.post(
            "/api/v1/auth/register",
            &json!({"email": "eve@example.com", "password": PASSWORD, "roles": ["admin"]}),
        )
        .await,
        422,
    )
    .await;
    assert!(escalation.to_string().contains("roles"), "{escalation}");

    let malformed = app
        .http
        .post(app.url("/api/v1/auth/register"))
        .header("content-type", "application/json")
        .body("{\"email\": ")
        .send()
        .await
        .unwrap();
    problem(malformed, 400).await;
}

#[tokio::test]
async fn each_registration_publishes_exactly_one_users_registered_event() {
    let app = spawn_app().await;
    let first = app.registered().await;
    let second = app.registered().await;
    // A refused registration emits nothing.
    assert_eq!(app.register(&first, PASSWORD).await.status(), 409);

    // Each registration's event was in the outbox when it was answered; once the outbox has
    // nothing left to publish, no event, duplicate or other, can still follow.
    let events = app.settled_user_events().await;
    assert_eq!(events.len(), 2, "one event per registration");

    let mut emails = Vec::new();
    for message in &events {
        assert_eq!(
            message.subject.as_str(),
            app.namespace.subject("users.registered")
        );
        let envelope = RawEnvelope::from_slice(&message.payload).unwrap();
        assert_eq!(
            message.headers.get("Nats-Msg-Id").unwrap().as_str(),
            envelope.id.to_string()
        );
        assert_eq!(envelope.source, "user-service");
        let registered = envelope.decode::<UserRegistered>().unwrap();
        assert_eq!(registered.subject, registered.data.user_id.to_string());
        let stored: String = sqlx::query_scalar("SELECT email FROM users WHERE id = $1")
            .bind(registered.data.user_id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
        assert_eq!(stored, registered.data.email);
        emails.push(registered.data.email);
    }
    emails.sort();
    let mut expected = vec![first, second];
    expected.sort();
    assert_eq!(emails, expected);
}
