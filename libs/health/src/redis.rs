//! Redis: `PING` through the service's connection manager.

use redis::aio::ConnectionManager;

use crate::check::{CheckFuture, HealthCheck};

/// Sends `PING` and expects `PONG`; named `redis` unless renamed.
///
/// A [`ConnectionManager`] reconnects by itself after a connection is lost, so the check recovers
/// when Redis does.
#[derive(Clone, Debug)]
pub struct RedisCheck {
    connection: ConnectionManager,
    name: String,
}

impl RedisCheck {
    /// Checks through `connection` (a clone of the service's: they share one connection).
    pub fn new(connection: ConnectionManager) -> Self {
        Self {
            connection,
            name: "redis".to_owned(),
        }
    }

    /// Reports under `name` instead, e.g. for a second Redis.
    #[must_use]
    pub fn named(self, name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..self
        }
    }
}

impl HealthCheck for RedisCheck {
    fn name(&self) -> &str {
        &self.name
    }

    fn check(&self) -> CheckFuture<'_> {
        let mut connection = self.connection.clone();
        Box::pin(async move {
            let reply: String = redis::cmd("PING")
                .query_async(&mut connection)
                .await
                .map_err(|error| error.to_string())?;
            if reply == "PONG" {
                Ok(())
            } else {
                Err(format!("PING answered `{reply}` instead of PONG"))
            }
        })
    }
}
