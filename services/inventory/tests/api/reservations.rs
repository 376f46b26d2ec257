//! `Reserve`, `Release`, `Commit` and `GetProducts` over gRPC: all-or-nothing, never
//! overselling, idempotent per order, with their events.

use std::time::Duration;

use futures::future::join_all;
use platform_contracts::{
    LowStock, ReleaseReason, StockCommitted, StockLine, StockReleased, StockReserved,
};
use platform_proto::inventory::v1::inventory_service_client::InventoryServiceClient;
use platform_proto::inventory::v1::{GetProductsRequest, ReservationStatus};
use platform_testkit::eventually;
use tonic::Code;
use uuid::Uuid;

use crate::helpers::{TestApp, reserve_request, spawn_app};

fn line(sku: &str, quantity: u32) -> StockLine {
    StockLine {
        sku: sku.to_owned(),
        quantity,
    }
}

/// Reserves like the order service's saga: an `ABORTED` answer (too much contention right now)
/// is retried; any other answer is the outcome.
async fn reserve_as_the_saga_does(
    app: &TestApp,
    order: Uuid,
    items: &[(&str, i64)],
) -> Result<ReservationStatus, Code> {
    loop {
        match app.reserve(order, items).await {
            Ok(reserved) => return Ok(reserved.status()),
            Err(status) if status.code() == Code::Aborted => {}
            Err(status) => return Err(status.code()),
        }
    }
}

#[tokio::test]
async fn a_reservation_holds_the_stock_and_is_announced() {
    let app = spawn_app().await;
    app.stocked("KIT-MUG", 10, 1).await;
    app.stocked("KIT-PAN", 4, 1).await;
    let order = Uuid::now_v7();

    let reserved = app
        .reserve(order, &[("kit-pan", 1), ("KIT-MUG", 3)])
        .await
        .unwrap();

    assert_eq!(reserved.status(), ReservationStatus::Reserved);
    let expires_at = chrono::DateTime::parse_from_rfc3339(&reserved.expires_at).unwrap();
    let ttl = expires_at.signed_duration_since(chrono::Utc::now());
    assert!(
        ttl > chrono::Duration::seconds(890) && ttl <= chrono::Duration::seconds(900),
        "held for the configured 15 minutes: {ttl}"
    );
    let mug = app.stock("KIT-MUG").await;
    assert_eq!((mug.available, mug.reserved, mug.sold), (7, 3, 0));
    let pan = app.stock("KIT-PAN").await;
    assert_eq!((pan.available, pan.reserved, pan.sold), (3, 1, 0));
    let events = app.exactly_events(1).await;
    assert_eq!(events[0].0, "inventory.stock_reserved");
    let event = events[0].1.decode::<StockReserved>().unwrap();
    assert_eq!(event.subject, order.to_string());
    assert_eq!(event.source, "inventory-service");
    assert_eq!(event.data.order_id, order);
    assert_eq!(event.data.items, [line("KIT-MUG", 3), line("KIT-PAN", 1)]);
    assert_eq!(
        event.data.expires_at.timestamp_millis(),
        expires_at.timestamp_millis()
    );
}

#[tokio::test]
async fn a_multi_item_reservation_with_one_short_item_reserves_nothing() {
    let app = spawn_app().await;
    // Thresholds of 0: no low-stock alert muddles the events this test counts.
    app.stocked("A-1", 5, 0).await;
    app.stocked("B-2", 5, 0).await;
    app.stocked("C-3", 1, 0).await;
    let order = Uuid::now_v7();

    let short = app
        .reserve(order, &[("A-1", 2), ("B-2", 5), ("C-3", 2)])
        .await
        .unwrap_err();

    assert_eq!(short.code(), Code::FailedPrecondition);
    assert!(short.message().contains("C-3"), "{}", short.message());
    assert!(
        short.message().contains("1 available"),
        "{}",
        short.message()
    );
    let unknown = app
        .reserve(order, &[("A-1", 2), ("NO-SUCH-SKU", 1)])
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    assert!(unknown.message().contains("NO-SUCH-SKU"));
    for sku in ["A-1", "B-2", "C-3"] {
        let stock = app.stock(sku).await;
        assert_eq!(stock.reserved, 0, "{sku}: nothing reserved");
    }
    assert_eq!(app.stock("A-1").await.available, 5);
    assert_eq!(app.stock("B-2").await.available, 5);
    assert!(app.reservation(order).await.is_none());
    // The same order can try again once the stock is there.
    let retried = app.reserve(order, &[("A-1", 2), ("B-2", 5)]).await.unwrap();
    assert_eq!(retried.status(), ReservationStatus::Reserved);
    assert_eq!(app.exactly_events(1).await[0].0, "inventory.stock_reserved");
}

