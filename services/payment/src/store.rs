//! The service's tables. Each function takes an executor, so the caller decides the
//! transaction.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgExecutor};
use uuid::Uuid;

use crate::domain::PaymentStatus;

/// A row of `payment_methods`.
#[derive(Clone, Debug, FromRow)]
pub struct PaymentMethodRow {
    /// Id.
    pub id: Uuid,
    /// Owner.
    pub user_id: Uuid,
    /// The provider's token for the card.
    pub provider_token: String,
    /// Card network.
    pub brand: String,
    /// Last four digits.
    pub last4: String,
    /// Expiry month.
    pub exp_month: i16,
    /// Expiry year.
    pub exp_year: i16,
    /// When it was added.
    pub created_at: DateTime<Utc>,
}

const METHOD_COLUMNS: &str =
    "id, user_id, provider_token, brand, last4, exp_month, exp_year, created_at";

/// Stores a payment method.
pub async fn insert_method(
    method: &PaymentMethodRow,
    executor: impl PgExecutor<'_>,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO payment_methods \
             (id, user_id, provider_token, brand, last4, exp_month, exp_year, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(method.id)
    .bind(method.user_id)
    .bind(&method.provider_token)
    .bind(&method.brand)
    .bind(&method.last4)
    .bind(method.exp_month)
    .bind(method.exp_year)
    .bind(method.created_at)
    .execute(executor)
    .await?;
    Ok(())
}

/// The user's payment method with this id (not removed); another user's is `None`.
pub async fn find_method(
    user_id: Uuid,
    id: Uuid,
    executor: impl PgExecutor<'_>,
) -> sqlx::Result<Option<PaymentMethodRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {METHOD_COLUMNS} FROM payment_methods \
         WHERE id = $1 AND user_id = $2 AND deleted_at IS NULL"
    )))
    .bind(id)
    .bind(user_id)
    .fetch_optional(executor)
    .await
}

/// The user's payment methods, oldest first.
pub async fn list_methods(
    user_id: Uuid,
    executor: impl PgExecutor<'_>,
) -> sqlx::Result<Vec<PaymentMethodRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {METHOD_COLUMNS} FROM payment_methods \
         WHERE user_id = $1 AND deleted_at IS NULL ORDER BY created_at, id"
    )))
    .bind(user_id)
    .fetch_all(executor)
    .await
}

/// Removes the user's payment method; `false` if they have none with this id.
pub async fn remove_method(
    user_id: Uuid,
    id: Uuid,
    executor: impl PgExecutor<'_>,
) -> sqlx::Result<bool> {
    let result = sqlx::query(
        "UPDATE payment_methods SET deleted_at = now() \
         WHERE id = $1 AND user_id = $2 AND deleted_at IS NULL",
    )
    .bind(id)
    .bind(user_id)
    .execute(executor)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// The provider token of a payment method (removed or not: a payment in flight still needs it).
pub async fn method_token(id: Uuid, executor: impl PgExecutor<'_>) -> sqlx::Result<String> {
    sqlx::query_scalar("SELECT provider_token FROM payment_methods WHERE id = $1")
        .bind(id)
        .fetch_one(executor)
        .await
}

/// A row of `payments`.
#[derive(Clone, Debug, FromRow)]
pub struct PaymentRow {
    /// Id; also the idempotency key sent to the provider.
    pub id: Uuid,
    /// The order paid for (unique).
    pub order_id: Uuid,
    /// Who pays.
    pub user_id: Uuid,
    /// With what.
    pub payment_method_id: Uuid,
    /// How much, in minor units.
    pub amount_minor: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// Where the charge stands.
    pub status: PaymentStatus,
    /// The provider's reference of a captured charge.
    pub provider_reference: Option<String>,
    /// Why it failed, as a code.
    pub failure_reason: Option<String>,
    /// Why it failed, in words.
    pub failure_message: Option<String>,
    /// Refunded so far, in minor units.
    pub refunded_minor: i64,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

const PAYMENT_COLUMNS: &str = "id, order_id, user_id, payment_method_id, amount_minor, currency, \
     status, provider_reference, failure_reason, failure_message, refunded_minor, created_at, \
     updated_at";

fn seconds(duration: Duration) -> f64 {
    duration.as_secs_f64()
}

/// Inserts a pending payment leased to the caller; `false` if the order already has one (the
/// unique index on `order_id` decides, also between concurrent callers).
pub async fn insert_pending(
    payment: &PaymentRow,
    lease: Duration,
    executor: impl PgExecutor<'_>,
) -> sqlx::Result<bool> {
    let result = sqlx::query(
        "INSERT INTO payments (id, order_id, user_id, payment_method_id, amount_minor, currency, \
                               status, lease_until, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $9, now() + make_interval(secs => $7), $8, $8) \
         ON CONFLICT (order_id) DO NOTHING",
    )
    .bind(payment.id)
    .bind(payment.order_id)
    .bind(payment.user_id)
    .bind(payment.payment_method_id)
    .bind(payment.amount_minor)
    .bind(&payment.currency)
    .bind(seconds(lease))
    .bind(payment.created_at)
    .bind(PaymentStatus::Pending)
    .execute(executor)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// The payment of an order.
pub async fn find_by_order(
    order_id: Uuid,
    executor: impl PgExecutor<'_>,
) -> sqlx::Result<Option<PaymentRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {PAYMENT_COLUMNS} FROM payments WHERE order_id = $1"
    )))
    .bind(order_id)
    .fetch_optional(executor)
    .await
}

