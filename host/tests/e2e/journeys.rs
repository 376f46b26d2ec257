//! What a customer does, through the gateway.

use std::time::Duration;

use platform_host::{Client, Service};
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{Target, customer_with_card, mail, target, unique_sku};

const GOOD: &str = "4242 4242 4242 4242";
const DECLINED: &str = "4000 0000 0000 0002";

/// Browses and searches the demo catalogue without an account; returns the search's answer.
pub(crate) async fn browse_the_catalogue(client: &platform_host::Client) -> Value {
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

/// The product the journey buys, as the catalogue shows it: on a platform of its own, the first
/// that the search found; on a deployment, one it creates (a unique SKU, found by searching for
/// it), so that it changes no stock that the demo data or another test counts on.
pub(crate) async fn product_to_buy(target: &Target, client: &Client, found: &Value) -> Value {
    if target.is_own() {
        return found["items"][0].clone();
    }
    assert!(found["total"].as_i64().unwrap() >= 1, "{found}");
    let (email, password) = target.admin();
    let admin = client.sign_in(email, password).await.unwrap();
    let sku = client
        .create_product(&admin, &unique_sku("E2E-JOURNEY"), 2500, 5)
        .await
        .unwrap();
    let mine: Value = client
        .get(&format!("/api/v1/products?q={sku}"), None)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(mine["total"], 1, "{mine}");
    assert_eq!(mine["items"][0]["sku"], sku.as_str(), "{mine}");
    mine["items"][0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_registers_browses_orders_and_is_told() {
    let (target, client) = target(|_| {}).await;

    let found = browse_the_catalogue(&client).await;
    let product = &product_to_buy(&target, &client, &found).await;
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
    let (target, client) = target(|_| {}).await;
    let (email, password) = target.admin();
    let admin = client.sign_in(email, password).await.unwrap();
    let scarce = client
        .create_product(&admin, &unique_sku("E2E-SCARCE"), 1500, 1)
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

/// On a platform of its own, the limit is set here; a deployment's is read from the gateway's
/// `RateLimit-Limit` header. Against a deployment the test needs a sign-in quota of its own
/// (`E2E_FORWARDED_FOR=1`, a gateway trusting `X-Forwarded-For`): spending the quota that every
/// concurrent test shares would break them, and they would spoil its count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_rate_limits_sign_in_attempts() {
    const LIMIT: usize = 5;
    let (target, client) = target(|config| {
        config.set(Service::GATEWAY, "RATE_LIMIT__AUTH__LIMIT", &LIMIT);
        config.set(Service::GATEWAY, "RATE_LIMIT__AUTH__WINDOW_SECS", &60);
    })
    .await;
    if let Target::Deployed(deployed) = &target {
        assert!(
            deployed.forwards_for(),
            "against a deployment this test needs E2E_FORWARDED_FOR=1 (and a gateway run with \
             GATEWAY__RATE_LIMIT__TRUST_FORWARDED_FOR=true): it spends a whole sign-in quota, \
             which must be its own, not the one every other test shares. Set it, or leave this \
             test out with -E 'not test(the_gateway_rate_limits_sign_in_attempts)'"
        );
    }
    let attempt = || client.login("nobody@example.com", "wrong password entirely");

    let first = attempt().await.unwrap();
    let header = |response: &reqwest::Response, name: &str| -> usize {
        response
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok()?.parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "the gateway's answer to a sign-in has no {name} header: is rate limiting on \
                     (GATEWAY__RATE_LIMIT__ENABLED) and its Redis up? {:?}",
                    response.headers()
                )
            })
    };
    let limit = header(&first, "ratelimit-limit");
    if target.is_own() {
        assert_eq!(limit, LIMIT);
    } else {
        // Under 200 the gateway takes its permits from Redis one by one: the count is exact.
        assert!(
            limit < 200,
            "the deployment's sign-in limit ({limit}) is too high for this test to spend exactly \
             (it must be under 200): lower GATEWAY__RATE_LIMIT__AUTH__LIMIT, or leave this test \
             out with -E 'not test(the_gateway_rate_limits_sign_in_attempts)'"
        );
        let remaining = header(&first, "ratelimit-remaining");
        assert_eq!(
            remaining,
            limit - 1,
            "this client's sign-in quota was already spent in part: does the gateway take the \
             client's address from X-Forwarded-For (GATEWAY__RATE_LIMIT__TRUST_FORWARDED_FOR=true)?"
        );
    }

    let mut statuses = vec![first.status().as_u16()];
    let mut limited = None;
    for _ in 1..limit + 3 {
        let response = attempt().await.unwrap();
        statuses.push(response.status().as_u16());
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(response);
        }
    }
    assert_eq!(statuses[..limit], vec![401; limit], "{statuses:?}");
    assert!(statuses[limit..].iter().all(|s| *s == 429), "{statuses:?}");
    let limited = limited.unwrap();
    assert!(limited.headers().contains_key("retry-after"));
    assert_eq!(
        limited.headers()["ratelimit-limit"],
        limit.to_string().as_str()
    );
    assert_eq!(
        limited.headers()["content-type"],
        "application/problem+json"
    );
    // Reads are another class: still served.
    let products = client.get("/api/v1/products", None).await.unwrap();
    assert_eq!(products.status(), StatusCode::OK);
    // Sign-in quotas are per address: another one is still served.
    if let Target::Deployed(deployed) = &target {
        let elsewhere = deployed
            .client()
            .login("nobody@example.com", "wrong password entirely")
            .await
            .unwrap();
        assert_eq!(
            elsewhere.status(),
            StatusCode::UNAUTHORIZED,
            "another X-Forwarded-For address was refused too: does the gateway take the client's \
             address from it (GATEWAY__RATE_LIMIT__TRUST_FORWARDED_FOR=true)?"
        );
    }
}
