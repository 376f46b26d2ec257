//! First start with several replicas at once, as Kubernetes does it: every replica of a
//! Deployment starts at the same moment against the same, fresh store and the same event bus.
//!
//! For each service, three replicas are built at once (a barrier releases them together)
//! against one new database and one NATS namespace shared by every replica of the test, so
//! they race on the migrations, the JetStream streams and consumers, the user service's
//! bootstrap administrator and the inventory's demo catalogue. Each replica must build, run
//! and answer `/health/ready` with 200; then the stores must show the first-start work done
//! once: each migration recorded once, one administrator with the admin role (and one
//! `users.registered` event for them), one demo catalogue, the platform's streams and no
//! others, and one durable consumer per domain the notification service reads, shared by its
//! three replicas.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, ensure};
use async_nats::jetstream;
use async_nats::jetstream::consumer::pull;
use futures::TryStreamExt as _;
use futures::future::{BoxFuture, FutureExt as _, join_all};
use inventory_service::store::ProductDoc;
use platform_config::{CommonSettings, MongoSettings, Secret};
use platform_events::outbox::postgres::PgOutbox;
use platform_events::{Namespace, platform_streams};
use platform_kit::Application;
use platform_testkit::service::{Identities, JwksStandIn, Running, events, http_client, localise};
use platform_testkit::{Server, TestDatabase, eventually, fresh_pg_database, unique_name, url};
use tokio::sync::Barrier;
use user_service::config::BootstrapAdmin;

/// Replicas of each Deployment.
const REPLICAS: usize = 3;

/// How long a replica may take to answer `/health/ready` with 200, and the streams and
/// consumers to appear, once the replicas run.
const SETTLE: Duration = Duration::from_secs(20);

/// The bootstrap administrator's password (the user service's policy accepts it).
const ADMIN_PASSWORD: &str = "a long and correct admin passphrase";

