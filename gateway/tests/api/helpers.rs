//! Real servers on 127.0.0.1:0: tiny axum upstreams, a JWKS server with keys the test
//! controls, the real user service, and gateways in front of them.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::StreamExt as _;
use gateway::Config;
use platform_auth::TokenSigner;
use platform_config::{JwtSettings, Secret};
use platform_testkit::service::{
    Identities, JwksStandIn, PASSWORD, Running, assert_problem, http_client, localise,
};
use platform_testkit::{Server, fresh_pg_database, unique_name, url};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{Notify, oneshot};
use uuid::Uuid;

/// What a stand-in upstream saw of one request.
#[derive(Clone, Debug)]
pub struct Seen {
    /// The gateway's end of the upstream connection the request came on.
    pub from: SocketAddr,
    pub method: String,
    pub path_and_query: String,
    pub headers: HeaderMap,
    pub body_len: usize,
}

/// The state a test controls and observes.
#[derive(Default)]
pub struct StandInState {
    pub name: String,
    /// Requests received (every path).
    pub hits: AtomicUsize,
    /// `*/fail` answers 503 while set.
    pub failing: AtomicBool,
    /// `/health/ready` answers 503 while set.
    pub unready: AtomicBool,
    /// `/openapi.json` answers 503 while set.
    pub undocumented: AtomicBool,
    /// `/openapi.json` documents served.
    pub documents_served: AtomicUsize,
    /// Paths its `/openapi.json` documents (GET operations).
    pub documented: Vec<String>,
    /// `*/gate` stops after its first chunk until this is notified.
    pub release: Notify,
    /// `*/upload-gate` notifies this once the first chunk of the request body arrived.
    pub first_chunk: Notify,
    pub seen: Mutex<Vec<Seen>>,
}

/// A tiny upstream. Every path echoes the request as JSON, except:
/// `*/slow` sleeps 3 s first; `*/fail` answers 503 while `failing`; `*/large?bytes=N` streams
/// N bytes; `*/echo-body` streams the request body back; `*/gate` streams one chunk and waits
/// for `release`; `*/upload-gate` reads one chunk, notifies `first_chunk`, then the rest;
/// `/openapi.json` and `/health/ready` answer as a service does.
pub struct StandIn {
    pub url: String,
    pub addr: SocketAddr,
    pub state: Arc<StandInState>,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.shut_down();
    }
}

impl StandIn {
    pub async fn start(name: &str) -> Self {
        Self::start_documenting(name, &[]).await
    }

    pub async fn start_documenting(name: &str, documented: &[&str]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::start_on(listener, name, documented)
    }

    pub fn start_on(listener: TcpListener, name: &str, documented: &[&str]) -> Self {
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(StandInState {
            name: name.to_owned(),
            documented: documented.iter().map(|path| (*path).to_owned()).collect(),
            ..StandInState::default()
        });
        let app = Router::new()
            .route("/openapi.json", get(openapi))
            .route("/health/ready", get(ready))
            .fallback(echo)
            .with_state(state.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        Self {
            url: format!("http://{addr}"),
            addr,
            state,
            stop: Some(stop),
        }
    }

    pub fn hits(&self) -> usize {
        self.state.hits.load(Ordering::SeqCst)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    pub fn last_seen(&self) -> Seen {
        self.seen()
            .last()
            .cloned()
            .expect("the upstream saw a request")
    }

    /// Stops accepting, and closes idle keep-alive connections.
    pub fn shut_down(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn openapi(State(state): State<Arc<StandInState>>) -> Response {
    if state.undocumented.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    state.documents_served.fetch_add(1, Ordering::SeqCst);
    let paths: serde_json::Map<String, Value> = state
        .documented
        .iter()
        .map(|path| {
            (
                path.clone(),
                json!({"get": {"operationId": format!("{}{path}", state.name), "tags": [state.name],
                    "responses": {"200": {"description": "ok"}}}}),
            )
        })
        .collect();
    axum::Json(json!({
        "openapi": "3.1.0",
        "info": {"title": state.name, "version": "1"},
        "paths": paths,
        "components": {"schemas": {format!("{}Thing", state.name): {"type": "object"}}},
        "tags": [{"name": state.name}],
    }))
    .into_response()
}

async fn ready(State(state): State<Arc<StandInState>>) -> Response {
    if state.unready.load(Ordering::SeqCst) {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"status": "unready", "checks": [
                {"name": "postgres", "status": "down", "latency_ms": 2.0, "error": "connection refused"},
                {"name": "nats", "status": "up", "latency_ms": 0.4},
            ]})),
        )
            .into_response()
    } else {
        axum::Json(json!({"status": "ready", "checks": []})).into_response()
    }
}

