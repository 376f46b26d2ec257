//! Spawning the service on port 0 with its own MongoDB database, cache keys and NATS
//! namespace, a stand-in for the user service's JWKS, and clients for both APIs.

use std::time::Duration;

use async_nats::jetstream;
use axum::routing::get;
use bson::doc;
use inventory_service::store::{ProductDoc, ReservationDoc, StockDoc};
use inventory_service::{Config, Settings};
use platform_auth::{
    Claims, Role, ServiceCredentials, ServiceSecret, ServiceTokenInterceptor, TokenSigner,
};
use platform_config::{MongoSettings, Secret};
use platform_events::{Namespace, RawEnvelope};
use platform_proto::inventory::v1::inventory_service_client::InventoryServiceClient;
use platform_proto::inventory::v1::{
    CommitRequest, CommitResponse, ReleaseRequest, ReleaseResponse, ReservationItem,
    ReserveRequest, ReserveResponse,
};
use platform_testkit::{
    Server, TcpProxy, eventually, fresh_mongo_database, stream_messages, unique_name, url,
};
use reqwest::Response;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tonic::codegen::InterceptedService;
use tonic::transport::Channel;
use uuid::Uuid;

/// The shared secret of service credentials in tests.
pub const SERVICE_SECRET: &str = "test-service-secret-at-least-32-bytes-long";

pub type Client = InventoryServiceClient<InterceptedService<Channel, ServiceTokenInterceptor>>;

/// A running instance; stops when dropped.
pub struct Instance {
    pub address: String,
    pub grpc_address: String,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

pub struct TestApp {
    pub address: String,
    pub grpc_address: String,
    pub http: reqwest::Client,
    pub db: mongodb::Database,
    pub config: Settings,
    pub namespace: Namespace,
    pub jetstream: jetstream::Context,
    /// Signs users' access tokens, as the user service would.
    pub signer: TokenSigner,
    /// In front of Redis, when the test asked for one (to cut Redis off).
    pub redis_proxy: Option<TcpProxy>,
    _instance: Instance,
}

/// Serves `signer`'s keys the way the user service does.
async fn jwks_stand_in(signer: &TokenSigner) -> String {
    let keys = signer.jwk_set();
    let app = axum::Router::new().route(
        "/.well-known/jwks.json",
        get(move || {
            let keys = keys.clone();
            async move { axum::Json(keys) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{address}/.well-known/jwks.json")
}

/// The configuration the tests run the service with, before customising: its own database,
/// cache keys and NATS namespace; no demo catalogue.
pub async fn test_config(signer: &TokenSigner) -> Settings {
    platform_telemetry::init_for_tests();
    platform_http::install_crypto_provider();
    let db = fresh_mongo_database().await.unwrap();
    let mut config = Settings::new(Config::with_mongo(url(Server::Mongo).await.unwrap()));
    config.own.mongo = MongoSettings {
        database: Some(db.name().to_owned()),
        ..config.own.mongo
    };
    "127.0.0.1".clone_into(&mut config.common.http.host);
    config.common.http.port = Some(0);
    "127.0.0.1".clone_into(&mut config.common.grpc.host);
    config.common.grpc.port = Some(0);
    config.own.redis.url = Secret::new(url(Server::Redis).await.unwrap());
    config.own.cache.key_prefix = unique_name("inventory");
    config.common.nats.url = url(Server::Nats).await.unwrap();
    config.common.nats.subject_prefix = Some(unique_name("t"));
    config.common.jwt.jwks_url = jwks_stand_in(signer).await;
    config.common.service_auth.secret = Some(Secret::new(SERVICE_SECRET));
    config.own.catalogue.seed_demo = false;
    config
}

/// Builds and runs one instance of the service with `config`.
pub async fn start(config: Settings) -> Instance {
    let application = inventory_service::build(config).await.unwrap();
    let address = format!("http://{}", application.http_addr());
    let grpc_address = format!("http://{}", application.grpc_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(application.run_until_stopped(async {
        let _ = stopped.await;
    }));
    Instance {
        address,
        grpc_address,
        stop: Some(stop),
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(customise: impl FnOnce(&mut Settings)) -> TestApp {
    let signer = TokenSigner::generate("user-service-1");
    let mut config = test_config(&signer).await;
    customise(&mut config);
    spawn(config, signer, None).await
}

/// An instance whose Redis connection goes through a proxy the test can cut.
pub async fn spawn_app_behind_a_redis_proxy() -> TestApp {
    let signer = TokenSigner::generate("user-service-1");
    let mut config = test_config(&signer).await;
    let proxy = TcpProxy::start(config.own.redis.url.expose())
        .await
        .unwrap();
    config.own.redis.url = Secret::new(proxy.url_for(config.own.redis.url.expose()));
    spawn(config, signer, Some(proxy)).await
}

async fn spawn(config: Settings, signer: TokenSigner, redis_proxy: Option<TcpProxy>) -> TestApp {
    let instance = start(config.clone()).await;
    let client = mongodb::Client::with_uri_str(config.own.mongo.url.expose())
        .await
        .unwrap();
    let db = client.database(config.own.mongo.database.as_deref().unwrap());
    let namespace =
        Namespace::prefixed(config.common.nats.subject_prefix.as_deref().unwrap()).unwrap();
    let nats = async_nats::connect(&config.common.nats.url).await.unwrap();
    TestApp {
        address: instance.address.clone(),
        grpc_address: instance.grpc_address.clone(),
        http: reqwest::Client::new(),
        db,
        config,
        namespace,
        jetstream: jetstream::new(nats),
        signer,
        redis_proxy,
        _instance: instance,
    }
}

/// A user's access token.
pub struct Token(pub String);

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    fn token(&self, roles: Vec<Role>) -> Token {
        let id = Uuid::now_v7();
        let claims = Claims::new(
            id,
            format!("{id}@example.com"),
            roles,
            self.config.common.jwt.issuer.clone(),
            self.config.common.jwt.audience.clone(),
            Duration::from_secs(600),
        );
        Token(self.signer.sign(&claims).unwrap())
    }

    /// A customer's token.
    pub fn customer(&self) -> Token {
        self.token(vec![Role::Customer])
    }

    /// An administrator's token.
    pub fn admin(&self) -> Token {
        self.token(vec![Role::Customer, Role::Admin])
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

    pub async fn post(&self, token: Option<&Token>, path: &str, body: &Value) -> Response {
        let mut request = self.http.post(self.url(path)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(&token.0);
        }
        request.send().await.unwrap()
    }

    pub async fn patch(&self, token: Option<&Token>, path: &str, body: &Value) -> Response {
        let mut request = self.http.patch(self.url(path)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(&token.0);
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
        stream_messages(&self.jetstream, &name)
            .await
            .unwrap()
            .into_iter()
            .map(|message| {
                let envelope = RawEnvelope::from_slice(&message.payload).unwrap();
                (envelope.event_type.clone(), envelope)
            })
            .collect()
    }

    /// Waits until `count` inventory events are stored, then checks no more arrive.
    pub async fn exactly_events(&self, count: usize) -> Vec<(String, RawEnvelope)> {
        eventually(Duration::from_secs(20), "inventory events", || async {
            (self.events().await.len() >= count).then_some(())
        })
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let events = self.events().await;
        assert_eq!(
            events.len(),
            count,
            "{:#?}",
            events.iter().map(|(kind, _)| kind).collect::<Vec<_>>()
        );
        events
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

/// Asserts a problem+json answer with this status, and returns its body.
pub async fn problem(response: Response, status: u16) -> Value {
    assert_eq!(response.status(), status, "{:?}", response.url().path());
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], status);
    body
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
