//! The service's tables. Each function takes an executor, so the caller decides the
//! transaction.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgExecutor};
use uuid::Uuid;

/// A notification to record.
#[derive(Clone, Debug)]
pub struct NewNotification {
    /// Id (also the message's `Message-ID`).
    pub id: Uuid,
    /// The event it answers.
    pub event_id: Uuid,
    /// That event's type.
    pub event_type: String,
    /// That event's envelope.
    pub event: serde_json::Value,
    /// Whose, if a user's.
    pub user_id: Option<Uuid>,
    /// `email`.
    pub channel: String,
    /// The address.
    pub recipient: String,
    /// Which template rendered it.
    pub template: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text part.
    pub body_text: String,
    /// HTML part.
    pub body_html: String,
    /// W3C trace context of the handling of the event: delivery continues that trace.
    pub traceparent: Option<String>,
}

/// Records a notification; `false` if the event already has one from this template.
pub async fn insert(
    notification: &NewNotification,
    executor: impl PgExecutor<'_>,
) -> sqlx::Result<bool> {
    let result = sqlx::query(
        "INSERT INTO notifications (id, event_id, event_type, event, user_id, channel, recipient, \
                                    template, subject, body_text, body_html, traceparent) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
         ON CONFLICT (event_id, template) DO NOTHING",
    )
    .bind(notification.id)
    .bind(notification.event_id)
    .bind(&notification.event_type)
    .bind(&notification.event)
    .bind(notification.user_id)
    .bind(&notification.channel)
    .bind(&notification.recipient)
    .bind(&notification.template)
    .bind(&notification.subject)
    .bind(&notification.body_text)
    .bind(&notification.body_html)
    .bind(&notification.traceparent)
    .execute(executor)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// A notification as stored.
#[derive(Clone, Debug, FromRow)]
pub struct NotificationRow {
    /// Id.
    pub id: Uuid,
    /// The event it answers.
    pub event_id: Uuid,
    /// That event's type.
    pub event_type: String,
    /// That event's envelope.
    pub event: serde_json::Value,
    /// Whose.
    pub user_id: Option<Uuid>,
    /// `email`.
    pub channel: String,
    /// The address.
    pub recipient: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text part.
    pub body_text: String,
    /// HTML part.
    pub body_html: String,
    /// `pending`, `sent` or `failed`.
    pub status: String,
    /// Delivery attempts so far.
    pub attempts: i32,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
    /// When it was delivered.
    pub sent_at: Option<DateTime<Utc>>,
    /// W3C trace context of the handling of the event it answers.
    pub traceparent: Option<String>,
}

const COLUMNS: &str = "id, event_id, event_type, event, user_id, channel, recipient, subject, \
     body_text, body_html, status, attempts, last_error, created_at, sent_at, traceparent";

/// Claims up to `limit` pending notifications that are due, leasing them for `lease`: two
/// workers (or replicas) never send the same one at once.
pub async fn claim_due(
    limit: i64,
    lease: Duration,
    executor: impl PgExecutor<'_>,
) -> sqlx::Result<Vec<NotificationRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE notifications SET lease_until = now() + make_interval(secs => $2) \
         WHERE id IN ( \
             SELECT id FROM notifications \
             WHERE status = 'pending' AND next_attempt_at <= now() \
               AND (lease_until IS NULL OR lease_until < now()) \
             ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED) \
         RETURNING {COLUMNS}"
    )))
    .bind(limit)
    .bind(lease.as_secs_f64())
    .fetch_all(executor)
    .await
}

/// The outcome of one delivery attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Delivered.
    Sent,
    /// Failed; will be retried.
    TransientFailure,
    /// Failed for good.
    PermanentFailure,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::TransientFailure => "transient_failure",
            Self::PermanentFailure => "permanent_failure",
        }
    }
}

/// Records an attempt and moves the notification on: sent, retried after `retry_after`, or
/// failed (`retry_after` is `None` then).
pub async fn record_attempt(
    notification_id: Uuid,
    attempt: i32,
    outcome: Outcome,
    error: Option<&str>,
    retry_after: Option<Duration>,
    executor: impl PgExecutor<'_>,
) -> sqlx::Result<()> {
    // One statement, so the attempt and the notification's state cannot disagree.
    sqlx::query(
        "WITH attempt AS ( \
             INSERT INTO delivery_attempts (id, notification_id, attempt, outcome, error) \
             VALUES ($1, $2, $3, $4, $5)) \
         UPDATE notifications SET \
             attempts = $3, \
             last_error = $5, \
             lease_until = NULL, \
             status = CASE WHEN $4 = 'sent' THEN 'sent' \
                           WHEN $6::float8 IS NULL THEN 'failed' ELSE 'pending' END, \
             sent_at = CASE WHEN $4 = 'sent' THEN now() END, \
             next_attempt_at = now() + make_interval(secs => COALESCE($6::float8, 0)) \
         WHERE id = $2",
    )
    .bind(Uuid::now_v7())
    .bind(notification_id)
    .bind(attempt)
    .bind(outcome.as_str())
    .bind(error)
    .bind(retry_after.map(|delay| delay.as_secs_f64()))
    .execute(executor)
    .await?;
    Ok(())
}

/// A page of a user's notifications, newest first (ids are UUID v7, so they sort by time).
pub async fn list_for_user(
    user_id: Uuid,
    before: Option<Uuid>,
    limit: i64,
    executor: impl PgExecutor<'_>,
) -> sqlx::Result<Vec<NotificationRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM notifications \
         WHERE user_id = $1 AND ($2::uuid IS NULL OR id < $2) \
         ORDER BY id DESC LIMIT $3"
    )))
    .bind(user_id)
    .bind(before)
    .bind(limit)
    .fetch_all(executor)
    .await
}

/// Makes a `failed` notification due again (a replay of its dead letter); `false` if it is not
/// failed (sent or pending meanwhile, or unknown). Conditional, so of two concurrent replays
/// only one changes it.
pub async fn retry_failed(id: Uuid, executor: impl PgExecutor<'_>) -> sqlx::Result<bool> {
    let result = sqlx::query(
        "UPDATE notifications SET status = 'pending', next_attempt_at = now(), lease_until = NULL \
         WHERE id = $1 AND status = 'failed'",
    )
    .bind(id)
    .execute(executor)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// A notification's status, if it exists.
pub async fn status(id: Uuid, executor: impl PgExecutor<'_>) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar("SELECT status FROM notifications WHERE id = $1")
        .bind(id)
        .fetch_optional(executor)
        .await
}
