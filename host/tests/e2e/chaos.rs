//! A service killed (SIGKILL) in the middle of a burst of orders and restarted: once the
//! platform is quiet, the invariants of docs/design.md hold in the services' own stores.
//!
//! Against a deployment (`E2E_GATEWAY_URL`), the service is killed and started with `E2E_KILL`
//! and `E2E_START`, and the invariants are checked on this run's products, customers and
//! orders only: the deployment holds other data too. Only one of these tests may run against a
//! deployment at a time (a killed service fails whatever else is running).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bson::{Document, doc};
use futures::TryStreamExt as _;
use futures::future::join_all;
use platform_host::{Client, Customer, Service};
use platform_testkit::eventually;
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::PgPool;
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::helpers::{Target, customer_with_card, target, unique_sku};

const ORDERS: usize = 24;

/// Places an order, retrying with the same key while the platform is disrupted.
async fn place(client: &Client, customer: &Customer, items: &[(&str, i64)], card: Uuid) -> Uuid {
    let key = Uuid::now_v7().to_string();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let mut pause = Duration::from_millis(200);
        if let Ok(response) = client
            .place_order_with_key(customer, &key, items, card)
            .await
        {
            if matches!(response.status(), StatusCode::CREATED | StatusCode::OK) {
                let body: Value = response.json().await.unwrap();
                return body["id"].as_str().unwrap().parse().unwrap();
            }
            // A polite client waits as long as the gateway asks.
            if let Some(seconds) = response
                .headers()
                .get("retry-after")
                .and_then(|value| value.to_str().ok()?.parse::<u64>().ok())
            {
                pause = Duration::from_secs(seconds.min(5));
            }
        }
        assert!(
            Instant::now() < deadline,
            "the order could not be placed within 90 s"
        );
        tokio::time::sleep(pause).await;
    }
}

async fn burst_with_a_crash(victim: Service) {
    let (target, client) = target(|_| {}).await;
    if let Target::Deployed(deployed) = &target {
        assert!(
            deployed.can_kill_and_start(),
            "against a deployment the chaos tests need E2E_KILL and E2E_START (shell commands \
             that kill and start `{{service}}`); set them, or leave these tests out with \
             -E 'not test(/^chaos::/)'"
        );
    }
    let (email, password) = target.admin();
    let admin = client.sign_in(email, password).await.unwrap();
    // This run's own products: SKUs no other run uses.
    let [a, b, c] = ["CHAOS-A", "CHAOS-B", "CHAOS-C"].map(unique_sku);
    let (a, b, c) = (a.as_str(), b.as_str(), c.as_str());
    let mut stock = HashMap::new();
    for (sku, units) in [(a, 10), (b, 6), (c, 30)] {
        client
            .create_product(&admin, sku, 1000, units)
            .await
            .unwrap();
        stock.insert(sku, units);
    }
    let target = Arc::new(Mutex::new(target));
    let buyers = join_all(
        [
            "4242 4242 4242 4242",
            "4242 4242 4242 4242",
            "4000 0000 0000 0002",
            "4000 0000 0000 0119",
        ]
        .map(|card| customer_with_card(&client, card)),
    )
    .await;

    // The burst; the victim dies once a third of the orders are in.
    let placed_count = Arc::new(AtomicUsize::new(0));
    let crash = {
        let target = Arc::clone(&target);
        let placed_count = Arc::clone(&placed_count);
        tokio::spawn(async move {
            while placed_count.load(Ordering::Relaxed) < ORDERS / 3 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let mut target = target.lock().await;
            target.kill(victim).await;
            tokio::time::sleep(Duration::from_millis(500)).await;
            target.restart(victim).await;
        })
    };
    let buyer_count = buyers.len();
    let buyers_ref = &buyers;
    let orders = join_all((0..ORDERS).map(|i| {
        let (customer, card) = &buyers_ref[i % buyer_count];
        let lines: Vec<(&str, i64)> = match i % 3 {
            0 => vec![(a, 1), (c, 2)],
            1 => vec![(b, 2)],
            _ => vec![(c, 1)],
        };
        let client = &client;
        let placed_count = &placed_count;
        async move {
            let id = place(client, customer, &lines, *card).await;
            placed_count.fetch_add(1, Ordering::Relaxed);
            (i % buyer_count, id)
        }
    }))
    .await;
    crash.await.unwrap();

    // Every order finishes.
    let mut confirmed_total = 0;
    for (buyer, id) in &orders {
        let order = client
            .finished(&buyers[*buyer].0, *id, Duration::from_secs(120))
            .await
            .unwrap();
        if order["status"] == "CONFIRMED" {
            confirmed_total += order["total"]["minor"].as_i64().unwrap();
        }
    }

    let target = target.lock().await;
    assert_invariants(&target, &stock, &orders, confirmed_total).await;
}

