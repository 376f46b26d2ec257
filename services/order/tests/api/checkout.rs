//! The saga's paths: confirmed, out of stock, declined, timed out, expired, cancelled by the
//! customer.

use std::time::Duration;

use serde_json::Value;

use crate::helpers::{
    DECLINED, FAILS_ONCE, Options, SLOW, SUCCEEDS, problem, spawn_app, spawn_app_with,
};

fn statuses(order: &Value) -> Vec<&str> {
    order["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["status"].as_str().unwrap())
        .collect()
}

async fn events(shop: &crate::helpers::TestApp, order: uuid::Uuid) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT payload->>'type' FROM event_outbox WHERE payload->>'subject' = $1 ORDER BY id",
    )
    .bind(order.to_string())
    .fetch_all(&shop.order_pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_is_reserved_paid_committed_and_confirmed() {
    let shop = spawn_app().await;
    let sku = shop.product(1250, 10).await;
    let ada = shop.customer();
    let card = shop.card(&ada, SUCCEEDS).await;

    let id = shop.order(&ada, &[(&sku, 2)], card).await;
    let order = shop.finished(&ada, id).await;

    assert_eq!(order["status"], "CONFIRMED", "{order}");
    assert_eq!(
        statuses(&order),
        ["PENDING", "STOCK_RESERVED", "PAID", "CONFIRMED"]
    );
    assert_eq!(order["total"]["minor"], 2500);
    assert_eq!(order["items"][0]["unit_price"]["minor"], 1250);
    assert!(order["payment_id"].is_string());
    assert_eq!(shop.stock(&sku).await, (8, 0, 2));
    assert_eq!(
        shop.payments_for(id).await,
        [("captured".to_owned(), 2500, 0)]
    );
    assert_eq!(
        events(&shop, id).await,
        ["orders.created", "orders.confirmed"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_beyond_the_stock_is_cancelled_without_a_charge() {
    let shop = spawn_app().await;
    let sku = shop.product(1250, 1).await;
    let ada = shop.customer();
    let card = shop.card(&ada, SUCCEEDS).await;

    let id = shop.order(&ada, &[(&sku, 2)], card).await;
    let order = shop.finished(&ada, id).await;

    assert_eq!(order["status"], "CANCELLED");
    assert_eq!(order["cancellation"]["reason"], "out_of_stock");
    assert!(shop.payments_for(id).await.is_empty(), "no charge was made");
    assert_eq!(shop.stock(&sku).await, (1, 0, 0));
    assert_eq!(
        events(&shop, id).await,
        ["orders.created", "orders.cancelled"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_card_cancels_the_order_and_releases_its_stock() {
    let shop = spawn_app().await;
    let sku = shop.product(1250, 5).await;
    let ada = shop.customer();
    let card = shop.card(&ada, DECLINED).await;

    let id = shop.order(&ada, &[(&sku, 3)], card).await;
    let order = shop.finished(&ada, id).await;

    assert_eq!(order["status"], "CANCELLED");
    assert_eq!(order["cancellation"]["reason"], "payment_declined");
    assert_eq!(
        statuses(&order),
        ["PENDING", "STOCK_RESERVED", "CANCELLING", "CANCELLED"]
    );
    assert_eq!(
        shop.stock(&sku).await,
        (5, 0, 0),
        "the stock is back on the shelf"
    );
    assert_eq!(
        shop.payments_for(id).await,
        [("failed".to_owned(), 3750, 0)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_slower_than_the_deadline_is_compensated_and_no_capture_is_kept() {
    let shop = spawn_app_with(Options {
        payment_timeout_ms: 500,
        slow_card_delay_ms: 1500,
        ..Options::default()
    })
    .await;
    let sku = shop.product(1000, 5).await;
    let ada = shop.customer();
    let card = shop.card(&ada, SLOW).await;

    let id = shop.order(&ada, &[(&sku, 1)], card).await;
    let order = shop.finished(&ada, id).await;

    assert_eq!(order["status"], "CANCELLED", "{order}");
    assert_eq!(order["cancellation"]["reason"], "payment_timeout");
    // The charge went through after the deadline; the saga waited for it and refunded it.
    assert_eq!(
        shop.payments_for(id).await,
        [("captured".to_owned(), 1000, 1000)]
    );
    assert_eq!(order["refunded"]["minor"], 1000);
    assert_eq!(shop.stock(&sku).await, (5, 0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transient_payment_failure_is_retried_and_the_order_confirmed() {
    let shop = spawn_app().await;
    let sku = shop.product(999, 5).await;
    let ada = shop.customer();
    let card = shop.card(&ada, FAILS_ONCE).await;

    let id = shop.order(&ada, &[(&sku, 1)], card).await;
    let order = shop.finished(&ada, id).await;

    assert_eq!(order["status"], "CONFIRMED", "{order}");
    assert_eq!(shop.provider_captures().await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_confirmed_order_refunds_it_and_returns_its_stock() {
    let shop = spawn_app().await;
    let sku = shop.product(1250, 10).await;
    let ada = shop.customer();
    let card = shop.card(&ada, SUCCEEDS).await;
    let id = shop.order(&ada, &[(&sku, 4)], card).await;
    assert_eq!(shop.finished(&ada, id).await["status"], "CONFIRMED");

    let response = shop
        .http
        .post(format!("{}/api/v1/orders/{id}/cancel", shop.orders_url))
        .bearer_auth(&ada.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let accepted: Value = response.json().await.unwrap();
    assert_eq!(accepted["status"], "CANCELLING");
    let order = shop.finished(&ada, id).await;

    assert_eq!(order["status"], "CANCELLED");
    assert_eq!(order["cancellation"]["reason"], "customer_request");
    assert_eq!(order["refunded"]["minor"], 5000);
    assert_eq!(
        shop.payments_for(id).await,
        [("captured".to_owned(), 5000, 5000)]
    );
    assert_eq!(shop.stock(&sku).await, (10, 0, 0), "restocked");
    assert_eq!(
        events(&shop, id).await,
        ["orders.created", "orders.confirmed", "orders.cancelled"]
    );

    let again = shop
        .http
        .post(format!("{}/api/v1/orders/{id}/cancel", shop.orders_url))
        .bearer_auth(&ada.token)
        .send()
        .await
        .unwrap();
    let body = problem(again, 409).await;
    assert!(
        body["detail"].as_str().unwrap().contains("CANCELLED"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reservation_that_expires_before_its_commit_is_refunded_and_cancelled() {
    let shop = spawn_app_with(Options {
        saga: false,
        reservation_ttl_secs: 1,
        reservation_sweep_secs: 1,
        ..Options::default()
    })
    .await;
    let sku = shop.product(1500, 3).await;
    let ada = shop.customer();
    let card = shop.card(&ada, SUCCEEDS).await;
    let id = shop.order(&ada, &[(&sku, 2)], card).await;
    let worker = shop.worker.as_ref().unwrap();

    worker.run_once().await.unwrap();
    assert_eq!(shop.status_of(id).await, "STOCK_RESERVED");
    worker.run_once().await.unwrap();
    assert_eq!(shop.status_of(id).await, "PAID");
    // The inventory's sweep returns the stock of the reservation nobody committed.
    platform_testkit::eventually(
        Duration::from_secs(10),
        "the reservation to expire",
        || async { (shop.stock(&sku).await == (3, 0, 0)).then_some(()) },
    )
    .await
    .unwrap();
    shop.step_until_idle().await;

    let order = shop.finished(&ada, id).await;
    assert_eq!(order["status"], "CANCELLED");
    assert_eq!(order["cancellation"]["reason"], "reservation_expired");
    assert_eq!(
        shop.payments_for(id).await,
        [("captured".to_owned(), 3000, 3000)]
    );
    assert_eq!(shop.stock(&sku).await, (3, 0, 0));
}
