//! `x-request-id`.

use crate::helpers::{problem, spawn_app};

#[tokio::test]
async fn a_request_id_is_generated_when_the_client_sends_none() {
    let app = spawn_app().await;
    let response = app.get("/request-id").await;
    let header = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let uuid = uuid::Uuid::parse_str(&header).unwrap();
    assert_eq!(uuid.get_version_num(), 7);
    assert_eq!(
        response.text().await.unwrap(),
        header,
        "handlers see the same id"
    );
}

#[tokio::test]
async fn a_sane_client_request_id_is_echoed_and_given_to_handlers() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/request-id"))
        .header("x-request-id", "checkout-7f3a/1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "checkout-7f3a/1");
    assert_eq!(response.text().await.unwrap(), "checkout-7f3a/1");
}

#[tokio::test]
async fn an_overlong_or_spaced_client_request_id_is_replaced() {
    let app = spawn_app().await;
    for sent in ["x".repeat(129), "two words".to_owned()] {
        let response = app
            .client
            .get(app.url("/request-id"))
            .header("x-request-id", &sent)
            .send()
            .await
            .unwrap();
        let header = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        assert_ne!(header, sent);
        assert_eq!(uuid::Uuid::parse_str(&header).unwrap().get_version_num(), 7);
    }
}

#[tokio::test]
async fn error_responses_carry_the_request_id_too() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/errors/conflict"))
        .header("x-request-id", "req-1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "req-1");
    problem(response, 409).await;
}
