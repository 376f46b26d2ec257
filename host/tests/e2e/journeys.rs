//! What a customer does, through the gateway.

use std::time::Duration;

use platform_host::Service;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{ADMIN, customer_with_card, mail, platform};

const GOOD: &str = "4242 4242 4242 4242";
const DECLINED: &str = "4000 0000 0000 0002";

/// Browses and searches the demo catalogue without an account; returns the search's answer.
async fn browse_the_catalogue(client: &platform_host::Client) -> Value {
    let audio: Value = client
        .get("/api/v1/products?category=audio&sort=price", None)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(audio["total"].as_i64().unwrap() >= 3, "{audio}");
    let prices: Vec<i64> = audio["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["price"]["minor"].as_i64().unwrap())
        .collect();
    assert!(
        prices.windows(2).all(|pair| pair[0] <= pair[1]),
        "sorted by price: {prices:?}"
    );
    let found: Value = client
        .get("/api/v1/products?q=turntable", None)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_registers_browses_orders_and_is_told() {
    let (_platform, client) = platform(|_| {}).await;

    let found = browse_the_catalogue(&client).await;
    let product = &found["items"][0];
    let sku = product["sku"].as_str().unwrap().to_owned();
    let price = product["price"]["minor"].as_i64().unwrap();
    let available = product["stock"]["available"].as_i64().unwrap();

    // Register (a welcome email), add a card, order.
    let (ada, card) = customer_with_card(&client, GOOD).await;
    assert!(mail(&ada.email, 1).await[0].subject.starts_with("Welcome"));
    let id = client.order_id(&ada, &[(&sku, 1)], card).await.unwrap();
    let order = client
        .finished(&ada, id, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(order["status"], "CONFIRMED", "{order}");
    assert_eq!(order["total"]["minor"], price);

    // The confirmation arrives and is listed among the customer's notifications.
    let messages = mail(&ada.email, 2).await;
    assert!(
        messages[1].subject.contains("is confirmed"),
        "{}",
        messages[1].subject
    );
    assert!(messages[1].text.contains(product["name"].as_str().unwrap()));
    let notifications: Value = client
        .get("/api/v1/notifications", Some(&ada.token))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kinds: Vec<&str> = notifications["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["event_type"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"orders.confirmed"), "{kinds:?}");
    let after: Value = client
        .get(&format!("/api/v1/products/{sku}"), None)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(after["stock"]["available"], available - 1);

    // Another customer cannot see it.
    let (grace, _) = customer_with_card(&client, GOOD).await;
    let theirs = client
        .get(&format!("/api/v1/orders/{id}"), Some(&grace.token))
        .await
        .unwrap();
    assert_eq!(theirs.status(), StatusCode::NOT_FOUND);

    // Cancelling the confirmed order refunds it, restocks it, and says so.
    let cancel = client
        .post(
            &format!("/api/v1/orders/{id}/cancel"),
            Some(&ada.token),
            &Value::Null,
        )
        .await
        .unwrap();
    assert_eq!(cancel.status(), StatusCode::ACCEPTED);
    let cancelled = client
        .finished(&ada, id, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(cancelled["status"], "CANCELLED");
    assert_eq!(cancelled["refunded"]["minor"], price);
    let messages = mail(&ada.email, 3).await;
    assert!(
        messages[2].text.contains("refunded"),
        "{}",
        messages[2].text
    );
    let restocked: Value = client
        .get(&format!("/api/v1/products/{sku}"), None)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(restocked["stock"]["available"], available);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declined_cards_and_missing_stock_cancel_orders_with_their_reason() {
    let (_platform, client) = platform(|_| {}).await;
    let admin = client.sign_in(ADMIN.0, ADMIN.1).await.unwrap();
    let scarce = client
        .create_product(&admin, "E2E-SCARCE", 1500, 1)
        .await
        .unwrap();

    let (ada, declined_card) = customer_with_card(&client, DECLINED).await;
    let declined = client
        .order_id(&ada, &[(&scarce, 1)], declined_card)
        .await
        .unwrap();
    let order = client
        .finished(&ada, declined, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(
        order["cancellation"]["reason"], "payment_declined",
        "{order}"
    );
    let messages = mail(&ada.email, 3).await;
    let subjects: Vec<&str> = messages.iter().map(|m| m.subject.as_str()).collect();
    assert!(
        subjects.iter().any(|s| s.contains("did not go through")),
        "{subjects:?}"
    );
    assert!(
        subjects.iter().any(|s| s.ends_with("was cancelled")),
        "{subjects:?}"
    );

    // The declined order released its unit; a good card takes it, and the next order is short.
    let (grace, card) = customer_with_card(&client, GOOD).await;
    let bought = client
        .order_id(&grace, &[(&scarce, 1)], card)
        .await
        .unwrap();
    assert_eq!(
        client
            .finished(&grace, bought, Duration::from_secs(30))
            .await
            .unwrap()["status"],
        "CONFIRMED"
    );
    let short = client
        .order_id(&grace, &[(&scarce, 1)], card)
        .await
        .unwrap();
    let order = client
        .finished(&grace, short, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(order["cancellation"]["reason"], "out_of_stock", "{order}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_rate_limits_sign_in_attempts() {
    let (_platform, client) = platform(|config| {
        config.set(Service::GATEWAY, "RATE_LIMIT__AUTH__LIMIT", &5);
        config.set(Service::GATEWAY, "RATE_LIMIT__AUTH__WINDOW_SECS", &60);
    })
    .await;

    let mut statuses = Vec::new();
    let mut limited = None;
    for _ in 0..8 {
        let response = client
            .login("nobody@example.com", "wrong password entirely")
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(response);
        }
    }
    assert_eq!(&statuses[..5], [401; 5], "{statuses:?}");
    assert!(statuses[5..].iter().all(|s| *s == 429), "{statuses:?}");
    let limited = limited.unwrap();
    assert!(limited.headers().contains_key("retry-after"));
    assert_eq!(limited.headers()["ratelimit-limit"], "5");
    assert_eq!(
        limited.headers()["content-type"],
        "application/problem+json"
    );
    // Reads are another class: still served.
    let products = client.get("/api/v1/products", None).await.unwrap();
    assert_eq!(products.status(), StatusCode::OK);
}
