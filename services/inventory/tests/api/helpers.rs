//! Spawning the service on port 0 with its own MongoDB database, cache keys and NATS
//! namespace, a stand-in for the user service's JWKS, and clients for both APIs.

use std::time::Duration;

use async_nats::jetstream;
use bson::doc;
use inventory_service::store::{ProductDoc, ReservationDoc, StockDoc};
use inventory_service::{Config, Settings};
use platform_auth::{ServiceCredentials, ServiceSecret, ServiceTokenInterceptor};
use platform_config::{MongoSettings, Secret};
use platform_events::outbox::mongo::MongoOutbox;
use platform_events::{Namespace, RawEnvelope};
use platform_proto::inventory::v1::inventory_service_client::InventoryServiceClient;
use platform_proto::inventory::v1::{
    CommitRequest, CommitResponse, ReleaseRequest, ReleaseResponse, ReservationItem,
    ReserveRequest, ReserveResponse,
};
pub use platform_testkit::service::SERVICE_SECRET;
use platform_testkit::service::{
    Identities, Identity, JwksStandIn, Running, assert_problem, events, http_client, localise,
};
use platform_testkit::{
    Server, TcpProxy, eventually, fresh_mongo_database, stream_messages, unique_name, url,
};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use tonic::codegen::InterceptedService;
use tonic::transport::Channel;
use uuid::Uuid;

pub type Client = InventoryServiceClient<InterceptedService<Channel, ServiceTokenInterceptor>>;

pub struct TestApp {
    pub address: String,
    pub grpc_address: String,
    pub http: reqwest::Client,
    pub db: mongodb::Database,
    pub config: Settings,
    pub namespace: Namespace,
    pub jetstream: jetstream::Context,
    /// Mints users' access tokens, as the user service would.
    pub identities: Identities,
    /// The user service's key set, as the service fetches it.
    pub jwks: JwksStandIn,
    /// In front of Redis, when the test asked for one (to cut Redis off).
    pub redis_proxy: Option<TcpProxy>,
    _instance: Running,
}

/// The configuration the tests run the service with, before customising: its own database,
/// cache keys and NATS namespace, users' keys from `jwks_url`; no demo catalogue.
pub async fn test_config(jwks_url: &str) -> Settings {
    platform_telemetry::init_for_tests();
    platform_http::install_crypto_provider();
    let db = fresh_mongo_database().await.unwrap();
    let mut config = Settings::new(Config::with_mongo(url(Server::Mongo).await.unwrap()));
    config.own.mongo = MongoSettings {
        database: Some(db.name().to_owned()),
        ..config.own.mongo
    };
    localise(&mut config.common, jwks_url).await.unwrap();
    config.own.redis.url = Secret::new(url(Server::Redis).await.unwrap());
    config.own.cache.key_prefix = unique_name("inventory");
    config.own.catalogue.seed_demo = false;
    config
}

