//! A stand-in JWKS server, token factories and small servers on 127.0.0.1:0.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use platform_auth::{Claims, JwkSet, JwksVerifier, JwksVerifierConfig, Role, TokenSigner};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use uuid::Uuid;

pub const ISSUER: &str = "platform-user-test";
pub const AUDIENCE: &str = "platform-api-test";

/// The issuer's JWKS endpoint, as the user service will serve it; counts its hits.
pub struct JwksServer {
    pub url: String,
    state: Arc<JwksState>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

struct JwksState {
    keys: Mutex<JwkSet>,
    hits: AtomicUsize,
    delay: Mutex<Duration>,
}

impl JwksServer {
    /// Serves `keys` at `http://127.0.0.1:<port>/.well-known/jwks.json`.
    pub async fn start(keys: JwkSet) -> Self {
        let state = Arc::new(JwksState {
            keys: Mutex::new(keys),
            hits: AtomicUsize::new(0),
            delay: Mutex::new(Duration::ZERO),
        });
        let app = Router::new()
            .route("/.well-known/jwks.json", get(serve_jwks))
            .with_state(Arc::clone(&state));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (shutdown, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Self {
            url: format!("http://{address}/.well-known/jwks.json"),
            state,
            shutdown: Some(shutdown),
            task: Some(task),
        }
    }

    /// From now on, serves `keys` instead.
    pub fn serve(&self, keys: JwkSet) {
        *self.state.keys.lock().unwrap() = keys;
    }

    /// From now on, answers only after `delay`.
    pub fn set_delay(&self, delay: Duration) {
        *self.state.delay.lock().unwrap() = delay;
    }

    /// How many times the key set was requested.
    pub fn hits(&self) -> usize {
        self.state.hits.load(Ordering::SeqCst)
    }

    /// Stops listening: from now on connections are refused.
    pub async fn stop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
    }

    /// A verifier of this server's keys, expecting [`ISSUER`] and [`AUDIENCE`].
    pub fn verifier(&self) -> JwksVerifier {
        self.verifier_with(|config| config)
    }

    /// Like [`Self::verifier`], with its configuration adjusted.
    pub fn verifier_with(
        &self,
        adjust: impl FnOnce(JwksVerifierConfig) -> JwksVerifierConfig,
    ) -> JwksVerifier {
        JwksVerifier::new(adjust(JwksVerifierConfig::new(&self.url, ISSUER, AUDIENCE))).unwrap()
    }
}

async fn serve_jwks(State(state): State<Arc<JwksState>>) -> Json<JwkSet> {
    state.hits.fetch_add(1, Ordering::SeqCst);
    let delay = *state.delay.lock().unwrap();
    tokio::time::sleep(delay).await;
    Json(state.keys.lock().unwrap().clone())
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

/// Valid claims (for [`ISSUER`] and [`AUDIENCE`], 15 minutes) for a new user with `roles`.
pub fn claims(roles: &[Role]) -> Claims {
    Claims::new(
        Uuid::new_v4(),
        "ada@example.com",
        roles.to_vec(),
        ISSUER,
        AUDIENCE,
        Duration::from_secs(15 * 60),
    )
}

/// A customer's valid claims.
pub fn customer() -> Claims {
    claims(&[Role::Customer])
}

/// `value` as unpadded base64url JSON, as in a JWT.
pub fn b64_json(value: &serde_json::Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

/// Serves `app` on 127.0.0.1:0 until the test ends.
pub async fn spawn_http(app: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    address
}

/// A plain HTTP client for talking to test servers.
pub fn http_client() -> reqwest::Client {
    platform_http::install_crypto_provider();
    reqwest::Client::new()
}

/// Reads a file of `tests/auth/fixtures/`.
pub fn fixture(name: &str) -> String {
    let path = format!("{}/tests/auth/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("reading {path}: {error}"))
}
