//! A service with every kind of check, each dependency behind its own proxy, served over HTTP.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use platform_health::{Health, MongoCheck, NatsCheck, PostgresCheck, RedisCheck};
use platform_testkit::{Server, TcpProxy, url};
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::postgres::PgPoolOptions;
use tokio_util::sync::CancellationToken;

/// How long a dependency may take to be reported down once its proxy is cut.
pub const DOWN_WITHIN: Duration = Duration::from_secs(10);
/// How long clients may take to reconnect once the proxy is restored.
pub const RECOVERED_WITHIN: Duration = Duration::from_secs(20);

/// The four dependencies of the test service, each behind a proxy a test can cut.
pub struct Dependencies {
    pub postgres: TcpProxy,
    pub redis: TcpProxy,
    pub nats: TcpProxy,
    pub mongo: TcpProxy,
    /// Every check, with client settings under which each one recovers by itself.
    pub health: Health,
}

impl Dependencies {
    pub async fn connect() -> anyhow::Result<Self> {
        platform_telemetry::init_for_tests();

        let postgres_url = url(Server::Postgres).await?;
        let postgres = TcpProxy::start(&postgres_url).await?;
        // A short acquire timeout so a query fails soon when no connection can be opened; the
        // pool opens new connections on demand, which is how it recovers.
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(Duration::from_secs(1))
            .connect(&postgres.url_for(&postgres_url))
            .await
            .context("connecting to PostgreSQL through the proxy")?;

        let redis_url = url(Server::Redis).await?;
        let redis = TcpProxy::start(&redis_url).await?;
        let client = redis::Client::open(redis.url_for(&redis_url))?;
        // The manager reconnects after an I/O error; short timeouts and a capped back-off keep
        // each attempt brief so it is up again soon after the server is.
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(1)))
            .set_max_delay(Duration::from_millis(500));
        let connection = redis::aio::ConnectionManager::new_with_config(client, config)
            .await
            .context("connecting to Redis through the proxy")?;

        let nats_url = url(Server::Nats).await?;
        let nats = TcpProxy::start(&nats_url).await?;
        // Unlimited reconnects (the default, spelled out) with a capped delay.
        let nats_client = async_nats::ConnectOptions::new()
            .max_reconnects(None)
            .connection_timeout(Duration::from_secs(1))
            .reconnect_delay_callback(|attempts| {
                Duration::from_millis(100 * attempts as u64).min(Duration::from_secs(1))
            })
            .connect(nats.url_for(&nats_url))
            .await
            .context("connecting to NATS through the proxy")?;

        let mongo_url = url(Server::Mongo).await?;
        let mongo = TcpProxy::start(&mongo_url).await?;
        let mut options = mongodb::options::ClientOptions::parse(mongo.url_for(&mongo_url)).await?;
        // Fail server selection soon instead of after 30 s, and re-check the server often.
        options.server_selection_timeout = Some(Duration::from_secs(1));
        options.connect_timeout = Some(Duration::from_secs(1));
        options.heartbeat_freq = Some(Duration::from_millis(500));
        let mongo_client = mongodb::Client::with_options(options)?;

        let health = Health::new()
            .with_check(PostgresCheck::new(pool))
            .with_check(RedisCheck::new(connection))
            .with_check(NatsCheck::new(nats_client))
            .with_check(MongoCheck::for_client(&mongo_client));
        Ok(Self {
            postgres,
            redis,
            nats,
            mongo,
            health,
        })
    }
}

/// A service serving a [`Health`]'s routes on a port of its own.
pub struct TestApp {
    pub address: SocketAddr,
    pub client: reqwest::Client,
    shutdown: CancellationToken,
}

