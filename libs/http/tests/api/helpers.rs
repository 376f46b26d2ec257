//! A small service built with the platform's plumbing, served on port 0 for each test.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use platform_http::openapi::{openapi_router, with_common_components};
use platform_http::{
    ApiError, FieldError, HttpConfig, Json, Path, Query, RequestId, with_standard_layers,
};
use platform_testkit::service::{assert_problem, http_client};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;
use uuid::Uuid;

/// The limits every test app runs with unless a test says otherwise: small, so tests are fast.
pub fn test_config() -> HttpConfig {
    HttpConfig {
        request_timeout: Duration::from_secs(1),
        body_limit: 4096,
    }
}

/// A running test service.
pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    /// Notified each time the slow handler starts sleeping.
    pub slow_started: Arc<Notify>,
    shutdown: Option<oneshot::Sender<()>>,
    pub server: JoinHandle<std::io::Result<()>>,
}

/// The test service with [`test_config`], draining for up to 5 s on shutdown.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(&test_config(), Duration::from_secs(5)).await
}

/// The test service with these limits and drain timeout.
pub async fn spawn_app_with(config: &HttpConfig, drain_timeout: Duration) -> TestApp {
    platform_telemetry::init_for_tests();
    let slow_started = Arc::new(Notify::new());
    let router = with_standard_layers(routes(), config).with_state(AppState {
        slow_started: slow_started.clone(),
    });

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
    let server = tokio::spawn(platform_http::serve(
        listener,
        router,
        async move {
            let _ = shutdown_rx.await;
        },
        drain_timeout,
    ));
    TestApp {
        addr,
        client: http_client(),
        slow_started,
        shutdown: Some(shutdown_tx),
        server,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    /// POSTs `body` with `Content-Type: application/json`.
    pub async fn post_json(&self, path: &str, body: impl Into<reqwest::Body>) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap()
    }

    /// Gives the shutdown signal.
    pub fn shut_down(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// Asserts the response is a problem with `status` (see [`assert_problem`]), and returns its
/// body.
pub async fn problem(response: reqwest::Response, status: u16) -> Value {
    assert_problem(response, StatusCode::from_u16(status).unwrap(), "").await
}

/// A problem body as the platform writes it, without `errors`.
pub fn expected_problem(status: u16, title: &str, detail: &str) -> Value {
    json!({"type": "about:blank", "title": title, "status": status, "detail": detail})
}

/// A raw HTTP/1.1 response.
pub struct RawResponse {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: String,
}

/// POSTs a body in `chunks` with `Transfer-Encoding: chunked` (so no `Content-Length`), over
/// a raw connection: reqwest only streams bodies with a feature the workspace leaves off.
pub async fn post_chunked(
    addr: SocketAddr,
    path: &str,
    content_type: &str,
    chunks: &[Vec<u8>],
) -> RawResponse {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: {content_type}\r\n\
         transfer-encoding: chunked\r\nconnection: close\r\n\r\n"
    )
    .into_bytes();
    for chunk in chunks {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    // The server may answer (and stop reading) before the end of the body.
    let _ = stream.write_all(&request).await;

    let mut raw = Vec::new();
    let mut buffer = [0_u8; 8192];
    loop {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => raw.extend_from_slice(&buffer[..n]),
        }
        if let Some(response) = parse_response(&raw) {
            return response;
        }
    }
    parse_response(&raw)
        .unwrap_or_else(|| panic!("incomplete response: {:?}", String::from_utf8_lossy(&raw)))
}

/// A complete response with a `Content-Length` body, if `raw` holds one.
fn parse_response(raw: &[u8]) -> Option<RawResponse> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let mut lines = head.lines();
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let mut content_type = None;
    let mut content_length = None;
    for line in lines {
        let (name, value) = line.split_once(':')?;
        match name.trim().to_ascii_lowercase().as_str() {
            "content-type" => content_type = Some(value.trim().to_owned()),
            "content-length" => content_length = value.trim().parse::<usize>().ok(),
            _ => {}
        }
    }
    (body.len() >= content_length?).then(|| RawResponse {
        status,
        content_type,
        body: body.to_owned(),
    })
}

#[derive(Clone)]
struct AppState {
    slow_started: Arc<Notify>,
}

