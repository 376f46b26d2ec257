//! A platform that is already running somewhere (a deployment, e.g. docker-compose), reached
//! through its gateway's published port, for the end-to-end tests to target instead of
//! starting a platform of their own.
//!
//! Everything comes from the environment, read by [`Deployed::from_env`]; only
//! `E2E_GATEWAY_URL` is needed to target a deployment, the rest only by the tests that use it:
//!
//! | variable | what |
//! |---|---|
//! | `E2E_GATEWAY_URL` | the deployment's gateway, e.g. `http://127.0.0.1:18080`; unset: no deployment |
//! | `E2E_POSTGRES_URL` | a superuser URL of its PostgreSQL; the services' databases (`users`, `orders`, `payments`, `notifications`) are on that server, without prefix |
//! | `E2E_ADMIN_EMAIL`, `E2E_ADMIN_PASSWORD` | its bootstrap administrator |
//! | `E2E_KILL`, `E2E_START` | `sh -c` templates that SIGKILL a service and start it again; `{service}` is replaced by the service's binary name (`order-service`); run in the workspace's root |
//! | `E2E_FORWARDED_FOR` | `1`: each [`Deployed::client`] sends its own random `X-Forwarded-For: 10.x.y.z`, so that clients get separate rate-limit quotas from a gateway run with `GATEWAY__RATE_LIMIT__TRUST_FORWARDED_FOR=true` |
//!
//! Its MongoDB-wire server (`MONGODB_URL`, database `inventory`) and mail catcher
//! (`MAIL_API_URL`) are named by the same variables as the local infrastructure's.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::client::Client;
use crate::launcher::{Service, database_url};

/// How long [`Deployed::start`] waits for the deployment to be ready again.
pub const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// A running deployment of the platform (see the module's documentation for its variables).
#[derive(Clone, Debug)]
pub struct Deployed {
    gateway: String,
    postgres: Option<String>,
    admin: Option<(String, String)>,
    kill: Option<String>,
    start: Option<String>,
    forwarded_for: bool,
}

