//! [`Kit`]: a service assembled from the platform's parts, with only its own pieces to add.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use platform_auth::{JwksVerifier, ServiceAuthInterceptor, ServiceCredentials};
use platform_config::{
    CommonSettings, DatabaseSettings, DownstreamSettings, MongoSettings, Secret,
};
use platform_events::outbox::{OutboxStore, provision_and_relay};
use platform_events::{Consumer, ConsumerConfig, DeadLetters, Namespace, RelayConfig, Replay};
use platform_events::{EventHandler, Inbox};
use platform_health::{Health, HealthCheck, MongoCheck, NatsCheck, PostgresCheck};
use platform_http::HttpConfig;
use platform_registry::ServiceEntry;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::service::Routes;
use tonic::service::interceptor::InterceptedService;

use crate::downstream::{Downstream, GrpcChannel};
use crate::server::{Application, BackgroundTask, DEFAULT_DRAIN_TIMEOUT, GrpcApi};

/// A service being assembled: connected to NATS, holding its credential, its namespace, its
/// readiness checks and its background tasks; [`Kit::serve`] binds it.
pub struct Kit {
    entry: &'static ServiceEntry,
    common: CommonSettings,
    namespace: Namespace,
    nats: async_nats::Client,
    credentials: ServiceCredentials,
    health: Health,
    background: Vec<BackgroundTask>,
    grpc: Option<(Routes, Vec<&'static str>)>,
    dead_letters: DeadLetters,
    dead_letter_api: Option<String>,
}

/// How often a service that consumes events counts its dead letters for `/metrics`.
pub const DEAD_LETTER_COUNT_PERIOD: Duration = Duration::from_secs(5);

impl Kit {
    /// Starts assembling the service named `service` in `services.toml` (its binary name):
    /// connects to NATS (lazily retried by the client; readiness reports it) and prepares its
    /// service credential.
    pub async fn start(service: &'static str, common: &CommonSettings) -> anyhow::Result<Self> {
        let entry = platform_registry::service(service);
        let namespace = Namespace::from_prefix(common.nats.subject_prefix.as_deref())
            .with_context(|| entry.variable("NATS__SUBJECT_PREFIX"))?;
        let nats = platform_events::connect(&common.nats.url, service).await?;
        let credentials = ServiceCredentials::configured(
            service,
            common.service_auth.secret.as_ref().map(Secret::expose),
            &entry.variable("SERVICE_AUTH__SECRET"),
        )?;
        // Operators wait on these requests: fail them well within the HTTP request timeout.
        let dead_letters = DeadLetters::new(
            async_nats::jetstream::ContextBuilder::new()
                .timeout(Duration::from_secs(3))
                .build(nats.clone()),
            namespace.clone(),
        );
        Ok(Self {
            entry,
            common: common.clone(),
            dead_letters,
            dead_letter_api: None,
            namespace,
            health: Health::new(),
            nats,
            credentials,
            background: Vec::new(),
            grpc: None,
        })
    }

    /// The service's entry in `services.toml`.
    pub fn entry(&self) -> &'static ServiceEntry {
        self.entry
    }

    /// The full name of one of the service's variables, for error messages:
    /// `variable("SMTP__URL")` is `NOTIFICATION_SERVICE__SMTP__URL`.
    pub fn variable(&self, key: &str) -> String {
        self.entry.variable(key)
    }

    /// The prefix of every subject and stream (empty in production, unique per test).
    pub fn namespace(&self) -> &Namespace {
        &self.namespace
    }

    /// The NATS connection.
    pub fn nats(&self) -> &async_nats::Client {
        &self.nats
    }

    /// The credential this service presents to others.
    pub fn credentials(&self) -> &ServiceCredentials {
        &self.credentials
    }

    /// A verifier of users' access tokens, against the configured key set.
    pub fn verifier(&self) -> anyhow::Result<JwksVerifier> {
        JwksVerifier::from_settings(&self.common.jwt)
            .with_context(|| self.variable("JWT__JWKS_URL"))
    }

    /// Adds a readiness check (beside the store's and NATS', which the kit adds itself).
    pub fn check(&mut self, check: impl HealthCheck + 'static) -> &mut Self {
        self.health = std::mem::take(&mut self.health).with_check(check);
        self
    }