fn routes() -> Router<AppState> {
    let doc = utoipa::openapi::OpenApiBuilder::new()
        .info(
            utoipa::openapi::InfoBuilder::new()
                .title("test service")
                .version("1.0.0")
                .build(),
        )
        .build();
    Router::new()
        .route("/errors/{kind}", get(fail_with))
        .route("/boom", get(boom))
        .route("/bare/{status}", get(bare_status))
        .route("/text-error/{status}", get(text_error))
        .route("/orders", post(create_order))
        .route("/orders/{id}", get(get_order))
        .route("/orders/{id}/lines/{line}", get(get_order_line))
        .route("/search", get(search))
        .route("/slow", get(slow))
        .route("/request-id", get(request_id))
        .route("/echo", post(echo))
        .merge(openapi_router(&with_common_components(doc)))
}

/// Answers with the `ApiError` named in the path.
async fn fail_with(Path(kind): Path<String>) -> ApiError {
    match kind.as_str() {
        "bad_request" => ApiError::BadRequest("the cursor is malformed".into()),
        "unauthorized" => ApiError::Unauthorized("the token has expired".into()),
        "forbidden" => ApiError::Forbidden("only admins may do this".into()),
        "not_found" => ApiError::NotFound("no order 42".into()),
        "conflict" => ApiError::Conflict("the email is taken".into()),
        "payload_too_large" => ApiError::PayloadTooLarge("at most 10 lines".into()),
        "unsupported_media_type" => ApiError::UnsupportedMediaType("send JSON".into()),
        "validation" => ApiError::Validation(vec![
            FieldError::new("email", "must be an email address"),
            FieldError::new("items[0].quantity", "must be at least 1"),
        ]),
        "unprocessable" => ApiError::Unprocessable("the order is already shipped".into()),
        "too_many_requests" => ApiError::TooManyRequests {
            detail: "at most 10 orders a minute".into(),
            retry_after_secs: 30,
        },
        "service_unavailable" => ApiError::ServiceUnavailable("the database is down".into()),
        "gateway_timeout" => ApiError::GatewayTimeout("payment did not answer".into()),
        other => ApiError::BadRequest(format!("unknown kind {other}")),
    }
}

async fn boom() -> Result<Json<Value>, ApiError> {
    let failed: Result<(), anyhow::Error> = Err(anyhow::anyhow!(
        "connection refused: db password=hunter2 user=orders"
    ));
    failed.context("loading the user")?;
    Ok(Json(json!({})))
}

async fn bare_status(Path(status): Path<u16>) -> StatusCode {
    StatusCode::from_u16(status).unwrap()
}

/// An error answered as plain text, the way axum's own rejections are.
async fn text_error(Path(status): Path<u16>) -> (StatusCode, &'static str) {
    (
        StatusCode::from_u16(status).unwrap(),
        "cannot reach db at 10.0.0.7 with password=hunter2",
    )
}

#[derive(Deserialize)]
struct NewOrder {
    customer: String,
    items: Vec<Line>,
    priority: Priority,
}

#[derive(Deserialize)]
struct Line {
    #[allow(dead_code)]
    sku: String,
    quantity: u32,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Priority {
    Standard,
    Express,
}

async fn create_order(Json(order): Json<NewOrder>) -> (StatusCode, Json<Value>) {
    let units: u32 = order.items.iter().map(|line| line.quantity).sum();
    let express = match order.priority {
        Priority::Standard => false,
        Priority::Express => true,
    };
    (
        StatusCode::CREATED,
        Json(json!({"customer": order.customer, "units": units, "express": express})),
    )
}

async fn get_order(Path(id): Path<Uuid>) -> Json<Value> {
    Json(json!({"id": id}))
}

async fn get_order_line(Path((id, line)): Path<(Uuid, u32)>) -> Json<Value> {
    Json(json!({"id": id, "line": line}))
}

#[derive(Deserialize)]
struct Search {
    q: String,
    limit: u32,
}

async fn search(Query(search): Query<Search>) -> Json<Value> {
    Json(json!({"q": search.q, "limit": search.limit}))
}

#[derive(Deserialize)]
struct Sleep {
    ms: u64,
}

async fn slow(State(state): State<AppState>, Query(sleep): Query<Sleep>) -> String {
    state.slow_started.notify_one();
    tokio::time::sleep(Duration::from_millis(sleep.ms)).await;
    format!("slept {} ms", sleep.ms)
}

async fn request_id(id: RequestId) -> String {
    id.to_string()
}

/// Uses axum's own `String` extractor, whose rejections are plain text.
async fn echo(body: String) -> String {
    body
}
