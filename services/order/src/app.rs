//! Wiring: configuration in, listener bound, the saga worker and the relay running until
//! shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use platform_auth::{JwksVerifier, ServiceCredentials};
use platform_config::Secret;
use platform_events::outbox::postgres::PgOutbox;
use platform_events::outbox::provision_and_relay;
use platform_events::{Namespace, RelayConfig};
use platform_health::{Health, NatsCheck, PostgresCheck};
use platform_http::HttpConfig;
use platform_resilience::BreakerConfig;
use platform_server::{DEFAULT_DRAIN_TIMEOUT, ServiceServer};
use sqlx::PgPool;
use tokio::sync::Notify;

use crate::config::Config;
use crate::downstream::{self, Inventory, Payments};
use crate::http::{self, AppState};
use crate::orders::Orders;
use crate::saga::SagaWorker;

/// The service's name, in logs, traces, NATS connections and its service credentials.
pub const SERVICE_NAME: &str = "order-service";

/// The service's schema.
static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The service, built and bound, ready to run.
pub struct Application {
    server: ServiceServer,
    pool: PgPool,
    nats: async_nats::Client,
    namespace: Namespace,
    inventory: Inventory,
    payments: Payments,
    config: Config,
    wake: Arc<Notify>,
}

impl Application {
    /// Connects to the database (and runs its migrations) and to NATS, prepares the clients of
    /// inventory and payment, and binds the HTTP listener.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let pool = platform_server::connect_postgres(
            &config.database,
            &MIGRATIONS,
            "ORDER_SERVICE__DATABASE__URL",
        )
        .await?;
        let namespace = Namespace::from_prefix(config.nats.subject_prefix.as_deref())?;
        let nats = platform_events::connect(&config.nats.url, SERVICE_NAME).await?;
        let credentials = ServiceCredentials::configured(
            SERVICE_NAME,
            config.service_auth.secret.as_ref().map(Secret::expose),
            "ORDER_SERVICE__SERVICE_AUTH__SECRET",
        )?;
        let (inventory, payments) = downstream::connect(
            &config.inventory(),
            &config.payment(),
            &credentials,
            BreakerConfig {
                failure_threshold: config.saga.breaker_threshold,
                cool_down: Duration::from_millis(config.saga.breaker_cool_down_ms),
            },
        )?;
        let verifier = JwksVerifier::from_settings(&config.jwt)?;
        let wake = Arc::new(Notify::new());
        let orders = Orders::new(
            pool.clone(),
            namespace.clone(),
            inventory.clone(),
            payments.clone(),
            config.orders.clone(),
            Arc::clone(&wake),
        );
        let http_listener = platform_http::bind(
            &config.http.host,
            config.http.port_or(crate::DEFAULT_HTTP_PORT),
            "HTTP",
        )
        .await?;
        let server = ServiceServer {
            name: SERVICE_NAME,
            http_listener,
            http_config: HttpConfig::from(&config.http),
            api: http::router(AppState { orders, verifier }),
            openapi: http::openapi(),
            health: Health::new()
                .with_check(PostgresCheck::new(pool.clone()))
                .with_check(NatsCheck::new(nats.clone())),
            grpc: None,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
        };
        Ok(Self {
            server,
            pool,
            nats,
            namespace,
            inventory,
            payments,
            config,
            wake,
        })
    }

    /// Where the HTTP API listens.
    pub fn http_addr(&self) -> SocketAddr {
        self.server.http_addr()
    }

    /// A saga worker over this service's orders, for running steps by hand (tests, tools).
    pub fn saga_worker(&self) -> SagaWorker {
        SagaWorker::new(
            self.pool.clone(),
            self.namespace.clone(),
            self.inventory.clone(),
            self.payments.clone(),
            self.config.saga.clone(),
            Arc::clone(&self.wake),
        )
    }

    /// Serves HTTP, runs the saga worker and the relay until `shutdown` resolves; then
    /// finishes the steps in hand.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        self.run(true, shutdown).await
    }

    /// Like [`Application::run_until_stopped`], with the saga worker only if `saga` (tests run
    /// steps by hand with [`Application::saga_worker`]).
    pub async fn run(
        self,
        saga: bool,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let worker = self.saga_worker();
        let Self {
            server,
            pool,
            nats,
            namespace,
            ..
        } = self;
        server
            .run(
                |stop| {
                    let mut tasks = vec![tokio::spawn(provision_and_relay(
                        PgOutbox::new(pool, namespace.clone()),
                        nats,
                        namespace,
                        RelayConfig::default(),
                        stop.clone(),
                    ))];
                    if saga {
                        tasks.push(tokio::spawn(worker.run(stop)));
                    }
                    tasks
                },
                shutdown,
            )
            .await
    }
}