#[tokio::test(flavor = "multi_thread")]
async fn three_replicas_of_every_postgres_service_start_at_once_on_a_fresh_database()
-> anyhow::Result<()> {
    let platform = Platform::new().await?;
    let admin_email = format!("{}@example.com", unique_name("admin"));

    let users_db = fresh_pg_database().await?;
    let mut users =
        user_service::Settings::new(user_service::Config::with_database(users_db.url.clone()));
    platform.localise(&mut users.common).await?;
    // One signing key for every replica, as the Deployment's Secret gives them.
    users.own.tokens.signing_key_pem =
        Some(Secret::new(platform_auth::TokenSigner::generate_pkcs8_pem()));
    users.own.bootstrap_admin = Some(BootstrapAdmin {
        email: admin_email.clone(),
        password: Secret::new(ADMIN_PASSWORD),
    });

    // No order is placed: its inventory and payment clients (lazy) keep their defaults.
    let orders_db = fresh_pg_database().await?;
    let mut orders =
        order_service::Settings::new(order_service::Config::with_database(orders_db.url.clone()));
    platform.localise(&mut orders.common).await?;

    let payments_db = fresh_pg_database().await?;
    let mut payments = payment_service::Settings::new(payment_service::Config::with_database(
        payments_db.url.clone(),
    ));
    platform.localise(&mut payments.common).await?;

    let notifications_db = fresh_pg_database().await?;
    let mut notifications = notification_service::Settings::new(
        notification_service::Config::with_database(notifications_db.url.clone()),
    );
    platform.localise(&mut notifications.common).await?;
    notifications.own.smtp.url = Secret::new(url(Server::Smtp).await?);
    notifications.own.delivery.admin_email = format!("{}@example.com", unique_name("ops"));

    let mut replicas = replicas_of("user-service", &users, user_service::build);
    replicas.extend(replicas_of("order-service", &orders, order_service::build));
    replicas.extend(replicas_of(
        "payment-service",
        &payments,
        payment_service::build,
    ));
    replicas.extend(replicas_of(
        "notification-service",
        &notifications,
        notification_service::build,
    ));
    let running = start_at_once(replicas).await?;
    all_ready(&running).await?;

    let migrations = [
        ("user-service", &users_db, "services/user/migrations"),
        ("order-service", &orders_db, "services/order/migrations"),
        (
            "payment-service",
            &payments_db,
            "services/payment/migrations",
        ),
        (
            "notification-service",
            &notifications_db,
            "services/notification/migrations",
        ),
    ];
    for (service, db, dir) in migrations {
        migrated_once(service, db, "_sqlx_migrations", dir).await?;
        migrated_once(
            service,
            db,
            "_platform_events_migrations",
            "libs/events/migrations/postgres",
        )
        .await?;
    }

    let accounts: Vec<(String, Vec<String>)> = sqlx::query_as("SELECT email, roles FROM users")
        .fetch_all(&users_db.pool)
        .await?;
    ensure!(
        accounts.len() == 1 && accounts[0].0 == admin_email,
        "{REPLICAS} replicas bootstrapping {admin_email} must leave exactly that one account, \
         found {accounts:?}"
    );
    ensure!(
        accounts[0].1.iter().any(|role| role == "admin"),
        "the bootstrap administrator lacks the admin role: {accounts:?}"
    );
    let registered = events::exactly(
        &PgOutbox::new(users_db.pool.clone(), platform.namespace.clone()),
        &platform.jetstream,
        &platform.namespace.domain_stream("users"),
        1,
    )
    .await
    .context("one users.registered event for the bootstrap administrator, not one per replica")?;
    ensure!(
        registered[0].0 == "users.registered",
        "the one event in the users stream is {}, not users.registered",
        registered[0].0
    );

    platform.streams_provisioned_once().await?;
    platform
        .one_consumer_per_domain_shared_by_the_notification_replicas()
        .await?;
    // Only now may the replicas stop: the consumers' pull requests were theirs.
    drop(running);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn three_replicas_of_the_inventory_service_start_at_once_and_load_one_demo_catalogue()
-> anyhow::Result<()> {
    let platform = Platform::new().await?;
    let mongo_url = url(Server::Mongo).await?;
    let database = unique_name("inventory");
    let mut inventory =
        inventory_service::Settings::new(inventory_service::Config::with_mongo(mongo_url.clone()));
    inventory.own.mongo = MongoSettings {
        url: Secret::new(mongo_url),
        database: Some(database.clone()),
    };
    platform.localise(&mut inventory.common).await?;
    inventory.own.redis.url = Secret::new(url(Server::Redis).await?);
    inventory.own.cache.key_prefix = unique_name("cache");
    inventory.own.catalogue.seed_demo = true;

    let running = start_at_once(replicas_of(
        "inventory-service",
        &inventory,
        inventory_service::build,
    ))
    .await?;
    all_ready(&running).await?;

    let expected: BTreeSet<String> = inventory_service::demo::catalogue()
        .into_iter()
        .map(|product| product.sku.as_str().to_owned())
        .collect();
    ensure!(
        expected.len() == 24,
        "the demo catalogue has {} products, not 24",
        expected.len()
    );
    let products: Vec<ProductDoc> = platform_testkit::mongo_client()
        .await?
        .database(&database)
        .collection::<ProductDoc>("products")
        .find(mongodb::bson::doc! {})
        .await?
        .try_collect()
        .await?;
    let stored: BTreeSet<String> = products.iter().map(|p| p.sku.clone()).collect();
    ensure!(
        products.len() == expected.len() && stored == expected,
        "{REPLICAS} replicas seeding at once must store the {} demo products once each, found \
         {} products with {} distinct SKUs; missing {:?}, unexpected {:?}",
        expected.len(),
        products.len(),
        stored.len(),
        expected.difference(&stored).collect::<Vec<_>>(),
        stored.difference(&expected).collect::<Vec<_>>()
    );
    // And each replica serves that one catalogue.
    let http = http_client();
    for (name, replica) in &running {
        let page: serde_json::Value = http
            .get(format!("{}/api/v1/products?page_size=100", replica.url()))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        ensure!(
            page["total"] == 24,
            "{name} lists {} products, not the 24 of the demo catalogue",
            page["total"]
        );
    }

    platform.streams_provisioned_once().await?;
    drop(running);
    Ok(())
}

/// What the replicas of one test share, as the Deployments of one platform do: the event bus
/// (one NATS namespace) and the user service's key set.
struct Platform {
    prefix: String,
    namespace: Namespace,
    jetstream: jetstream::Context,
    jwks: JwksStandIn,
}

impl Platform {
    async fn new() -> anyhow::Result<Self> {
        platform_telemetry::init_for_tests();
        platform_http::install_crypto_provider();
        let prefix = unique_name("replicas");
        let namespace = Namespace::prefixed(&prefix)?;
        let jetstream = jetstream::new(platform_testkit::nats_client().await?);
        let jwks = Identities::new().serve_jwks().await;
        Ok(Self {
            prefix,
            namespace,
            jetstream,
            jwks,
        })
    }

    /// Listeners on port 0 and the test's servers, as [`localise`] does, but on this
    /// platform's one namespace.
    async fn localise(&self, common: &mut CommonSettings) -> anyhow::Result<()> {
        localise(common, self.jwks.url()).await?;
        common.nats.subject_prefix = Some(self.prefix.clone());
        Ok(())
    }

    /// Waits for the platform's streams, then checks the namespace holds those and no others,
    /// each capturing its subjects.
    async fn streams_provisioned_once(&self) -> anyhow::Result<()> {
        let specs = platform_streams(&self.namespace);
        let expected: BTreeSet<String> = specs.iter().map(|spec| spec.name.clone()).collect();
        let found = eventually(
            SETTLE,
            "the platform's streams to be provisioned",
            || async {
                let found = self.stream_names().await.ok()?;
                found.is_superset(&expected).then_some(found)
            },
        )
        .await?;
        ensure!(
            found == expected,
            "the namespace holds streams {found:?}, not exactly the platform's {expected:?}"
        );
        for spec in &specs {
            let mut stream = self.jetstream.get_stream(&spec.name).await?;
            let subjects = stream.info().await?.config.subjects.clone();
            ensure!(
                subjects == spec.subjects,
                "stream {} captures {subjects:?}, not {:?}",
                spec.name,
                spec.subjects
            );
        }
        Ok(())
    }

    /// The streams of this namespace (their names start with its prefix).
    async fn stream_names(&self) -> anyhow::Result<BTreeSet<String>> {
        Ok(self
            .jetstream
            .stream_names()
            .try_collect::<Vec<String>>()
            .await?
            .into_iter()
            .filter(|name| name.starts_with(&self.namespace.stream("")))
            .collect())
    }

    /// Each domain the notification service reads has exactly its one durable consumer (the
    /// other streams none), filtered to the service's event types, and all three replicas
    /// pull from it.
    async fn one_consumer_per_domain_shared_by_the_notification_replicas(
        &self,
    ) -> anyhow::Result<()> {
        let mut expected: BTreeMap<String, (String, Vec<String>)> = BTreeMap::new();
        for (name, domain, types) in notification_service::intake::SUBSCRIPTIONS {
            let subjects = types.iter().map(|t| self.namespace.subject(t)).collect();
            expected.insert(
                self.namespace.domain_stream(domain),
                (name.to_owned(), subjects),
            );
        }
        for stream in self.stream_names().await? {
            let consumers: Vec<String> = self
                .jetstream
                .get_stream(&stream)
                .await?
                .consumer_names()
                .try_collect()
                .await?;
            let wanted: Vec<String> = expected
                .get(&stream)
                .map(|(name, _)| name.clone())
                .into_iter()
                .collect();
            ensure!(
                consumers == wanted,
                "stream {stream} has consumers {consumers:?}, expected {wanted:?}: one durable \
                 consumer per domain, shared by the {REPLICAS} notification replicas"
            );
        }
        for (stream, (name, subjects)) in &expected {
            let mut consumer = self
                .jetstream
                .get_stream(stream)
                .await?
                .get_consumer::<pull::Config>(name)
                .await
                .map_err(anyhow::Error::from_boxed)
                .with_context(|| format!("consumer {name} of {stream}"))?;
            let filters = consumer.info().await?.config.filter_subjects.clone();
            ensure!(
                &filters == subjects,
                "consumer {name} of {stream} filters {filters:?}, not {subjects:?}"
            );
            // Every replica got past creating the consumer and pulls from it: each keeps one
            // pull request waiting on the consumer.
            let waiting = Cell::new(0);
            let pulling = eventually(
                SETTLE,
                &format!("every replica to pull from consumer {name} of {stream}"),
                || async {
                    let info = events::consumer_info(&self.jetstream, stream, name).await?;
                    waiting.set(info.num_waiting);
                    (waiting.get() >= REPLICAS).then_some(())
                },
            )
            .await;
            pulling.with_context(|| {
                format!(
                    "only {} of the {REPLICAS} notification replicas pull from consumer {name} \
                     of {stream}",
                    waiting.get()
                )
            })?;
        }
        Ok(())
    }
}

/// A replica being built, with its name (`order-service #2`).
type Replica = (String, BoxFuture<'static, anyhow::Result<Application>>);

/// [`REPLICAS`] replicas of `service`, each to be built from the same `settings` with `build`.
fn replicas_of<S, F, Fut>(service: &str, settings: &S, build: F) -> Vec<Replica>
where
    S: Clone,
    F: Fn(S) -> Fut,
    Fut: Future<Output = anyhow::Result<Application>> + Send + 'static,
{
    (1..=REPLICAS)
        .map(|n| (format!("{service} #{n}"), build(settings.clone()).boxed()))
        .collect()
}

/// Builds every replica at the same moment (each on a task of its own, released together by
/// a barrier), fails naming each replica that did not build and why, and runs them all.
async fn start_at_once(replicas: Vec<Replica>) -> anyhow::Result<Vec<(String, Running)>> {
    let barrier = Arc::new(Barrier::new(replicas.len()));
    let (names, builds): (Vec<String>, Vec<_>) = replicas
        .into_iter()
        .map(|(name, build)| {
            let barrier = Arc::clone(&barrier);
            let task = tokio::spawn(async move {
                barrier.wait().await;
                build.await
            });
            (name, task)
        })
        .unzip();
    let mut running = Vec::new();
    let mut failures = Vec::new();
    for (name, built) in names.into_iter().zip(join_all(builds).await) {
        match built {
            Ok(Ok(application)) => running.push((name, Running::start(application))),
            Ok(Err(error)) => failures.push(format!("{name}: {error:#}")),
            Err(panic) => failures.push(format!("{name} panicked: {panic}")),
        }
    }
    ensure!(
        failures.is_empty(),
        "replicas starting at once on a fresh store failed to build:\n{}",
        failures.join("\n")
    );
    Ok(running)
}

/// Waits until every replica answers `GET /health/ready` with 200, failing with the last
/// answer of each one that does not.
async fn all_ready(running: &[(String, Running)]) -> anyhow::Result<()> {
    let http = http_client();
    let outcomes = join_all(running.iter().map(|(name, replica)| {
        let http = &http;
        async move {
            let url = format!("{}/health/ready", replica.url());
            let last = RefCell::new(String::from("no answer"));
            let ready = eventually(SETTLE, &format!("{name} to be ready"), || async {
                let answer = match http.get(&url).send().await {
                    Ok(response) if response.status() == 200 => return Some(()),
                    Ok(response) => {
                        let status = response.status();
                        format!("{status}: {}", response.text().await.unwrap_or_default())
                    }
                    Err(error) => error.to_string(),
                };
                *last.borrow_mut() = answer;
                None
            })
            .await;
            ready.map_err(|error| format!("{error:#}; its last answer: {}", last.borrow()))
        }
    }))
    .await;
    let unready: Vec<String> = outcomes.into_iter().filter_map(Result::err).collect();
    ensure!(
        unready.is_empty(),
        "replicas not ready:\n{}",
        unready.join("\n")
    );
    Ok(())
}

/// Checks that the migrations table `table` of `db` records each migration of `dir` (relative
/// to the workspace) exactly once, successfully.
async fn migrated_once(
    service: &str,
    db: &TestDatabase,
    table: &str,
    dir: &str,
) -> anyhow::Result<()> {
    let expected = migration_versions(&workspace().join(dir))?;
    // The table name is one of ours, never input.
    let rows: Vec<(i64, bool)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT version, success FROM {table} ORDER BY version"
    )))
    .fetch_all(&db.pool)
    .await
    .with_context(|| format!("reading {table} of {service}"))?;
    let recorded: BTreeSet<i64> = rows.iter().map(|(version, _)| *version).collect();
    ensure!(
        rows.len() == recorded.len() && recorded == expected,
        "{service}'s {table} must record each of the versions {expected:?} once, it holds \
         {rows:?}"
    );
    ensure!(
        rows.iter().all(|(_, success)| *success),
        "{service}'s {table} records a failed migration: {rows:?}"
    );
    Ok(())
}

/// The versions of the migrations in `dir`: the number each `.sql` file's name starts with.
fn migration_versions(dir: &Path) -> anyhow::Result<BTreeSet<i64>> {
    let mut versions = BTreeSet::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if let Some(stem) = name.strip_suffix(".sql") {
            let version = stem.split('_').next().unwrap_or(stem);
            versions.insert(
                version
                    .parse()
                    .with_context(|| format!("the version of migration {name}"))?,
            );
        }
    }
    ensure!(!versions.is_empty(), "no migrations in {}", dir.display());
    Ok(versions)
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}
