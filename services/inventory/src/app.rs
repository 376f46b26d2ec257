//! Wiring: configuration in, listeners bound, everything running until shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use platform_auth::{JwksVerifier, ServiceAuthInterceptor, ServiceCredentials};
use platform_config::Secret;
use platform_events::outbox::mongo::MongoOutbox;
use platform_events::outbox::provision_and_relay;
use platform_events::{Namespace, RelayConfig};
use platform_health::{Health, MongoCheck, NatsCheck};
use platform_http::HttpConfig;
use platform_proto::inventory::v1::inventory_service_server::InventoryServiceServer;
use platform_server::{DEFAULT_DRAIN_TIMEOUT, GrpcApi, ServiceServer};
use tonic::server::NamedService as _;
use tonic::service::Routes;

use crate::cache::ReadCache;
use crate::catalogue::Catalogue;
use crate::config::{Config, DEFAULT_DATABASE};
use crate::grpc::InventoryGrpc;
use crate::http::{self, AppState};
use crate::stock::{Stock, run_expiry_sweep};
use crate::store::Store;

/// The service's name: in logs, traces, NATS connections, and the audience of the service
/// credentials other services present to it.
pub const SERVICE_NAME: &str = "inventory-service";

/// The service, built and bound, ready to run.
pub struct Application {
    server: ServiceServer,
    store: Store,
    stock: Stock,
    cache: ReadCache,
    nats: async_nats::Client,
    namespace: Namespace,
    sweep_interval: Duration,
}

impl Application {
    /// Connects to MongoDB (creating the collections and indexes, and loading the demo
    /// catalogue into an empty store when configured to), Redis (lazily: the service runs
    /// without it) and NATS, and binds both listeners, so that the ports are known before
    /// anything is served.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        anyhow::ensure!(
            config.reservations.ttl_secs > 0,
            "INVENTORY_SERVICE__RESERVATIONS__TTL_SECS must be at least 1"
        );
        anyhow::ensure!(
            config.reservations.sweep_interval_secs > 0,
            "INVENTORY_SERVICE__RESERVATIONS__SWEEP_INTERVAL_SECS must be at least 1"
        );
        let store = Store::connect(
            config.mongo.url.expose(),
            config.mongo.database_or(DEFAULT_DATABASE),
            "INVENTORY_SERVICE__MONGO__URL",
        )
        .await?;
        store
            .ensure_schema()
            .await
            .context("preparing the database (INVENTORY_SERVICE__MONGO__URL)")?;
        let namespace = Namespace::from_prefix(config.nats.subject_prefix.as_deref())?;
        let outbox = MongoOutbox::new(store.database(), namespace.clone());
        outbox.ensure_indexes().await?;
        let cache = ReadCache::connect(
            config.redis.url.expose(),
            &config.cache.key_prefix,
            config.cache.ttl(),
        )?;
        let catalogue = Catalogue::new(store.clone(), cache.clone());
        if config.catalogue.seed_demo {
            catalogue.seed_demo_if_empty().await?;
        }
        let stock = Stock::new(
            store.clone(),
            cache.clone(),
            Arc::new(outbox),
            config.reservations.ttl(),
        );
        let nats = platform_events::connect(&config.nats.url, SERVICE_NAME).await?;
        let credentials = ServiceCredentials::configured(
            SERVICE_NAME,
            config.service_auth.secret.as_ref().map(Secret::expose),
            "INVENTORY_SERVICE__SERVICE_AUTH__SECRET",
        )?;
        let verifier = JwksVerifier::from_settings(&config.jwt)?;

        let http_listener = platform_http::bind(
            &config.http.host,
            config.http.port_or(crate::DEFAULT_HTTP_PORT),
            "HTTP",
        )
        .await?;
        let grpc_listener = platform_http::bind(
            &config.grpc.host,
            config.grpc.port_or(crate::DEFAULT_GRPC_PORT),
            "gRPC",
        )
        .await?;
        let server = ServiceServer {
            name: SERVICE_NAME,
            http_listener,
            http_config: HttpConfig::from(&config.http),
            api: http::router(AppState {
                catalogue: catalogue.clone(),
                verifier,
            }),
            openapi: http::openapi(),
            // Redis is left out on purpose: it is a cache, reads answer without it, and a
            // Redis outage must not take every replica out of rotation.
            health: Health::new()
                .with_check(MongoCheck::new(store.database().clone()))
                .with_check(NatsCheck::new(nats.clone())),
            grpc: Some(GrpcApi {
                listener: grpc_listener,
                routes: Routes::new(InventoryServiceServer::with_interceptor(
                    InventoryGrpc::new(catalogue, stock.clone()),
                    ServiceAuthInterceptor::new(&credentials),
                )),
                names: vec![InventoryServiceServer::<InventoryGrpc>::NAME],
            }),
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
        };
        Ok(Self {
            server,
            store,
            stock,
            cache,
            nats,
            namespace,
            sweep_interval: config.reservations.sweep_interval(),
        })
    }

    /// Where the HTTP API listens.
    pub fn http_addr(&self) -> SocketAddr {
        self.server.http_addr()
    }

    /// Where the gRPC API listens.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.server
            .grpc_addr()
            .expect("the inventory service has a gRPC API")
    }

    /// Serves HTTP and gRPC, publishes events and expires lapsed reservations until `shutdown`
    /// resolves; then stops taking requests, lets in-flight ones finish (up to a deadline),
    /// and stops the background tasks (the outbox relay, the expiry sweep, the retry of cache
    /// invalidations owed while Redis was away).
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Self {
            server,
            store,
            stock,
            cache,
            nats,
            namespace,
            sweep_interval,
        } = self;
        server
            .run(
                |stop| {
                    vec![
                        tokio::spawn(provision_and_relay(
                            MongoOutbox::new(store.database(), namespace.clone()),
                            nats,
                            namespace,
                            RelayConfig::default(),
                            stop.clone(),
                        )),
                        tokio::spawn(run_expiry_sweep(stock, sweep_interval, stop.clone())),
                        tokio::spawn(cache.run_invalidation_retries(Duration::from_secs(1), stop)),
                    ]
                },
                shutdown,
            )
            .await
    }
}