#[tokio::test]
async fn concurrent_reservations_racing_for_the_last_units_never_oversell() {
    let app = spawn_app().await;
    app.stocked("LAST-5", 5, 0).await;
    let orders: Vec<Uuid> = (0..20).map(|_| Uuid::now_v7()).collect();

    let outcomes = join_all(
        orders
            .iter()
            .map(|order| reserve_as_the_saga_does(&app, *order, &[("LAST-5", 1)])),
    )
    .await;

    let reserved = outcomes
        .iter()
        .filter(|outcome| **outcome == Ok(ReservationStatus::Reserved))
        .count();
    let short = outcomes
        .iter()
        .filter(|outcome| **outcome == Err(Code::FailedPrecondition))
        .count();
    assert_eq!((reserved, short), (5, 15), "{outcomes:?}");
    let stock = app.stock("LAST-5").await;
    assert_eq!((stock.available, stock.reserved, stock.sold), (0, 5, 0));
    assert_eq!(
        stock.available + stock.reserved + stock.sold,
        5,
        "stock is conserved"
    );
    let events = app.exactly_events(5).await;
    assert!(
        events
            .iter()
            .all(|(kind, _)| kind == "inventory.stock_reserved")
    );
}

#[tokio::test]
async fn concurrent_multi_item_reservations_take_whole_orders_or_nothing() {
    let app = spawn_app().await;
    app.stocked("MUG-A", 5, 0).await;
    app.stocked("PAN-B", 8, 0).await;
    // Each order wants one mug and two pans: the pans run out after four orders.
    let orders: Vec<Uuid> = (0..10).map(|_| Uuid::now_v7()).collect();

    let outcomes = join_all(
        orders
            .iter()
            .map(|order| reserve_as_the_saga_does(&app, *order, &[("PAN-B", 2), ("MUG-A", 1)])),
    )
    .await;

    let reserved = outcomes
        .iter()
        .filter(|outcome| **outcome == Ok(ReservationStatus::Reserved))
        .count();
    assert_eq!(reserved, 4, "{outcomes:?}");
    assert!(outcomes.iter().all(|outcome| matches!(
        outcome,
        Ok(ReservationStatus::Reserved) | Err(Code::FailedPrecondition)
    )));
    let mugs = app.stock("MUG-A").await;
    let pans = app.stock("PAN-B").await;
    assert_eq!(
        (mugs.available, mugs.reserved),
        (1, 4),
        "no mug went without its pans"
    );
    assert_eq!((pans.available, pans.reserved), (0, 8));
    assert!(mugs.available >= 0 && pans.available >= 0);
}

#[tokio::test]
async fn repeated_reserve_commit_and_release_calls_change_nothing() {
    let app = spawn_app().await;
    app.stocked("KIT-MUG", 10, 1).await;
    let order = Uuid::now_v7();

    let first = app.reserve(order, &[("KIT-MUG", 3)]).await.unwrap();
    let again = app.reserve(order, &[("KIT-MUG", 3)]).await.unwrap();
    assert_eq!(again, first, "the same answer, expiry included");
    let concurrent = join_all((0..3).map(|_| app.reserve(order, &[("KIT-MUG", 3)]))).await;
    assert!(
        concurrent
            .iter()
            .all(|answer| answer.as_ref().unwrap() == &first)
    );
    assert_eq!(app.stock("KIT-MUG").await.reserved, 3);

    for _ in 0..2 {
        let committed = app.commit(order).await.unwrap();
        assert_eq!(committed.status(), ReservationStatus::Committed);
    }
    let after_commit = app.reserve(order, &[("KIT-MUG", 3)]).await.unwrap();
    assert_eq!(after_commit.status(), ReservationStatus::Committed);
    assert_eq!(after_commit.expires_at, "");
    let stock = app.stock("KIT-MUG").await;
    assert_eq!((stock.available, stock.reserved, stock.sold), (7, 0, 3));

    for _ in 0..2 {
        let released = app.release(order).await.unwrap();
        assert_eq!(released.status(), ReservationStatus::Released);
    }
    let stock = app.stock("KIT-MUG").await;
    assert_eq!((stock.available, stock.reserved, stock.sold), (10, 0, 0));
    let kinds: Vec<String> = app
        .exactly_events(3)
        .await
        .into_iter()
        .map(|(kind, _)| kind)
        .collect();
    assert_eq!(
        kinds,
        [
            "inventory.stock_reserved",
            "inventory.stock_committed",
            "inventory.stock_released"
        ]
    );
}

