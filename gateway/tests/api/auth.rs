//! Authentication: public routes, protected routes, the real user service's tokens, key
//! refresh and the user service being down.

use std::time::Duration;

use platform_auth::{Claims, Role, TokenSigner};
use platform_testkit::service::{Identities, Identity, JwksStandIn, claims};
use platform_testkit::{eventually, unique_name};
use serde_json::Value;

use crate::helpers::{
    ECHO_ROUTES, StandIn, UserService, config, echo_setup, login, problem, register_and_login,
    route, spawn_app,
};

#[tokio::test]
async fn public_routes_need_no_token_and_protected_ones_answer_401_problems() {
    let setup = echo_setup(|_| {}).await;
    assert_eq!(
        setup
            .gateway
            .get("/api/v1/echo")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let response = setup.gateway.get("/api/v1/private").send().await.unwrap();
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    let body = problem(response, 401).await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("needs an access token"),
        "{body}"
    );

    let stranger = TokenSigner::generate(setup.identities.signer().kid());
    let forged = Identities::with_signer(stranger).customer().token;
    let expired = setup.identities.sign(&Claims {
        exp: chrono::Utc::now() - chrono::TimeDelta::minutes(5),
        ..claims(&[Role::Customer])
    });
    for (credential, why) in [
        ("Bearer not-a-jwt".to_owned(), "malformed"),
        ("Basic YTpi".to_owned(), "Bearer <token>"),
        (format!("Bearer {forged}"), "signature"),
        (format!("Bearer {expired}"), "expired"),
    ] {
        let response = setup
            .gateway
            .get("/api/v1/private")
            .header("authorization", &credential)
            .send()
            .await
            .unwrap();
        let body = problem(response, 401).await;
        assert!(
            body["detail"].as_str().unwrap().contains(why),
            "{why}: {body}"
        );
    }
    assert_eq!(
        setup.upstream.hits(),
        1,
        "no refused request reached the upstream"
    );
}

#[tokio::test]
async fn a_valid_token_reaches_the_upstream_unchanged_with_the_user_id_beside_it() {
    let setup = echo_setup(|_| {}).await;
    let Identity {
        id: user_id, token, ..
    } = setup.identities.customer();
    for _ in 0..10 {
        let response = setup
            .gateway
            .get("/api/v1/private/things")
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let seen = setup.upstream.last_seen();
        assert_eq!(seen.headers["x-user-id"], user_id.to_string().as_str());
        assert_eq!(
            seen.headers["authorization"],
            format!("Bearer {token}").as_str(),
            "the services verify the token again"
        );
    }
    let fetches = setup.jwks.fetches();
    assert!(
        (1..=2).contains(&fetches),
        "the key set is fetched at start (and maybe by the first request racing that fetch), \
         not per request: {fetches}"
    );
}

#[tokio::test]
async fn an_optional_auth_route_serves_anonymous_callers_but_not_bad_tokens() {
    let setup = echo_setup(|_| {}).await;
    let response = setup.gateway.get("/api/v1/maybe").send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(!setup.upstream.last_seen().headers.contains_key("x-user-id"));

    let Identity {
        id: user_id, token, ..
    } = setup.identities.customer();
    let response = setup
        .gateway
        .get("/api/v1/maybe")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        setup.upstream.last_seen().headers["x-user-id"],
        user_id.to_string().as_str()
    );

    let response = setup
        .gateway
        .get("/api/v1/maybe")
        .bearer_auth("garbage")
        .send()
        .await
        .unwrap();
    problem(response, 401).await;
}