async fn assert_invariants(
    target: &Target,
    stock: &HashMap<&str, i64>,
    orders: &[(usize, Uuid)],
    confirmed_total: i64,
) {
    let order_db = PgPool::connect(&target.postgres_url("orders"))
        .await
        .unwrap();
    let payment_db = PgPool::connect(&target.postgres_url("payments"))
        .await
        .unwrap();
    let notification_db = PgPool::connect(&target.postgres_url("notifications"))
        .await
        .unwrap();

    // Whose orders and payments are checked: on a platform of its own, everyone's (all are this
    // run's); on a deployment, this run's customers'.
    let order_ids: Vec<Uuid> = orders.iter().map(|(_, id)| *id).collect();
    let customers: Option<Vec<Uuid>> = if target.is_own() {
        None
    } else {
        let customers: Vec<Uuid> =
            sqlx::query_scalar("SELECT DISTINCT user_id FROM orders WHERE id = ANY($1)")
                .bind(&order_ids)
                .fetch_all(&order_db)
                .await
                .unwrap();
        let buyers = orders.iter().map(|(buyer, _)| *buyer).max().unwrap() + 1;
        assert_eq!(customers.len(), buyers, "every order is in the store");
        Some(customers)
    };

    let unfinished: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM orders WHERE status NOT IN ('CONFIRMED', 'CANCELLED') \
         AND ($1::uuid[] IS NULL OR user_id = ANY($1))",
    )
    .bind(&customers)
    .fetch_one(&order_db)
    .await
    .unwrap();
    assert_eq!(unfinished, 0, "no order stays half-way");

    let products: Vec<Document> = target
        .mongo_database("inventory")
        .await
        .collection::<Document>("products")
        .find(doc! {"sku": {"$in": stock.keys().copied().collect::<Vec<_>>()}})
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(products.len(), stock.len());
    for product in products {
        let sku = product.get_str("sku").unwrap();
        let counts = product.get_document("stock").unwrap();
        let count = |name: &str| match counts.get(name) {
            Some(bson::Bson::Int64(n)) => *n,
            Some(bson::Bson::Int32(n)) => i64::from(*n),
            other => panic!("{sku} stock.{name}: {other:?}"),
        };
        let (available, reserved, sold) = (count("available"), count("reserved"), count("sold"));
        assert_eq!(
            available + reserved + sold,
            stock[sku],
            "{sku}: stock is conserved"
        );
        assert_eq!(reserved, 0, "{sku}: nothing stays reserved");
    }

    let (captured, refunded): (i64, i64) = sqlx::query_as(
        "SELECT COALESCE(sum(amount_minor) FILTER (WHERE status = 'captured'), 0)::bigint, \
                COALESCE(sum(refunded_minor), 0)::bigint FROM payments \
         WHERE $1::uuid[] IS NULL OR user_id = ANY($1)",
    )
    .bind(&customers)
    .fetch_one(&payment_db)
    .await
    .unwrap();
    assert_eq!(captured - refunded, confirmed_total, "money is conserved");

    // Every finished order leads to exactly one message about it, once the platform is quiet.
    let ids: Vec<String> = orders.iter().map(|(_, id)| id.to_string()).collect();
    let per_order: Vec<(String, i64)> = eventually(Duration::from_secs(60), "one notification per order", || async {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT event->>'subject', count(*) FROM notifications \
             WHERE event_type IN ('orders.confirmed', 'orders.cancelled') AND event->>'subject' = ANY($1) \
             GROUP BY 1",
        )
        .bind(&ids)
        .fetch_all(&notification_db)
        .await
        .ok()?;
        (rows.len() == ids.len()).then_some(rows)
    })
    .await
    .unwrap();
    assert!(
        per_order.iter().all(|(_, count)| *count == 1),
        "exactly one notification per finished order: {per_order:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_order_service_mid_burst_breaks_no_invariant() {
    burst_with_a_crash(Service::named("order")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_inventory_service_mid_burst_breaks_no_invariant() {
    burst_with_a_crash(Service::named("inventory")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_payment_service_mid_burst_breaks_no_invariant() {
    burst_with_a_crash(Service::named("payment")).await;
}