/// The saga's first call and its retries can race (a lost answer, a restarted worker): the
/// order is reserved once and committed once, and every call gets the one reservation's answer.
#[tokio::test]
async fn racing_first_calls_for_one_order_reserve_and_commit_it_once() {
    let app = spawn_app().await;
    app.stocked("RACE-1", 10, 0).await;
    let order = Uuid::now_v7();

    let reserved = join_all((0..6).map(|_| async {
        loop {
            match app.reserve(order, &[("RACE-1", 2)]).await {
                Err(status) if status.code() == Code::Aborted => {}
                answer => return answer.unwrap(),
            }
        }
    }))
    .await;
    assert!(
        reserved
            .iter()
            .all(|answer| answer.status() == ReservationStatus::Reserved
                && answer.expires_at == reserved[0].expires_at),
        "{reserved:?}"
    );
    let stock = app.stock("RACE-1").await;
    assert_eq!((stock.available, stock.reserved, stock.sold), (8, 2, 0));

    let committed = join_all((0..6).map(|_| async {
        loop {
            match app.commit(order).await {
                Err(status) if status.code() == Code::Aborted => {}
                answer => return answer.unwrap().status(),
            }
        }
    }))
    .await;
    assert!(
        committed
            .iter()
            .all(|status| *status == ReservationStatus::Committed),
        "{committed:?}"
    );
    let stock = app.stock("RACE-1").await;
    assert_eq!((stock.available, stock.reserved, stock.sold), (8, 0, 2));
    let kinds: Vec<String> = app
        .exactly_events(2)
        .await
        .into_iter()
        .map(|(kind, _)| kind)
        .collect();
    assert_eq!(
        kinds,
        ["inventory.stock_reserved", "inventory.stock_committed"]
    );
}

#[tokio::test]
async fn a_confirmed_order_cancelled_by_the_customer_puts_the_sold_stock_back() {
    let app = spawn_app().await;
    app.stocked("KIT-MUG", 10, 1).await;
    app.stocked("KIT-PAN", 3, 0).await;
    let order = Uuid::now_v7();
    app.reserve(order, &[("KIT-MUG", 2), ("KIT-PAN", 3)])
        .await
        .unwrap();
    app.commit(order).await.unwrap();
    assert_eq!(app.stock("KIT-PAN").await.sold, 3);

    let released = app.release(order).await.unwrap();

    assert_eq!(released.status(), ReservationStatus::Released);
    for (sku, initial) in [("KIT-MUG", 10), ("KIT-PAN", 3)] {
        let stock = app.stock(sku).await;
        assert_eq!(
            (stock.available, stock.reserved, stock.sold),
            (initial, 0, 0),
            "{sku}"
        );
    }
    let status = app.commit(order).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    let events = app.exactly_events(3).await;
    assert_eq!(events[1].0, "inventory.stock_committed");
    let committed = events[1].1.decode::<StockCommitted>().unwrap().data;
    assert_eq!(committed.items, [line("KIT-MUG", 2), line("KIT-PAN", 3)]);
    let restocked = events[2].1.decode::<StockReleased>().unwrap().data;
    assert_eq!(restocked.reason, ReleaseReason::Restocked);
    assert_eq!(restocked.order_id, order);
    assert_eq!(restocked.items, [line("KIT-MUG", 2), line("KIT-PAN", 3)]);
}

#[tokio::test]
async fn a_released_reservation_returns_its_stock_and_cannot_be_committed() {
    let app = spawn_app().await;
    app.stocked("KIT-MUG", 10, 1).await;
    let order = Uuid::now_v7();
    app.reserve(order, &[("KIT-MUG", 4)]).await.unwrap();

    let released = app.release(order).await.unwrap();
    let commit = app.commit(order).await.unwrap_err();

    assert_eq!(released.status(), ReservationStatus::Released);
    assert_eq!(commit.code(), Code::FailedPrecondition);
    assert!(
        commit.message().contains("released"),
        "{}",
        commit.message()
    );
    let stock = app.stock("KIT-MUG").await;
    assert_eq!((stock.available, stock.reserved, stock.sold), (10, 0, 0));
    let events = app.exactly_events(2).await;
    let event = events[1].1.decode::<StockReleased>().unwrap().data;
    assert_eq!(event.reason, ReleaseReason::Released);
    assert_eq!(event.items, [line("KIT-MUG", 4)]);
}

