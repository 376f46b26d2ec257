//! The three services of a checkout, wired together on one NATS namespace.

use std::time::Duration;

use bson::{Document, doc};
use platform_config::{MongoSettings, Secret};
pub use platform_testkit::service::cards::{DECLINED, FAILS_ONCE, SLOW, SUCCEEDS};
use platform_testkit::service::{
    Identities, Identity, JwksStandIn, Running, assert_problem, http_client, localise,
};
use platform_testkit::{Server, eventually, fresh_pg_database, unique_name, url};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

/// How the shop is started.
pub struct Options {
    /// Whether the order service runs its saga worker (false: tests step it by hand).
    pub saga: bool,
    pub reservation_ttl_secs: u64,
    pub reservation_sweep_secs: u64,
    pub payment_timeout_ms: u64,
    pub slow_card_delay_ms: u64,
    pub lease_secs: u64,
    /// How often a read waiting for its order (`?wait=`) looks again without news.
    pub wait_recheck_ms: u64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            saga: true,
            reservation_ttl_secs: 300,
            reservation_sweep_secs: 1,
            payment_timeout_ms: 2000,
            slow_card_delay_ms: 3000,
            lease_secs: 2,
            wait_recheck_ms: 1000,
        }
    }
}

pub struct TestApp {
    pub orders_url: String,
    pub inventory_url: String,
    pub payments_url: String,
    pub order_pool: PgPool,
    pub payment_pool: PgPool,
    pub inventory_db: mongodb::Database,
    /// Mints users' access tokens, as the user service would.
    pub identities: Identities,
    /// An administrator, who stocks the shelves.
    pub admin: Identity,
    pub http: reqwest::Client,
    pub order_config: order_service::Settings,
    /// A worker to step the saga by hand, when the service runs without its own.
    pub worker: Option<order_service::saga::SagaWorker>,
    /// Serves the user service's key set for as long as the shop runs.
    _jwks: JwksStandIn,
    /// Inventory, payment and order, stopped when the shop is dropped.
    _services: [Running; 3],
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Options::default()).await
}

/// Inventory, payment and order services on one bus, started as `options` says.
#[allow(clippy::too_many_lines)]
pub async fn spawn_app_with(options: Options) -> TestApp {
    platform_telemetry::init_for_tests();
    platform_http::install_crypto_provider();
    let identities = Identities::new();
    let jwks = identities.serve_jwks().await;

    let mongo_url = url(Server::Mongo).await.unwrap();
    let mut inventory =
        inventory_service::Settings::new(inventory_service::Config::with_mongo(mongo_url.clone()));
    inventory.own.mongo = MongoSettings {
        url: Secret::new(mongo_url),
        database: Some(unique_name("inventory")),
    };
    localise(&mut inventory.common, jwks.url()).await.unwrap();
    // One bus for the three services.
    let bus = inventory.common.nats.clone();
    inventory.own.redis.url = Secret::new(url(Server::Redis).await.unwrap());
    inventory.own.cache.key_prefix = unique_name("cache");
    inventory.own.reservations.ttl_secs = options.reservation_ttl_secs;
    inventory.own.reservations.sweep_interval_secs = options.reservation_sweep_secs;
    inventory.own.catalogue.seed_demo = false;
    let inventory_db_name = inventory.own.mongo.database.clone().unwrap();
    let inventory_app = Running::start(inventory_service::build(inventory).await.unwrap());
    let (inventory_url, inventory_grpc) = (inventory_app.url(), inventory_app.grpc_url());

    let payment_db = fresh_pg_database().await.unwrap();
    let mut payment = payment_service::Settings::new(payment_service::Config::with_database(
        payment_db.url.clone(),
    ));
    localise(&mut payment.common, jwks.url()).await.unwrap();
    payment.common.nats = bus.clone();
    payment.own.provider.slow_card_delay_ms = options.slow_card_delay_ms;
    let payment_app = Running::start(payment_service::build(payment).await.unwrap());
    let (payments_url, payments_grpc) = (payment_app.url(), payment_app.grpc_url());

    let order_db = fresh_pg_database().await.unwrap();
    let mut order =
        order_service::Settings::new(order_service::Config::with_database(order_db.url.clone()));
    localise(&mut order.common, jwks.url()).await.unwrap();
    order.common.nats = bus;
    order.own.inventory.url = Some(inventory_grpc);
    order.own.payment.url = Some(payments_grpc);
    order.own.payment.timeout_ms = Some(options.payment_timeout_ms);
    order.own.saga.poll_interval_ms = 50;
    order.own.saga.retry_base_ms = 50;
    order.own.saga.lease_secs = options.lease_secs;
    order.own.saga.enabled = options.saga;
    order.own.orders.wait_recheck_ms = options.wait_recheck_ms;
    let (order_app, worker) = order_service::build_with_worker(order.clone())
        .await
        .unwrap();
    let order_app = Running::start(order_app);
    let orders_url = order_app.url();
    let worker = (!options.saga).then_some(worker);

    let mongo = platform_testkit::mongo_client().await.unwrap();
    let admin = identities.admin();
    TestApp {
        orders_url,
        inventory_url,
        payments_url,
        order_pool: order_db.pool.clone(),
        payment_pool: payment_db.pool.clone(),
        inventory_db: mongo.database(&inventory_db_name),
        identities,
        admin,
        http: http_client(),
        order_config: order,
        worker,
        _jwks: jwks,
        _services: [inventory_app, payment_app, order_app],
    }
}

impl TestApp {
    /// A new customer, with a token.
    pub fn customer(&self) -> Identity {
        self.identities.customer()
    }

