//! What a test runs against: a platform of its own, or the deployment `E2E_GATEWAY_URL` names
//! (see `platform_host::deployed` for every variable).

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use platform_host::{Client, Customer, Deployed, Infra, Platform, PlatformConfig, Ports, Service};
use platform_testkit::{Server, unique_name, url};

/// A port nobody listens on yet, asked of the OS on 127.0.0.1 and released: for a helper
/// program a test starts itself (chromedriver, a mail catcher of its own).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port on 127.0.0.1")
        .port()
}

/// The administrator of a platform of its own.
pub const ADMIN: (&str, &str) = ("operator@e2e.example", "correct horse battery staple");

/// The deployment the environment names, read once; `None`: each test starts a platform.
pub fn deployment() -> Option<&'static Deployed> {
    static DEPLOYMENT: OnceLock<Option<Deployed>> = OnceLock::new();
    DEPLOYMENT
        .get_or_init(|| {
            Deployed::from_env().map(|deployed| {
                deployed.unwrap_or_else(|error| panic!("E2E_GATEWAY_URL is set, but: {error:#}"))
            })
        })
        .as_ref()
}

/// What a test runs against.
pub enum Target {
    /// A platform of its own: its data is all the test's.
    Own(Box<Platform>),
    /// A deployment shared with the demo catalogue and other tests (concurrent journeys): the
    /// test touches only what it created itself.
    Deployed(&'static Deployed),
}

impl Target {
    /// Whether it is a platform of the test's own.
    pub fn is_own(&self) -> bool {
        matches!(self, Self::Own(_))
    }

    /// The administrator's email and password.
    pub fn admin(&self) -> (&str, &str) {
        match self {
            Self::Own(_) => ADMIN,
            Self::Deployed(deployed) => deployed.admin().unwrap_or_else(|error| panic!("{error}")),
        }
    }

    /// The PostgreSQL URL of a service's database (`orders`).
    pub fn postgres_url(&self, database: &str) -> String {
        match self {
            Self::Own(platform) => platform.config().postgres_url(database),
            Self::Deployed(deployed) => deployed
                .database_url(database)
                .unwrap_or_else(|error| panic!("{error}")),
        }
    }

    /// A service's MongoDB database (`inventory`): on a platform of its own, on the server it
    /// runs with; on a deployment, on the server of `MONGODB_URL`.
    pub async fn mongo_database(&self, database: &str) -> mongodb::Database {
        match self {
            Self::Own(platform) => {
                let url = &platform.config().infra.mongodb;
                mongodb::Client::with_uri_str(url)
                    .await
                    .unwrap_or_else(|error| panic!("the platform's MongoDB at {url}: {error}"))
                    .database(&platform.config().database(database))
            }
            Self::Deployed(deployed) => platform_testkit::mongo_client()
                .await
                .unwrap_or_else(|error| {
                    panic!("MONGODB_URL must name the platform's MongoDB-wire server: {error:#}")
                })
                .database(&deployed.database(database)),
        }
    }

    /// Kills a process at once (SIGKILL).
    pub async fn kill(&mut self, service: Service) {
        match self {
            Self::Own(platform) => platform.kill(service).unwrap(),
            Self::Deployed(deployed) => deployed
                .kill(service)
                .await
                .unwrap_or_else(|error| panic!("killing {service}: {error:#}")),
        }
    }

    /// Starts a killed process again and waits until the platform is ready again.
    pub async fn restart(&mut self, service: Service) {
        match self {
            Self::Own(platform) => platform.restart(service).await.unwrap(),
            Self::Deployed(deployed) => deployed
                .start(service)
                .await
                .unwrap_or_else(|error| panic!("starting {service} again: {error:#}")),
        }
    }
}

/// A SKU no other test or run uses: `{prefix}-{unique}`, upper case (as the catalogue keeps it).
pub fn unique_sku(prefix: &str) -> String {
    unique_name(prefix).replace('_', "-").to_ascii_uppercase()
}

/// The directory of the services' and the gateway's binaries. This crate links none of them:
/// `cargo nextest run --workspace` (`make test`) builds them with the tests, beside this
/// crate's own binary; alone, build them first (`cargo build --bins`).
fn service_binaries() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_BIN_EXE_platform"))
        .parent()
        .expect("the test binary has a directory")
        .to_path_buf();
    for service in Service::all() {
        let binary = dir.join(service.binary());
        assert!(
            binary.is_file(),
            "{} is missing: run the workspace's tests (`make test`) or `cargo build --bins` first",
            binary.display()
        );
    }
    dir
}