/// Builds and runs one instance of the service with `config`; it stops when dropped.
pub async fn start(config: Settings) -> Running {
    Running::start(inventory_service::build(config).await.unwrap())
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(customise: impl FnOnce(&mut Settings)) -> TestApp {
    let identities = Identities::new();
    let jwks = identities.serve_jwks().await;
    let mut config = test_config(jwks.url()).await;
    customise(&mut config);
    spawn(config, identities, jwks, None).await
}

/// An instance whose Redis connection goes through a proxy the test can cut.
pub async fn spawn_app_behind_a_redis_proxy() -> TestApp {
    let identities = Identities::new();
    let jwks = identities.serve_jwks().await;
    let mut config = test_config(jwks.url()).await;
    let proxy = TcpProxy::start(config.own.redis.url.expose())
        .await
        .unwrap();
    config.own.redis.url = Secret::new(proxy.url_for(config.own.redis.url.expose()));
    spawn(config, identities, jwks, Some(proxy)).await
}

async fn spawn(
    config: Settings,
    identities: Identities,
    jwks: JwksStandIn,
    redis_proxy: Option<TcpProxy>,
) -> TestApp {
    let instance = start(config.clone()).await;
    let client = mongodb::Client::with_uri_str(config.own.mongo.url.expose())
        .await
        .unwrap();
    let db = client.database(config.own.mongo.database.as_deref().unwrap());
    let namespace =
        Namespace::prefixed(config.common.nats.subject_prefix.as_deref().unwrap()).unwrap();
    let nats = async_nats::connect(&config.common.nats.url).await.unwrap();
    TestApp {
        address: instance.url(),
        grpc_address: instance.grpc_url(),
        http: http_client(),
        db,
        config,
        namespace,
        jetstream: jetstream::new(nats),
        identities,
        jwks,
        redis_proxy,
        _instance: instance,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// A new customer, with a token.
    pub fn customer(&self) -> Identity {
        self.identities.customer()
    }

    /// A new administrator, with a token.
    pub fn admin(&self) -> Identity {
        self.identities.admin()
    }

    /// An anonymous GET.
    pub async fn get(&self, path: &str) -> Response {
        self.http.get(self.url(path)).send().await.unwrap()
    }

    /// An anonymous GET with `If-None-Match`.
    pub async fn get_if_none_match(&self, path: &str, etag: &str) -> Response {
        self.http
            .get(self.url(path))
            .header("if-none-match", etag)
            .send()
            .await
            .unwrap()
    }

    /// A GET answered 200, as JSON.
    pub async fn get_json(&self, path: &str) -> Value {
        let response = self.get(path).await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.unwrap()
    }

    pub async fn post(&self, token: Option<&Identity>, path: &str, body: &Value) -> Response {
        let mut request = self.http.post(self.url(path)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(&token.token);
        }
        request.send().await.unwrap()
    }

    pub async fn patch(&self, token: Option<&Identity>, path: &str, body: &Value) -> Response {
        let mut request = self.http.patch(self.url(path)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(&token.token);
        }
        request.send().await.unwrap()
    }

    /// Adds a product as an administrator and returns it.
    pub async fn add_product(&self, product: &Value) -> Value {
        let response = self
            .post(Some(&self.admin()), "/api/v1/products", product)
            .await;
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
        response.json().await.unwrap()
    }

    /// Adds a product with this SKU, stock and threshold (and a made-up name and price).
    pub async fn stocked(&self, sku: &str, stock: i64, threshold: i64) -> Value {
        self.add_product(&product(
            sku,
            &format!("Product {sku}"),
            1000,
            stock,
            threshold,
        ))
        .await
    }

    /// A product as stored, with all its counters.
    pub async fn stored(&self, sku: &str) -> ProductDoc {
        self.db
            .collection::<ProductDoc>("products")
            .find_one(doc! { "sku": sku })
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("no product {sku}"))
    }

    /// A product's stock counters as stored.
    pub async fn stock(&self, sku: &str) -> StockDoc {
        self.stored(sku).await.stock
    }

    /// An order's reservation as stored.
    pub async fn reservation(&self, order_id: Uuid) -> Option<ReservationDoc> {
        self.db
            .collection::<ReservationDoc>("reservations")
            .find_one(doc! { "_id": order_id.to_string() })
            .await
            .unwrap()
    }

    /// A gRPC client presenting the order service's credential.
    pub async fn client(&self) -> Client {
        client_for(&self.grpc_address).await
    }

    pub async fn reserve(
        &self,
        order_id: Uuid,
        items: &[(&str, i64)],
    ) -> Result<ReserveResponse, tonic::Status> {
        self.client()
            .await
            .reserve(reserve_request(&order_id.to_string(), items))
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn release(&self, order_id: Uuid) -> Result<ReleaseResponse, tonic::Status> {
        self.client()
            .await
            .release(ReleaseRequest {
                order_id: order_id.to_string(),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn commit(&self, order_id: Uuid) -> Result<CommitResponse, tonic::Status> {
        self.client()
            .await
            .commit(CommitRequest {
                order_id: order_id.to_string(),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    /// Inventory events stored so far, in order, as (event type, envelope).
    pub async fn events(&self) -> Vec<(String, RawEnvelope)> {
        let name = self.namespace.domain_stream("inventory");
        events::envelopes(stream_messages(&self.jetstream, &name).await.unwrap())
    }

    /// Waits until `count` inventory events are stored and the outbox has nothing left to
    /// publish, then asserts that the stream holds exactly `count`.
    pub async fn exactly_events(&self, count: usize) -> Vec<(String, RawEnvelope)> {
        let outbox = MongoOutbox::new(&self.db, self.namespace.clone());
        let stream = self.namespace.domain_stream("inventory");
        events::exactly(&outbox, &self.jetstream, &stream, count)
            .await
            .unwrap()
    }
}

/// A gRPC client for the instance at `grpc_address`, presenting the order service's credential.
pub async fn client_for(grpc_address: &str) -> Client {
    let credentials =
        ServiceCredentials::new("order-service", ServiceSecret::new(SERVICE_SECRET).unwrap());
    let channel = Channel::from_shared(grpc_address.to_owned())
        .unwrap()
        .connect()
        .await
        .unwrap();
    InventoryServiceClient::with_interceptor(
        channel,
        ServiceTokenInterceptor::new(credentials, "inventory-service"),
    )
}

pub fn reserve_request(order_id: &str, items: &[(&str, i64)]) -> ReserveRequest {
    ReserveRequest {
        order_id: order_id.to_owned(),
        items: items
            .iter()
            .map(|(sku, quantity)| ReservationItem {
                sku: (*sku).to_owned(),
                quantity: *quantity,
            })
            .collect(),
    }
}

/// A product to create.
pub fn product(sku: &str, name: &str, price_minor: i64, stock: i64, threshold: i64) -> Value {
    json!({
        "sku": sku,
        "name": name,
        "description": format!("All about {name}."),
        "price": {"minor": price_minor, "currency": "EUR"},
        "category": "kitchen",
        "initial_stock": stock,
        "low_stock_threshold": threshold,
    })
}

/// Asserts a problem+json answer with this status (see [`assert_problem`]), and returns its
/// body.
pub async fn problem(response: Response, status: u16) -> Value {
    assert_problem(response, StatusCode::from_u16(status).unwrap(), "").await
}

/// The names of a page of products, in order.
pub fn names(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["name"].as_str().unwrap().to_owned())
        .collect()
}

/// Polls a GET until its JSON body satisfies `expected` (for changes that land a moment later).
pub async fn eventually_json(
    app: &TestApp,
    path: &str,
    expected: impl Fn(&Value) -> bool,
) -> Value {
    eventually(Duration::from_secs(10), path, || async {
        let response = app.get(path).await;
        if response.status() != 200 {
            return None;
        }
        let body: Value = response.json().await.ok()?;
        expected(&body).then_some(body)
    })
    .await
    .unwrap()
}
