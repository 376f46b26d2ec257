//! `/api/v1/payment-methods`: cards go in once, only the provider's token stays.

use serde_json::{Value, json};

use crate::helpers::{SUCCEEDS, card, problem, spawn_app};

#[tokio::test]
async fn adding_a_card_keeps_only_the_token_brand_last_four_and_expiry() {
    let app = spawn_app().await;
    let ada = app.user();

    let response = app.add_card(&ada, &card(SUCCEEDS)).await;

    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let method: Value = response.json().await.unwrap();
    assert_eq!(
        location,
        format!("/api/v1/payment-methods/{}", method["id"].as_str().unwrap())
    );
    assert_eq!(method["brand"], "visa");
    assert_eq!(method["last4"], "4242");
    assert_eq!(method["exp_month"], 12);
    assert_eq!(method["exp_year"], 2031);
    assert_eq!(method.as_object().unwrap().len(), 6, "{method}");
    let (token, last4): (String, String) =
        sqlx::query_as("SELECT provider_token, last4 FROM payment_methods")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(token.starts_with("tok_test_"));
    assert_eq!(last4, "4242");
}

#[tokio::test]
async fn the_brand_is_told_from_the_number() {
    let app = spawn_app().await;
    let ada = app.user();
    let mastercard: Value = app
        .add_card(&ada, &card("5555 5555 5555 4444"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(mastercard["brand"], "mastercard");
    let amex: Value = app
        .add_card(
            &ada,
            &json!({"card_number": "3782 822463 10005", "exp_month": 1, "exp_year": 40, "cvc": "1234"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(amex["brand"], "amex");
    assert_eq!(amex["exp_year"], 2040);
}

#[tokio::test]
async fn an_invalid_number_a_past_expiry_and_a_malformed_cvc_are_each_named() {
    let app = spawn_app().await;
    let ada = app.user();
    let cases = [
        (
            json!({"card_number": "4242 4242 4242 4241", "exp_month": 12, "exp_year": 2031, "cvc": "123"}),
            json!([{"field": "card_number", "message": "is not a valid card number (the check digit does not match)"}]),
        ),
        (
            json!({"card_number": SUCCEEDS, "exp_month": 1, "exp_year": 2020, "cvc": "123"}),
            json!([{"field": "exp_year", "message": "the card expired at the end of 01/2020"}]),
        ),
        (
            json!({"card_number": SUCCEEDS, "exp_month": 12, "exp_year": 2031, "cvc": "12"}),
            json!([{"field": "cvc", "message": "must be 3 digits for this card"}]),
        ),
        (
            json!({"card_number": SUCCEEDS, "exp_month": 13, "exp_year": 2031, "cvc": "123"}),
            json!([{"field": "exp_month", "message": "must be a month from 1 to 12"}]),
        ),
    ];
    for (request, errors) in cases {
        let body = problem(app.add_card(&ada, &request).await, 422).await;
        assert_eq!(body["errors"], errors, "{request}");
    }
    let all = problem(
        app.add_card(
            &ada,
            &json!({"card_number": "1234", "exp_month": 0, "exp_year": 1999, "cvc": "x"}),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(all["errors"].as_array().unwrap().len(), 3, "{all}");
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM payment_methods")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored, 0, "nothing reached the provider or the database");
}

#[tokio::test]
async fn users_see_and_remove_only_their_own_cards() {
    let app = spawn_app().await;
    let ada = app.user();
    let eve = app.user();
    let adas = app.card(&ada, SUCCEEDS).await;
    app.card(&eve, "5555 5555 5555 4444").await;

    let listed: Value = app
        .get(&ada, "/api/v1/payment-methods")
        .await
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [adas.to_string()]);

    let steal = app
        .http
        .delete(app.url(&format!("/api/v1/payment-methods/{adas}")))
        .bearer_auth(&eve.token)
        .send()
        .await
        .unwrap();
    problem(steal, 404).await;

    let delete = |token: String| {
        let request = app
            .http
            .delete(app.url(&format!("/api/v1/payment-methods/{adas}")))
            .bearer_auth(token);
        async move { request.send().await.unwrap() }
    };
    assert_eq!(delete(ada.token.clone()).await.status(), 204);
    problem(delete(ada.token.clone()).await, 404).await;
    let listed: Value = app
        .get(&ada, "/api/v1/payment-methods")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["items"], json!([]));
}

#[tokio::test]
async fn requests_need_a_valid_token_and_well_formed_ids() {
    let app = spawn_app().await;
    let anonymous = app
        .http
        .get(app.url("/api/v1/payment-methods"))
        .send()
        .await
        .unwrap();
    problem(anonymous, 401).await;
    let ada = app.user();
    let malformed = app
        .http
        .delete(app.url("/api/v1/payment-methods/not-a-uuid"))
        .bearer_auth(&ada.token)
        .send()
        .await
        .unwrap();
    problem(malformed, 400).await;
}
