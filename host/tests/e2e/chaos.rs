//! A service killed (SIGKILL) in the middle of a burst of orders and restarted: once the
//! platform is quiet, the invariants of docs/design.md hold in the services' own stores.
//!
//! Against a deployment (`E2E_GATEWAY_URL`), the service is killed and started with `E2E_KILL`
//! and `E2E_START`, and the invariants are checked on this run's products, customers and
//! orders only: the deployment holds other data too. Only one of these tests may run against a
//! deployment at a time (a killed service fails whatever else is running).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bson::{Document, doc};
use futures::TryStreamExt as _;
use futures::stream::{self, StreamExt as _};
use platform_host::{Client, Customer, Service};
use platform_testkit::eventually;
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::{Target, customer_with_card, target, unique_sku};

/// The test cards the customers pay with, in turn: two that capture, one declined, one that
/// fails its first attempt.
const CARDS: [&str; 4] = [
    "4242 4242 4242 4242",
    "4242 4242 4242 4242",
    "4000 0000 0000 0002",
    "4000 0000 0000 0119",
];

/// How big a burst of orders is.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Burst {
    /// Orders placed.
    pub orders: usize,
    /// Customers placing them (each with one of [`CARDS`], in turn).
    pub customers: usize,
    /// Orders in flight at once (each client places its order, retrying, then the next).
    pub concurrency: usize,
    /// Whether every fifth client sends its order again once it has its answer, as a client
    /// that lost the answer does: the same key must give the same order.
    pub resend: bool,
}

impl Burst {
    /// The chaos tests' burst: 24 orders at once from 4 customers.
    pub(crate) const SMALL: Burst = Burst {
        orders: 24,
        customers: 4,
        concurrency: 24,
        resend: false,
    };
}

/// What a burst left behind, for a test's own checks.
pub(crate) struct Finished {
    /// Every order as its buyer finally sees it (`CONFIRMED` or `CANCELLED`).
    pub orders: Vec<Value>,
    /// This run's products' SKUs.
    pub skus: Vec<String>,
}

/// Places an order with `key`, retrying with that key (honouring `Retry-After`) until the
/// platform answers with the order, for at most 90 s.
pub(crate) async fn place_with_key(
    client: &Client,
    customer: &Customer,
    key: &str,
    items: &[(&str, i64)],
    card: Uuid,
) -> Uuid {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let mut pause = Duration::from_millis(200);
        if let Ok(response) = client
            .place_order_with_key(customer, key, items, card)
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

/// A burst of orders with `fault` (given the target and this run's SKUs) injected once a third
/// of them are placed; then, once every order has finished, the invariants of docs/design.md
/// (see [`assert_invariants`]).
///
/// Good, declined and flaky cards, and scarce stock: of three products, the second has stock
/// for only half the orders that want it.
pub(crate) async fn burst(
    target: &mut Target,
    client: &Client,
    shape: Burst,
    fault: impl AsyncFnOnce(&mut Target, &[String]),
) -> Finished {
    let (email, password) = target.admin();
    let admin = client.sign_in(email, password).await.unwrap();
    // This run's own products: SKUs no other run uses; stock for 24 orders is 10, 6 and 30.
    let skus = ["CHAOS-A", "CHAOS-B", "CHAOS-C"].map(unique_sku);
    let (a, b, c) = (skus[0].as_str(), skus[1].as_str(), skus[2].as_str());
    let n = shape.orders;
    let mut stock = HashMap::new();
    for (sku, units) in [
        (a, (n * 5).div_ceil(12)),
        (b, n / 4),
        (c, (n * 5).div_ceil(4)),
    ] {
        let units = i64::try_from(units).unwrap();
        client
            .create_product(&admin, sku, 1000, units)
            .await
            .unwrap();
        stock.insert(sku, units);
    }
    let buyers = stream::iter(
        (0..shape.customers).map(|i| customer_with_card(client, CARDS[i % CARDS.len()])),
    )
    .buffered(8)
    .collect::<Vec<_>>()
    .await;

    let placed_count = AtomicUsize::new(0);
    let disruption = async {
        while placed_count.load(Ordering::Relaxed) < n / 3 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        fault(target, &skus).await;
    };
    let buyers_ref = &buyers;
    let placed_ref = &placed_count;
    let placing = stream::iter(0..n)
        .map(|i| {
            let buyer = i % buyers_ref.len();
            let (customer, card) = &buyers_ref[buyer];
            let lines: Vec<(&str, i64)> = match i % 3 {
                0 => vec![(a, 1), (c, 2)],
                1 => vec![(b, 2)],
                _ => vec![(c, 1)],
            };
            async move {
                let key = Uuid::now_v7().to_string();
                let id = place_with_key(client, customer, &key, &lines, *card).await;
                placed_ref.fetch_add(1, Ordering::Relaxed);
                if shape.resend && i % 5 == 0 {
                    let again = place_with_key(client, customer, &key, &lines, *card).await;
                    assert_eq!(again, id, "the same key placed a second order");
                }
                (buyer, id)
            }
        })
        .buffer_unordered(shape.concurrency)
        .collect::<Vec<_>>();
    let ((), orders) = tokio::join!(disruption, placing);

    // Every order finishes.
    let mut confirmed_total = 0;
    let mut finished = Vec::with_capacity(orders.len());
    for (buyer, id) in &orders {
        let order = client
            .finished(&buyers[*buyer].0, *id, Duration::from_secs(180))
            .await
            .unwrap();
        if order["status"] == "CONFIRMED" {
            confirmed_total += order["total"]["minor"].as_i64().unwrap();
        }
        finished.push(order);
    }

    assert_invariants(target, &stock, &orders, confirmed_total).await;
    Finished {
        orders: finished,
        skus: skus.to_vec(),
    }
}

async fn burst_with_a_crash(victim: Service) {
    let (mut target, client) = target(|_| {}).await;
    if let Target::Deployed(deployed) = &target {
        assert!(
            deployed.can_kill_and_start(),
            "against a deployment the chaos tests need E2E_KILL and E2E_START (shell commands \
             that kill and start `{{service}}`); set them, or leave these tests out with \
             -E 'not test(/^chaos::/)'"
        );
    }
    burst(
        &mut target,
        &client,
        Burst::SMALL,
        async |target: &mut Target, _: &[String]| {
            target.kill(victim).await;
            tokio::time::sleep(Duration::from_millis(500)).await;
            target.restart(victim).await;
        },
    )
    .await;
}

/// The invariants, in the services' own stores: no order half-way, stock conserved and
/// nothing left reserved, money conserved (captured - refunded = the confirmed orders'
/// total), and exactly one notification per finished order.
pub(crate) async fn assert_invariants(
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
    // The notification service works through the burst's backlog (a few events per order) after
    // the orders finish: on two loaded cores, 500 orders took it more than two minutes.
    let backlog = Duration::from_secs(120).max(Duration::from_millis(600) * ids.len() as u32);
    let per_order: Vec<(String, i64)> = eventually(backlog, "one notification per order", || async {
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
