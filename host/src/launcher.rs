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
use platform_registry::Store;
use sqlx::{Connection as _, PgConnection};

/// One of the platform's processes: a service of `services.toml`, or the gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Service(&'static str);

impl Service {
    /// The edge.
    pub const GATEWAY: Service = Service("gateway");

    /// The web shop, a client of the gateway.
    pub const STOREFRONT: Service = Service("storefront");

    /// The service named `name` in `services.toml`, or the gateway.
    ///
    /// # Panics
    /// When no such process is declared (a mistake in the caller, not a runtime condition).
    pub fn named(name: &str) -> Self {
        name.parse()
            .unwrap_or_else(|error: String| panic!("{error}"))
    }

    /// Every process, in start order: the registry's services, then the gateway, then the
    /// storefront.
    pub fn all() -> impl DoubleEndedIterator<Item = Service> {
        platform_registry::services()
            .iter()
            .map(|entry| Service(entry.name.as_str()))
            .chain([Self::GATEWAY, Self::STOREFRONT])
    }

    /// Every service (not the gateway or the storefront), in registry order.
    pub fn services() -> impl Iterator<Item = Service> {
        Self::all().filter(|service| !service.is_edge())
    }

    /// Whether it is the gateway or the storefront (the processes of the edge).
    pub fn is_edge(self) -> bool {
        self == Self::GATEWAY || self == Self::STOREFRONT
    }

    /// The gateway's or the storefront's registry entry.
    fn edge_entry(self) -> &'static platform_registry::EdgeEntry {
        if self == Self::STOREFRONT {
            platform_registry::storefront()
        } else {
            platform_registry::gateway()
        }
    }

    /// The name used on the command line and in logs.
    pub fn name(self) -> &'static str {
        self.0
    }

    /// Its registry entry (`None` for the gateway and the storefront).
    pub fn entry(self) -> Option<&'static platform_registry::ServiceEntry> {
        platform_registry::find(self.0).filter(|entry| entry.name == self.0)
    }

    /// Its binary, which the launcher runs.
    pub fn binary(self) -> &'static str {
        self.entry()
            .map_or(self.edge_entry().binary.as_str(), |entry| {
                entry.binary.as_str()
            })
    }

    /// The prefix of its configuration variables.
    pub fn env_prefix(self) -> &'static str {
        self.entry()
            .map_or(self.edge_entry().env_prefix.as_str(), |entry| {
                entry.env_prefix.as_str()
            })
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
        Self::all()
            .find(|service| service.name() == name)
            .ok_or_else(|| {
                let known: Vec<&str> = Self::all().map(Service::name).collect();
                format!("unknown service `{name}` ({})", known.join(", "))
            })
    }
}

/// Where each process listens.
#[derive(Clone, Debug)]
pub struct Ports {
    /// The gateway (the public API).
    pub gateway: u16,
    /// The storefront (the web shop).
    pub storefront: u16,
    /// Services' HTTP APIs.
    pub http: BTreeMap<Service, u16>,
    /// Services' gRPC APIs (those with a `grpc_port` in `services.toml`).
    pub grpc: BTreeMap<Service, u16>,
}

impl Ports {
    /// The ports of `services.toml` (docs/design.md's port scheme).
    pub fn standard() -> Self {
        Self {
            gateway: platform_registry::gateway().http_port,
            storefront: platform_registry::storefront().http_port,
            http: Service::services()
                .filter_map(|service| Some((service, service.entry()?.http_port)))
                .collect(),
            grpc: Service::services()
                .filter_map(|service| Some((service, service.entry()?.grpc_port?)))
                .collect(),
        }
    }

    /// Free ports on 127.0.0.1 (asked of the OS and released at once; for tests), for the same
    /// listeners as [`Ports::standard`].
    pub fn free() -> anyhow::Result<Self> {
        let free = || -> anyhow::Result<u16> {
            Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
        };
        let standard = Self::standard();
        Ok(Self {
            gateway: free()?,
            storefront: free()?,
            http: standard
                .http
                .keys()
                .map(|service| Ok((*service, free()?)))
                .collect::<anyhow::Result<_>>()?,
            grpc: standard
                .grpc
                .keys()
                .map(|service| Ok((*service, free()?)))
                .collect::<anyhow::Result<_>>()?,
        })
    }

