//! What every service's tests need, written once: users and their access tokens, a stand-in
//! for the user service's key set, settings that keep a service to itself, the test service
//! secret and cards, problem+json assertions, and event assertions that wait for the system
//! to settle instead of sleeping ([`events`]).
//!
//! A service's `tests/api/helpers.rs` builds on these:
//!
//! ```no_run
//! # async fn example(common: &mut platform_config::CommonSettings) -> anyhow::Result<()> {
//! use platform_testkit::service::{Identities, localise};
//!
//! let identities = Identities::new();
//! let jwks = identities.serve_jwks().await;
//! localise(common, jwks.url()).await?;
//! let customer = identities.customer(); // customer.token is a valid bearer token
//! # Ok(())
//! # }
//! ```

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::routing::get;
use platform_auth::{Claims, JwkSet, Role, TokenSigner};
use platform_config::{CommonSettings, JwtSettings, Secret};
use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::{Server, unique_name, url};

pub mod events;

/// The shared secret behind service credentials in tests (at least 32 bytes, as the platform
/// requires).
pub const SERVICE_SECRET: &str = "test-service-secret-at-least-32-bytes-long";

/// The key id of the user service's signing key, which tokens minted here carry.
pub const SIGNING_KEY_ID: &str = "user-service-1";

/// A password the user service's policy accepts.
pub const PASSWORD: &str = "correct horse battery staple";

/// How long the access tokens minted here live.
pub const TOKEN_TTL: Duration = Duration::from_secs(15 * 60);

/// Card numbers of the payment service's test provider, each with a known outcome.
pub mod cards {
    /// Captured at once.
    pub const SUCCEEDS: &str = "4242 4242 4242 4242";
    /// Declined by the issuer.
    pub const DECLINED: &str = "4000 0000 0000 0002";
    /// Declined for insufficient funds.
    pub const INSUFFICIENT_FUNDS: &str = "4000 0000 0000 9995";
    /// Captured after the provider's configured delay.
    pub const SLOW: &str = "4000 0000 0000 3220";
    /// The provider fails the first attempt and captures the retry.
    pub const FAILS_ONCE: &str = "4000 0000 0000 0119";
}

/// Claims of a new user (a fresh id and address) with `roles`, for the platform's issuer and
/// audience ([`JwtSettings`]' defaults), valid for [`TOKEN_TTL`]. Sign them with any signer,
/// or change them first.
pub fn claims(roles: &[Role]) -> Claims {
    let jwt = JwtSettings::default();
    let id = Uuid::now_v7();
    Claims::new(
        id,
        format!("{}@example.com", unique_name("user")),
        roles.to_vec(),
        jwt.issuer,
        jwt.audience,
        TOKEN_TTL,
    )
}

/// A user as a test sees one: who it is, and a valid access token for it.
#[derive(Clone, Debug)]
pub struct Identity {
    /// The user's id (`sub`).
    pub id: Uuid,
    /// The user's email address.
    pub email: String,
    /// A signed access token, for `Authorization: Bearer`.
    pub token: String,
}

/// Mints users and their tokens the way the user service would, with one signing key.
#[derive(Clone, Debug)]
pub struct Identities {
    signer: TokenSigner,
}

impl Default for Identities {
    fn default() -> Self {
        Self::new()
    }
}

impl Identities {
    /// A fresh signing key under [`SIGNING_KEY_ID`].
    pub fn new() -> Self {
        Self::with_signer(TokenSigner::generate(SIGNING_KEY_ID))
    }

    /// Mints with `signer` (e.g. the user service's own key, read from its configuration).
    pub fn with_signer(signer: TokenSigner) -> Self {
        Self { signer }
    }

    /// The signing key.
    pub fn signer(&self) -> &TokenSigner {
        &self.signer
    }

    /// Signs `claims` (for tokens a test shapes itself: expired, wrong audience...).
    pub fn sign(&self, claims: &Claims) -> String {
        self.signer.sign(claims).expect("signing test claims")
    }

