//! The inbox in PostgreSQL: the `event_inbox` table (created by [`crate::outbox::postgres::migrate`]).

use std::time::Duration;

use anyhow::Context as _;
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use super::Inbox;

/// An inbox in a service's PostgreSQL database; handlers get a [`Transaction`].
#[derive(Clone, Debug)]
pub struct PgInbox {
    pool: PgPool,
}

impl PgInbox {
    /// The inbox in `pool`'s database.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

impl Inbox for PgInbox {
    type Tx = Transaction<'static, Postgres>;

    async fn begin(&self) -> anyhow::Result<Self::Tx> {
        self.pool
            .begin()
            .await
            .context("starting the inbox transaction")
    }

    async fn record(
        &self,
        tx: &mut Self::Tx,
        consumer: &str,
        event_id: Uuid,
    ) -> anyhow::Result<bool> {
        // A concurrent delivery of the same event waits here on the primary key until the
        // first commits, then inserts nothing.
        let inserted = sqlx::query(
            "INSERT INTO event_inbox (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(consumer)
        .bind(event_id)
        .execute(&mut **tx)
        .await
        .context("recording the event in the inbox")?
        .rows_affected();
        Ok(inserted == 1)
    }

    async fn commit(&self, tx: Self::Tx) -> anyhow::Result<()> {
        tx.commit()
            .await
            .context("committing the inbox transaction")
    }

    async fn abort(&self, tx: Self::Tx) {
        if let Err(error) = tx.rollback().await {
            // The connection is closed rather than returned to the pool: nothing is held.
            tracing::debug!(%error, "rolling back the inbox transaction failed");
        }
    }

    async fn purge(&self, consumer: &str, older_than: Duration) -> anyhow::Result<u64> {
        let result = sqlx::query(
            "DELETE FROM event_inbox \
             WHERE consumer = $1 AND processed_at < now() - make_interval(secs => $2)",
        )
        .bind(consumer)
        .bind(older_than.as_secs_f64())
        .execute(&self.pool)
        .await
        .context("purging the inbox")?;
        Ok(result.rows_affected())
    }
}
