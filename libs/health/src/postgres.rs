//! PostgreSQL: `SELECT 1` through the service's pool.

use sqlx::PgPool;

use crate::check::{CheckFuture, HealthCheck};

/// Runs `SELECT 1` on a connection from the pool; named `postgres` unless renamed.
///
/// It exercises what the service itself uses: acquiring a connection (opening one if the pool
/// has none) and a round trip on it.
#[derive(Clone, Debug)]
pub struct PostgresCheck {
    pool: PgPool,
    name: String,
}

impl PostgresCheck {
    /// Checks through `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            name: "postgres".to_owned(),
        }
    }

    /// Reports under `name` instead, e.g. for a second database.
    #[must_use]
    pub fn named(self, name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..self
        }
    }
}

impl HealthCheck for PostgresCheck {
    fn name(&self) -> &str {
        &self.name
    }

    fn check(&self) -> CheckFuture<'_> {
        Box::pin(async move {
            sqlx::query("SELECT 1")
                .execute(&self.pool)
                .await
                .map(|_| ())
                .map_err(|error| error.to_string())
        })
    }
}
