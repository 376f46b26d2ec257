//! The outbox in PostgreSQL: the `event_outbox` table, written in the caller's transaction.

use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use serde::Serialize;
use sqlx::postgres::PgListener;
use sqlx::{PgExecutor, PgPool};
use tokio::sync::Mutex;
use uuid::Uuid;

use super::{OutboxStore, PendingEvent};
use crate::envelope::Envelope;
use crate::streams::Namespace;

/// The channel the outbox notifies on commit, so relays wake without polling.
const CHANNEL: &str = "platform_event_outbox";

/// Creates (or upgrades) the outbox and inbox tables. Their migrations are tracked in their
/// own table, `_platform_events_migrations`, so they sit beside a service's own migrations.
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    let mut migrator = sqlx::migrate!("./migrations/postgres");
    migrator.dangerous_set_table_name("_platform_events_migrations");
    migrator
        .run(pool)
        .await
        .context("running the events library's migrations (outbox, inbox)")
}

/// A service's outbox in PostgreSQL: [`PgOutbox::enqueue`] for writers, [`OutboxStore`] for
/// the relay.
pub struct PgOutbox {
    pool: PgPool,
    namespace: Namespace,
    listener: Mutex<Option<PgListener>>,
}

impl PgOutbox {
    /// The outbox in `pool`'s database, publishing into `namespace`.
    pub fn new(pool: PgPool, namespace: Namespace) -> Self {
        Self {
            pool,
            namespace,
            listener: Mutex::new(None),
        }
    }

    /// Writes `event` to the outbox through `executor`: pass the transaction that makes the
    /// state change the event describes, so both commit or neither does.
    pub async fn enqueue<T: Serialize>(
        &self,
        executor: impl PgExecutor<'_>,
        event: &Envelope<T>,
    ) -> anyhow::Result<()> {
        enqueue(executor, &self.namespace, event).await
    }
}

/// Writes `event` to the outbox through `executor` (see [`PgOutbox::enqueue`]).
pub async fn enqueue<T: Serialize>(
    executor: impl PgExecutor<'_>,
    namespace: &Namespace,
    event: &Envelope<T>,
) -> anyhow::Result<()> {
    let payload = serde_json::to_value(event).context("serialising the event")?;
    // One statement: the insert, and a notification PostgreSQL delivers only if the transaction
    // commits.
    sqlx::query(
        "WITH inserted AS ( \
             INSERT INTO event_outbox (id, subject, payload, traceparent) \
             VALUES ($1, $2, $3, $4) RETURNING id) \
         SELECT pg_notify($5, '') FROM inserted",
    )
    .bind(event.id)
    .bind(namespace.subject(&event.event_type))
    .bind(payload)
    .bind(event.traceparent.as_deref())
    .bind(CHANNEL)
    .execute(executor)
    .await
    .with_context(|| {
        format!(
            "writing event {} ({}) to the outbox",
            event.id, event.event_type
        )
    })?;
    Ok(())
}

fn seconds(duration: Duration) -> f64 {
    duration.as_secs_f64()
}

impl OutboxStore for PgOutbox {
    async fn claim(&self, limit: usize, lease: Duration) -> anyhow::Result<Vec<PendingEvent>> {
        // SKIP LOCKED keeps concurrent relays off each other's rows; the lease keeps them off
        // rows another relay is still publishing after this statement commits.
        let rows: Vec<(Uuid, String, serde_json::Value, Option<String>)> = sqlx::query_as(
            "UPDATE event_outbox \
             SET lease_until = now() + make_interval(secs => $2), attempts = attempts + 1 \
             WHERE id IN ( \
                 SELECT id FROM event_outbox \
                 WHERE published_at IS NULL AND (lease_until IS NULL OR lease_until < now()) \
                 ORDER BY id LIMIT $1 \
                 FOR UPDATE SKIP LOCKED) \
             RETURNING id, subject, payload, traceparent",
        )
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .bind(seconds(lease))
        .fetch_all(&self.pool)
        .await
        .context("claiming outbox events")?;
        let mut events = rows
            .into_iter()
            .map(|(id, subject, payload, traceparent)| {
                Ok(PendingEvent {
                    id,
                    subject,
                    payload: Bytes::from(serde_json::to_vec(&payload)?),
                    traceparent,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        events.sort_by_key(|event| event.id);
        Ok(events)
    }

    async fn mark_published(&self, ids: &[Uuid]) -> anyhow::Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "UPDATE event_outbox SET published_at = now(), lease_until = NULL, last_error = NULL \
             WHERE id = ANY($1)",
        )
        .bind(ids)
        .execute(&self.pool)
        .await
        .context("marking outbox events published")?;
        Ok(())
    }

    async fn release(
        &self,
        ids: &[Uuid],
        error: &str,
        retry_after: Duration,
    ) -> anyhow::Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "UPDATE event_outbox \
             SET lease_until = now() + make_interval(secs => $2), last_error = $3 \
             WHERE id = ANY($1) AND published_at IS NULL",
        )
        .bind(ids)
        .bind(seconds(retry_after))
        .bind(error)
        .execute(&self.pool)
        .await
        .context("recording failed outbox publishes")?;
        Ok(())
    }

    async fn pending(&self) -> anyhow::Result<u64> {
        let pending: i64 =
            sqlx::query_scalar("SELECT count(*) FROM event_outbox WHERE published_at IS NULL")
                .fetch_one(&self.pool)
                .await
                .context("counting pending outbox events")?;
        Ok(pending.unsigned_abs())
    }

    async fn oldest_pending(&self) -> anyhow::Result<Option<Uuid>> {
        sqlx::query_scalar(
            "SELECT id FROM event_outbox WHERE published_at IS NULL ORDER BY id LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await
        .context("reading the oldest pending outbox event")
    }

    async fn purge_published(&self, older_than: Duration) -> anyhow::Result<u64> {
        let result = sqlx::query(
            "DELETE FROM event_outbox WHERE id IN ( \
                 SELECT id FROM event_outbox \
                 WHERE published_at < now() - make_interval(secs => $1) LIMIT 10000)",
        )
        .bind(seconds(older_than))
        .execute(&self.pool)
        .await
        .context("purging published outbox events")?;
        Ok(result.rows_affected())
    }

    async fn wait_for_events(&self, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut slot = self.listener.lock().await;
        if slot.is_none() {
            match listen(&self.pool).await {
                Ok(listener) => *slot = Some(listener),
                Err(error) => {
                    tracing::debug!(
                        error = format!("{error:#}"),
                        "outbox notifications unavailable; polling"
                    );
                }
            }
        }
        let Some(listener) = slot.as_mut() else {
            tokio::time::sleep_until(deadline).await;
            return;
        };
        match tokio::time::timeout_at(deadline, listener.recv()).await {
            Ok(Ok(_)) | Err(_) => {}
            Ok(Err(error)) => {
                tracing::debug!(error = %error, "outbox notification listener failed; reconnecting later");
                *slot = None;
                tokio::time::sleep_until(deadline).await;
            }
        }
    }
}

async fn listen(pool: &PgPool) -> anyhow::Result<PgListener> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}