/// The payment of an order, locked for the rest of the transaction.
pub async fn lock_by_order(
    order_id: Uuid,
    executor: impl PgExecutor<'_>,
) -> sqlx::Result<Option<PaymentRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {PAYMENT_COLUMNS} FROM payments WHERE order_id = $1 FOR UPDATE"
    )))
    .bind(order_id)
    .fetch_optional(executor)
    .await
}

/// Takes over a pending payment whose lease has lapsed (its worker died or gave up); `false`
/// if it is settled or someone else holds it.
pub async fn take_over(
    id: Uuid,
    lease: Duration,
    executor: impl PgExecutor<'_>,
) -> sqlx::Result<bool> {
    let result = sqlx::query(
        "UPDATE payments SET lease_until = now() + make_interval(secs => $2), updated_at = now() \
         WHERE id = $1 AND status = $3 AND (lease_until IS NULL OR lease_until < now())",
    )
    .bind(id)
    .bind(seconds(lease))
    .bind(PaymentStatus::Pending)
    .execute(executor)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Lets go of a pending payment, so that a retry can take it over at once.
pub async fn release(id: Uuid, executor: impl PgExecutor<'_>) -> sqlx::Result<()> {
    sqlx::query("UPDATE payments SET lease_until = NULL WHERE id = $1 AND status = $2")
        .bind(id)
        .bind(PaymentStatus::Pending)
        .execute(executor)
        .await?;
    Ok(())
}

/// Settles a pending payment as `status`; `None` if it was no longer pending.
pub async fn settle(
    id: Uuid,
    status: PaymentStatus,
    provider_reference: Option<&str>,
    failure: Option<(&str, &str)>,
    executor: impl PgExecutor<'_>,
) -> sqlx::Result<Option<PaymentRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE payments SET status = $2, provider_reference = $3, failure_reason = $4, \
             failure_message = $5, lease_until = NULL, updated_at = now() \
         WHERE id = $1 AND status = $6 RETURNING {PAYMENT_COLUMNS}"
    )))
    .bind(id)
    .bind(status)
    .bind(provider_reference)
    .bind(failure.map(|(reason, _)| reason))
    .bind(failure.map(|(_, message)| message))
    .bind(PaymentStatus::Pending)
    .fetch_optional(executor)
    .await
}

/// Adds a refund to a payment's refunded total; returns the updated row.
pub async fn add_refunded(
    id: Uuid,
    amount_minor: i64,
    executor: impl PgExecutor<'_>,
) -> sqlx::Result<PaymentRow> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE payments SET refunded_minor = refunded_minor + $2, updated_at = now() \
         WHERE id = $1 RETURNING {PAYMENT_COLUMNS}"
    )))
    .bind(id)
    .bind(amount_minor)
    .fetch_one(executor)
    .await
}

/// The user's payment with this id; another user's is `None`.
pub async fn find_payment(
    user_id: Uuid,
    id: Uuid,
    executor: impl PgExecutor<'_>,
) -> sqlx::Result<Option<PaymentRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = $1 AND user_id = $2"
    )))
    .bind(id)
    .bind(user_id)
    .fetch_optional(executor)
    .await
}

/// A page of the user's payments, newest first: up to `limit` older than `before` (an id;
/// ids are UUID v7, so they sort by time).
pub async fn list_payments(
    user_id: Uuid,
    before: Option<Uuid>,
    limit: i64,
    executor: impl PgExecutor<'_>,
) -> sqlx::Result<Vec<PaymentRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {PAYMENT_COLUMNS} FROM payments \
         WHERE user_id = $1 AND ($2::uuid IS NULL OR id < $2) \
         ORDER BY id DESC LIMIT $3"
    )))
    .bind(user_id)
    .bind(before)
    .bind(limit)
    .fetch_all(executor)
    .await
}

/// A row of `refunds`.
#[derive(Clone, Debug, FromRow)]
pub struct RefundRow {
    /// Id.
    pub id: Uuid,
    /// The payment refunded.
    pub payment_id: Uuid,
    /// The caller's key for this refund.
    pub idempotency_key: String,
    /// How much.
    pub amount_minor: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// The provider's reference.
    pub provider_reference: String,
}

/// The refund of a payment with this key.
pub async fn find_refund(
    payment_id: Uuid,
    idempotency_key: &str,
    executor: impl PgExecutor<'_>,
) -> sqlx::Result<Option<RefundRow>> {
    sqlx::query_as(
        "SELECT id, payment_id, idempotency_key, amount_minor, currency, provider_reference \
         FROM refunds WHERE payment_id = $1 AND idempotency_key = $2",
    )
    .bind(payment_id)
    .bind(idempotency_key)
    .fetch_optional(executor)
    .await
}

/// Stores a refund.
pub async fn insert_refund(refund: &RefundRow, executor: impl PgExecutor<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO refunds (id, payment_id, idempotency_key, amount_minor, currency, provider_reference) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(refund.id)
    .bind(refund.payment_id)
    .bind(&refund.idempotency_key)
    .bind(refund.amount_minor)
    .bind(&refund.currency)
    .bind(&refund.provider_reference)
    .execute(executor)
    .await?;
    Ok(())
}
