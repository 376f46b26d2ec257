//! Servers of a test's own, for tests that stop or restart a store or the broker: the shared
//! servers of `scripts/infra.sh` must keep running for every other test.
//!
//! Each [`PrivateServer`] runs on a free `127.0.0.1` port with its data under a directory of its
//! own in the temporary directory, and can be stopped (gracefully or killed) and started again
//! on the same port with the same data. Dropping it kills the server and deletes its directory
//! (kept when the test panics, for its logs).
//!
//! The binaries come from the environment, which `scripts/infra.sh env` exports:
//! `INFRA_PG_BIN_DIR` (PostgreSQL's `initdb` and `postgres`), `INFRA_REDIS_SERVER`,
//! `INFRA_NATS_SERVER` and `INFRA_SECANTUSD` (the MongoDB-wire server).

use std::fs::File;
use std::net::TcpListener;
use std::os::unix::fs::MetadataExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context as _;
use sqlx::Connection as _;

use crate::unique_name;

/// How long a server may take to answer after it is started.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// How a server is stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// Asked to shut down (SIGTERM; PostgreSQL's fast shutdown, SIGINT), as an operator does.
    Graceful,
    /// Killed without warning (SIGKILL; PostgreSQL's immediate shutdown, SIGQUIT, which
    /// stops it as a crash would without orphaning its backends), as a crash does.
    Kill,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Postgres,
    Redis,
    Nats,
    Mongo,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Self::Postgres => "postgres",
            Self::Redis => "redis",
            Self::Nats => "nats",
            Self::Mongo => "mongo",
        }
    }
}

/// A server of one test's own (see the module's documentation).
pub struct PrivateServer {
    kind: Kind,
    program: PathBuf,
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
    /// The PostgreSQL cluster's owner when the test runs as root (`initdb` and `postgres`
    /// refuse root): the `postgres` user's uid and gid.
    run_as: Option<(u32, u32)>,
}

impl PrivateServer {
    /// PostgreSQL: a fresh cluster (`initdb`, trust authentication, no fsync), user `postgres`.
    pub async fn postgres() -> anyhow::Result<Self> {
        let bin = PathBuf::from(binary("INFRA_PG_BIN_DIR")?);
        let mut server = Self::new(Kind::Postgres, bin.join("postgres"))?;
        if running_as_root()? {
            let (uid, gid) = postgres_user()?;
            std::os::unix::fs::chown(&server.dir, Some(uid), Some(gid)).with_context(|| {
                format!("handing {} to the postgres user", server.dir.display())
            })?;
            server.run_as = Some((uid, gid));
        }
        let data = server.dir.join("data");
        let mut initdb = Command::new(bin.join("initdb"));
        initdb
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C"])
            .arg("--no-sync");
        server.as_owner(&mut initdb);
        let log = server.log()?;
        let status = initdb
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .status()
            .with_context(|| format!("running {}", bin.join("initdb").display()))?;
        anyhow::ensure!(
            status.success(),
            "initdb failed ({status}); see {}",
            server.log_path().display()
        );
        server.start().await?;
        Ok(server)
    }

    /// Redis, without persistence: a restart starts it empty, as a cache may be.
    pub async fn redis() -> anyhow::Result<Self> {
        let mut server = Self::new(Kind::Redis, binary("INFRA_REDIS_SERVER")?.into())?;
        server.start().await?;
        Ok(server)
    }

    /// NATS with JetStream, its streams on disk (`-js -sd`), so they survive a restart.
    pub async fn nats() -> anyhow::Result<Self> {
        let mut server = Self::new(Kind::Nats, binary("INFRA_NATS_SERVER")?.into())?;
        server.start().await?;
        Ok(server)
    }

    /// The MongoDB-wire server (SecantusDB), its data on disk (`--storage-path`).
    pub async fn mongo() -> anyhow::Result<Self> {
        let mut server = Self::new(Kind::Mongo, binary("INFRA_SECANTUSD")?.into())?;
        // An explicit, empty configuration: no stray ./secantusd.toml is picked up.
        File::create(server.dir.join("secantusd.toml"))?;
        server.start().await?;
        Ok(server)
    }

