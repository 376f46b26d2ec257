//! Wiring: configuration in, listener bound, consumers and the delivery worker running until
//! shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use platform_auth::{JwksVerifier, ServiceCredentials};
use platform_config::Secret;
use platform_events::consumer::postgres::PgInbox;
use platform_events::{Consumer, ConsumerConfig, Namespace};
use platform_health::{Health, NatsCheck, PostgresCheck};
use platform_http::HttpConfig;
use platform_server::{DEFAULT_DRAIN_TIMEOUT, ServiceServer};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::channel::{Channel, SmtpChannel};
use crate::config::Config;
use crate::delivery::DeliveryWorker;
use crate::http::{self, AppState};
use crate::intake::Intake;
use crate::templates::Templates;
use crate::users::UserDirectory;

/// The service's name, in logs, traces, NATS connections and its service credentials.
pub const SERVICE_NAME: &str = "notification-service";

/// The service's schema.
static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Which events are read from which stream, by which durable consumer.
const SUBSCRIPTIONS: [(&str, &str, &[&str]); 4] = [
    ("notification-users", "users", &["users.registered"]),
    (
        "notification-orders",
        "orders",
        &["orders.confirmed", "orders.cancelled"],
    ),
    ("notification-payments", "payments", &["payments.failed"]),
    (
        "notification-inventory",
        "inventory",
        &["inventory.low_stock"],
    ),
];

/// The service, built and bound, ready to run.
pub struct Application {
    server: ServiceServer,
    pool: PgPool,
    nats: async_nats::Client,
    namespace: Namespace,
    intake: Arc<Intake>,
    channel: Arc<dyn Channel>,
    config: Config,
}

impl Application {
    /// Connects to the database (and runs its migrations) and to NATS, compiles the templates,
    /// and binds the HTTP listener.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let pool = platform_server::connect_postgres(
            &config.database,
            &MIGRATIONS,
            "NOTIFICATION_SERVICE__DATABASE__URL",
        )
        .await?;
        let namespace = Namespace::from_prefix(config.nats.subject_prefix.as_deref())?;
        let nats = platform_events::connect(&config.nats.url, SERVICE_NAME).await?;
        let credentials = ServiceCredentials::configured(
            SERVICE_NAME,
            config.service_auth.secret.as_ref().map(Secret::expose),
            "NOTIFICATION_SERVICE__SERVICE_AUTH__SECRET",
        )?;
        let templates = Arc::new(Templates::load().context("compiling the message templates")?);
        let channel: Arc<dyn Channel> = Arc::new(
            SmtpChannel::new(
                config.smtp.url.expose(),
                &config.smtp.from,
                config.smtp.timeout(),
            )
            .context("NOTIFICATION_SERVICE__SMTP__URL / __FROM")?,
        );
        let users = UserDirectory::new(
            &config.user_service.url,
            credentials,
            std::time::Duration::from_millis(config.user_service.timeout_ms),
        )
        .context("NOTIFICATION_SERVICE__USER_SERVICE__URL")?;
        let intake = Arc::new(Intake::new(
            templates,
            users,
            config.delivery.admin_email.clone(),
            channel.name(),
        ));
        let verifier = JwksVerifier::from_settings(&config.jwt)?;
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
            api: http::router(AppState {
                pool: pool.clone(),
                verifier,
            }),
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
            intake,
            channel,
            config,
        })
    }

    /// Where the HTTP API listens.
    pub fn http_addr(&self) -> SocketAddr {
        self.server.http_addr()
    }

    /// Consumes events, delivers notifications and serves HTTP until `shutdown` resolves;
    /// then finishes the event and the message in hand.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Self {
            server,
            pool,
            nats,
            namespace,
            intake,
            channel,
            config,
        } = self;
        let jetstream = async_nats::jetstream::new(nats);
        server
            .run(
                |stop| {
                    let mut tasks: Vec<_> = SUBSCRIPTIONS
                        .iter()
                        .map(|(name, domain, types)| {
                            let consumer = Consumer::new(
                                jetstream.clone(),
                                namespace.clone(),
                                ConsumerConfig::new(
                                    name,
                                    &namespace.domain_stream(domain),
                                    types.iter().map(|t| namespace.subject(t)).collect(),
                                ),
                                PgInbox::new(pool.clone()),
                                SharedIntake(Arc::clone(&intake)),
                            );
                            tokio::spawn(run_consumer(
                                consumer,
                                jetstream.clone(),
                                namespace.clone(),
                                stop.clone(),
                            ))
                        })
                        .collect();
                    let worker =
                        DeliveryWorker::new(pool, channel, config.delivery, jetstream, namespace);
                    tasks.push(tokio::spawn(worker.run(stop)));
                    tasks
                },
                shutdown,
            )
            .await
    }
}

/// Provisions the streams (this service may start before any producer), then consumes.
async fn run_consumer(
    consumer: Consumer<PgInbox, SharedIntake>,
    jetstream: async_nats::jetstream::Context,
    namespace: Namespace,
    stop: CancellationToken,
) {
    if platform_events::streams::provision_until_ready(&jetstream, &namespace, &stop).await
        && let Err(error) = consumer.run(stop).await
    {
        tracing::error!(error = format!("{error:#}"), "a consumer stopped");
    }
}

/// One intake behind the four consumers.
struct SharedIntake(Arc<Intake>);

impl platform_events::EventHandler<PgInbox> for SharedIntake {
    async fn handle(
        &self,
        event: &platform_events::ReceivedEvent,
        tx: &mut <PgInbox as platform_events::Inbox>::Tx,
    ) -> Result<(), platform_events::HandlerError> {
        self.0.handle(event, tx).await
    }
}
