//! Wiring: configuration in, listeners bound, everything running until shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use platform_auth::{JwksVerifier, ServiceAuthInterceptor, ServiceCredentials};
use platform_config::Secret;
use platform_events::outbox::postgres::PgOutbox;
use platform_events::outbox::provision_and_relay;
use platform_events::{Namespace, RelayConfig};
use platform_health::{Health, NatsCheck, PostgresCheck};
use platform_http::HttpConfig;
use platform_proto::payment::v1::payment_service_server::PaymentServiceServer;
use platform_server::{DEFAULT_DRAIN_TIMEOUT, GrpcApi, ServiceServer};
use sqlx::PgPool;
use tonic::server::NamedService as _;
use tonic::service::Routes;

use crate::config::Config;
use crate::grpc::PaymentGrpc;
use crate::http::{self, AppState};
use crate::payments::Payments;
use crate::provider::PaymentProvider;
use crate::provider::test_mode::TestProvider;

/// The service's name: in logs, traces, NATS connections, and the audience of the service
/// credentials other services present to it.
pub const SERVICE_NAME: &str = "payment-service";

/// The service's schema.
static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The service, built and bound, ready to run.
pub struct Application {
    server: ServiceServer,
    pool: PgPool,
    nats: async_nats::Client,
    namespace: Namespace,
}

impl Application {
    /// Connects to the database (and runs its migrations) and to NATS, and binds both
    /// listeners, so that the ports are known before anything is served.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let pool = platform_server::connect_postgres(
            &config.database,
            &MIGRATIONS,
            "PAYMENT_SERVICE__DATABASE__URL",
        )
        .await?;
        let namespace = Namespace::from_prefix(config.nats.subject_prefix.as_deref())?;
        let nats = platform_events::connect(&config.nats.url, SERVICE_NAME).await?;
        let credentials = ServiceCredentials::configured(
            SERVICE_NAME,
            config.service_auth.secret.as_ref().map(Secret::expose),
            "PAYMENT_SERVICE__SERVICE_AUTH__SECRET",
        )?;
        let provider: Arc<dyn PaymentProvider> = match config.provider.kind.as_str() {
            "test" => Arc::new(TestProvider::new(
                pool.clone(),
                config.provider.slow_card_delay(),
            )),
            other => anyhow::bail!(
                "PAYMENT_SERVICE__PROVIDER__KIND: unknown provider `{other}` (this build has `test`)"
            ),
        };
        let verifier = JwksVerifier::from_settings(&config.jwt)?;
        let payments = Payments::new(pool.clone(), namespace.clone(), provider);

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
                payments: payments.clone(),
                verifier,
            }),
            openapi: http::openapi(),
            health: Health::new()
                .with_check(PostgresCheck::new(pool.clone()))
                .with_check(NatsCheck::new(nats.clone())),
            grpc: Some(GrpcApi {
                listener: grpc_listener,
                routes: Routes::new(PaymentServiceServer::with_interceptor(
                    PaymentGrpc::new(payments),
                    ServiceAuthInterceptor::new(&credentials),
                )),
                names: vec![PaymentServiceServer::<PaymentGrpc>::NAME],
            }),
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
        };
        Ok(Self {
            server,
            pool,
            nats,
            namespace,
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
            .expect("the payment service has a gRPC API")
    }

    /// Serves HTTP and gRPC and publishes events until `shutdown` resolves; then stops taking
    /// requests, lets in-flight ones finish (up to a deadline), and stops the relay.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Self {
            server,
            pool,
            nats,
            namespace,
        } = self;
        server
            .run(
                |stop| {
                    vec![tokio::spawn(provision_and_relay(
                        PgOutbox::new(pool, namespace.clone()),
                        nats,
                        namespace,
                        RelayConfig::default(),
                        stop,
                    ))]
                },
                shutdown,
            )
            .await
    }
}