    /// Connects to the service's PostgreSQL database, brings its schema up to date (the
    /// service's own migrations, then the outbox and inbox tables of the events library), and
    /// adds the database to readiness.
    pub async fn postgres(
        &mut self,
        settings: &DatabaseSettings,
        migrations: &sqlx::migrate::Migrator,
    ) -> anyhow::Result<PgPool> {
        let pool = connect_postgres(settings, migrations, &self.variable("DATABASE__URL")).await?;
        self.check(PostgresCheck::new(pool.clone()));
        Ok(pool)
    }

    /// Connects to the service's MongoDB database (its name from the settings, else the one in
    /// `services.toml`) and adds it to readiness, once the server answers (waiting for it up to
    /// [`STORE_WAIT`], with a warning at each attempt). Connection and server selection give up
    /// after 5 s, so a request fails, and readiness reports the outage, in seconds.
    pub async fn mongo(&mut self, settings: &MongoSettings) -> anyhow::Result<mongodb::Database> {
        let variable = self.variable("MONGO__URL");
        let mut options = mongodb::options::ClientOptions::parse(settings.url.expose())
            .await
            .with_context(|| format!("{variable} is not a MongoDB connection string"))?;
        options.app_name = Some(self.entry.binary.clone());
        options
            .server_selection_timeout
            .get_or_insert(Duration::from_secs(5));
        options
            .connect_timeout
            .get_or_insert(Duration::from_secs(5));
        let client = mongodb::Client::with_options(options).context(variable.clone())?;
        let database = client.database(settings.database_or(&self.entry.database));
        until_reachable("MongoDB", &variable, STORE_WAIT, mongo_unreachable, || {
            std::future::IntoFuture::into_future(
                database.run_command(mongodb::bson::doc! {"ping": 1}),
            )
        })
        .await?;
        self.check(MongoCheck::new(database.clone()));
        Ok(database)
    }

    /// Publishes what the service writes to `outbox`, from a relay that runs with the service
    /// (after provisioning the streams).
    pub fn relay<O: OutboxStore>(&mut self, outbox: O) -> &mut Self {
        let nats = self.nats.clone();
        let namespace = self.namespace.clone();
        self.background(move |stop| {
            provision_and_relay(outbox, nats, namespace, RelayConfig::default(), stop)
        })
    }

    /// Consumes the events of `domain` whose types are `event_types` with a durable consumer
    /// named `name`, exactly once in effect: `inbox` remembers what was processed, `handler`
    /// applies each event in the inbox's transaction, up to `NATS__CONSUMER_CONCURRENCY` events
    /// at once.
    pub fn consume<I, H>(
        &mut self,
        name: &str,
        domain: &str,
        event_types: &[&str],
        inbox: I,
        handler: H,
    ) -> &mut Self
    where
        I: Inbox,
        H: EventHandler<I>,
    {
        let namespace = self.namespace.clone();
        let jetstream = async_nats::jetstream::new(self.nats.clone());
        let mut config = ConsumerConfig::new(
            name,
            &namespace.domain_stream(domain),
            event_types.iter().map(|t| namespace.subject(t)).collect(),
        );
        config.concurrency = self.common.nats.consumer_concurrency.max(1);
        let consumer = Consumer::new(jetstream.clone(), namespace.clone(), config, inbox, handler);
        self.dead_letters.add_replay(name, consumer.replayer());
        self.background(move |stop| async move {
            // This service may start before any producer: provision the streams first.
            if platform_events::streams::provision_until_ready(&jetstream, &namespace, &stop).await
                && let Err(error) = consumer.run(stop).await
            {
                tracing::error!(error = format!("{error:#}"), "a consumer stopped");
            }
        })
    }

    /// Registers how the dead letters named after `consumer` (`dlq.<consumer>.<type>`) are
    /// replayed, for a component that dead-letters without being a [`Kit::consume`]r (such as
    /// a delivery worker). Consumers' own are registered by [`Kit::consume`].
    pub fn replay_dead_letters(&mut self, consumer: &str, replay: Arc<dyn Replay>) -> &mut Self {
        self.dead_letters.add_replay(consumer, replay);
        self
    }

    /// The dead letters of this service's consumers (those registered so far).
    pub fn dead_letters(&self) -> &DeadLetters {
        &self.dead_letters
    }