    /// A new user with `roles` and a valid token.
    pub fn with_roles(&self, roles: &[Role]) -> Identity {
        let claims = claims(roles);
        Identity {
            id: claims.sub,
            token: self.sign(&claims),
            email: claims.email,
        }
    }

    /// A new customer.
    pub fn customer(&self) -> Identity {
        self.with_roles(&[Role::Customer])
    }

    /// A new administrator (who is a customer too, as the user service makes them).
    pub fn admin(&self) -> Identity {
        self.with_roles(&[Role::Customer, Role::Admin])
    }

    /// Serves this signer's public key, as the user service serves its JWKS.
    pub async fn serve_jwks(&self) -> JwksStandIn {
        JwksStandIn::start(self.signer.jwk_set()).await
    }
}

/// A key set holding the public keys of all `signers`.
pub fn jwk_set(signers: &[&TokenSigner]) -> JwkSet {
    JwkSet {
        keys: signers
            .iter()
            .map(|signer| signer.public_jwk().clone())
            .collect(),
    }
}

/// A stand-in for the user service's JWKS endpoint on `127.0.0.1:0`, whose keys, speed and
/// availability the test controls. It serves until [`JwksStandIn::stop`] or the end of the
/// test's runtime.
pub struct JwksStandIn {
    url: String,
    state: Arc<JwksState>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

struct JwksState {
    keys: Mutex<JwkSet>,
    fetches: AtomicUsize,
    delay: Mutex<Duration>,
}

impl JwksStandIn {
    /// Serves `keys` at `http://127.0.0.1:<port>/.well-known/jwks.json`.
    pub async fn start(keys: JwkSet) -> Self {
        let state = Arc::new(JwksState {
            keys: Mutex::new(keys),
            fetches: AtomicUsize::new(0),
            delay: Mutex::new(Duration::ZERO),
        });
        let app = axum::Router::new()
            .route("/.well-known/jwks.json", get(serve_jwks))
            .with_state(Arc::clone(&state));
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the JWKS stand-in to 127.0.0.1:0");
        let address = listener.local_addr().expect("the JWKS stand-in's address");
        let (shutdown, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .expect("serving the JWKS stand-in");
        });
        Self {
            url: format!("http://{address}/.well-known/jwks.json"),
            state,
            shutdown: Some(shutdown),
            task: Some(task),
        }
    }

    /// Serves the public keys of `signers`.
    pub async fn serving(signers: &[&TokenSigner]) -> Self {
        Self::start(jwk_set(signers)).await
    }

    /// The key set's URL, for `JWT__JWKS_URL`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// JWT settings that verify against this stand-in, with the platform's issuer and audience.
    pub fn settings(&self) -> JwtSettings {
        JwtSettings {
            jwks_url: self.url.clone(),
            ..JwtSettings::default()
        }
    }

    /// From now on, serves `keys` instead.
    pub fn serve(&self, keys: JwkSet) {
        *self.state.keys.lock().expect("JWKS stand-in keys") = keys;
    }

    /// From now on, serves the public keys of `signers` instead.
    pub fn publish(&self, signers: &[&TokenSigner]) {
        self.serve(jwk_set(signers));
    }

    /// From now on, answers only after `delay`.
    pub fn set_delay(&self, delay: Duration) {
        *self.state.delay.lock().expect("JWKS stand-in delay") = delay;
    }

    /// How many times the key set was requested.
    pub fn fetches(&self) -> usize {
        self.state.fetches.load(Ordering::SeqCst)
    }

    /// Stops listening: from then on connections are refused.
    pub async fn stop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("the JWKS stand-in stops");
        }
    }
}

async fn serve_jwks(State(state): State<Arc<JwksState>>) -> axum::Json<JwkSet> {
    state.fetches.fetch_add(1, Ordering::SeqCst);
    let delay = *state.delay.lock().expect("JWKS stand-in delay");
    tokio::time::sleep(delay).await;
    axum::Json(state.keys.lock().expect("JWKS stand-in keys").clone())
}