#[tokio::test]
async fn releasing_an_order_that_reserved_nothing_is_a_no_op_that_a_late_reserve_respects() {
    let app = spawn_app().await;
    app.stocked("KIT-MUG", 10, 1).await;
    let order = Uuid::now_v7();

    let released = app.release(order).await.unwrap();
    // The saga's Reserve, retried after it gave up and cancelled the order, arrives late.
    let late = app.reserve(order, &[("KIT-MUG", 2)]).await.unwrap();

    assert_eq!(released.status(), ReservationStatus::Released);
    assert_eq!(late.status(), ReservationStatus::Released);
    assert_eq!(app.stock("KIT-MUG").await.available, 10);
    let status = app.commit(Uuid::now_v7()).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    app.exactly_events(0).await;
}

#[tokio::test]
async fn falling_below_the_threshold_is_announced_once_per_crossing() {
    let app = spawn_app().await;
    let product = app.stocked("KIT-MUG", 10, 5).await;
    let orders: Vec<Uuid> = (0..4).map(|_| Uuid::now_v7()).collect();

    app.reserve(orders[0], &[("KIT-MUG", 5)]).await.unwrap(); // 10 -> 5: at the threshold
    app.reserve(orders[1], &[("KIT-MUG", 1)]).await.unwrap(); // 5 -> 4: below, announced
    app.reserve(orders[2], &[("KIT-MUG", 1)]).await.unwrap(); // 4 -> 3: still below
    app.release(orders[1]).await.unwrap(); // 3 -> 4
    app.release(orders[0]).await.unwrap(); // 4 -> 9
    app.reserve(orders[3], &[("KIT-MUG", 7)]).await.unwrap(); // 9 -> 2: below again

    let events = app.exactly_events(8).await;
    let alerts: Vec<LowStock> = events
        .iter()
        .filter(|(kind, _)| kind == "inventory.low_stock")
        .map(|(_, envelope)| {
            assert_eq!(envelope.subject, product["id"].as_str().unwrap());
            envelope.decode::<LowStock>().unwrap().data
        })
        .collect();
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    assert_eq!((alerts[0].available, alerts[1].available), (4, 2));
    assert_eq!(alerts[0].threshold, 5);
    assert_eq!(alerts[0].sku, "KIT-MUG");
    assert_eq!(alerts[0].name, "Product KIT-MUG");
    assert_eq!(alerts[0].product_id, product["id"].as_str().unwrap());
}

