//! Spawning the service on port 0 with its own database and NATS namespace, a stand-in for the
//! user service's JWKS, and clients for both APIs.

use std::time::Duration;

use async_nats::jetstream;
use axum::routing::get;
use payment_service::{Config, Settings};
use platform_auth::{
    Claims, Role, ServiceCredentials, ServiceSecret, ServiceTokenInterceptor, TokenSigner,
};
use platform_config::Secret;
use platform_events::{Namespace, RawEnvelope};
use platform_proto::common::v1::Money;
use platform_proto::payment::v1::payment_service_client::PaymentServiceClient;
use platform_proto::payment::v1::{ChargeRequest, ChargeResponse, RefundRequest, RefundResponse};
use platform_testkit::{Server, eventually, fresh_pg_database, stream_messages, unique_name, url};
use reqwest::Response;
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::sync::oneshot;
use tonic::codegen::InterceptedService;
use tonic::transport::Channel;
use uuid::Uuid;

/// The shared secret of service credentials in tests.
pub const SERVICE_SECRET: &str = "test-service-secret-at-least-32-bytes-long";

/// Test cards (see the README).
pub const SUCCEEDS: &str = "4242 4242 4242 4242";
pub const DECLINED: &str = "4000 0000 0000 0002";
pub const INSUFFICIENT_FUNDS: &str = "4000 0000 0000 9995";
pub const SLOW: &str = "4000 0000 0000 3220";
pub const FAILS_ONCE: &str = "4000 0000 0000 0119";

pub type Client = PaymentServiceClient<InterceptedService<Channel, ServiceTokenInterceptor>>;

pub struct TestApp {
    pub address: String,
    pub grpc_address: String,
    pub http: reqwest::Client,
    pub pool: PgPool,
    pub config: Settings,
    pub namespace: Namespace,
    pub jetstream: jetstream::Context,
    /// Signs users' access tokens, as the user service would.
    pub signer: TokenSigner,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
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

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// The configuration the tests run the service with, before `customise`.
pub async fn test_config(signer: &TokenSigner) -> Settings {
    platform_telemetry::init_for_tests();
    platform_http::install_crypto_provider();
    let db = fresh_pg_database().await.unwrap();
    let mut config = Settings::new(Config::with_database(db.url.clone()));
    "127.0.0.1".clone_into(&mut config.common.http.host);
    config.common.http.port = Some(0);
    "127.0.0.1".clone_into(&mut config.common.grpc.host);
    config.common.grpc.port = Some(0);
    config.common.nats.url = url(Server::Nats).await.unwrap();
    config.common.nats.subject_prefix = Some(unique_name("t"));
    config.common.jwt.jwks_url = jwks_stand_in(signer).await;
    config.common.service_auth.secret = Some(Secret::new(SERVICE_SECRET));
    config.own.provider.slow_card_delay_ms = 1500;
    config
}

pub async fn spawn_app_with(customise: impl FnOnce(&mut Settings)) -> TestApp {
    let signer = TokenSigner::generate("user-service-1");
    let mut config = test_config(&signer).await;
    customise(&mut config);
    let application = payment_service::build(config.clone()).await.unwrap();
    let address = format!("http://{}", application.http_addr());
    let grpc_address = format!("http://{}", application.grpc_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(application.run_until_stopped(async {
        let _ = stopped.await;
    }));
    let pool = PgPool::connect(config.own.database.url.expose()).await.unwrap();
    let namespace = Namespace::prefixed(config.common.nats.subject_prefix.as_deref().unwrap()).unwrap();
    let nats = async_nats::connect(&config.common.nats.url).await.unwrap();
    TestApp {
        address,
        grpc_address,
        http: reqwest::Client::new(),
        pool,
        config,
        namespace,
        jetstream: jetstream::new(nats),
        signer,
        stop: Some(stop),
    }
}

/// A user: an id and an access token for it.
pub struct User {
    pub id: Uuid,
    pub token: String,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// A new user with a valid access token.
    pub fn user(&self) -> User {
        let id = Uuid::now_v7();
        let claims = Claims::new(
            id,
            format!("{id}@example.com"),
            vec![Role::Customer],
            self.config.common.jwt.issuer.clone(),
            self.config.common.jwt.audience.clone(),
            Duration::from_secs(600),
        );
        User {
            id,
            token: self.signer.sign(&claims).unwrap(),
        }
    }

    pub async fn add_card(&self, user: &User, card: &Value) -> Response {
        self.http
            .post(self.url("/api/v1/payment-methods"))
            .bearer_auth(&user.token)
            .json(card)
            .send()
            .await
            .unwrap()
    }

    /// Adds a valid card with this number and returns the payment method id.
    pub async fn card(&self, user: &User, number: &str) -> Uuid {
        let response = self.add_card(user, &card(number)).await;
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
        let body: Value = response.json().await.unwrap();
        body["id"].as_str().unwrap().parse().unwrap()
    }

    pub async fn get(&self, user: &User, path: &str) -> Response {
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
        user: &User,
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

    /// Payment events stored so far, in order, as (event type, envelope).
    pub async fn payment_events(&self) -> Vec<(String, RawEnvelope)> {
        let name = self.namespace.domain_stream("payments");
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

    /// Waits until `count` payment events are stored, then checks no more arrive.
    pub async fn exactly_payment_events(&self, count: usize) -> Vec<(String, RawEnvelope)> {
        eventually(Duration::from_secs(15), "payment events", || async {
            (self.payment_events().await.len() >= count).then_some(())
        })
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let events = self.payment_events().await;
        assert_eq!(events.len(), count, "{events:#?}");
        events
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

/// Asserts a problem+json answer with this status, and returns its body.
pub async fn problem(response: Response, status: u16) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], status);
    body
}
