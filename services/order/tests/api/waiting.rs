//! `GET /api/v1/orders/{id}?wait=N`: the answer is held until the order is CONFIRMED or
//! CANCELLED, or N seconds have passed.

use std::time::{Duration, Instant};

use serde_json::Value;
use uuid::Uuid;

use crate::helpers::{Options, SUCCEEDS, TestApp, problem, spawn_app_with};

/// A shop whose saga the test steps by hand, and a customer's order waiting in it.
async fn shop_with_a_pending_order(
    wait_recheck_ms: u64,
) -> (TestApp, platform_testkit::service::Identity, Uuid) {
    let shop = spawn_app_with(Options {
        saga: false,
        wait_recheck_ms,
        ..Options::default()
    })
    .await;
    let sku = shop.product(1250, 10).await;
    let ada = shop.customer();
    let card = shop.card(&ada, SUCCEEDS).await;
    let id = shop.order(&ada, &[(&sku, 1)], card).await;
    (shop, ada, id)
}

/// The news travels through PostgreSQL from whichever worker finished the order (here one
/// beside the service, as another replica's would be): with the periodic second look pushed
/// past the wait, only the news can answer the read before its wait is over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_read_answers_when_the_order_is_confirmed_not_when_its_wait_is_over() {
    let (shop, ada, id) = shop_with_a_pending_order(60_000).await;

    let started = Instant::now();
    let (answer, ()) = tokio::join!(shop.get_order_with(&ada, id, "?wait=5"), async {
        // Let the read start waiting first.
        tokio::time::sleep(Duration::from_millis(300)).await;
        shop.step_until_idle().await;
    });
    let elapsed = started.elapsed();

    assert_eq!(answer.status(), 200);
    let order: Value = answer.json().await.unwrap();
    assert_eq!(order["status"], "CONFIRMED", "{order}");
    assert!(
        elapsed < Duration::from_secs(5),
        "answered only when the wait was over ({elapsed:?})"
    );
}

/// Should the news be missed (the listener away), the read finds the outcome at its next
/// look. The order is finished here behind the saga's back, so no news is sent at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_read_that_hears_no_news_finds_the_outcome_at_its_next_look() {
    let (shop, ada, id) = shop_with_a_pending_order(200).await;

    let started = Instant::now();
    let (answer, ()) = tokio::join!(shop.get_order_with(&ada, id, "?wait=5"), async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        sqlx::query("UPDATE orders SET status = 'CANCELLED' WHERE id = $1")
            .bind(id)
            .execute(&shop.order_pool)
            .await
            .unwrap();
    });

    let order: Value = answer.json().await.unwrap();
    assert_eq!(order["status"], "CANCELLED", "{order}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_read_ends_with_the_order_as_it_is_when_the_wait_is_over() {
    let (shop, ada, id) = shop_with_a_pending_order(1000).await;

    let started = Instant::now();
    let answer = shop.get_order_with(&ada, id, "?wait=1").await;

    assert_eq!(answer.status(), 200);
    let order: Value = answer.json().await.unwrap();
    assert_eq!(order["status"], "PENDING");
    assert!(started.elapsed() >= Duration::from_secs(1));

    // A finished order is answered at once, whatever the wait.
    shop.step_until_idle().await;
    let started = Instant::now();
    let order: Value = shop
        .get_order_with(&ada, id, "?wait=5")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(order["status"], "CONFIRMED");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_out_of_range_or_malformed_is_a_400_and_another_customers_order_a_404() {
    let (shop, ada, id) = shop_with_a_pending_order(1000).await;

    for query in ["?wait=6", "?wait=86400"] {
        let body = problem(shop.get_order_with(&ada, id, query).await, 400).await;
        assert_eq!(
            body["detail"], "`wait` must be between 0 and 5 seconds",
            "{query}: {body}"
        );
    }
    for query in ["?wait=-1", "?wait=soon", "?wait=1.5", "?until=5"] {
        let body = problem(shop.get_order_with(&ada, id, query).await, 400).await;
        assert!(
            !body["detail"].as_str().unwrap().is_empty(),
            "{query}: {body}"
        );
    }

    // Not held for the wait: there is nothing of theirs to wait for.
    let grace = shop.customer();
    let started = Instant::now();
    problem(shop.get_order_with(&grace, id, "?wait=5").await, 404).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(shop.status_of(id).await, "PENDING");
}
