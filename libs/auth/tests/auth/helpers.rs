//! The extractors' test app, verifiers of the test kit's JWKS stand-in, and small servers on
//! 127.0.0.1:0.

use std::net::SocketAddr;

use axum::Json;
use axum::Router;
use axum::extract::FromRef;
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use platform_auth::{
    AdminUser, AuthenticatedUser, Claims, JwksVerifier, JwksVerifierConfig, Role, TokenSigner,
};
use platform_http::ApiError;
use platform_testkit::service::{Identities, JwksStandIn, claims, http_client};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// Verifiers of a JWKS stand-in's keys, expecting the platform's issuer and audience.
pub trait VerifierOf {
    /// A verifier with the default configuration.
    fn verifier(&self) -> JwksVerifier {
        self.verifier_with(|config| config)
    }

    /// A verifier with its configuration adjusted.
    fn verifier_with(
        &self,
        adjust: impl FnOnce(JwksVerifierConfig) -> JwksVerifierConfig,
    ) -> JwksVerifier;
}

impl VerifierOf for JwksStandIn {
    fn verifier_with(
        &self,
        adjust: impl FnOnce(JwksVerifierConfig) -> JwksVerifierConfig,
    ) -> JwksVerifier {
        let settings = self.settings();
        JwksVerifier::new(adjust(JwksVerifierConfig::new(
            settings.jwks_url,
            settings.issuer,
            settings.audience,
        )))
        .unwrap()
    }
}

/// A customer's valid claims (a new user each time).
pub fn customer() -> Claims {
    claims(&[Role::Customer])
}

#[derive(Clone, FromRef)]
struct AppState {
    verifier: JwksVerifier,
}

async fn me(user: AuthenticatedUser) -> Json<Value> {
    Json(json!({"id": user.user_id, "email": user.email, "roles": user.roles}))
}

async fn restock(admin: AdminUser) -> Json<Value> {
    Json(json!({"restocked_by": admin.user_id}))
}

async fn sales_report(user: AuthenticatedUser) -> Result<Json<Value>, ApiError> {
    user.require_role(Role::Admin)?;
    Ok(Json(json!({"report": "all good"})))
}

async fn greeting(user: Option<AuthenticatedUser>) -> String {
    match user {
        Some(user) => format!("hello {}", user.email),
        None => "hello stranger".to_owned(),
    }
}

/// A router using the extractors, served on 127.0.0.1:0, trusting a JWKS stand-in.
pub struct TestApp {
    pub address: SocketAddr,
    pub identities: Identities,
    pub jwks: JwksStandIn,
    pub client: reqwest::Client,
}

/// Serves `/me` (any user), `/admin/restock` and `/admin/sales-report` (admins) and
/// `/greeting` (anyone), verifying tokens against a stand-in for the issuer's keys.
pub async fn spawn_app() -> TestApp {
    platform_telemetry::init_for_tests();
    let identities = Identities::new();
    let jwks = identities.serve_jwks().await;
    let router = Router::new()
        .route("/me", get(me))
        .route("/admin/restock", get(restock))
        .route("/admin/sales-report", get(sales_report))
        .route("/greeting", get(greeting))
        .with_state(AppState {
            verifier: jwks.verifier(),
        });
    TestApp {
        address: spawn_http(router).await,
        identities,
        jwks,
        client: http_client(),
    }
}

impl TestApp {
    pub async fn get(&self, path: &str, authorization: Option<&str>) -> reqwest::Response {
        let mut request = self.client.get(format!("http://{}{path}", self.address));
        if let Some(authorization) = authorization {
            request = request.header("authorization", authorization);
        }
        request.send().await.unwrap()
    }

    /// `Bearer <token>` for `claims`, signed by the issuer.
    pub fn bearer_for(&self, claims: &Claims) -> String {
        format!("Bearer {}", self.identities.sign(claims))
    }

    /// `Bearer <token>` of a new user with `roles`.
    pub fn bearer(&self, roles: &[Role]) -> String {
        format!("Bearer {}", self.identities.with_roles(roles).token)
    }

    /// The issuer's signing key.
    pub fn signer(&self) -> &TokenSigner {
        self.identities.signer()
    }
}

/// Asserts an RFC 9457 problem with `status` (a 401 with its `Bearer` challenge) and returns
/// its `detail`.
pub async fn problem(response: reqwest::Response, status: StatusCode) -> String {
    let challenge = response.headers().get("www-authenticate").cloned();
    let body = platform_testkit::service::assert_problem(response, status, "").await;
    if status == StatusCode::UNAUTHORIZED {
        assert_eq!(challenge.unwrap(), "Bearer");
    }
    body["detail"].as_str().unwrap().to_owned()
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

/// Reads a file of `tests/auth/fixtures/`.
pub fn fixture(name: &str) -> String {
    let path = format!("{}/tests/auth/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("reading {path}: {error}"))
}