    /// Serves the operators' dead-letter API (`crate::dead_letters`) under `path`, the
    /// service's own public path (e.g. `/api/v1/notifications`).
    pub fn dead_letter_api(&mut self, path: &str) -> &mut Self {
        self.dead_letter_api = Some(path.to_owned());
        self
    }

    /// Runs `task` with the service; it gets the token that tells it to stop, and the service
    /// waits for it on shutdown.
    pub fn background<F, Fut>(&mut self, task: F) -> &mut Self
    where
        F: FnOnce(CancellationToken) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.background
            .push(Box::new(move |stop| tokio::spawn(task(stop))));
        self
    }

    /// Serves `service` on the gRPC listener, behind the service-credential interceptor (only
    /// other services of the platform may call it), and reports it in `grpc.health.v1`.
    pub fn grpc<S>(&mut self, service: S) -> &mut Self
    where
        S: tower::Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        let guarded =
            InterceptedService::new(service, ServiceAuthInterceptor::new(&self.credentials));
        let (routes, mut names) = self
            .grpc
            .take()
            .unwrap_or_else(|| (Routes::default(), Vec::new()));
        names.push(S::NAME);
        self.grpc = Some((routes.add_service(guarded), names));
        self
    }

    /// A client of the service `callee` (its name in `services.toml`): its address from
    /// `settings` or the registry, its deadline from `settings` or `timeout`, this service's
    /// credential on every call, a circuit breaker, and errors sorted into what to retry.
    /// `client` makes the generated client from the channel (e.g. `UserServiceClient::new`).
    pub fn downstream<C>(
        &self,
        callee: &str,
        settings: &DownstreamSettings,
        timeout: Duration,
        client: impl FnOnce(GrpcChannel) -> C,
    ) -> anyhow::Result<Downstream<C>> {
        Downstream::connect(
            platform_registry::service(callee),
            settings,
            timeout,
            &self.credentials,
            client,
        )
        .with_context(|| self.variable(&format!("{}__URL", callee.to_ascii_uppercase())))
    }

    /// Binds the HTTP listener (and the gRPC one if the service registered a gRPC API), on the
    /// configured ports or the registry's defaults, and returns the service ready to run:
    /// `api` with the standard layers, probes, metrics and `openapi` at `/openapi.json`.
    pub async fn serve(
        mut self,
        api: Router,
        openapi: utoipa::openapi::OpenApi,
    ) -> anyhow::Result<Application> {
        let (api, openapi) = match self.dead_letter_api.take() {
            Some(path) => {
                let (routes, document) =
                    crate::dead_letters::api(&path, self.dead_letters.clone(), self.verifier()?);
                let mut openapi = openapi;
                openapi.merge(document);
                (api.merge(routes), openapi)
            }
            None => (api, openapi),
        };
        if self.dead_letters.consumers().next().is_some() {
            let letters = self.dead_letters.clone();
            self.background(move |stop| letters.export_counts(DEAD_LETTER_COUNT_PERIOD, stop));
        }
        let http = &self.common.http;
        let http_listener =
            platform_http::bind(&http.host, http.port_or(self.entry.http_port), "HTTP")
                .await
                .with_context(|| self.variable("HTTP__PORT"))?;
        let grpc = match self.grpc {
            Some((routes, names)) => {
                let settings = &self.common.grpc;
                let port = settings.port.or(self.entry.grpc_port).with_context(|| {
                    format!(
                        "{} has a gRPC API but no gRPC port: set {} or `grpc_port` in services.toml",
                        self.entry.binary,
                        self.entry.variable("GRPC__PORT")
                    )
                })?;
                let listener = platform_http::bind(&settings.host, port, "gRPC")
                    .await
                    .with_context(|| self.entry.variable("GRPC__PORT"))?;
                Some(GrpcApi {
                    listener,
                    routes,
                    names,
                })
            }
            None => None,
        };
        Ok(Application {
            name: self.entry.binary.as_str(),
            http_listener,
            http_config: HttpConfig::from(http),
            api,
            openapi,
            // The store first, then the event bus, then whatever the service added.
            health: self.health.with_check(NatsCheck::new(self.nats)),
            grpc,
            background: self.background,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
        })
    }
}

