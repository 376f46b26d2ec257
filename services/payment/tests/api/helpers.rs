//! Spawning the service on port 0 with its own database and NATS namespace, a stand-in for the
//! user service's JWKS, and clients for both APIs.

use async_nats::jetstream;
use payment_service::{Config, Settings};
use platform_auth::{ServiceCredentials, ServiceSecret, ServiceTokenInterceptor};
use platform_events::outbox::postgres::PgOutbox;
use platform_events::{Namespace, RawEnvelope};
use platform_proto::common::v1::Money;
use platform_proto::payment::v1::payment_service_client::PaymentServiceClient;
use platform_proto::payment::v1::{ChargeRequest, ChargeResponse, RefundRequest, RefundResponse};
use platform_testkit::fresh_pg_database;
pub use platform_testkit::service::cards::{
    DECLINED, FAILS_ONCE, INSUFFICIENT_FUNDS, SLOW, SUCCEEDS,
};
use platform_testkit::service::{
    Identities, Identity, JwksStandIn, Running, SERVICE_SECRET, assert_problem, events,
    http_client, localise,
};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;
use tonic::codegen::InterceptedService;
use tonic::transport::Channel;
use uuid::Uuid;

pub type Client = PaymentServiceClient<InterceptedService<Channel, ServiceTokenInterceptor>>;

pub struct TestApp {
    pub address: String,
    pub grpc_address: String,
    pub http: reqwest::Client,
    pub pool: PgPool,
    pub namespace: Namespace,
    pub jetstream: jetstream::Context,
    /// Mints users' access tokens, as the user service would.
    pub identities: Identities,
    /// Serves the user service's key set for as long as the app runs.
    _jwks: JwksStandIn,
    /// The service, stopped when the app is dropped.
    _service: Running,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// The configuration the tests run the service with, before `customise`: its own database,
/// the rest localised to the test, users' keys from `jwks_url`.
pub async fn test_config(jwks_url: &str) -> Settings {
    platform_telemetry::init_for_tests();
    platform_http::install_crypto_provider();
    let db = fresh_pg_database().await.unwrap();
    let mut config = Settings::new(Config::with_database(db.url.clone()));
    localise(&mut config.common, jwks_url).await.unwrap();
    config.own.provider.slow_card_delay_ms = 1500;
    config
}

pub async fn spawn_app_with(customise: impl FnOnce(&mut Settings)) -> TestApp {
    let identities = Identities::new();
    let jwks = identities.serve_jwks().await;
    let mut config = test_config(jwks.url()).await;
    customise(&mut config);
    let service = Running::start(payment_service::build(config.clone()).await.unwrap());
    let (address, grpc_address) = (service.url(), service.grpc_url());
    let pool = PgPool::connect(config.own.database.url.expose())
        .await
        .unwrap();
    let namespace =
        Namespace::prefixed(config.common.nats.subject_prefix.as_deref().unwrap()).unwrap();
    let nats = async_nats::connect(&config.common.nats.url).await.unwrap();
    TestApp {
        address,
        grpc_address,
        http: http_client(),
        pool,
        namespace,
        jetstream: jetstream::new(nats),
        identities,
        _jwks: jwks,
        _service: service,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// A new user with a valid access token.
    pub fn user(&self) -> Identity {
        self.identities.customer()
    }

    pub async fn add_card(&self, user: &Identity, card: &Value) -> Response {
        self.http
            .post(self.url("/api/v1/payment-methods"))
            .bearer_auth(&user.token)
            .json(card)
            .send()
            .await
            .unwrap()
    }

    /// Adds a valid card with this number and returns the payment method id.
    pub async fn card(&self, user: &Identity, number: &str) -> Uuid {
        let response = self.add_card(user, &card(number)).await;
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
        let body: Value = response.json().await.unwrap();
        body["id"].as_str().unwrap().parse().unwrap()
    }

    pub async fn get(&self, user: &Identity, path: &str) -> Response {
        self.http
            .get(self.url(path))
            .bearer_auth(&user.token)
            .send()
            .await
            .unwrap()
    }

    /// A gRPC client presenting the order service's credential.
    pub async fn client(&self) -> Client {
        let credentials =
            ServiceCredentials::new("order-service", ServiceSecret::new(SERVICE_SECRET).unwrap());
        let channel = Channel::from_shared(self.grpc_address.clone())
            .unwrap()
            .connect()
            .await
            .unwrap();
        PaymentServiceClient::with_interceptor(
            channel,
            ServiceTokenInterceptor::new(credentials, "payment-service"),
        )
    }

    pub async fn charge(
        &self,
        order_id: Uuid,
        user: &Identity,
        method: Uuid,
        minor: i64,
    ) -> Result<ChargeResponse, tonic::Status> {
        self.client()
            .await
            .charge(charge_request(order_id, user.id, method, minor, "EUR"))
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn refund(
        &self,
        order_id: Uuid,
        minor: i64,
        key: &str,
    ) -> Result<RefundResponse, tonic::Status> {
        self.client()
            .await
            .refund(RefundRequest {
                order_id: order_id.to_string(),
                amount: Some(eur(minor)),
                idempotency_key: key.to_owned(),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    /// Waits until `count` payment events are stored and the service's outbox has nothing
    /// left to publish, then asserts that the stream holds exactly `count`.
    pub async fn exactly_payment_events(&self, count: usize) -> Vec<(String, RawEnvelope)> {
        let outbox = PgOutbox::new(self.pool.clone(), self.namespace.clone());
        let stream = self.namespace.domain_stream("payments");
        events::exactly(&outbox, &self.jetstream, &stream, count)
            .await
            .unwrap()
    }

    /// Charges the test provider captured for an idempotency key (= payment id).
    pub async fn provider_captures(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM test_provider_charges WHERE outcome = 'captured'")
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    pub async fn provider_refunded(&self) -> i64 {
        sqlx::query_scalar(
            "SELECT COALESCE(sum(amount_minor), 0)::bigint FROM test_provider_refunds",
        )
        .fetch_one(&self.pool)
        .await
        .unwrap()
    }
}

pub fn card(number: &str) -> Value {
    json!({"card_number": number, "exp_month": 12, "exp_year": 2031, "cvc": "123"})
}

pub fn eur(minor: i64) -> Money {
    Money {
        minor,
        currency: "EUR".to_owned(),
    }
}

pub fn charge_request(
    order_id: Uuid,
    user_id: Uuid,
    method: Uuid,
    minor: i64,
    currency: &str,
) -> ChargeRequest {
    ChargeRequest {
        order_id: order_id.to_string(),
        user_id: user_id.to_string(),
        amount: Some(Money {
            minor,
            currency: currency.to_owned(),
        }),
        payment_method_id: method.to_string(),
    }
}

/// Asserts a problem+json answer with this status (see [`assert_problem`]), and returns its
/// body.
pub async fn problem(response: Response, status: u16) -> Value {
    assert_problem(response, StatusCode::from_u16(status).unwrap(), "").await
}
