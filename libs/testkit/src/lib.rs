//! How tests get real infrastructure, and how they break it on purpose.
//!
//! Every store and broker comes from a URL in the environment (`POSTGRES_URL`, `REDIS_URL`,
//! `NATS_URL`, `MONGODB_URL`), which `scripts/infra.sh up` provisions natively and `make test`
//! exports. When a URL is unset and the `containers` feature is on, the server is started once
//! per test process with testcontainers, for machines whose Docker can pull images.
//!
//! Each test gets isolated state: its own PostgreSQL database ([`fresh_pg_database`]), its own
//! MongoDB database ([`fresh_mongo_database`]), and unique names for streams, subjects and keys
//! ([`unique_name`]), so tests run in parallel and in any order.
//!
//! Tests that stop or restart a store or the broker run one of their own
//! ([`private::PrivateServer`]), on a free port, so the shared servers keep serving every other
//! test.
//!
//! [`service`] holds what every service's tests share: identities and tokens, a JWKS stand-in,
//! settings localised to a test, problem+json assertions, and event assertions that prove
//! quiescence from the system's state instead of sleeping.

use std::time::Duration;

use anyhow::Context as _;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool};

pub mod mail;
pub mod private;
mod proxy;
mod servers;
pub mod service;

pub use proxy::TcpProxy;
pub use servers::{Server, url};

/// A name no other test uses: `{prefix}_{uuid}` in lower case, valid as a database, stream,
/// consumer or key name.
pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

/// A PostgreSQL database of its own for one test.
#[derive(Clone, Debug)]
pub struct TestDatabase {
    /// A small pool connected to the new database.
    pub pool: PgPool,
    /// The URL of the new database, for code that connects on its own.
    pub url: String,
    /// The database name.
    pub name: String,
}

/// Creates an empty database on the test PostgreSQL server and connects a pool to it.
pub async fn fresh_pg_database() -> anyhow::Result<TestDatabase> {
    let server_url = url(Server::Postgres).await?;
    let name = unique_name("test");
    let admin_options: PgConnectOptions = server_url
        .parse()
        .with_context(|| format!("POSTGRES_URL `{server_url}` is not a PostgreSQL URL"))?;
    let mut admin = admin_options
        .clone()
        .connect()
        .await
        .with_context(|| format!("connecting to PostgreSQL at {server_url}"))?;
    // The name is ours (a prefix and a UUID), never input.
    sqlx::query(sqlx::AssertSqlSafe(format!(r#"CREATE DATABASE "{name}""#)))
        .execute(&mut admin)
        .await
        .with_context(|| format!("creating database {name}"))?;
    admin.close().await.ok();

    let options = admin_options.database(&name);
    let url = options.to_url_lossy().to_string();
    let pool = PgPoolOptions::new()
        .max_connections(5)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
        .with_context(|| format!("connecting to database {name}"))?;
    Ok(TestDatabase { pool, url, name })
}

/// A MongoDB database of its own for one test (created lazily by the server on first write).
pub async fn fresh_mongo_database() -> anyhow::Result<mongodb::Database> {
    let client = mongo_client().await?;
    Ok(client.database(&unique_name("test")))
}

/// A client for the test MongoDB-wire server.
pub async fn mongo_client() -> anyhow::Result<mongodb::Client> {
    let server_url = url(Server::Mongo).await?;
    mongodb::Client::with_uri_str(&server_url)
        .await
        .with_context(|| format!("MONGODB_URL `{server_url}`"))
}

/// A client for the test NATS server (JetStream enabled).
pub async fn nats_client() -> anyhow::Result<async_nats::Client> {
    let server_url = url(Server::Nats).await?;
    async_nats::connect(&server_url)
        .await
        .with_context(|| format!("connecting to NATS at {server_url}"))
}

/// A connection manager for the test Redis server.
pub async fn redis_connection() -> anyhow::Result<redis::aio::ConnectionManager> {
    let server_url = url(Server::Redis).await?;
    let client = redis::Client::open(server_url.as_str())
        .with_context(|| format!("REDIS_URL `{server_url}`"))?;
    redis::aio::ConnectionManager::new(client)
        .await
        .with_context(|| format!("connecting to Redis at {server_url}"))
}

/// Polls `probe` every 50 ms until it returns `Some`, or fails after `timeout` with `what`.
///
/// For asynchronous outcomes (an event consumed, a relay caught up): tests wait for the state
/// they expect instead of sleeping a fixed time.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut probe: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = probe().await {
            return Ok(value);
        }
        if tokio::time::Instant::now() >= deadline {
            anyhow::bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every message stored in the JetStream stream `name`, in sequence order; none while the
/// stream does not exist.
pub async fn stream_messages(
    jetstream: &async_nats::jetstream::Context,
    name: &str,
) -> anyhow::Result<Vec<async_nats::jetstream::message::StreamMessage>> {
    let Ok(mut stream) = jetstream.get_stream(name).await else {
        return Ok(Vec::new());
    };
    let state = stream.info().await?.state.clone();
    let mut messages = Vec::new();
    if state.messages > 0 {
        for sequence in state.first_sequence..=state.last_sequence {
            messages.push(stream.get_raw_message(sequence).await?);
        }
    }
    Ok(messages)
}