    fn new(kind: Kind, program: PathBuf) -> anyhow::Result<Self> {
        anyhow::ensure!(
            program.is_file(),
            "{} does not exist (check the INFRA_* variables of `scripts/infra.sh env`)",
            program.display()
        );
        let dir = std::env::temp_dir().join(unique_name(&format!("private-{}", kind.name())));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Self {
            kind,
            program,
            port: free_port()?,
            dir,
            child: None,
            run_as: None,
        })
    }

    /// Its URL, as the platform's `Infra` and the testkit take it.
    pub fn url(&self) -> String {
        let port = self.port;
        match self.kind {
            Kind::Postgres => format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            Kind::Redis => format!("redis://127.0.0.1:{port}"),
            Kind::Nats => format!("nats://127.0.0.1:{port}"),
            Kind::Mongo => format!("mongodb://127.0.0.1:{port}/?directConnection=true"),
        }
    }

    /// Where its output goes.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    fn log(&self) -> anyhow::Result<File> {
        File::options()
            .create(true)
            .append(true)
            .open(self.log_path())
            .with_context(|| format!("opening {}", self.log_path().display()))
    }

    fn as_owner(&self, command: &mut Command) {
        command.env("LC_ALL", "C");
        if let Some((uid, gid)) = self.run_as {
            command.uid(uid).gid(gid).current_dir("/");
        }
    }

    /// Starts it (again: same port, same data) and waits until it answers.
    pub async fn start(&mut self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.child.is_none(),
            "the {} server is running",
            self.kind.name()
        );
        let port = self.port.to_string();
        let mut command = Command::new(&self.program);
        match self.kind {
            Kind::Postgres => {
                command
                    .arg("-D")
                    .arg(self.dir.join("data"))
                    .args(["-p", &port]);
                command.arg("-k").arg(&self.dir);
                // Durable against the crash of PostgreSQL, not of the machine: fsync and full
                // page writes off (the OS keeps what was written), but each commit's WAL is
                // written before it answers (synchronous_commit stays on; off would lose the
                // last commits a client was told of when the server is killed).
                for setting in [
                    "listen_addresses=127.0.0.1",
                    "max_connections=300",
                    "fsync=off",
                    "full_page_writes=off",
                    "shared_buffers=32MB",
                ] {
                    command.args(["-c", setting]);
                }
                self.as_owner(&mut command);
            }
            Kind::Redis => {
                command
                    .args(["--port", &port, "--bind", "127.0.0.1", "--dir"])
                    .arg(&self.dir)
                    .args(["--save", "", "--appendonly", "no", "--daemonize", "no"]);
            }
            Kind::Nats => {
                command
                    .args(["-js", "-sd"])
                    .arg(self.dir.join("jetstream"))
                    .args(["-a", "127.0.0.1", "-p", &port]);
            }
            Kind::Mongo => {
                command
                    .arg("--config")
                    .arg(self.dir.join("secantusd.toml"))
                    .args(["--host", "127.0.0.1", "--port", &port, "--storage-path"])
                    .arg(self.dir.join("data"));
            }
        }
        let log = self.log()?;
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", self.program.display()))?;
        self.child = Some(child);
        self.wait_ready().await
    }

    /// Stops it and waits until the process has exited; its port and data stay for
    /// [`PrivateServer::start`].
    pub async fn stop(&mut self, how: Stop) -> anyhow::Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let signal = match (self.kind, how) {
            (Kind::Postgres, Stop::Graceful) => "-INT",
            (Kind::Postgres, Stop::Kill) => "-QUIT",
            (_, Stop::Graceful) => "-TERM",
            (_, Stop::Kill) => "-KILL",
        };
        signal_process(&child, signal);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while child.try_wait()?.is_none() {
            if tokio::time::Instant::now() >= deadline {
                let _ = child.kill();
                child.wait()?;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// Freezes it (SIGSTOP): connections stay open and the port accepts, but nothing answers,
    /// as a server stuck or behind a black hole does. Its data stays.
    pub fn pause(&self) {
        if let Some(child) = &self.child {
            signal_process(child, "-STOP");
        }
    }

    /// Lets a paused server run again (SIGCONT).
    pub fn resume(&self) {
        if let Some(child) = &self.child {
            signal_process(child, "-CONT");
        }
    }

    /// Stops it, leaves it down for `down_for`, and starts it again.
    pub async fn restart(&mut self, how: Stop, down_for: Duration) -> anyhow::Result<()> {
        self.stop(how).await?;
        tokio::time::sleep(down_for).await;
        self.start().await
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                self.child = None;
                anyhow::bail!(
                    "the private {} server exited ({status}) while starting; see {}",
                    self.kind.name(),
                    self.log_path().display()
                );
            }
            if self.answers().await {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                anyhow::bail!(
                    "the private {} server did not answer within {READY_TIMEOUT:?}; see {}",
                    self.kind.name(),
                    self.log_path().display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Whether it answers a real request (not just a TCP connect).
    async fn answers(&self) -> bool {
        let url = self.url();
        let attempt = async {
            match self.kind {
                Kind::Postgres => {
                    let mut connection = sqlx::PgConnection::connect(&url).await?;
                    sqlx::query("SELECT 1").execute(&mut connection).await?;
                    connection.close().await.ok();
                }
                Kind::Redis => {
                    let client = redis::Client::open(url.as_str())?;
                    let mut connection = client.get_multiplexed_async_connection().await?;
                    redis::cmd("PING")
                        .query_async::<String>(&mut connection)
                        .await?;
                }
                Kind::Nats => {
                    let client = async_nats::connect(&url).await?;
                    // JetStream answers once it has recovered its streams from disk.
                    async_nats::jetstream::new(client).query_account().await?;
                }
                Kind::Mongo => {
                    let client = mongodb::Client::with_uri_str(format!(
                        "{url}&serverSelectionTimeoutMS=1000&connectTimeoutMS=1000"
                    ))
                    .await?;
                    client
                        .database("admin")
                        .run_command(mongodb::bson::doc! {"ping": 1})
                        .await?;
                }
            }
            anyhow::Ok(())
        };
        matches!(
            tokio::time::timeout(Duration::from_secs(3), attempt).await,
            Ok(Ok(()))
        )
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal_process(&child, "-CONT");
            // PostgreSQL's immediate shutdown also ends its backends; SIGKILL would orphan them.
            let signal = if self.kind == Kind::Postgres {
                "-QUIT"
            } else {
                "-KILL"
            };
            signal_process(&child, signal);
            for _ in 0..200 {
                if !matches!(child.try_wait(), Ok(None)) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(25));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "the private {} server's data and log are kept in {}",
                self.kind.name(),
                self.dir.display()
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A binary's path from its environment variable, or an error that says how to set it.
fn binary(variable: &str) -> anyhow::Result<String> {
    std::env::var(variable)
        .ok()
        .filter(|value| !value.trim().is_empty())
        .with_context(|| {
            format!(
                "{variable} is not set: the tests that restart a server run one of their own, \
                 and `scripts/infra.sh env` says where its binary is (run `scripts/infra.sh up` \
                 and `eval \"$(scripts/infra.sh env)\"`)"
            )
        })
}

fn signal_process(child: &Child, signal: &str) {
    let _ = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// A port the OS has free now (released at once; the server binds it next).
fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// `/proc/self` belongs to the process's effective user.
fn running_as_root() -> anyhow::Result<bool> {
    Ok(std::fs::metadata("/proc/self")
        .context("reading /proc/self")?
        .uid()
        == 0)
}

/// The `postgres` system user's uid and gid (`/etc/passwd`), which owns clusters when the
/// tests run as root.
fn postgres_user() -> anyhow::Result<(u32, u32)> {
    let passwd = std::fs::read_to_string(Path::new("/etc/passwd"))?;
    passwd
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.first() == Some(&"postgres") && fields.len() > 3)
                .then(|| Some((fields[2].parse().ok()?, fields[3].parse().ok()?)))
                .flatten()
        })
        .context(
            "running as root, PostgreSQL needs the `postgres` system user (the postgresql \
             package creates it)",
        )
}