    /// Creates a product with `stock` units at `price` EUR cents; returns its SKU.
    pub async fn product(&self, price: i64, stock: i64) -> String {
        let sku = unique_name("SKU").to_uppercase().replace('_', "-");
        let sku = sku[..sku.len().min(40)].to_owned();
        let response = self
            .http
            .post(format!("{}/api/v1/products", self.inventory_url))
            .bearer_auth(&self.admin.token)
            .json(&json!({
                "sku": sku,
                "name": format!("Product {sku}"),
                "price": {"minor": price, "currency": "EUR"},
                "category": "test",
                "initial_stock": stock,
                "low_stock_threshold": 0
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
        sku
    }

    /// Adds a card for the customer; returns the payment method id.
    pub async fn card(&self, customer: &Identity, number: &str) -> Uuid {
        let response = self
            .http
            .post(format!("{}/api/v1/payment-methods", self.payments_url))
            .bearer_auth(&customer.token)
            .json(&json!({"card_number": number, "exp_month": 12, "exp_year": 2031, "cvc": "123"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
        let body: Value = response.json().await.unwrap();
        body["id"].as_str().unwrap().parse().unwrap()
    }

    pub async fn place(&self, customer: &Identity, key: &str, body: &Value) -> Response {
        self.http
            .post(format!("{}/api/v1/orders", self.orders_url))
            .bearer_auth(&customer.token)
            .header("Idempotency-Key", key)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// Places an order (a fresh key) and returns its id.
    pub async fn order(&self, customer: &Identity, items: &[(&str, i64)], method: Uuid) -> Uuid {
        let response = self
            .place(
                customer,
                &Uuid::now_v7().to_string(),
                &order_body(items, method),
            )
            .await;
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
        let body: Value = response.json().await.unwrap();
        body["id"].as_str().unwrap().parse().unwrap()
    }

    pub async fn get_order(&self, customer: &Identity, id: Uuid) -> Response {
        self.get_order_with(customer, id, "").await
    }

    /// The order, read with `query` (e.g. `?wait=5`).
    pub async fn get_order_with(&self, customer: &Identity, id: Uuid, query: &str) -> Response {
        self.http
            .get(format!("{}/api/v1/orders/{id}{query}", self.orders_url))
            .bearer_auth(&customer.token)
            .send()
            .await
            .unwrap()
    }

    /// Waits until the order is CONFIRMED or CANCELLED; returns it.
    pub async fn finished(&self, customer: &Identity, id: Uuid) -> Value {
        eventually(Duration::from_secs(30), "the order to finish", || async {
            let order: Value = self
                .get_order_with(customer, id, "?wait=5")
                .await
                .json()
                .await
                .ok()?;
            matches!(order["status"].as_str(), Some("CONFIRMED" | "CANCELLED")).then_some(order)
        })
        .await
        .unwrap()
    }

    /// Steps the saga by hand until nothing is due.
    pub async fn step_until_idle(&self) {
        let worker = self
            .worker
            .as_ref()
            .expect("a shop without its own saga worker");
        while worker.run_once().await.unwrap() > 0 {}
    }

    /// `(available, reserved, sold)` of a product.
    pub async fn stock(&self, sku: &str) -> (i64, i64, i64) {
        let product: Document = self
            .inventory_db
            .collection::<Document>("products")
            .find_one(doc! {"sku": sku})
            .await
            .unwrap()
            .unwrap();
        let stock = product.get_document("stock").unwrap();
        let number = |name: &str| match stock.get(name) {
            Some(bson::Bson::Int64(n)) => *n,
            Some(bson::Bson::Int32(n)) => i64::from(*n),
            other => panic!("stock.{name}: {other:?}"),
        };
        (number("available"), number("reserved"), number("sold"))
    }

    /// `(captured, refunded)` in minor units, summed over the payment service's payments.
    pub async fn money(&self) -> (i64, i64) {
        sqlx::query_as(
            "SELECT COALESCE(sum(amount_minor) FILTER (WHERE status = 'captured'), 0)::bigint, \
                    COALESCE(sum(refunded_minor), 0)::bigint FROM payments",
        )
        .fetch_one(&self.payment_pool)
        .await
        .unwrap()
    }

    /// Payments made for an order.
    pub async fn payments_for(&self, order: Uuid) -> Vec<(String, i64, i64)> {
        sqlx::query_as(
            "SELECT status, amount_minor, refunded_minor FROM payments WHERE order_id = $1",
        )
        .bind(order)
        .fetch_all(&self.payment_pool)
        .await
        .unwrap()
    }

    /// Charges the test provider captured (money that moved).
    pub async fn provider_captures(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM test_provider_charges WHERE outcome = 'captured'")
            .fetch_one(&self.payment_pool)
            .await
            .unwrap()
    }

    pub async fn status_of(&self, order: Uuid) -> String {
        sqlx::query_scalar("SELECT status FROM orders WHERE id = $1")
            .bind(order)
            .fetch_one(&self.order_pool)
            .await
            .unwrap()
    }
}

pub fn order_body(items: &[(&str, i64)], method: Uuid) -> Value {
    json!({
        "items": items.iter().map(|(sku, quantity)| json!({"sku": sku, "quantity": quantity})).collect::<Vec<_>>(),
        "payment_method_id": method,
    })
}

/// Asserts a problem+json answer with this status (see [`assert_problem`]), and returns its
/// body.
pub async fn problem(response: Response, status: u16) -> Value {
    assert_problem(response, StatusCode::from_u16(status).unwrap(), "").await
}