/// What the test runs against, and a client of its gateway: the deployment `E2E_GATEWAY_URL`
/// names, or else a platform of its own (databases, NATS namespace and Redis keys under a unique
/// prefix) configured by `customise`.
///
/// A deployment runs as it was deployed: `customise` is not applied to it, so a test whose
/// assertions depend on its customisation reads what the deployment does instead (as the
/// rate-limit test reads the limit from the gateway's headers).
pub async fn target(customise: impl FnOnce(&mut PlatformConfig)) -> (Target, Client) {
    platform_http::install_crypto_provider();
    if let Some(deployed) = deployment() {
        deployed
            .wait_ready(platform_host::deployed::READY_TIMEOUT)
            .await
            .unwrap_or_else(|error| panic!("the deployment at E2E_GATEWAY_URL: {error:#}"));
        return (Target::Deployed(deployed), deployed.client());
    }
    let (platform, client) = own_platform(customise).await;
    (Target::Own(Box::new(platform)), client)
}

/// A platform of the test's own, whatever `E2E_GATEWAY_URL` says (for tests that must
/// configure it, such as routing its mail through a proxy), and a client of its gateway.
pub async fn own_platform(customise: impl FnOnce(&mut PlatformConfig)) -> (Platform, Client) {
    platform_http::install_crypto_provider();
    let namespace = unique_name("e2e");
    let mut config = PlatformConfig {
        bin_dir: service_binaries(),
        infra: Infra {
            postgres: url(Server::Postgres).await.unwrap(),
            mongodb: url(Server::Mongo).await.unwrap(),
            redis: url(Server::Redis).await.unwrap(),
            nats: url(Server::Nats).await.unwrap(),
            smtp: url(Server::Smtp).await.unwrap(),
        },
        ports: Ports::free().unwrap(),
        namespace: namespace.clone(),
        log_dir: std::env::temp_dir().join("platform-e2e").join(&namespace),
        signing_key_pem: platform_auth::TokenSigner::generate_pkcs8_pem(),
        service_secret: format!("e2e-service-secret-{}", uuid::Uuid::new_v4().simple()),
        admin: (ADMIN.0.to_owned(), ADMIN.1.to_owned()),
        operations_email: format!("{}@e2e.example", unique_name("ops")),
        seed_demo: true,
        extra_env: BTreeMap::new(),
    };
    // Tests sign in many customers from one address and poll orders hard; the rate-limit test
    // sets its own limit.
    for class in ["AUTH", "READ", "WRITE"] {
        config.set(
            Service::GATEWAY,
            &format!("RATE_LIMIT__{class}__LIMIT"),
            &100_000,
        );
    }
    // Deliveries retried quickly when a test breaks something.
    config.set(
        Service::named("notification"),
        "DELIVERY__RETRY_BASE_MS",
        &200,
    );
    customise(&mut config);
    let platform = Platform::start(config)
        .await
        .unwrap_or_else(|error| panic!("the platform did not start: {error:#}"));
    let client = Client::new(platform.gateway_url());
    (platform, client)
}

/// A new customer with a card.
pub async fn customer_with_card(client: &Client, card: &str) -> (Customer, uuid::Uuid) {
    let email = format!("{}@example.com", unique_name("shopper"));
    let customer = client.customer(&email, "Shopper").await.unwrap();
    let method = client.add_card(&customer, card).await.unwrap();
    (customer, method)
}

/// Waits for the mail to `address` (`count` messages).
pub async fn mail(address: &str, count: usize) -> Vec<platform_testkit::mail::CapturedMail> {
    platform_testkit::mail::wait_for_mail(address, count, Duration::from_secs(30))
        .await
        .unwrap()
}
