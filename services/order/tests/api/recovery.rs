//! A saga survives its worker: a fresh worker resumes it where it stopped, without reserving
//! or charging twice.

use std::time::{Duration, Instant};

use platform_testkit::service::Running;
use uuid::Uuid;

use crate::helpers::{Options, SUCCEEDS, TestApp, spawn_app_with};

/// A second order service on the same database, with its own saga worker.
async fn fresh_instance(shop: &TestApp) -> Running {
    let mut settings = shop.order_config.clone();
    settings.own.saga.enabled = true;
    Running::start(order_service::build(settings).await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saga_stopped_between_steps_is_resumed_by_a_fresh_worker_exactly_once() {
    let shop = spawn_app_with(Options {
        saga: false,
        ..Options::default()
    })
    .await;
    let sku = shop.product(2000, 5).await;
    let ada = shop.customer();
    let card = shop.card(&ada, SUCCEEDS).await;
    let id = shop.order(&ada, &[(&sku, 2)], card).await;
    let first = shop.worker.as_ref().unwrap();

    // The first worker reserves and charges, then is gone.
    first.run_once().await.unwrap();
    first.run_once().await.unwrap();
    assert_eq!(shop.status_of(id).await, "PAID");
    assert_eq!(shop.stock(&sku).await, (3, 2, 0));

    let _second = fresh_instance(&shop).await;
    let order = shop.finished(&ada, id).await;

    assert_eq!(order["status"], "CONFIRMED");
    assert_eq!(
        shop.stock(&sku).await,
        (3, 0, 2),
        "reserved once, sold once"
    );
    assert_eq!(
        shop.payments_for(id).await,
        [("captured".to_owned(), 4000, 0)]
    );
    assert_eq!(shop.provider_captures().await, 1, "charged once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saga_held_by_a_worker_that_died_is_taken_over_when_its_lease_lapses() {
    let shop = spawn_app_with(Options {
        saga: false,
        lease_secs: 2,
        ..Options::default()
    })
    .await;
    let sku = shop.product(2000, 5).await;
    let ada = shop.customer();
    let card = shop.card(&ada, SUCCEEDS).await;
    let id = shop.order(&ada, &[(&sku, 1)], card).await;

    // A worker claims the order and dies before doing anything with it.
    let claimed = order_service::store::claim_due(
        Uuid::now_v7(),
        10,
        Duration::from_secs(2),
        &shop.order_pool,
    )
    .await
    .unwrap();
    assert_eq!(claimed.len(), 1);
    let claimed_at = Instant::now();

    let _second = fresh_instance(&shop).await;
    let order = shop.finished(&ada, id).await;

    assert_eq!(order["status"], "CONFIRMED");
    assert!(
        claimed_at.elapsed() >= Duration::from_millis(1800),
        "nobody touched the order while the lease held"
    );
    assert_eq!(shop.stock(&sku).await, (4, 0, 1));
    assert_eq!(shop.provider_captures().await, 1);
}
