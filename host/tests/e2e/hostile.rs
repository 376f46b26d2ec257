//! Input that once broke the platform, through the gateway: a value one service stored that
//! another could not copy, an address the mail sender cannot deliver to; and a platform that
//! says it is ready before its gateway can document it.

use std::time::Duration;

use bson::doc;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{customer_with_card, target, unique_sku};

const GOOD: &str = "4242 4242 4242 4242";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_product_name_with_control_characters_is_refused_and_one_stored_before_breaks_no_order() {
    let (target, client) = target(|_| {}).await;

    // Ready means ready: the gateway documents every service it routes to at once.
    let document: Value = client
        .get("/openapi.json", None)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for path in [
        "/api/v1/auth/register",
        "/api/v1/users/me",
        "/api/v1/products",
        "/api/v1/orders",
        "/api/v1/payment-methods",
        "/api/v1/notifications",
    ] {
        assert!(
            document["paths"].get(path).is_some(),
            "{path} is not documented yet"
        );
    }

    let (email, password) = target.admin();
    let admin = client.sign_in(email, password).await.unwrap();
    let sku = unique_sku("NUL");
    let refused = client
        .post(
            "/api/v1/products",
            Some(&admin.token),
            &json!({
                "sku": sku,
                "name": "Mug\u{0}",
                "price": {"minor": 500, "currency": "EUR"},
                "category": "test",
                "initial_stock": 5
            }),
        )
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let problem: Value = refused.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "name", "{problem}");

    // A name stored before the catalogue refused control characters (or written around its
    // API) used to make every order for the product a 500.
    client.create_product(&admin, &sku, 500, 5).await.unwrap();
    target
        .mongo_database("inventory")
        .await
        .collection::<bson::Document>("products")
        .update_one(
            doc! {"sku": &sku},
            doc! {"$set": {"name": "Mug\u{0}\u{1b}[31m"}},
        )
        .await
        .unwrap();
    let (ada, card) = customer_with_card(&client, GOOD).await;
    let id = client.order_id(&ada, &[(&sku, 1)], card).await.unwrap();
    let order = client
        .finished(&ada, id, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(order["status"], "CONFIRMED", "{order}");
    assert_eq!(
        order["items"][0]["name"], "Mug\u{fffd}\u{fffd}[31m",
        "{order}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_the_mail_sender_cannot_deliver_to_is_refused_at_registration() {
    let (_target, client) = target(|_| {}).await;
    for email in [
        "josé@example.com".to_owned(),
        format!("{}\u{0}@example.com", platform_testkit::unique_name("ada")),
    ] {
        let response = client.register(&email, "José").await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{email:?}"
        );
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["errors"][0]["field"], "email", "{problem}");
    }
}