#[tokio::test]
async fn a_token_signed_with_a_key_the_gateway_has_not_seen_yet_triggers_a_refresh() {
    let upstream = StandIn::start("echo").await;
    let old = TokenSigner::generate(unique_name("old"));
    let jwks = JwksStandIn::serving(&[&old]).await;
    let mut config = config(ECHO_ROUTES, &[("echo", &upstream.url)], jwks.url()).await;
    config.auth.min_refresh_interval_ms = 0;
    let gateway = spawn_app(config).await;
    let old_token = Identities::with_signer(old.clone()).customer().token;
    let response = gateway
        .get("/api/v1/private")
        .bearer_auth(&old_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // The user service rotates: the new key is published, then used.
    let new = TokenSigner::generate(unique_name("new"));
    jwks.publish(&[&old, &new]);
    let fetches = jwks.fetches();
    let Identity {
        id: user_id,
        token: new_token,
        ..
    } = Identities::with_signer(new).customer();
    let response = gateway
        .get("/api/v1/private")
        .bearer_auth(&new_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    assert_eq!(
        upstream.last_seen().headers["x-user-id"],
        user_id.to_string().as_str()
    );
    assert!(jwks.fetches() > fetches);

    // A kid nobody publishes is refused after the refresh finds nothing.
    let unknown = TokenSigner::generate(unique_name("unknown"));
    let response = gateway
        .get("/api/v1/private")
        .bearer_auth(Identities::with_signer(unknown).customer().token)
        .send()
        .await
        .unwrap();
    let body = problem(response, 401).await;
    assert!(
        body["detail"].as_str().unwrap().contains("unknown key"),
        "{body}"
    );
}

#[tokio::test]
async fn a_key_withdrawn_from_the_key_set_stops_verifying_even_cached_tokens() {
    let upstream = StandIn::start("echo").await;
    let leaked = TokenSigner::generate(unique_name("leaked"));
    let jwks = JwksStandIn::serving(&[&leaked]).await;
    let mut config = config(ECHO_ROUTES, &[("echo", &upstream.url)], jwks.url()).await;
    config.auth.jwks_refresh_secs = 1;
    let gateway = spawn_app(config).await;
    let token = Identities::with_signer(leaked).customer().token;
    let status = || async {
        gateway
            .get("/api/v1/private")
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(status().await, 200);

    let replacement = TokenSigner::generate(unique_name("replacement"));
    jwks.publish(&[&replacement]);
    eventually(
        Duration::from_secs(10),
        "the withdrawn key to be refused",
        || async { (status().await == 401).then_some(()) },
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn register_login_and_me_work_through_the_gateway_with_the_real_user_service() {
    let users = UserService::start().await;
    let routes = route("auth", "/api/v1/auth", "user", "public", "auth", "")
        + &route("users", "/api/v1/users", "user", "user", "read", "");
    let gateway =
        spawn_app(config(&routes, &[("user", &users.url)], &users.jwks_url()).await).await;

    let email = format!("{}@example.com", unique_name("ada"));
    let (user_id, token) = register_and_login(&gateway.http, &gateway.url, &email).await;

    let response = gateway.get("/api/v1/users/me").send().await.unwrap();
    problem(response, 401).await;
    let response = gateway
        .get("/api/v1/users/me")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let me: Value = response.json().await.unwrap();
    assert_eq!(me["id"], user_id.to_string());
    assert_eq!(me["email"], email);
}

#[tokio::test]
async fn the_gateway_keeps_verifying_with_cached_keys_while_the_user_service_is_down() {
    let mut users = UserService::start().await;
    let upstream = StandIn::start("orders").await;
    let routes = route("orders", "/api/v1/orders", "orders", "user", "read", "");
    let gateway =
        spawn_app(config(&routes, &[("orders", &upstream.url)], &users.jwks_url()).await).await;
    let email = format!("{}@example.com", unique_name("ada"));
    let (user_id, first) = register_and_login(&gateway.http, &users.url, &email).await;
    // A second token the gateway has never seen: verified with the cached key, not remembered.
    let second = login(&gateway.http, &users.url, &email).await;
    assert_ne!(first, second);

    let response = gateway
        .get("/api/v1/orders")
        .bearer_auth(&first)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    users.stop().await;
    let response = gateway
        .get("/api/v1/orders")
        .bearer_auth(&second)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    assert_eq!(
        upstream.last_seen().headers["x-user-id"],
        user_id.to_string().as_str()
    );
}
