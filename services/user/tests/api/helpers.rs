//! Spawning the service on port 0 against its own database and NATS namespace.

use std::time::Duration;

use async_nats::jetstream;
use async_nats::jetstream::message::StreamMessage;
use platform_auth::{JwksVerifier, JwksVerifierConfig, TokenSigner};
use platform_config::Secret;
use platform_events::Namespace;
use platform_testkit::{Server, eventually, fresh_pg_database, stream_messages, unique_name, url};
use reqwest::Response;
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::sync::oneshot;
use user_service::http::TokenResponse;
use user_service::{Config, Settings};

/// The shared secret of service credentials in tests.
pub const SERVICE_SECRET: &str = "test-service-secret-at-least-32-bytes-long";

/// A password that satisfies the policy.
pub const PASSWORD: &str = "correct horse battery staple";

pub struct TestApp {
    pub address: String,
    pub grpc_address: String,
    pub http: reqwest::Client,
    pub pool: PgPool,
    pub config: Settings,
    /// The service's own signing key (the test configured it), to mint tokens by hand.
    pub signer: TokenSigner,
    pub namespace: Namespace,
    pub jetstream: jetstream::Context,
    stop: Option<oneshot::Sender<()>>,
    running: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
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
    "127.0.0.1".clone_into(&mut config.common.http.host);
    config.common.http.port = Some(0);
    "127.0.0.1".clone_into(&mut config.common.grpc.host);
    config.common.grpc.port = Some(0);
    config.common.nats.url = url(Server::Nats).await.unwrap();
    config.common.nats.subject_prefix = Some(unique_name("t"));
    let pem = TokenSigner::generate_pkcs8_pem();
    config.own.tokens.signing_key_pem = Some(Secret::new(pem.clone()));
    config.common.service_auth.secret = Some(Secret::new(SERVICE_SECRET));
    (config, pem)
}

pub async fn spawn_app_with(customise: impl FnOnce(&mut Settings)) -> TestApp {
    let (mut config, pem) = test_config().await;
    customise(&mut config);
    let application = user_service::build(config.clone()).await.unwrap();
    let address = format!("http://{}", application.http_addr());
    let grpc_address = format!("http://{}", application.grpc_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let running = tokio::spawn(application.run_until_stopped(async {
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
        signer: TokenSigner::from_pkcs8_pem(config.own.tokens.signing_key_id.clone(), &pem).unwrap(),
        config,
        namespace,
        jetstream: jetstream::new(nats),
        stop: Some(stop),
        running: Some(running),
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl TestApp {
    /// Stops the service and waits until it has.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(running) = self.running.take() {
            running.await.unwrap().unwrap();
        }
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

    /// Every message stored in the USERS stream of this test's namespace (waiting until the
    /// relay has provisioned it).
    pub async fn user_events(&self) -> Vec<StreamMessage> {
        let name = self.namespace.domain_stream("users");
        eventually(Duration::from_secs(10), "the USERS stream", || async {
            self.jetstream.get_stream(&name).await.ok()
        })
        .await
        .unwrap();
        stream_messages(&self.jetstream, &name).await.unwrap()
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

/// The field names a 422 problem lists.
pub fn invalid_fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|error| error["field"].as_str().unwrap().to_owned())
        .collect()
}
