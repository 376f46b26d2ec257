//! After a burst of concurrent orders with mixed outcomes, the platform's invariants hold.

use std::collections::HashMap;

use futures::future::join_all;
use platform_testkit::service::Identity;
use uuid::Uuid;

use crate::helpers::{DECLINED, FAILS_ONCE, SUCCEEDS, TestApp, order_body, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stock_and_money_are_conserved_and_every_order_finishes() {
    let shop = spawn_app().await;
    // Enough stock for most orders, too little of `b` for all of them.
    let initial = [("a", 20_i64, 1200_i64), ("b", 12, 2500), ("c", 40, 799)];
    let mut skus = HashMap::new();
    for (name, stock, price) in initial {
        skus.insert(name, (shop.product(price, stock).await, stock));
    }
    let buyers: Vec<(Identity, Uuid)> = join_all([SUCCEEDS, SUCCEEDS, DECLINED, FAILS_ONCE].map(
        |card| async {
            let customer = shop.customer();
            let method = shop.card(&customer, card).await;
            (customer, method)
        },
    ))
    .await;

    // 24 orders at once: some fit the stock, some do not (`b`: 18 asked, 12 in stock), some
    // cards decline. The declined card's orders (i % 4 == 2) ask only for what suffices even
    // if every order held its reservation at once (`a`: 18 of 20, `c`: 36 of 40), so they
    // always reach the payment and are declined, whichever orders reserve first.
    let plans: Vec<(usize, Vec<(&str, i64)>)> = (0..24)
        .map(|i| {
            let lines = match i % 4 {
                0 => vec![("a", 1), ("b", 1), ("c", 2)],
                1 => vec![("b", 2)],
                2 => vec![("a", 2), ("c", 1)],
                _ => vec![("c", 3)],
            };
            (i % buyers.len(), lines)
        })
        .collect();
    let shop = &shop;
    let buyers = &buyers;
    let skus = &skus;
    let placed = join_all(plans.iter().map(|(buyer, lines)| {
        let (customer, method) = &buyers[*buyer];
        let lines: Vec<(&str, i64)> = lines
            .iter()
            .map(|(name, quantity)| (skus[name].0.as_str(), *quantity))
            .collect();
        async move {
            let response = shop
                .place(
                    customer,
                    &Uuid::now_v7().to_string(),
                    &order_body(&lines, *method),
                )
                .await;
            assert_eq!(response.status(), 201);
            let body: serde_json::Value = response.json().await.unwrap();
            (
                *buyer,
                body["id"].as_str().unwrap().parse::<Uuid>().unwrap(),
            )
        }
    }))
    .await;

    let mut confirmed_total = 0;
    let mut outcomes: HashMap<String, usize> = HashMap::new();
    for (buyer, id) in &placed {
        let order = shop.finished(&buyers[*buyer].0, *id).await;
        let status = order["status"].as_str().unwrap().to_owned();
        if status == "CONFIRMED" {
            confirmed_total += order["total"]["minor"].as_i64().unwrap();
        }
        *outcomes
            .entry(
                order["cancellation"]["reason"]
                    .as_str()
                    .unwrap_or("confirmed")
                    .to_owned(),
            )
            .or_default() += 1;
    }
    let unfinished: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM orders WHERE status NOT IN ('CONFIRMED', 'CANCELLED')",
    )
    .fetch_one(&shop.order_pool)
    .await
    .unwrap();
    assert_eq!(unfinished, 0, "no order left half-way");
    assert!(
        outcomes.contains_key("confirmed") && outcomes.contains_key("payment_declined"),
        "the burst had mixed outcomes: {outcomes:?}"
    );

    for (sku, stock) in skus.values() {
        assert_stock_conserved(shop, sku, *stock).await;
    }
    let (captured, refunded) = shop.money().await;
    assert_eq!(
        captured - refunded,
        confirmed_total,
        "money is conserved: {outcomes:?}"
    );
}

/// `initial = available + reserved + sold`, nothing left reserved, and what was sold is what
/// the confirmed orders hold.
async fn assert_stock_conserved(shop: &TestApp, sku: &str, initial: i64) {
    let (available, reserved, sold) = shop.stock(sku).await;
    assert_eq!(reserved, 0, "{sku}: nothing stays reserved");
    assert_eq!(
        available + reserved + sold,
        initial,
        "{sku}: stock is conserved"
    );
    assert!(available >= 0);
    let sold_in_orders: i64 = sqlx::query_scalar(
        "SELECT COALESCE(sum(i.quantity), 0)::bigint FROM order_items i \
         JOIN orders o ON o.id = i.order_id WHERE o.status = 'CONFIRMED' AND i.sku = $1",
    )
    .bind(sku)
    .fetch_one(&shop.order_pool)
    .await
    .unwrap();
    assert_eq!(
        sold, sold_in_orders,
        "{sku}: what was sold is what confirmed orders hold"
    );
}
