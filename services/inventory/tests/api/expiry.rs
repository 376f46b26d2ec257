//! Reservations nobody commits expire and return their stock: by the sweep (once, however many
//! replicas sweep), or when a commit arrives too late.

use std::time::Duration;

use std::sync::Arc;

use futures::future::join_all;
use inventory_service::cache::ReadCache;
use inventory_service::stock::Stock;
use inventory_service::store::{ReservationState, Store};
use platform_contracts::{ReleaseReason, StockReleased};
use platform_events::outbox::mongo::MongoOutbox;
use platform_proto::inventory::v1::{CommitRequest, ReservationStatus};
use platform_testkit::eventually;
use tonic::Code;
use uuid::Uuid;

use crate::helpers::{TestApp, client_for, spawn_app_with, start};

/// Waits until every one of `orders` is expired.
async fn all_expired(app: &TestApp, orders: &[Uuid]) {
    eventually(
        Duration::from_secs(20),
        "the reservations to expire",
        || async {
            for order in orders {
                let reservation = app.reservation(*order).await?;
                if reservation.status != ReservationState::Expired {
                    return None;
                }
            }
            Some(())
        },
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn an_uncommitted_reservation_expires_and_returns_its_stock() {
    let app = spawn_app_with(|config| {
        config.own.reservations.ttl_secs = 1;
        config.own.reservations.sweep_interval_secs = 1;
    })
    .await;
    let product = app.stocked("KIT-MUG", 10, 1).await;
    let path = format!("/api/v1/products/{}", product["id"].as_str().unwrap());
    let order = Uuid::now_v7();
    app.reserve(order, &[("KIT-MUG", 3)]).await.unwrap();
    assert_eq!(app.get_json(&path).await["stock"]["available"], 7);

    all_expired(&app, &[order]).await;

    let stock = app.stock("KIT-MUG").await;
    assert_eq!((stock.available, stock.reserved, stock.sold), (10, 0, 0));
    assert_eq!(
        app.get_json(&path).await["stock"]["available"],
        10,
        "the sweep invalidated the cached read"
    );
    let commit = app.commit(order).await.unwrap_err();
    assert_eq!(commit.code(), Code::FailedPrecondition);
    assert!(commit.message().contains("expired"), "{}", commit.message());
    assert_eq!(
        app.release(order).await.unwrap().status(),
        ReservationStatus::Expired,
        "releasing an expired reservation changes nothing"
    );
    let events = app.exactly_events(2).await;
    assert_eq!(events[1].0, "inventory.stock_released");
    let released = events[1].1.decode::<StockReleased>().unwrap().data;
    assert_eq!(released.reason, ReleaseReason::Expired);
    assert_eq!(released.order_id, order);
    assert_eq!(app.stock("KIT-MUG").await.available, 10);
}

#[tokio::test]
async fn a_commit_after_the_ttl_fails_and_returns_the_stock_even_before_the_sweep_runs() {
    let app = spawn_app_with(|config| {
        config.own.reservations.ttl_secs = 1;
        config.own.reservations.sweep_interval_secs = 3600;
    })
    .await;
    app.stocked("KIT-MUG", 10, 1).await;
    let order = Uuid::now_v7();
    app.reserve(order, &[("KIT-MUG", 4)]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        app.reservation(order).await.unwrap().status,
        ReservationState::Reserved,
        "the sweep has not run"
    );

    let late = app.commit(order).await.unwrap_err();
    let again = app.commit(order).await.unwrap_err();

    assert_eq!(late.code(), Code::FailedPrecondition);
    assert!(late.message().contains("expired"), "{}", late.message());
    assert_eq!(again.code(), Code::FailedPrecondition);
    let stock = app.stock("KIT-MUG").await;
    assert_eq!((stock.available, stock.reserved, stock.sold), (10, 0, 0));
    let events = app.exactly_events(2).await;
    let released = events[1].1.decode::<StockReleased>().unwrap().data;
    assert_eq!(released.reason, ReleaseReason::Expired);
}

#[tokio::test]
async fn two_instances_sweeping_one_database_expire_each_reservation_once() {
    let app = spawn_app_with(|config| {
        config.own.reservations.ttl_secs = 1;
        config.own.reservations.sweep_interval_secs = 1;
    })
    .await;
    let second = start(app.config.clone()).await;
    app.stocked("KIT-MUG", 10, 1).await;
    app.stocked("KIT-PAN", 10, 1).await;
    let orders: Vec<Uuid> = (0..6).map(|_| Uuid::now_v7()).collect();
    // Half the orders through each instance.
    let mut second_client = client_for(&second.grpc_url()).await;
    for (index, order) in orders.iter().enumerate() {
        let items = [("KIT-MUG", 1), ("KIT-PAN", 1)];
        if index % 2 == 0 {
            app.reserve(*order, &items).await.unwrap();
        } else {
            second_client
                .reserve(crate::helpers::reserve_request(&order.to_string(), &items))
                .await
                .unwrap();
        }
    }

    all_expired(&app, &orders).await;

    for sku in ["KIT-MUG", "KIT-PAN"] {
        let stock = app.stock(sku).await;
        assert_eq!(
            (stock.available, stock.reserved, stock.sold),
            (10, 0, 0),
            "{sku}: the stock came back once"
        );
    }
    let events = app.exactly_events(12).await;
    let mut expired: Vec<Uuid> = events
        .iter()
        .filter(|(kind, _)| kind == "inventory.stock_released")
        .map(|(_, envelope)| {
            let released = envelope.decode::<StockReleased>().unwrap().data;
            assert_eq!(released.reason, ReleaseReason::Expired);
            released.order_id
        })
        .collect();
    expired.sort();
    let mut expected = orders.clone();
    expected.sort();
    assert_eq!(expired, expected, "one release per reservation");
    let commits = join_all(orders.iter().map(|order| {
        let mut client = second_client.clone();
        async move {
            client
                .commit(CommitRequest {
                    order_id: order.to_string(),
                })
                .await
        }
    }))
    .await;
    assert!(
        commits
            .iter()
            .all(|commit| commit.as_ref().unwrap_err().code() == Code::FailedPrecondition)
    );
}

/// What one replica runs its sweep with, over the app's database.
async fn replica_stock(app: &TestApp) -> Stock {
    let config = &app.config;
    let client = mongodb::Client::with_uri_str(config.own.mongo.url.expose())
        .await
        .unwrap();
    let store = Store::new(client.database(config.own.mongo.database.as_deref().unwrap()));
    let cache = ReadCache::connect(
        config.own.redis.url.expose(),
        &config.own.cache.key_prefix,
        config.own.cache.ttl(),
    )
    .unwrap();
    let outbox = MongoOutbox::new(store.database(), app.namespace.clone());
    Stock::new(
        store,
        cache,
        Arc::new(outbox),
        config.own.reservations.ttl(),
    )
}

#[tokio::test]
async fn sweeps_racing_on_the_same_reservations_expire_each_once() {
    let app = spawn_app_with(|config| {
        config.own.reservations.ttl_secs = 1;
        // The service's own sweep stays out of the way: the test runs the replicas' sweeps.
        config.own.reservations.sweep_interval_secs = 3600;
    })
    .await;
    app.stocked("KIT-MUG", 10, 0).await;
    let orders: Vec<Uuid> = (0..5).map(|_| Uuid::now_v7()).collect();
    for order in &orders {
        app.reserve(*order, &[("KIT-MUG", 2)]).await.unwrap();
    }
    let replicas = join_all((0..3).map(|_| replica_stock(&app))).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let swept = join_all(replicas.iter().map(Stock::expire_due)).await;

    let expired: usize = swept.into_iter().map(Result::unwrap).sum();
    assert_eq!(
        expired, 5,
        "each reservation expired by exactly one replica"
    );
    let stock = app.stock("KIT-MUG").await;
    assert_eq!((stock.available, stock.reserved, stock.sold), (10, 0, 0));
    all_expired(&app, &orders).await;
    let released = app
        .exactly_events(10)
        .await
        .into_iter()
        .filter(|(kind, _)| kind == "inventory.stock_released")
        .count();
    assert_eq!(released, 5);
}
