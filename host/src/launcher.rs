//! Starting, stopping, killing and restarting the platform's processes.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use sqlx::{Connection as _, PgConnection};

/// The platform's processes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Service {
    /// Accounts and tokens.
    User,
    /// Catalogue and stock.
    Inventory,
    /// Payment methods, charges, refunds.
    Payment,
    /// Orders and the checkout saga.
    Order,
    /// Emails.
    Notification,
    /// The edge.
    Gateway,
}

impl Service {
    /// Every process, in start order.
    pub const ALL: [Service; 6] = [
        Self::User,
        Self::Inventory,
        Self::Payment,
        Self::Order,
        Self::Notification,
        Self::Gateway,
    ];

    /// The name used on the command line and in logs.
    pub fn name(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Inventory => "inventory",
            Self::Payment => "payment",
            Self::Order => "order",
            Self::Notification => "notification",
            Self::Gateway => "gateway",
        }
    }

    /// The prefix of the service's configuration variables.
    pub fn env_prefix(self) -> &'static str {
        match self {
            Self::User => "USER_SERVICE",
            Self::Inventory => "INVENTORY_SERVICE",
            Self::Payment => "PAYMENT_SERVICE",
            Self::Order => "ORDER_SERVICE",
            Self::Notification => "NOTIFICATION_SERVICE",
            Self::Gateway => "GATEWAY",
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Service {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|service| service.name() == name)
            .ok_or_else(|| format!("unknown service `{name}` (user, inventory, payment, order, notification, gateway)"))
    }
}

/// Where each process listens.
#[derive(Clone, Debug)]
pub struct Ports {
    /// The gateway (the only public port).
    pub gateway: u16,
    /// Services' HTTP APIs.
    pub http: BTreeMap<Service, u16>,
    /// Services' gRPC APIs (user, inventory, payment).
    pub grpc: BTreeMap<Service, u16>,
}

impl Ports {
    /// docs/design.md's ports: 8080 for the gateway, 808x and 908x for the services.
    pub fn standard() -> Self {
        Self {
            gateway: 8080,
            http: BTreeMap::from([
                (Service::User, 8081),
                (Service::Order, 8082),
                (Service::Payment, 8083),
                (Service::Inventory, 8084),
                (Service::Notification, 8085),
            ]),
            grpc: BTreeMap::from([
                (Service::User, 9081),
                (Service::Payment, 9083),
                (Service::Inventory, 9084),
            ]),
        }
    }

    /// Free ports on 127.0.0.1 (asked of the OS and released at once; for tests).
    pub fn free() -> anyhow::Result<Self> {
        let free = || -> anyhow::Result<u16> {
            Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
        };
        let mut http = BTreeMap::new();
        for service in Service::ALL.into_iter().filter(|s| *s != Service::Gateway) {
            http.insert(service, free()?);
        }
        let mut grpc = BTreeMap::new();
        for service in [Service::User, Service::Payment, Service::Inventory] {
            grpc.insert(service, free()?);
        }
        Ok(Self {
            gateway: free()?,
            http,
            grpc,
        })
    }

    /// A process's HTTP port.
    pub fn http(&self, service: Service) -> u16 {
        if service == Service::Gateway {
            self.gateway
        } else {
            self.http[&service]
        }
    }
}

/// The local infrastructure's URLs (what `scripts/infra.sh env` prints).
#[derive(Clone, Debug)]
pub struct Infra {
    /// A PostgreSQL server, any database (each service gets its own, created as needed).
    pub postgres: String,
    /// A MongoDB-wire server.
    pub mongodb: String,
    /// Redis.
    pub redis: String,
    /// NATS with JetStream.
    pub nats: String,
    /// The SMTP server mail is sent to.
    pub smtp: String,
}

impl Infra {
    /// From `POSTGRES_URL`, `MONGODB_URL`, `REDIS_URL`, `NATS_URL` and `SMTP_URL`.
    pub fn from_env() -> anyhow::Result<Self> {
        let var = |name: &str| {
            std::env::var(name).with_context(|| {
                format!("{name} is not set: run `scripts/infra.sh up` and `eval \"$(scripts/infra.sh env)\"`")
            })
        };
        Ok(Self {
            postgres: var("POSTGRES_URL")?,
            mongodb: var("MONGODB_URL")?,
            redis: var("REDIS_URL")?,
            nats: var("NATS_URL")?,
            smtp: var("SMTP_URL")?,
        })
    }
}

/// How the platform is started.
#[derive(Clone, Debug)]
pub struct PlatformConfig {
    /// The `platform` binary (it runs each service with `platform node <service>`).
    pub executable: PathBuf,
    /// The infrastructure.
    pub infra: Infra,
    /// Ports.
    pub ports: Ports,
    /// Prefix of database names, the NATS namespace and Redis keys: empty for a local run,
    /// unique per test so platforms can run side by side.
    pub namespace: String,
    /// Where each process's log goes (`<service>.log`).
    pub log_dir: PathBuf,
    /// The user service's Ed25519 signing key (PKCS#8 PEM).
    pub signing_key_pem: String,
    /// The shared secret of service credentials.
    pub service_secret: String,
    /// The administrator created at start.
    pub admin: (String, String),
    /// Where low-stock alerts go.
    pub operations_email: String,
    /// Load the demo catalogue into the empty inventory.
    pub seed_demo: bool,
    /// Further variables, per process (e.g. `GATEWAY__RATE_LIMIT__AUTH__LIMIT`).
    pub extra_env: BTreeMap<Service, Vec<(String, String)>>,
}