async fn echo(
    State(state): State<Arc<StandInState>>,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    state.hits.fetch_add(1, Ordering::SeqCst);
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_owned();
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(ToString::to_string)
        .unwrap_or_default();
    let mut seen = Seen {
        from,
        method: parts.method.to_string(),
        path_and_query: path_and_query.clone(),
        headers: parts.headers.clone(),
        body_len: 0,
    };

    if path.ends_with("/echo-body") {
        state.seen.lock().unwrap().push(seen);
        return Response::new(Body::new(body));
    }
    if path.ends_with("/upload-gate") {
        let mut stream = body.into_data_stream();
        let mut received = 0;
        if let Some(Ok(chunk)) = stream.next().await {
            received += chunk.len();
            state.first_chunk.notify_one();
        }
        while let Some(Ok(chunk)) = stream.next().await {
            received += chunk.len();
        }
        seen.body_len = received;
        state.seen.lock().unwrap().push(seen);
        return axum::Json(json!({"received": received})).into_response();
    }

    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    seen.body_len = body.len();
    state.seen.lock().unwrap().push(seen);

    if path.ends_with("/slow") {
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    if path.ends_with("/fail") && state.failing.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "upstream is failing").into_response();
    }
    if let Some(response) = streamed(&state, &path, parts.uri.query()) {
        return response;
    }

    let headers: BTreeMap<String, Vec<String>> = parts
        .headers
        .keys()
        .map(|name| {
            (
                name.to_string(),
                parts
                    .headers
                    .get_all(name)
                    .iter()
                    .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
                    .collect(),
            )
        })
        .collect();
    let status = parts
        .headers
        .get("x-want-status")
        .and_then(|value| value.to_str().ok()?.parse().ok())
        .and_then(|code| StatusCode::from_u16(code).ok())
        .unwrap_or(StatusCode::OK);
    let mut response = (
        status,
        axum::Json(json!({
            "upstream": state.name,
            "method": parts.method.as_str(),
            "path": path,
            "path_and_query": path_and_query,
            "headers": headers,
            "body": String::from_utf8_lossy(&body),
        })),
    )
        .into_response();
    let out = response.headers_mut();
    out.insert("x-upstream", HeaderValue::from_str(&state.name).unwrap());
    // Hop-by-hop headers the gateway must not pass on to the client.
    out.insert(
        header::CONNECTION,
        HeaderValue::from_static("x-upstream-hop"),
    );
    out.insert("x-upstream-hop", HeaderValue::from_static("secret"));
    out.insert("keep-alive", HeaderValue::from_static("timeout=30"));
    response
}

/// The streaming answers: `*/large?bytes=N` and `*/gate`.
fn streamed(state: &Arc<StandInState>, path: &str, query: Option<&str>) -> Option<Response> {
    if path.ends_with("/large") {
        let bytes: usize = query
            .and_then(|query| query.strip_prefix("bytes="))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
        let chunks = (0..bytes.div_ceil(chunk.len())).map(move |index| {
            let end = ((index + 1) * chunk.len()).min(bytes);
            Ok::<_, std::io::Error>(chunk.slice(0..end - index * chunk.len()))
        });
        return Some(Response::new(Body::from_stream(futures::stream::iter(
            chunks,
        ))));
    }
    if path.ends_with("/gate") {
        let state = state.clone();
        let stream =
            futures::stream::once(async { Ok::<_, std::io::Error>(Bytes::from("first;")) }).chain(
                futures::stream::once(async move {
                    state.release.notified().await;
                    Ok(Bytes::from("rest"))
                }),
            );
        return Some(Response::new(Body::from_stream(stream)));
    }
    None
}

/// A route table file for a test, from TOML text.
pub fn route_file(toml: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("{}.toml", unique_name("gateway_routes")));
    std::fs::write(&path, toml).unwrap();
    path
}

/// One `[[route]]` entry.
pub fn route(
    name: &str,
    path: &str,
    upstream: &str,
    auth: &str,
    rate_limit: &str,
    extra: &str,
) -> String {
    format!(
        "[[route]]\nname = \"{name}\"\npath = \"{path}\"\nupstream = \"{upstream}\"\nauth = \"{auth}\"\nrate_limit = \"{rate_limit}\"\n{extra}\n\n"
    )
}

/// A configuration for a gateway on 127.0.0.1:0 with these routes and upstreams, the test
/// Redis under a key prefix of its own, generous limits, and `jwks_url` for tokens.
pub async fn config(routes: &str, upstreams: &[(&str, &str)], jwks_url: &str) -> Config {
    let mut config = Config::default();
    "127.0.0.1".clone_into(&mut config.http.host);
    config.http.port = Some(0);
    config.routes.file = Some(route_file(routes));
    config.upstreams = upstreams
        .iter()
        .map(|(name, url)| ((*name).to_owned(), (*url).to_owned()))
        .collect();
    jwks_url.clone_into(&mut config.jwt.jwks_url);
    config.redis.url = Secret::new(url(Server::Redis).await.unwrap());
    config.rate_limit.key_prefix = unique_name("gw");
    config.rate_limit.read = gateway::config::ClassLimitSettings::new(100_000, 60);
    config.rate_limit.write = gateway::config::ClassLimitSettings::new(100_000, 60);
    config.rate_limit.auth = gateway::config::ClassLimitSettings::new(100_000, 60);
    config
}