impl Deployed {
    /// The deployment the environment names: `None` when `E2E_GATEWAY_URL` is unset (or
    /// empty), an error when a variable is malformed.
    pub fn from_env() -> Option<anyhow::Result<Self>> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// [`Deployed::from_env`] over any source of variables.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Option<anyhow::Result<Self>> {
        let var = |name: &str| var(name).filter(|value| !value.trim().is_empty());
        let gateway = var("E2E_GATEWAY_URL")?;
        Some(Self::parse(&gateway, var))
    }

    fn parse(gateway: &str, var: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        {
            let gateway = gateway.trim().trim_end_matches('/').to_owned();
            anyhow::ensure!(
                gateway.starts_with("http://") || gateway.starts_with("https://"),
                "E2E_GATEWAY_URL `{gateway}` is not an http:// or https:// URL"
            );
            let postgres = var("E2E_POSTGRES_URL").map(|url| url.trim().to_owned());
            if let Some(url) = &postgres {
                anyhow::ensure!(
                    url.starts_with("postgres://") || url.starts_with("postgresql://"),
                    "E2E_POSTGRES_URL is not a postgres:// URL"
                );
            }
            let admin = match (var("E2E_ADMIN_EMAIL"), var("E2E_ADMIN_PASSWORD")) {
                (Some(email), Some(password)) => Some((email.trim().to_owned(), password)),
                (None, None) => None,
                _ => anyhow::bail!("set both E2E_ADMIN_EMAIL and E2E_ADMIN_PASSWORD, or neither"),
            };
            let forwarded_for = match var("E2E_FORWARDED_FOR").as_deref().map(str::trim) {
                None | Some("0" | "false" | "no" | "off") => false,
                Some("1" | "true" | "yes" | "on") => true,
                Some(other) => {
                    anyhow::bail!("E2E_FORWARDED_FOR is `{other}`: expected 1 (on) or 0 (off)")
                }
            };
            Ok(Self {
                gateway,
                postgres,
                admin,
                kill: var("E2E_KILL"),
                start: var("E2E_START"),
                forwarded_for,
            })
        }
    }

    /// The gateway's base URL (no trailing `/`).
    pub fn gateway_url(&self) -> &str {
        &self.gateway
    }

    /// A new client of the gateway; with `E2E_FORWARDED_FOR=1`, as if from an address of its
    /// own ([`Client::with_random_address`]).
    pub fn client(&self) -> Client {
        let client = Client::new(self.gateway.clone());
        if self.forwarded_for {
            client.with_random_address()
        } else {
            client
        }
    }

    /// Whether each [`Deployed::client`] has an address of its own (`E2E_FORWARDED_FOR=1`).
    pub fn forwards_for(&self) -> bool {
        self.forwarded_for
    }

    /// The bootstrap administrator's email and password.
    pub fn admin(&self) -> anyhow::Result<(&str, &str)> {
        self.admin
            .as_ref()
            .map(|(email, password)| (email.as_str(), password.as_str()))
            .context(
                "E2E_ADMIN_EMAIL and E2E_ADMIN_PASSWORD are not set: they name the deployment's \
                 bootstrap administrator",
            )
    }

    /// The name of a service's database (`orders`): a deployment's are not prefixed.
    pub fn database(&self, name: &str) -> String {
        name.to_owned()
    }

    /// The PostgreSQL URL of a service's database (`orders`), on the server of
    /// `E2E_POSTGRES_URL`.
    pub fn database_url(&self, name: &str) -> anyhow::Result<String> {
        let server = self.postgres.as_deref().context(
            "E2E_POSTGRES_URL is not set: a superuser URL of the deployment's PostgreSQL",
        )?;
        Ok(database_url(server, &self.database(name)))
    }

    /// Whether `E2E_KILL` and `E2E_START` are both set.
    pub fn can_kill_and_start(&self) -> bool {
        self.kill.is_some() && self.start.is_some()
    }

    /// Kills a process of the deployment (SIGKILL), with `E2E_KILL`.
    pub async fn kill(&self, service: Service) -> anyhow::Result<()> {
        run_template("E2E_KILL", self.kill.as_deref(), service).await
    }

    /// Starts a process of the deployment again, with `E2E_START`, and waits (up to
    /// [`READY_TIMEOUT`]) until the deployment is ready again.
    pub async fn start(&self, service: Service) -> anyhow::Result<()> {
        run_template("E2E_START", self.start.as_deref(), service).await?;
        self.wait_ready(READY_TIMEOUT)
            .await
            .with_context(|| format!("after starting {} again (E2E_START)", service.binary()))
    }

    /// Waits until the gateway's `/health/ready` answers 200: it holds the signing keys and
    /// every service it routes to (all of them) answers its own `/health/ready` with 200.
    pub async fn wait_ready(&self, timeout: Duration) -> anyhow::Result<()> {
        platform_http::install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()?;
        let url = format!("{}/health/ready", self.gateway);
        let deadline = Instant::now() + timeout;
        loop {
            let last = match http.get(&url).send().await {
                Ok(response) if response.status().is_success() => return Ok(()),
                Ok(response) => {
                    let status = response.status();
                    let body = response.text().await.unwrap_or_default();
                    format!("{status} {}", body.chars().take(1000).collect::<String>())
                }
                Err(error) => format!("{error:#}"),
            };
            if Instant::now() >= deadline {
                anyhow::bail!(
                    "the deployment was not ready within {timeout:?}: {url} last answered: {last}"
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Runs the command `template` (the variable `name`) for `service` with `sh -c`, in the
/// workspace's root; fails unless it exits 0.
async fn run_template(name: &str, template: Option<&str>, service: Service) -> anyhow::Result<()> {
    let template = template.with_context(|| {
        format!(
            "{name} is not set: a command (run with `sh -c`, `{{service}}` replaced by the \
             service's binary name) that {} a service of the deployment",
            if name == "E2E_KILL" {
                "kills (SIGKILL)"
            } else {
                "starts again"
            }
        )
    })?;
    let command = template.replace("{service}", service.binary());
    let name = name.to_owned();
    tokio::task::spawn_blocking(move || {
        // Its errors go to a file, not a pipe: a command that leaves a process running in the
        // background (which inherits the descriptor) must not keep us waiting for its end.
        let errors = std::env::temp_dir().join(format!("e2e-command-{}.err", uuid::Uuid::now_v7()));
        let status = Command::new("sh")
            .arg("-c")
            .arg(&command)
            .current_dir(command_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&errors).context("creating a temporary file")?)
            .status()
            .with_context(|| format!("running `{command}` ({name})"));
        let stderr = std::fs::read_to_string(&errors).unwrap_or_default();
        let _ = std::fs::remove_file(&errors);
        let status = status?;
        anyhow::ensure!(
            status.success(),
            "`{command}` ({name}) failed ({status}): {}",
            stderr.trim()
        );
        Ok(())
    })
    .await
    .context("the command's task failed")?
}

/// Where `E2E_KILL` and `E2E_START` run: the workspace's root when it is still where this
/// crate was built, else the current directory.
fn command_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .filter(|root| root.join("services.toml").is_file())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::Deployed;

    fn from(vars: &[(&str, &str)]) -> Option<anyhow::Result<Deployed>> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        Deployed::from_vars(|name| vars.get(name).cloned())
    }

    #[test]
    fn without_a_gateway_there_is_no_deployment() {
        assert!(from(&[]).is_none());
        assert!(from(&[("E2E_GATEWAY_URL", " "), ("E2E_FORWARDED_FOR", "1")]).is_none());
    }

    #[test]
    fn a_gateway_alone_is_a_deployment_with_nothing_else() {
        let deployed = from(&[("E2E_GATEWAY_URL", "http://127.0.0.1:18080/")])
            .unwrap()
            .unwrap();
        assert_eq!(deployed.gateway_url(), "http://127.0.0.1:18080");
        assert!(!deployed.forwards_for());
        assert!(!deployed.can_kill_and_start());
        assert!(deployed.client().forwarded_address().is_none());
        let error = deployed.admin().unwrap_err().to_string();
        assert!(error.contains("E2E_ADMIN_EMAIL"), "{error}");
        let error = deployed.database_url("orders").unwrap_err().to_string();
        assert!(error.contains("E2E_POSTGRES_URL"), "{error}");
    }

    #[test]
    fn every_variable_is_read() {
        let deployed = from(&[
            ("E2E_GATEWAY_URL", "http://127.0.0.1:18080"),
            (
                "E2E_POSTGRES_URL",
                "postgres://postgres:secret@127.0.0.1:15432/postgres",
            ),
            ("E2E_ADMIN_EMAIL", "admin@shop.example"),
            ("E2E_ADMIN_PASSWORD", "pass word"),
            ("E2E_KILL", "scripts/compose.sh kill {service}"),
            ("E2E_START", "scripts/compose.sh start {service}"),
            ("E2E_FORWARDED_FOR", "1"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(
            deployed.database_url("orders").unwrap(),
            "postgres://postgres:secret@127.0.0.1:15432/orders"
        );
        assert_eq!(deployed.database("inventory"), "inventory");
        assert_eq!(
            deployed.admin().unwrap(),
            ("admin@shop.example", "pass word")
        );
        assert!(deployed.can_kill_and_start());
        let (one, two) = (deployed.client(), deployed.client());
        let address = one.forwarded_address().unwrap();
        assert!(address.to_string().starts_with("10."), "{address}");
        assert_ne!(Some(address), two.forwarded_address(), "one address each");
        assert_eq!(one.clone().forwarded_address(), Some(address));
    }

    #[test]
    fn malformed_variables_are_refused() {
        for vars in [
            &[("E2E_GATEWAY_URL", "127.0.0.1:18080")][..],
            &[
                ("E2E_GATEWAY_URL", "http://127.0.0.1:18080"),
                ("E2E_FORWARDED_FOR", "maybe"),
            ],
            &[
                ("E2E_GATEWAY_URL", "http://127.0.0.1:18080"),
                ("E2E_ADMIN_EMAIL", "admin@shop.example"),
            ],
            &[
                ("E2E_GATEWAY_URL", "http://127.0.0.1:18080"),
                ("E2E_POSTGRES_URL", "mysql://x"),
            ],
        ] {
            assert!(from(vars).unwrap().is_err(), "{vars:?}");
        }
    }

    #[tokio::test]
    async fn the_templates_run_with_the_binary_name_and_report_failures() {
        let marker = std::env::temp_dir().join(format!("e2e-kill-{}", uuid::Uuid::now_v7()));
        let kill = format!("echo {{service}} > {}", marker.display());
        let deployed = from(&[
            ("E2E_GATEWAY_URL", "http://127.0.0.1:1"),
            ("E2E_KILL", &kill),
            ("E2E_START", "echo cannot start {service} >&2; exit 3"),
        ])
        .unwrap()
        .unwrap();
        let order = crate::Service::named("order");
        deployed.kill(order).await.unwrap();
        assert_eq!(
            std::fs::read_to_string(&marker).unwrap().trim(),
            "order-service"
        );
        std::fs::remove_file(&marker).unwrap();
        let error = format!("{:#}", deployed.start(order).await.unwrap_err());
        assert!(
            error.contains("cannot start order-service") && error.contains("E2E_START"),
            "{error}"
        );
    }
}
