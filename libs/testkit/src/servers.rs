//! Where each server's URL comes from: the environment first, containers as the fallback.

use std::fmt;

/// The infrastructure servers tests use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Server {
    /// PostgreSQL (`POSTGRES_URL`).
    Postgres,
    /// Redis (`REDIS_URL`).
    Redis,
    /// NATS with JetStream (`NATS_URL`).
    Nats,
    /// A MongoDB-wire server that supports transactions (`MONGODB_URL`).
    Mongo,
    /// An SMTP server that keeps what it receives (`SMTP_URL`).
    Smtp,
    /// The HTTP API of that SMTP server's mailbox (`MAIL_API_URL`).
    MailApi,
}

impl Server {
    /// The environment variable that holds the server's URL.
    pub fn env_var(self) -> &'static str {
        match self {
            Self::Postgres => "POSTGRES_URL",
            Self::Redis => "REDIS_URL",
            Self::Nats => "NATS_URL",
            Self::Mongo => "MONGODB_URL",
            Self::Smtp => "SMTP_URL",
            Self::MailApi => "MAIL_API_URL",
        }
    }
}

impl fmt::Display for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Postgres => "PostgreSQL",
            Self::Redis => "Redis",
            Self::Nats => "NATS",
            Self::Mongo => "MongoDB",
            Self::Smtp => "SMTP",
            Self::MailApi => "mail catcher",
        })
    }
}

/// The URL of a test server: from its environment variable, else (with the `containers`
/// feature) from a container started once for this process.
pub async fn url(server: Server) -> anyhow::Result<String> {
    if let Ok(url) = std::env::var(server.env_var())
        && !url.trim().is_empty()
    {
        return Ok(url);
    }
    fallback(server).await
}

#[cfg(not(feature = "containers"))]
async fn fallback(server: Server) -> anyhow::Result<String> {
    anyhow::bail!(
        "{} is not set. Run `make test`, or `scripts/infra.sh up` and \
         `eval \"$(scripts/infra.sh env)\"` before `cargo test`.",
        server.env_var()
    )
}

#[cfg(feature = "containers")]
async fn fallback(server: Server) -> anyhow::Result<String> {
    containers::url(server).await.map_err(|error| {
        anyhow::anyhow!(
            "{} is not set and no {server} container could be started ({error:#}). Run \
             `make test`, or `scripts/infra.sh up` and `eval \"$(scripts/infra.sh env)\"` \
             before `cargo test`.",
            server.env_var()
        )
    })
}

#[cfg(feature = "containers")]
mod containers {
    //! Containers marked for reuse: the first test process starts one per server, later test
    //! processes (nextest runs one per test) find and reuse it, and it is left running afterwards
    //! like the native servers of `scripts/infra.sh`. Remove them with
    //! `docker rm -f $(docker ps -aq --filter label=org.testcontainers.managed-by=testcontainers)`.

    use testcontainers::runners::AsyncRunner;
    use testcontainers::{ContainerAsync, Image, ImageExt, ReuseDirective};
    use testcontainers_modules::{mongo, nats, postgres, redis};

    use super::Server;

    pub(super) async fn url(server: Server) -> anyhow::Result<String> {
        Ok(match server {
            Server::Postgres => {
                let port = start(postgres::Postgres::default(), 5432).await?;
                format!("postgres://postgres:postgres@127.0.0.1:{port}/postgres")
            }
            Server::Redis => {
                let port = start(redis::Redis::default(), 6379).await?;
                format!("redis://127.0.0.1:{port}")
            }
            Server::Nats => {
                let cmd = nats::NatsServerCmd::default().with_jetstream();
                // The module's default tag predates what async-nats expects of JetStream.
                let image = nats::Nats::default().with_cmd(&cmd).with_tag("2.11");
                let port = start(image, 4222).await?;
                format!("nats://127.0.0.1:{port}")
            }
            Server::Mongo => {
                // Transactions need a replica set.
                let port = start(mongo::Mongo::repl_set(), 27017).await?;
                format!("mongodb://127.0.0.1:{port}/?directConnection=true")
            }
            Server::Smtp | Server::MailApi => anyhow::bail!(
                "the mail catcher (scripts/mailcatcher.py) has no container; scripts/infra.sh \
                 starts it"
            ),
        })
    }

    async fn start<I: Image>(
        image: impl Into<testcontainers::ContainerRequest<I>>,
        port: u16,
    ) -> anyhow::Result<u16> {
        let container: ContainerAsync<I> = image
            .into()
            .with_reuse(ReuseDirective::Always)
            .start()
            .await?;
        Ok(container.get_host_port_ipv4(port).await?)
    }
}