/// A running gateway.
pub struct TestApp {
    pub url: String,
    pub addr: SocketAddr,
    pub http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl TestApp {
    /// Tells the gateway to shut down (it drains in-flight requests first).
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(format!("{}{path}", self.url))
    }

    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, format!("{}{path}", self.url))
    }

    /// The gateway's `/metrics` page.
    pub async fn metrics(&self) -> String {
        let response = self.get("/metrics").send().await.unwrap();
        assert_eq!(response.status(), 200);
        response.text().await.unwrap()
    }
}

/// The value of one series (name and labels, exactly as exported) on a `/metrics` page.
pub fn metric<T: std::str::FromStr>(metrics: &str, series: &str) -> T {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("missing {series} in\n{metrics}"))
}

/// Builds and runs a gateway with `config` (see [`config`]).
pub async fn spawn_app(config: Config) -> TestApp {
    platform_telemetry::init_for_tests();
    platform_http::install_crypto_provider();
    let routes = config.routes.file.clone();
    let application = gateway::Application::build(config).await.unwrap();
    // Read at build: the file has done its job.
    if let Some(routes) = routes {
        let _ = std::fs::remove_file(routes);
    }
    let addr = application.http_addr();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(application.run_until_stopped(async {
        let _ = stopped.await;
    }));
    TestApp {
        url: format!("http://{addr}"),
        addr,
        http: http_client(),
        stop: Some(stop),
    }
}

/// One upstream stand-in and a gateway routing `/api/v1/echo` (public, read limit) and
/// `/api/v1/private` (user) to it, with tokens from a fresh signer.
pub struct EchoSetup {
    pub upstream: StandIn,
    pub gateway: TestApp,
    pub identities: Identities,
    pub jwks: JwksStandIn,
}

pub const ECHO_ROUTES: &str = r#"
[[route]]
name = "echo"
path = "/api/v1/echo"
upstream = "echo"
auth = "public"
rate_limit = "read"

[[route]]
name = "private"
path = "/api/v1/private"
upstream = "echo"
auth = "user"
rate_limit = "read"

[[route]]
name = "maybe"
path = "/api/v1/maybe"
upstream = "echo"
auth = "optional"
rate_limit = "read"
"#;

pub async fn echo_setup(customise: impl FnOnce(&mut Config)) -> EchoSetup {
    let upstream = StandIn::start("echo").await;
    let identities = Identities::with_signer(TokenSigner::generate(unique_name("kid")));
    let jwks = identities.serve_jwks().await;
    let mut config = config(ECHO_ROUTES, &[("echo", &upstream.url)], jwks.url()).await;
    customise(&mut config);
    let gateway = spawn_app(config).await;
    EchoSetup {
        upstream,
        gateway,
        identities,
        jwks,
    }
}

/// Asserts a problem+json response with `status` (see [`assert_problem`]), and returns its
/// body.
pub async fn problem(response: reqwest::Response, status: u16) -> Value {
    assert_problem(response, StatusCode::from_u16(status).unwrap(), "").await
}

/// The real user service on port 0, with its own database.
pub struct UserService {
    pub url: String,
    /// Until [`UserService::stop`]; stopped when dropped.
    service: Option<Running>,
}

impl UserService {
    pub async fn start() -> Self {
        platform_telemetry::init_for_tests();
        platform_http::install_crypto_provider();
        let db = fresh_pg_database().await.unwrap();
        let mut users =
            user_service::Settings::new(user_service::Config::with_database(db.url.clone()));
        // It verifies its own tokens with the keys it preloads: the JWKS URL keeps its default.
        localise(&mut users.common, &JwtSettings::default().jwks_url)
            .await
            .unwrap();
        users.own.tokens.signing_key_pem = Some(Secret::new(TokenSigner::generate_pkcs8_pem()));
        let service = Running::start(user_service::build(users).await.unwrap());
        Self {
            url: service.url(),
            service: Some(service),
        }
    }

    pub fn jwks_url(&self) -> String {
        format!("{}/.well-known/jwks.json", self.url)
    }

    /// Stops the service and waits until it no longer serves.
    pub async fn stop(&mut self) {
        if let Some(service) = self.service.take() {
            tokio::time::timeout(Duration::from_secs(30), service.stop())
                .await
                .expect("the user service stops")
                .unwrap();
        }
    }
}

/// Registers a user through `base` (a gateway or the user service) and logs in; returns the
/// user's id and access token.
pub async fn register_and_login(http: &reqwest::Client, base: &str, email: &str) -> (Uuid, String) {
    let response = http
        .post(format!("{base}/api/v1/auth/register"))
        .json(&json!({"email": email, "password": PASSWORD, "display_name": "Ada"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    let user: Value = response.json().await.unwrap();
    let id = user["id"].as_str().unwrap().parse().unwrap();
    (id, login(http, base, email).await)
}

pub async fn login(http: &reqwest::Client, base: &str, email: &str) -> String {
    let response = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    let tokens: Value = response.json().await.unwrap();
    tokens["access_token"].as_str().unwrap().to_owned()
}