/// An HTTP client for the test's own servers: the platform's crypto provider installed, and
/// no proxy taken from the environment.
pub fn http_client() -> reqwest::Client {
    platform_http::install_crypto_provider();
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("building an HTTP client")
}

/// Keeps a service's common settings to this test: HTTP and gRPC on `127.0.0.1` port 0, the
/// test NATS server under a subject prefix of its own, tokens verified against `jwks_url`
/// (with the platform's issuer and audience, which [`Identities`] uses), and
/// [`SERVICE_SECRET`] as the service credential.
///
/// Services that must share one bus in a test copy `nats.subject_prefix` from the first.
pub async fn localise(common: &mut CommonSettings, jwks_url: &str) -> anyhow::Result<()> {
    "127.0.0.1".clone_into(&mut common.http.host);
    common.http.port = Some(0);
    "127.0.0.1".clone_into(&mut common.grpc.host);
    common.grpc.port = Some(0);
    common.nats.url = url(Server::Nats).await?;
    common.nats.subject_prefix = Some(unique_name("t"));
    let defaults = JwtSettings::default();
    common.jwt = JwtSettings {
        jwks_url: jwks_url.to_owned(),
        ..defaults
    };
    common.service_auth.secret = Some(Secret::new(SERVICE_SECRET));
    Ok(())
}

/// Asserts that `response` is an RFC 9457 problem with `status`, as the platform writes
/// them: that status, `content-type: application/problem+json`, the status's reason phrase as
/// `title`, a `status` member equal to the status, and a `detail` that contains
/// `detail_contains` (pass `""` when the detail does not matter; it may then be absent).
/// Returns the body.
pub async fn assert_problem(
    response: reqwest::Response,
    status: StatusCode,
    detail_contains: &str,
) -> Value {
    let actual = response.status();
    let path = response.url().path().to_owned();
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
    let text = response.text().await.expect("reading the response body");
    assert_eq!(actual, status, "the status from {path}: {text}");
    assert_eq!(
        content_type.as_deref(),
        Some(platform_http::PROBLEM_JSON),
        "the content type of the {status} from {path}: {text}"
    );
    let body: Value = serde_json::from_str(&text)
        .unwrap_or_else(|error| panic!("the {status} from {path} is not JSON ({error}): {text}"));
    assert_eq!(
        body["title"],
        status.canonical_reason().unwrap_or("Error"),
        "the title of the problem from {path}: {body}"
    );
    assert_eq!(
        body["status"],
        status.as_u16(),
        "the status member of the problem from {path}: {body}"
    );
    if !detail_contains.is_empty() {
        let detail = body["detail"].as_str().unwrap_or_else(|| {
            panic!("the problem from {path} has no detail, expected one with `{detail_contains}`: {body}")
        });
        assert!(
            detail.contains(detail_contains),
            "the detail of the problem from {path} does not contain `{detail_contains}`: {body}"
        );
    }
    body
}

/// A service built with the kit, running for a test until it is dropped (or [`Running::stop`]ped
/// to wait for its graceful shutdown).
pub struct Running {
    http: std::net::SocketAddr,
    grpc: Option<std::net::SocketAddr>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Running {
    /// Runs `application` in the background.
    pub fn start(application: platform_kit::Application) -> Self {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (http, grpc) = (application.http_addr(), application.grpc_addr());
        let task = tokio::spawn(application.run_until_stopped(async {
            let _ = stopped.await;
        }));
        Self {
            http,
            grpc,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Its HTTP base URL (`http://127.0.0.1:port`).
    pub fn url(&self) -> String {
        format!("http://{}", self.http)
    }

    /// Its gRPC URL.
    ///
    /// # Panics
    /// When the service has no gRPC API.
    pub fn grpc_url(&self) -> String {
        let grpc = self.grpc.expect("the service has a gRPC API");
        format!("http://{grpc}")
    }

    /// Shuts it down gracefully and waits, returning how its run ended.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await?,
            None => Ok(()),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
