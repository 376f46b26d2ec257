//! Spawning the service on port 0 against its own database and NATS namespace.

use async_nats::jetstream;
use async_nats::jetstream::message::StreamMessage;
use platform_auth::{JwksVerifier, JwksVerifierConfig, TokenSigner};
use platform_config::{JwtSettings, Secret};
use platform_events::Namespace;
use platform_events::outbox::postgres::PgOutbox;
use platform_testkit::service::{
    Identities, Running, assert_problem, events, http_client, localise,
};
pub use platform_testkit::service::{PASSWORD, SERVICE_SECRET};
use platform_testkit::{fresh_pg_database, unique_name};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;
use user_service::http::TokenResponse;
use user_service::{Config, Settings};

pub struct TestApp {
    pub address: String,
    pub grpc_address: String,
    pub http: reqwest::Client,
    pub pool: PgPool,
    pub config: Settings,
    /// Mints tokens by hand with the service's own signing key (the test configured it).
    pub identities: Identities,
    pub namespace: Namespace,
    pub jetstream: jetstream::Context,
    /// The service, stopped when the app is dropped.
    service: Running,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// The configuration a test app runs with, before `customise`.
pub async fn test_config() -> (Settings, String) {
    platform_telemetry::init_for_tests();
    platform_http::install_crypto_provider();
    let db = fresh_pg_database().await.unwrap();
    let mut config = Settings::new(Config::with_database(db.url.clone()));
    // The service verifies its own tokens with the keys it preloads: the JWKS URL keeps its
    // default.
    localise(&mut config.common, &JwtSettings::default().jwks_url)
        .await
        .unwrap();
    let pem = TokenSigner::generate_pkcs8_pem();
    config.own.tokens.signing_key_pem = Some(Secret::new(pem.clone()));
    (config, pem)
}

pub async fn spawn_app_with(customise: impl FnOnce(&mut Settings)) -> TestApp {
    let (mut config, pem) = test_config().await;
    customise(&mut config);
    let service = Running::start(user_service::build(config.clone()).await.unwrap());
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
        identities: Identities::with_signer(
            TokenSigner::from_pkcs8_pem(config.own.tokens.signing_key_id.clone(), &pem).unwrap(),
        ),
        config,
        namespace,
        jetstream: jetstream::new(nats),
        service,
    }
}

impl TestApp {
    /// Stops the service and waits until it has.
    pub async fn stop(self) {
        self.service.stop().await.unwrap();
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn post(&self, path: &str, body: &Value) -> Response {
        self.http
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn register(&self, email: &str, password: &str) -> Response {
        self.post(
            "/api/v1/auth/register",
            &json!({"email": email, "password": password}),
        )
        .await
    }

    /// Registers an account with [`PASSWORD`] and returns its email.
    pub async fn registered(&self) -> String {
        let email = format!("{}@example.com", unique_name("user"));
        let response = self.register(&email, PASSWORD).await;
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
        email
    }

    pub async fn login(&self, email: &str, password: &str) -> Response {
        self.post(
            "/api/v1/auth/login",
            &json!({"email": email, "password": password}),
        )
        .await
    }

    /// Logs in with [`PASSWORD`].
    pub async fn tokens(&self, email: &str) -> TokenResponse {
        let response = self.login(email, PASSWORD).await;
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
        response.json().await.unwrap()
    }

    pub async fn refresh(&self, refresh_token: &str) -> Response {
        self.post(
            "/api/v1/auth/refresh",
            &json!({"refresh_token": refresh_token}),
        )
        .await
    }

    pub async fn me(&self, access_token: &str) -> Response {
        self.http
            .get(self.url("/api/v1/users/me"))
            .bearer_auth(access_token)
            .send()
            .await
            .unwrap()
    }

    /// A verifier of this service's tokens that fetches the service's JWKS over HTTP, as the
    /// gateway and other services do.
    pub fn verifier(&self) -> JwksVerifier {
        JwksVerifier::new(JwksVerifierConfig::new(
            self.url("/.well-known/jwks.json"),
            self.config.own.tokens.issuer.clone(),
            self.config.own.tokens.audience.clone(),
        ))
        .unwrap()
    }

    /// Every message stored in the USERS stream of this test's namespace, once the service's
    /// outbox has nothing left to publish: no event written so far can still follow.
    pub async fn settled_user_events(&self) -> Vec<StreamMessage> {
        let outbox = PgOutbox::new(self.pool.clone(), self.namespace.clone());
        events::settled(
            &outbox,
            &self.jetstream,
            &self.namespace.domain_stream("users"),
        )
        .await
        .unwrap()
    }
}

/// Asserts a problem+json answer with this status (see [`assert_problem`]), and returns its
/// body.
pub async fn problem(response: Response, status: u16) -> Value {
    assert_problem(response, StatusCode::from_u16(status).unwrap(), "").await
}

/// The field names a 422 problem lists.
pub fn invalid_fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|error| error["field"].as_str().unwrap().to_owned())
        .collect()
}
