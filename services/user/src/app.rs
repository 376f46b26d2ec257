//! Wiring: configuration in, listeners bound, everything running until shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use platform_auth::{
    JwksVerifier, JwksVerifierConfig, ServiceAuthInterceptor, ServiceCredentials, TokenSigner,
};
use platform_config::Secret;
use platform_events::outbox::postgres::PgOutbox;
use platform_events::outbox::provision_and_relay;
use platform_events::{Namespace, RelayConfig};
use platform_health::{Health, NatsCheck, PostgresCheck};
use platform_http::HttpConfig;
use platform_proto::user::v1::user_service_server::UserServiceServer;
use platform_server::{DEFAULT_DRAIN_TIMEOUT, GrpcApi, ServiceServer};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tonic::server::NamedService as _;
use tonic::service::Routes;

use crate::accounts::{Accounts, User};
use crate::config::Config;
use crate::grpc::UserGrpc;
use crate::http::{self, AppState, JWKS_PATH};

/// The service's name: in logs, traces, NATS connections, and the audience of the service
/// credentials other services present to it.
pub const SERVICE_NAME: &str = "user-service";

/// The service, built and bound, ready to run.
pub struct Application {
    server: ServiceServer,
    pool: PgPool,
    nats: async_nats::Client,
    namespace: Namespace,
    accounts: Accounts,
}

impl Application {
    /// Connects to the database (and runs its migrations) and to NATS, loads the keys, and
    /// binds both listeners, so that the ports are known before anything is served.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let pool = connect_database(&config).await?;
        let namespace = Namespace::from_prefix(config.nats.subject_prefix.as_deref())?;
        let nats = platform_events::connect(&config.nats.url, SERVICE_NAME).await?;
        let signer = Arc::new(signing_key(&config)?);
        let credentials = ServiceCredentials::configured(
            SERVICE_NAME,
            config.service_auth.secret.as_ref().map(Secret::expose),
            "USER_SERVICE__SERVICE_AUTH__SECRET",
        )?;

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
        let server = ServiceServer {
            name: SERVICE_NAME,
            http_listener,
            http_config: HttpConfig::from(&config.http),
            api: http::router(AppState {
                accounts: accounts.clone(),
                verifier,
                jwks,
            }),
            openapi: http::openapi(),
            health,
            grpc: Some(GrpcApi {
                listener: grpc_listener,
                routes: Routes::new(UserServiceServer::with_interceptor(
                    UserGrpc::new(accounts.clone()),
                    ServiceAuthInterceptor::new(&credentials),
                )),
                names: vec![UserServiceServer::<UserGrpc>::NAME],
            }),
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
        };
        Ok(Self {
            server,
            pool,
            nats,
            namespace,
            accounts,
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
            .expect("the user service has a gRPC API")
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
            accounts,
        } = self;
        server
            .run(
                |stop| {
                    vec![
                        tokio::spawn(provision_and_relay(
                            PgOutbox::new(pool, namespace.clone()),
                            nats,
                            namespace,
                            RelayConfig::default(),
                            stop.clone(),
                        )),
                        tokio::spawn(purge_expired_tokens(accounts, stop)),
                    ]
                },
                shutdown,
            )
            .await
    }
}

/// The service's schema.
static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

async fn connect_database(config: &Config) -> anyhow::Result<PgPool> {
    platform_server::connect_postgres(&config.database, &MIGRATIONS, "USER_SERVICE__DATABASE__URL")
        .await
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
    let namespace = Namespace::from_prefix(config.nats.subject_prefix.as_deref())?;
    // Nothing is signed here; the key only satisfies the constructor.
    let signer = Arc::new(TokenSigner::generate("unused"));
    let accounts = Accounts::new(pool, namespace, signer, config.tokens.clone()).await?;
    accounts
        .ensure_admin(email, password)
        .await
        .map_err(|error| anyhow::anyhow!("{error}"))
}