/// Serves `health.router()` merged into an application router with state of its own, on
/// `127.0.0.1:0`.
pub async fn spawn_app(health: &Health) -> anyhow::Result<TestApp> {
    #[derive(Clone)]
    struct AppState {
        greeting: &'static str,
    }

    platform_telemetry::init_for_tests();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let app = axum::Router::new()
        .route(
            "/hello",
            axum::routing::get(
                |axum::extract::State(state): axum::extract::State<AppState>| async move {
                    state.greeting
                },
            ),
        )
        .merge(health.router())
        .with_state(AppState { greeting: "hello" });

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await
    });
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    Ok(TestApp {
        address,
        client,
        shutdown,
    })
}

impl TestApp {
    /// `GET path`: the status and the JSON body.
    pub async fn get(&self, path: &str) -> anyhow::Result<(StatusCode, Value)> {
        let response = self
            .client
            .get(format!("http://{}{path}", self.address))
            .send()
            .await?;
        let status = response.status();
        let body = response
            .json()
            .await
            .with_context(|| format!("{path} answered no JSON"))?;
        Ok((status, body))
    }

    pub async fn ready(&self) -> anyhow::Result<(StatusCode, Value)> {
        self.get("/health/ready").await
    }

    pub async fn live(&self) -> anyhow::Result<(StatusCode, Value)> {
        self.get("/health/live").await
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The entry for check `name` in a readiness body.
pub fn check<'a>(body: &'a Value, name: &str) -> &'a Value {
    body["checks"]
        .as_array()
        .and_then(|checks| checks.iter().find(|check| check["name"] == name))
        .unwrap_or_else(|| panic!("no check named {name} in {body}"))
}

/// Asserts that readiness is ready, every check up with a latency.
pub fn assert_ready(status: StatusCode, body: &Value) {
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "ready", "{body}");
    for name in ["postgres", "redis", "nats", "mongodb"] {
        let check = check(body, name);
        assert_eq!(check["status"], "up", "{body}");
        assert!(
            check["latency_ms"].as_f64().is_some_and(|ms| ms >= 0.0),
            "{body}"
        );
        assert!(check.get("error").is_none(), "{body}");
    }
}

/// Asserts that readiness is unready because of `down` alone, which says why.
pub fn assert_unready_because_of(status: StatusCode, body: &Value, down: &str) {
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["status"], "unready", "{body}");
    for name in ["postgres", "redis", "nats", "mongodb"] {
        let check = check(body, name);
        if name == down {
            assert_eq!(check["status"], "down", "{body}");
            let error = check["error"].as_str().unwrap_or_default();
            assert!(!error.is_empty(), "a down check says why: {body}");
        } else {
            assert_eq!(check["status"], "up", "only {down} is down: {body}");
        }
        assert!(check["latency_ms"].as_f64().is_some(), "{body}");
    }
}

/// Cuts `proxy`, waits for readiness to report `name` down (alone) while liveness stays 200,
/// restores it and waits for readiness to recover: what every outage test checks.
pub async fn outage_and_recovery(
    app: &TestApp,
    proxy: &TcpProxy,
    name: &str,
) -> anyhow::Result<()> {
    let (status, body) = app.ready().await?;
    assert_ready(status, &body);

    proxy.cut();
    let (status, body) =
        platform_testkit::eventually(DOWN_WITHIN, &format!("{name} reported down"), || async {
            let (status, body) = app.ready().await.ok()?;
            (status == StatusCode::SERVICE_UNAVAILABLE).then_some((status, body))
        })
        .await?;
    assert_unready_because_of(status, &body, name);

    let (status, body) = app.live().await?;
    assert_eq!(
        status,
        StatusCode::OK,
        "liveness ignores dependencies: {body}"
    );
    assert_eq!(body, serde_json::json!({"status": "live"}));

    // Still down on the next probe, not a one-off blip.
    let (status, body) = app.ready().await?;
    assert_unready_because_of(status, &body, name);

    proxy.restore();
    let (status, body) =
        platform_testkit::eventually(RECOVERED_WITHIN, &format!("{name} back up"), || async {
            let (status, body) = app.ready().await.ok()?;
            (status == StatusCode::OK).then_some((status, body))
        })
        .await?;
    assert_ready(status, &body);
    Ok(())
}