impl PlatformConfig {
    /// A database name in this platform's namespace.
    pub fn database(&self, name: &str) -> String {
        if self.namespace.is_empty() {
            name.to_owned()
        } else {
            format!("{}_{name}", self.namespace)
        }
    }

    /// The PostgreSQL URL of one of this platform's databases.
    pub fn postgres_url(&self, name: &str) -> String {
        let server = &self.infra.postgres;
        let base = server
            .rsplit_once('/')
            .map_or(server.as_str(), |(base, _)| base);
        format!("{base}/{}", self.database(name))
    }

    /// Sets an extra variable for a process.
    pub fn set(&mut self, service: Service, key: &str, value: &impl ToString) {
        self.extra_env.entry(service).or_default().push((
            format!("{}__{key}", service.env_prefix()),
            value.to_string(),
        ));
    }

    /// Every variable `service` runs with.
    pub fn environment(&self, service: Service) -> Vec<(String, String)> {
        let prefix = service.env_prefix();
        let mut env: Vec<(String, String)> = Vec::new();
        let mut set = |key: &str, value: String| env.push((format!("{prefix}__{key}"), value));
        let ports = &self.ports;
        let local = |port: u16| format!("http://127.0.0.1:{port}");
        set("HTTP__HOST", "127.0.0.1".to_owned());
        set("HTTP__PORT", ports.http(service).to_string());
        if let Some(grpc) = ports.grpc.get(&service) {
            set("GRPC__HOST", "127.0.0.1".to_owned());
            set("GRPC__PORT", grpc.to_string());
        }
        let jwks = format!("{}/.well-known/jwks.json", local(ports.http(Service::User)));
        if service != Service::Gateway {
            set("NATS__URL", self.infra.nats.clone());
            if !self.namespace.is_empty() {
                set("NATS__SUBJECT_PREFIX", self.namespace.clone());
            }
            set("SERVICE_AUTH__SECRET", self.service_secret.clone());
        }
        if service != Service::User {
            set("JWT__JWKS_URL", jwks);
        }
        match service {
            Service::User => {
                set("DATABASE__URL", self.postgres_url("users"));
                set("TOKENS__SIGNING_KEY_PEM", self.signing_key_pem.clone());
                set("BOOTSTRAP_ADMIN__EMAIL", self.admin.0.clone());
                set("BOOTSTRAP_ADMIN__PASSWORD", self.admin.1.clone());
            }
            Service::Inventory => {
                set("MONGO__URL", self.infra.mongodb.clone());
                set("MONGO__DATABASE", self.database("inventory"));
                set("REDIS__URL", self.infra.redis.clone());
                set("CACHE__KEY_PREFIX", self.database("inventory"));
                set("CATALOGUE__SEED_DEMO", self.seed_demo.to_string());
            }
            Service::Payment => set("DATABASE__URL", self.postgres_url("payments")),
            Service::Order => {
                set("DATABASE__URL", self.postgres_url("orders"));
                set("INVENTORY__URL", local(ports.grpc[&Service::Inventory]));
                set("PAYMENT__URL", local(ports.grpc[&Service::Payment]));
            }
            Service::Notification => {
                set("DATABASE__URL", self.postgres_url("notifications"));
                set("USER_SERVICE__URL", local(ports.grpc[&Service::User]));
                set("SMTP__URL", self.infra.smtp.clone());
                set("DELIVERY__ADMIN_EMAIL", self.operations_email.clone());
            }
            Service::Gateway => {
                for upstream in Service::ALL.into_iter().filter(|s| *s != Service::Gateway) {
                    set(
                        &format!("UPSTREAMS__{}", upstream.name().to_ascii_uppercase()),
                        local(ports.http(upstream)),
                    );
                }
                set("REDIS__URL", self.infra.redis.clone());
                set("RATE_LIMIT__KEY_PREFIX", self.database("gateway"));
            }
        }
        env.push(("LOG_FORMAT".to_owned(), "json".to_owned()));
        if std::env::var_os("RUST_LOG").is_none() {
            env.push(("RUST_LOG".to_owned(), "info".to_owned()));
        }
        env.extend(self.extra_env.get(&service).cloned().unwrap_or_default());
        env
    }
}

/// The running platform. Dropping it kills every process it started.
pub struct Platform {
    config: PlatformConfig,
    children: BTreeMap<Service, Child>,
    http: reqwest::Client,
}

