//! Wiring: configuration in, listeners bound, everything running until shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::routing::get;
use platform_auth::{
    DEV_ONLY_INSECURE_SERVICE_SECRET, JwksVerifier, JwksVerifierConfig, ServiceAuthInterceptor,
    ServiceCredentials, ServiceSecret, TokenSigner,
};
use platform_events::outbox::postgres::PgOutbox;
use platform_events::{Namespace, Relay, RelayConfig, ensure_streams, platform_streams};
use platform_health::{Health, NatsCheck, PostgresCheck};
use platform_http::HttpConfig;
use platform_proto::user::v1::user_service_server::UserServiceServer;
use platform_telemetry::grpc::GrpcServerLayer;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::server::NamedService as _;
use tonic::transport::server::TcpIncoming;

use crate::accounts::{Accounts, User};
use crate::config::Config;
use crate::grpc::UserGrpc;
use crate::http::{self, AppState, JWKS_PATH};

/// The service's name: in logs, traces, NATS connections, and the audience of the service
/// credentials other services present to it.
pub const SERVICE_NAME: &str = "user-service";

/// How long in-flight HTTP requests get to finish after a shutdown signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(20);

/// The service, built and bound, ready to run.
pub struct Application {
    http_listener: TcpListener,
    grpc_listener: TcpListener,
    http_config: HttpConfig,
    state: AppState,
    pool: PgPool,
    nats: async_nats::Client,
    namespace: Namespace,
    credentials: ServiceCredentials,
    health: Health,
}

impl Application {
    /// Connects to the database (and runs its migrations) and to NATS, loads the keys, and
    /// binds both listeners, so that the ports are known before anything is served.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let pool = connect_database(&config).await?;
        let namespace = match &config.nats.subject_prefix {
            Some(prefix) if !prefix.is_empty() => Namespace::prefixed(prefix)?,
            _ => Namespace::root(),
        };
        let nats = platform_events::connect(&config.nats.url, SERVICE_NAME).await?;
        let signer = Arc::new(signing_key(&config)?);
        let credentials = service_credentials(&config)?;

        let http_listener = TcpListener::bind((config.http.host.as_str(), config.http.port))
            .await
            .with_context(|| {
                format!("binding HTTP to {}:{}", config.http.host, config.http.port)
            })?;
        let grpc_listener = TcpListener::bind((config.grpc.host.as_str(), config.grpc.port))
            .await
            .with_context(|| {
                format!("binding gRPC to {}:{}", config.grpc.host, config.grpc.port)
            })?;

        // This service verifies its own tokens with its own key; the URL is only a fallback
        // for a kid it does not know (another replica's key during a rotation).
        let port = http_listener.local_addr()?.port();
        let verifier = JwksVerifier::new(JwksVerifierConfig::new(
            format!("http://127.0.0.1:{port}{JWKS_PATH}"),
            config.tokens.issuer.clone(),
            config.tokens.audience.clone(),
        ))?;
        let jwks = Arc::new(signer.jwk_set());
        verifier.preload(&jwks)?;

        let accounts = Accounts::new(
            pool.clone(),
            namespace.clone(),
            signer,
            config.tokens.clone(),
        )
        .await?;
        if let Some(admin) = &config.bootstrap_admin {
            let (user, created) = accounts
                .ensure_admin(&admin.email, admin.password.expose())
                .await
                .map_err(|error| anyhow::anyhow!("bootstrapping the administrator: {error}"))?;
            tracing::info!(user_id = %user.id, created, "administrator ensured");
        }
        let health = Health::new()
            .with_check(PostgresCheck::new(pool.clone()))
            .with_check(NatsCheck::new(nats.clone()));
        Ok(Self {
            http_listener,
            grpc_listener,
            http_config: HttpConfig {
                request_timeout: Duration::from_secs(config.http.request_timeout_secs),
                body_limit: config.http.body_limit_bytes,
            },
            state: AppState {
                accounts,
                verifier,
                jwks,
            },
            pool,
            nats,
            namespace,
            credentials,
            health,
        })
    }

    /// Where the HTTP API listens.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Where the gRPC API listens.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves HTTP and gRPC and publishes events until `shutdown` resolves; then stops taking
    /// requests, lets in-flight ones finish (up to a deadline), and stops the relay.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let stop = CancellationToken::new();
        tokio::spawn({
            let stop = stop.clone();
            async move {
                shutdown.await;
                stop.cancel();
            }
        });

        let relay = tokio::spawn(relay_events(
            self.pool.clone(),
            self.nats.clone(),
            self.namespace.clone(),
            stop.clone(),
        ));
        let purge = tokio::spawn(purge_expired_tokens(
            self.state.accounts.clone(),
            stop.clone(),
        ));
        let (grpc_health, grpc_health_task) = self
            .health
            .grpc()
            .service(UserServiceServer::<UserGrpc>::NAME)
            .start(stop.clone())
            .await;

        let grpc = tonic::transport::Server::builder()
            .layer(GrpcServerLayer)
            .add_service(grpc_health)
            .add_service(UserServiceServer::with_interceptor(
                UserGrpc::new(self.state.accounts.clone()),
                ServiceAuthInterceptor::new(&self.credentials),
            ))
            .serve_with_incoming_shutdown(
                TcpIncoming::from(self.grpc_listener),
                stop.clone().cancelled_owned(),
            );

        let openapi = http::openapi();
        let router = platform_http::with_standard_layers(
            http::router(self.state.clone()),
            &self.http_config,
        )
        // Probes and scrapes stay outside the request logging and metrics.
        .merge(self.health.router())
        .merge(platform_http::openapi::openapi_router(&openapi))
        .route(
            "/metrics",
            get(platform_telemetry::metrics::metrics_handler),
        );
        let http = platform_http::serve(
            self.http_listener,
            router,
            stop.clone().cancelled_owned(),
            DRAIN_TIMEOUT,
        );

        tracing::info!("user service started");
        let (http, grpc) = tokio::join!(http, grpc);
        stop.cancel();
        let _ = tokio::join!(relay, purge, grpc_health_task);
        http.context("serving HTTP")?;
        grpc.context("serving gRPC")?;
        tracing::info!("user service stopped");
        Ok(())
    }
}