#[tokio::test]
async fn invalid_requests_are_invalid_arguments_naming_the_field() {
    let app = spawn_app().await;
    app.stocked("KIT-MUG", 10, 1).await;
    let order = Uuid::now_v7().to_string();
    let cases = [
        (
            reserve_request(&order, &[("KIT-MUG", 1), ("KIT-MUG", 1)]),
            "items[1].sku",
        ),
        (
            reserve_request(&order, &[("KIT-PAN", 2), ("KIT-MUG", -1)]),
            "items[1].quantity must be positive",
        ),
        (
            reserve_request(&order, &[("KIT-MUG", 0)]),
            "items[0].quantity must be positive",
        ),
        (reserve_request(&order, &[("kit mug", 1)]), "items[0].sku"),
        (reserve_request(&order, &[]), "items must not be empty"),
        (reserve_request("order-1", &[("KIT-MUG", 1)]), "order_id"),
    ];
    for (request, expected) in cases {
        let status = app.client().await.reserve(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{expected}");
        assert!(status.message().contains(expected), "{}", status.message());
    }
    for status in [
        app.client()
            .await
            .release(platform_proto::inventory::v1::ReleaseRequest {
                order_id: "42".to_owned(),
            })
            .await
            .unwrap_err(),
        app.client()
            .await
            .commit(platform_proto::inventory::v1::CommitRequest {
                order_id: String::new(),
            })
            .await
            .unwrap_err(),
    ] {
        assert_eq!(status.code(), Code::InvalidArgument);
    }
    assert_eq!(app.stock("KIT-MUG").await.available, 10);
    assert!(app.reservation(order.parse().unwrap()).await.is_none());
}

#[tokio::test]
async fn calls_without_a_service_credential_are_unauthenticated() {
    let app = spawn_app().await;
    app.stocked("KIT-MUG", 10, 1).await;
    let channel = tonic::transport::Channel::from_shared(app.grpc_address.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut anonymous = InventoryServiceClient::new(channel);

    let status = anonymous
        .reserve(reserve_request(
            &Uuid::now_v7().to_string(),
            &[("KIT-MUG", 1)],
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    let status = anonymous
        .get_products(GetProductsRequest {
            skus: vec!["KIT-MUG".to_owned()],
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(app.stock("KIT-MUG").await.reserved, 0);
}

#[tokio::test]
async fn get_products_prices_skus_in_the_order_asked_and_names_an_unknown_one() {
    let app = spawn_app().await;
    let mug = app.stocked("KIT-MUG", 10, 1).await;
    app.stocked("KIT-PAN", 3, 1).await;
    app.reserve(Uuid::now_v7(), &[("KIT-MUG", 4)])
        .await
        .unwrap();

    let products = app
        .client()
        .await
        .get_products(GetProductsRequest {
            skus: vec!["kit-pan".to_owned(), "KIT-MUG".to_owned()],
        })
        .await
        .unwrap()
        .into_inner()
        .products;

    assert_eq!(products.len(), 2);
    assert_eq!(products[0].sku, "KIT-PAN");
    assert_eq!(products[1].sku, "KIT-MUG");
    assert_eq!(products[1].id, mug["id"].as_str().unwrap());
    assert_eq!(products[1].name, "Product KIT-MUG");
    assert_eq!(products[1].available, 6);
    let price = products[1].price.clone().unwrap();
    assert_eq!((price.minor, price.currency.as_str()), (1000, "EUR"));
    let status = app
        .client()
        .await
        .get_products(GetProductsRequest {
            skus: vec![
                "KIT-MUG".to_owned(),
                "NOPE-1".to_owned(),
                "NOPE-2".to_owned(),
            ],
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert!(status.message().contains("NOPE-1"), "{}", status.message());
}

#[tokio::test]
async fn callers_that_give_up_mid_reservation_leave_nothing_half_done_or_locked() {
    let app = spawn_app().await;
    app.stocked("KIT-MUG", 100, 0).await;
    app.get_json("/api/v1/products/KIT-MUG").await; // cached
    let mut client = app.client().await;
    // Deadlines from "gone before it starts" to "gone in the middle of the transaction".
    for deadline in [1, 2, 4, 6, 8, 11, 15, 20, 30, 45] {
        let mut request = tonic::Request::new(reserve_request(
            &Uuid::now_v7().to_string(),
            &[("KIT-MUG", 1)],
        ));
        request.set_timeout(Duration::from_millis(deadline));
        let _ = client.reserve(request).await;
    }

    // Nothing an abandoned call started still holds the product.
    let next = app.reserve(Uuid::now_v7(), &[("KIT-MUG", 1)]).await;
    assert_eq!(next.unwrap().status(), ReservationStatus::Reserved);
    // The abandoned calls finish on their own (each within its bounded retries): wait until
    // the state agrees with itself instead of for a guessed time. Then the counters match the
    // reservations, none half-made, each reservation was announced, and every reservation that
    // went through also invalidated the cached read (well within the cache's 60 s lifetime, so
    // a missed invalidation cannot pass by expiring).
    let (held, stock, served) = eventually(
        Duration::from_secs(10),
        "the abandoned calls to finish",
        || async {
            let held = app
                .db
                .collection::<bson::Document>("reservations")
                .count_documents(bson::doc! { "status": "reserved" })
                .await
                .unwrap();
            let stock = app.stock("KIT-MUG").await;
            let served = app.get_json("/api/v1/products/KIT-MUG").await;
            let announced = app
                .events()
                .await
                .iter()
                .filter(|(kind, _)| kind == "inventory.stock_reserved")
                .count();
            let held = i64::try_from(held).unwrap();
            (stock.reserved == held
                && served["stock"]["reserved"] == stock.reserved
                && i64::try_from(announced).unwrap() == held)
                .then_some((held, stock, served))
        },
    )
    .await
    .unwrap();
    assert_eq!(stock.reserved, held);
    assert_eq!(stock.available + stock.reserved, 100);
    assert_eq!(served["stock"]["reserved"], stock.reserved);
}