impl Platform {
    /// Creates the databases, starts every process, and waits until each is ready.
    pub async fn start(config: PlatformConfig) -> anyhow::Result<Self> {
        platform_http::install_crypto_provider();
        std::fs::create_dir_all(&config.log_dir)
            .with_context(|| format!("creating {}", config.log_dir.display()))?;
        create_databases(&config).await?;
        let mut platform = Self {
            config,
            children: BTreeMap::new(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()?,
        };
        for service in Service::ALL {
            platform.spawn(service)?;
        }
        for service in Service::ALL {
            platform
                .wait_ready(service, Duration::from_secs(120))
                .await?;
        }
        Ok(platform)
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &PlatformConfig {
        &self.config
    }

    /// The gateway's base URL.
    pub fn gateway_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.config.ports.gateway)
    }

    /// A process's base URL.
    pub fn url(&self, service: Service) -> String {
        format!("http://127.0.0.1:{}", self.config.ports.http(service))
    }

    /// A process's id.
    pub fn pid(&self, service: Service) -> Option<u32> {
        self.children.get(&service).map(Child::id)
    }

    /// A process's resident memory, in KiB (Linux).
    pub fn rss_kib(&self, service: Service) -> Option<u64> {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid(service)?)).ok()?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// The log file of a process.
    pub fn log_file(&self, service: Service) -> PathBuf {
        self.config.log_dir.join(format!("{service}.log"))
    }

    fn spawn(&mut self, service: Service) -> anyhow::Result<()> {
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.log_file(service))
            .with_context(|| format!("opening the log of {service}"))?;
        let child = Command::new(&self.config.executable)
            .args(["node", service.name()])
            .envs(self.config.environment(service))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| {
                format!("starting {service} ({})", self.config.executable.display())
            })?;
        self.children.insert(service, child);
        Ok(())
    }

    /// Waits until the process answers `/health/ready` with 200.
    pub async fn wait_ready(&mut self, service: Service, timeout: Duration) -> anyhow::Result<()> {
        let url = format!("{}/health/ready", self.url(service));
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(child) = self.children.get_mut(&service)
                && let Some(status) = child.try_wait()?
            {
                anyhow::bail!(
                    "{service} exited ({status}) while starting; see {}",
                    self.log_file(service).display()
                );
            }
            if let Ok(response) = self.http.get(&url).send().await
                && response.status().is_success()
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                anyhow::bail!(
                    "{service} was not ready within {timeout:?}; see {}",
                    self.log_file(service).display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Kills a process at once (SIGKILL): no graceful shutdown, in-flight work is cut short.
    pub fn kill(&mut self, service: Service) -> anyhow::Result<()> {
        if let Some(mut child) = self.children.remove(&service) {
            child.kill().with_context(|| format!("killing {service}"))?;
            child.wait()?;
        }
        Ok(())
    }

    /// Stops a process gracefully (SIGTERM) and waits for it.
    pub async fn stop(&mut self, service: Service) -> anyhow::Result<()> {
        if let Some(mut child) = self.children.remove(&service) {
            terminate(&mut child, Duration::from_secs(30)).await?;
        }
        Ok(())
    }

    /// Starts a process again (after [`Platform::kill`] or [`Platform::stop`]) and waits until
    /// it is ready.
    pub async fn restart(&mut self, service: Service) -> anyhow::Result<()> {
        self.spawn(service)?;
        self.wait_ready(service, Duration::from_secs(120)).await
    }

    /// Stops every process gracefully, the gateway first.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        for service in Service::ALL.into_iter().rev() {
            if let Some(mut child) = self.children.remove(&service) {
                terminate(&mut child, Duration::from_secs(30)).await?;
            }
        }
        Ok(())
    }
}

impl Drop for Platform {
    fn drop(&mut self) {
        for child in self.children.values_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// SIGTERM, then wait (SIGKILL after `grace`).
async fn terminate(child: &mut Child, grace: Duration) -> anyhow::Result<()> {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + grace;
    while child.try_wait()?.is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            child.wait()?;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// Creates the services' PostgreSQL databases that do not exist yet.
async fn create_databases(config: &PlatformConfig) -> anyhow::Result<()> {
    let mut admin = PgConnection::connect(&config.infra.postgres)
        .await
        .with_context(|| format!("connecting to PostgreSQL at {}", config.infra.postgres))?;
    for name in ["users", "orders", "payments", "notifications"] {
        let database = config.database(name);
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                .bind(&database)
                .fetch_one(&mut admin)
                .await?;
        if !exists {
            // The name is ours (a fixed word and the namespace), never input.
            sqlx::query(sqlx::AssertSqlSafe(format!(
                r#"CREATE DATABASE "{database}""#
            )))
            .execute(&mut admin)
            .await
            .with_context(|| format!("creating database {database}"))?;
        }
    }
    Ok(())
}

/// A key kept in a file, generated the first time (so tokens survive a restart of `make run`).
pub fn persistent_signing_key(path: &Path) -> anyhow::Result<String> {
    if let Ok(pem) = std::fs::read_to_string(path) {
        return Ok(pem);
    }
    let pem = platform_auth::TokenSigner::generate_pkcs8_pem();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, &pem).with_context(|| format!("writing {}", path.display()))?;
    Ok(pem)
}