async fn connect_database(config: &Config) -> anyhow::Result<PgPool> {
    let pool = PgPoolOptions::new()
        .max_connections(config.database.max_connections)
        // Short, so readiness reports a database outage within its own timeout.
        .acquire_timeout(Duration::from_secs(1))
        .connect(config.database.url.expose())
        .await
        .context("connecting to PostgreSQL (USER_SERVICE__DATABASE__URL)")?;
    sqlx::migrate!("./migrations")
        .run(&pool)
        .await
        .context("running the user service's migrations")?;
    platform_events::outbox::postgres::migrate(&pool).await?;
    Ok(pool)
}

fn signing_key(config: &Config) -> anyhow::Result<TokenSigner> {
    let kid = config.tokens.signing_key_id.clone();
    match &config.tokens.signing_key_pem {
        Some(pem) => TokenSigner::from_pkcs8_pem(kid, pem.expose())
            .context("USER_SERVICE__TOKENS__SIGNING_KEY_PEM is not an Ed25519 PKCS#8 PEM key"),
        None => {
            tracing::warn!(
                "DEVELOPMENT ONLY: no signing key configured (USER_SERVICE__TOKENS__SIGNING_KEY_PEM); \
                 using a key generated at start-up. Tokens will not survive a restart and other \
                 replicas cannot verify them. Configure a key in any shared or production environment."
            );
            Ok(TokenSigner::generate(kid))
        }
    }
}

fn service_credentials(config: &Config) -> anyhow::Result<ServiceCredentials> {
    let secret = match &config.service_auth.secret {
        Some(secret) => {
            ServiceSecret::new(secret.expose()).context("USER_SERVICE__SERVICE_AUTH__SECRET")?
        }
        None => {
            tracing::warn!(
                "DEVELOPMENT ONLY: no service credential secret configured \
                 (USER_SERVICE__SERVICE_AUTH__SECRET); using the insecure development secret"
            );
            ServiceSecret::new(DEV_ONLY_INSECURE_SERVICE_SECRET)?
        }
    };
    Ok(ServiceCredentials::new(SERVICE_NAME, secret))
}

/// Provisions the streams (retrying while NATS is away), then publishes the outbox until `stop`.
async fn relay_events(
    pool: PgPool,
    nats: async_nats::Client,
    namespace: Namespace,
    stop: CancellationToken,
) {
    let jetstream = async_nats::jetstream::new(nats);
    while let Err(error) = ensure_streams(&jetstream, &platform_streams(&namespace)).await {
        tracing::warn!(
            error = format!("{error:#}"),
            "cannot provision the event streams yet; retrying"
        );
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
    }
    Relay::new(
        PgOutbox::new(pool, namespace),
        jetstream,
        RelayConfig::default(),
    )
    .run(stop)
    .await;
}

async fn purge_expired_tokens(accounts: Accounts, stop: CancellationToken) {
    let mut hourly = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = hourly.tick() => {}
        }
        match accounts.purge_expired_tokens().await {
            Ok(0) => {}
            Ok(purged) => tracing::info!(purged, "purged expired refresh tokens"),
            Err(error) => tracing::warn!(
                error = format!("{error:#}"),
                "purging refresh tokens failed"
            ),
        }
    }
}

/// Creates an administrator (or grants an existing account the admin role), for the
/// `create-admin` command.
pub async fn create_admin(
    config: &Config,
    email: &str,
    password: &str,
) -> anyhow::Result<(User, bool)> {
    let pool = connect_database(config).await?;
    let namespace = match &config.nats.subject_prefix {
        Some(prefix) if !prefix.is_empty() => Namespace::prefixed(prefix)?,
        _ => Namespace::root(),
    };
    // Nothing is signed here; the key only satisfies the constructor.
    let signer = Arc::new(TokenSigner::generate("unused"));
    let accounts = Accounts::new(pool, namespace, signer, config.tokens.clone()).await?;
    accounts
        .ensure_admin(email, password)
        .await
        .map_err(|error| anyhow::anyhow!("{error}"))
}
