//! MongoDB: the `ping` command.

use mongodb::bson::doc;
use mongodb::{Client, Database};

use crate::check::{CheckFuture, HealthCheck};

/// Runs `{ping: 1}`; named `mongodb` unless renamed.
///
/// The driver first selects a server, so while the server is unreachable the check fails after
/// the client's server selection timeout or the check's own timeout, whichever is shorter.
#[derive(Clone, Debug)]
pub struct MongoCheck {
    database: Database,
    name: String,
}

impl MongoCheck {
    /// Pings through the service's database handle.
    pub fn new(database: Database) -> Self {
        Self {
            database,
            name: "mongodb".to_owned(),
        }
    }

    /// Pings through a client, on the `admin` database.
    pub fn for_client(client: &Client) -> Self {
        Self::new(client.database("admin"))
    }

    /// Reports under `name` instead.
    #[must_use]
    pub fn named(self, name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..self
        }
    }
}

impl HealthCheck for MongoCheck {
    fn name(&self) -> &str {
        &self.name
    }

    fn check(&self) -> CheckFuture<'_> {
        Box::pin(async move {
            self.database
                .run_command(doc! { "ping": 1 })
                .await
                .map(|_| ())
                // The kind alone: the whole error adds empty labels and sources to every line.
                .map_err(|error| error.kind.to_string())
        })
    }
}