    /// A process's HTTP port.
    pub fn http(&self, service: Service) -> u16 {
        if service == Service::GATEWAY {
            self.gateway
        } else if service == Service::STOREFRONT {
            self.storefront
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
    /// Where the services' and the gateway's binaries are (`target/debug` or
    /// `target/release`: `cargo build --bins` builds them).
    pub bin_dir: PathBuf,
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
        database_url(&self.infra.postgres, &self.database(name))
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
        let jwks = format!(
            "{}/.well-known/jwks.json",
            local(ports.http(Service::named("user")))
        );
        if let Some(entry) = service.entry() {
            set("NATS__URL", self.infra.nats.clone());
            if !self.namespace.is_empty() {
                set("NATS__SUBJECT_PREFIX", self.namespace.clone());
            }
            set("SERVICE_AUTH__SECRET", self.service_secret.clone());
            set("JWT__JWKS_URL", jwks);
            match entry.store {
                Store::Postgres => set("DATABASE__URL", self.postgres_url(&entry.database)),
                Store::Mongo => {
                    set("MONGO__URL", self.infra.mongodb.clone());
                    set("MONGO__DATABASE", self.database(&entry.database));
                }
            }
            if entry.redis {
                set("REDIS__URL", self.infra.redis.clone());
            }
            for callee in &entry.calls {
                let callee = Service::named(callee);
                set(
                    &format!("{}__URL", callee.name().to_ascii_uppercase()),
                    local(ports.grpc[&callee]),
                );
            }
        } else if service == Service::GATEWAY {
            set("JWT__JWKS_URL", jwks);
        }
        // What only one process needs: its secrets, its demo data, its mail server.
        match service.name() {
            "user" => {
                set("TOKENS__SIGNING_KEY_PEM", self.signing_key_pem.clone());
                set("BOOTSTRAP_ADMIN__EMAIL", self.admin.0.clone());
                set("BOOTSTRAP_ADMIN__PASSWORD", self.admin.1.clone());
            }
            "inventory" => {
                set("CACHE__KEY_PREFIX", self.database("inventory"));
                set("CATALOGUE__SEED_DEMO", self.seed_demo.to_string());
            }
            "notification" => {
                set("SMTP__URL", self.infra.smtp.clone());
                set("DELIVERY__ADMIN_EMAIL", self.operations_email.clone());
            }
            "gateway" => {
                for upstream in platform_registry::services().iter().filter(|s| s.upstream) {
                    set(
                        &format!("UPSTREAMS__{}", upstream.name.to_ascii_uppercase()),
                        local(ports.http(Service::named(&upstream.name))),
                    );
                }
                set("REDIS__URL", self.infra.redis.clone());
                set("RATE_LIMIT__KEY_PREFIX", self.database("gateway"));
            }
            "storefront" => {
                set("GATEWAY__URL", local(ports.gateway));
                set("REDIS__URL", self.infra.redis.clone());
                set("SESSION__KEY_PREFIX", self.database("storefront"));
            }
            _ => {}
        }
        env.push(("LOG_FORMAT".to_owned(), "json".to_owned()));
        if std::env::var_os("RUST_LOG").is_none() {
            env.push(("RUST_LOG".to_owned(), "info".to_owned()));
        }
        env.extend(self.extra_env.get(&service).cloned().unwrap_or_default());
        env
    }
}

/// The URL of the database `database` on the PostgreSQL server that `server` (a URL of any of
/// its databases, or of none) points at: the same scheme, credentials, host and query, with
/// `database` as the path.
pub fn database_url(server: &str, database: &str) -> String {
    let (address, query) = match server.split_once('?') {
        Some((address, query)) => (address, Some(query)),
        None => (server, None),
    };
    let authority = address.find("://").map_or(0, |scheme| scheme + 3);
    let base = address[authority..]
        .find('/')
        .map_or(address, |path| &address[..authority + path]);
    match query {
        Some(query) => format!("{base}/{database}?{query}"),
        None => format!("{base}/{database}"),
    }
}

/// How often a starting process's readiness is asked.
pub const READY_POLL: Duration = Duration::from_millis(20);

/// The running platform. Dropping it kills every process it started.
pub struct Platform {
    config: PlatformConfig,
    children: BTreeMap<Service, Child>,
    http: reqwest::Client,
    spawned_at: BTreeMap<Service, Instant>,
    ready_after: BTreeMap<Service, Duration>,
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
            spawned_at: BTreeMap::new(),
            ready_after: BTreeMap::new(),
        };
        for service in Service::all() {
            platform.spawn(service)?;
        }
        // All at once, so that each process's time to ready is its own, not the sum of those
        // waited for before it.
        let all: Vec<Service> = Service::all().collect();
        platform
            .wait_all_ready(&all, Duration::from_secs(120))
            .await?;
        Ok(platform)
    }

    /// How long each process took from being spawned to its first 200 on `/health/ready` (its
    /// latest start), measured to within [`READY_POLL`].
    pub fn ready_after(&self) -> &BTreeMap<Service, Duration> {
        &self.ready_after
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
        let binary = self.config.bin_dir.join(service.binary());
        anyhow::ensure!(
            binary.is_file(),
            "{} does not exist: build the binaries first (`cargo build --bins`)",
            binary.display()
        );
        let child = Command::new(&binary)
            .envs(self.config.environment(service))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {service} ({})", binary.display()))?;
        self.children.insert(service, child);
        self.spawned_at.insert(service, Instant::now());
        Ok(())
    }

    /// Waits until the process answers `/health/ready` with 200.
    pub async fn wait_ready(&mut self, service: Service, timeout: Duration) -> anyhow::Result<()> {
        self.wait_all_ready(&[service], timeout).await
    }

    /// Waits until every one of `services` answers `/health/ready` with 200, checking them
    /// side by side every [`READY_POLL`]; records each one's time to ready.
    async fn wait_all_ready(
        &mut self,
        services: &[Service],
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        let mut pending = services.to_vec();
        loop {
            for service in &pending {
                if let Some(child) = self.children.get_mut(service)
                    && let Some(status) = child.try_wait()?
                {
                    anyhow::bail!(
                        "{service} exited ({status}) while starting; see {}",
                        self.log_file(*service).display()
                    );
                }
            }
            let answers = futures::future::join_all(pending.iter().map(|service| {
                let request = self
                    .http
                    .get(format!("{}/health/ready", self.url(*service)));
                async move {
                    request
                        .send()
                        .await
                        .is_ok_and(|response| response.status().is_success())
                }
            }))
            .await;
            let now = Instant::now();
            let mut still = Vec::new();
            for (service, ready) in pending.into_iter().zip(answers) {
                if ready {
                    if let Some(spawned) = self.spawned_at.get(&service) {
                        self.ready_after.insert(service, now - *spawned);
                    }
                } else {
                    still.push(service);
                }
            }
            pending = still;
            let Some(late) = pending.first() else {
                return Ok(());
            };
            if now >= deadline {
                anyhow::bail!(
                    "{late} was not ready within {timeout:?}; see {}",
                    self.log_file(*late).display()
                );
            }
            tokio::time::sleep(READY_POLL).await;
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

    /// Stops every process gracefully, the edge first.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        for service in Service::all().rev() {
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
    let postgres = platform_registry::services()
        .iter()
        .filter(|entry| entry.store == Store::Postgres);
    for entry in postgres {
        let database = config.database(&entry.database);
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

/// The directory of the running executable, where `cargo build --bins` put every binary of
/// the workspace (`target/debug` or `target/release`).
pub fn binaries_beside_this_one() -> anyhow::Result<PathBuf> {
    let executable = std::env::current_exe().context("locating this executable")?;
    executable
        .parent()
        .map(Path::to_path_buf)
        .context("this executable has no directory")
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

#[cfg(test)]
mod tests {
    use super::database_url;

    #[test]
    fn a_database_url_keeps_everything_of_the_server_url_but_the_database() {
        assert_eq!(
            database_url(
                "postgres://postgres:postgres@127.0.0.1:55432/postgres",
                "orders"
            ),
            "postgres://postgres:postgres@127.0.0.1:55432/orders"
        );
        assert_eq!(
            database_url("postgres://u:p@db:5432", "users"),
            "postgres://u:p@db:5432/users"
        );
        assert_eq!(
            database_url("postgres://u:p@db:5432/", "users"),
            "postgres://u:p@db:5432/users"
        );
        assert_eq!(
            database_url(
                "postgres://u:p@db/postgres?sslmode=disable",
                "e2e_x_payments"
            ),
            "postgres://u:p@db/e2e_x_payments?sslmode=disable"
        );
        assert_eq!(
            database_url("postgresql://u:p@db?sslmode=require", "notifications"),
            "postgresql://u:p@db/notifications?sslmode=require"
        );
    }
}
