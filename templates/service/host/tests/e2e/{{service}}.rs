//! The {{service}} service, through the gateway, on the whole platform.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{customer_with_card, target};
{% if consumes contains "orders.confirmed" %}use crate::journeys::{browse_the_catalogue, product_to_buy};
{% endif %}
const GOOD: &str = "4242 4242 4242 4242";

/// The customer's {{resource}}, through the gateway.
async fn {{resource}}(client: &platform_host::Client, token: &str) -> Value {
    client
        .get("/api/v1/{{resource}}", Some(token))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_keeps_{{resource}}_through_the_gateway() {
    let (_target, client) = target(|_| {}).await;
    let (ada, _) = customer_with_card(&client, GOOD).await;

    let created = client
        .post("/api/v1/{{resource}}", Some(&ada.token), &json!({"reference": "E2E-1"}))
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let created: Value = created.json().await.unwrap();
    let page = {{resource}}(&client, &ada.token).await;
    assert_eq!(page["items"], json!([created]));

    let anonymous = client.get("/api/v1/{{resource}}", None).await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}
{% if consumes contains "orders.confirmed" %}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmed_order_produces_a_{{record}}() {
    let (target, client) = target(|_| {}).await;
    let found = browse_the_catalogue(&client).await;
    let product = &product_to_buy(&target, &client, &found).await;
    let sku = product["sku"].as_str().unwrap().to_owned();

    let (ada, card) = customer_with_card(&client, GOOD).await;
    let id = client.order_id(&ada, &[(&sku, 1)], card).await.unwrap();
    let order = client
        .finished(&ada, id, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(order["status"], "CONFIRMED", "{order}");

    let {{record}} = platform_testkit::eventually(
        Duration::from_secs(30),
        "the {{record}} of the confirmed order",
        || async {
            let page = {{resource}}(&client, &ada.token).await;
            page["items"]
                .as_array()
                .and_then(|items| items.first().cloned())
        },
    )
    .await
    .unwrap();
    assert_eq!({{record}}["reference"], id.to_string());
    assert_eq!({{record}}["cause"], "orders.confirmed");
}
{% endif %}