/// Connects to a service's PostgreSQL database (waiting for it up to [`STORE_WAIT`] while it
/// cannot be reached, with a warning at each attempt) and brings its schema up to date: the service's
/// own migrations, then the outbox and inbox tables of the events library. `variable` names
/// the setting, for the error message. (What [`Kit::postgres`] does, for commands that run
/// without serving.)
pub async fn connect_postgres(
    settings: &DatabaseSettings,
    migrations: &sqlx::migrate::Migrator,
    variable: &str,
) -> anyhow::Result<PgPool> {
    let options = sqlx::postgres::PgPoolOptions::new()
        .max_connections(settings.max_connections)
        // Short, so readiness reports a database outage within its own timeout.
        .acquire_timeout(Duration::from_secs(1));
    let pool = until_reachable(
        "PostgreSQL",
        variable,
        STORE_WAIT,
        postgres_unreachable,
        || options.clone().connect(settings.url.expose()),
    )
    .await?;
    migrations
        .run(&pool)
        .await
        .context("running the service's migrations")?;
    platform_events::outbox::postgres::migrate(&pool).await?;
    Ok(pool)
}

/// How long a starting service waits for its database to answer before it gives up.
pub const STORE_WAIT: Duration = Duration::from_secs(300);

fn postgres_unreachable(error: &sqlx::Error) -> bool {
    matches!(
        error,
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::Tls(_)
    )
}

fn mongo_unreachable(error: &mongodb::error::Error) -> bool {
    matches!(
        *error.kind,
        mongodb::error::ErrorKind::ServerSelection { .. } | mongodb::error::ErrorKind::Io(_)
    )
}

/// Runs `connect` until it succeeds, while the failure is one of reaching the server (refused,
/// unresolvable, timed out: the store is still starting, or down), logging a warning that
/// names the store and why at each attempt, for at most `wait`. Any other failure (a wrong
/// password, a missing database) is returned at once: waiting would not mend it.
async fn until_reachable<T, E, F, Fut>(
    store: &str,
    variable: &str,
    wait: Duration,
    unreachable: fn(&E) -> bool,
    mut connect: F,
) -> anyhow::Result<T>
where
    E: std::error::Error + Send + Sync + 'static,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let deadline = tokio::time::Instant::now() + wait;
    let mut pause = Duration::from_millis(250);
    loop {
        match connect().await {
            Ok(connected) => return Ok(connected),
            Err(error) if unreachable(&error) && tokio::time::Instant::now() + pause < deadline => {
                tracing::warn!(
                    error = %error,
                    retry_in_ms = pause.as_millis() as u64,
                    "{store} ({variable}) cannot be reached yet; not ready until it can"
                );
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
            Err(error) => {
                return Err(anyhow::Error::new(error)
                    .context(format!("connecting to {store} ({variable})")));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_unreachable_store_is_retried_until_the_wait_is_over() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("postgres://u:p@{}/db", listener.local_addr().unwrap());
        drop(listener);
        let attempts = std::sync::atomic::AtomicUsize::new(0);
        let error = until_reachable(
            "PostgreSQL",
            "X__DATABASE__URL",
            Duration::from_secs(1),
            postgres_unreachable,
            || {
                attempts.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                sqlx::postgres::PgPoolOptions::new()
                    .acquire_timeout(Duration::from_millis(200))
                    .connect(&url)
            },
        )
        .await
        .unwrap_err();
        assert!(attempts.into_inner() >= 2, "retried");
        assert!(
            format!("{error:#}").contains("X__DATABASE__URL"),
            "{error:#}"
        );
    }

    #[tokio::test]
    async fn a_refusal_that_waiting_cannot_mend_is_returned_at_once() {
        let attempts = std::sync::atomic::AtomicUsize::new(0);
        let error = until_reachable(
            "PostgreSQL",
            "X__DATABASE__URL",
            Duration::from_secs(60),
            postgres_unreachable,
            || {
                attempts.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                std::future::ready(Err::<(), _>(sqlx::Error::Configuration("bad url".into())))
            },
        )
        .await
        .unwrap_err();
        assert_eq!(attempts.into_inner(), 1);
        assert!(format!("{error:#}").contains("bad url"), "{error:#}");
    }
}
