//! The service's tables. Each function takes an executor, so the caller decides the
//! transaction.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgConnection, PgExecutor};
use uuid::Uuid;

use crate::domain::{Compensation, OrderStatus};

/// A row of `orders`.
#[derive(Clone, Debug, FromRow)]
pub struct OrderRow {
    /// Order id.
    pub id: Uuid,
    /// Buyer.
    pub user_id: Uuid,
    /// The key the order was placed with.
    pub idempotency_key: String,
    /// SHA-256 of the request placed with that key.
    pub request_hash: Vec<u8>,
    /// Saga status.
    pub status: OrderStatus,
    /// The card to charge.
    pub payment_method_id: Uuid,
    /// Total in minor units.
    pub total_minor: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// The captured payment.
    pub payment_id: Option<Uuid>,
    /// Refunded so far.
    pub refunded_minor: i64,
    /// Why it was cancelled (a `CancellationReason` code).
    pub cancel_reason: Option<String>,
    /// Why, in words.
    pub cancel_detail: Option<String>,
    /// What it still owes while CANCELLING (`resolve_payment`, `refund_pending`,
    /// `release_pending`).
    #[sqlx(flatten)]
    pub owed: Compensation,
    /// Failed attempts of the current step.
    pub step_attempts: i32,
    /// The current step's last error.
    pub last_error: Option<String>,
    /// Placed at.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// W3C trace context of the request that placed (or cancelled) the order: the saga's steps
    /// continue that trace, so a checkout is one trace from the first request to the email.
    pub traceparent: Option<String>,
}

const COLUMNS: &str = "id, user_id, idempotency_key, request_hash, status, payment_method_id, \
     total_minor, currency, payment_id, refunded_minor, cancel_reason, cancel_detail, \
     resolve_payment, refund_pending, release_pending, step_attempts, last_error, created_at, \
     updated_at, traceparent";

/// A row of `order_items`.
#[derive(Clone, Debug, FromRow, serde::Deserialize)]
pub struct ItemRow {
    /// Position in the order.
    pub line: i32,
    /// SKU.
    pub sku: String,
    /// Product name at order time.
    pub name: String,
    /// Units.
    pub quantity: i32,
    /// Unit price at order time.
    pub unit_price_minor: i64,
    /// ISO 4217 code.
    pub currency: String,
}

/// A row of `order_status_history`.
#[derive(Clone, Debug, FromRow, serde::Deserialize)]
pub struct HistoryRow {
    /// The status before (none for the first).
    pub from_status: Option<OrderStatus>,
    /// The status after.
    pub to_status: OrderStatus,
    /// Why.
    pub reason: Option<String>,
    /// When.
    pub at: DateTime<Utc>,
}

/// Inserts a new order with its items and first history entry (at the order's `created_at`),
/// in one statement; `false` if the user already placed an order with this idempotency key.
pub async fn insert_order(
    order: &OrderRow,
    items: &[ItemRow],
    executor: impl PgExecutor<'_>,
) -> sqlx::Result<bool> {
    let (lines, skus, names, quantities, prices, currencies) = items.iter().fold(
        (vec![], vec![], vec![], vec![], vec![], vec![]),
        |mut columns, item| {
            columns.0.push(item.line);
            columns.1.push(item.sku.as_str());
            columns.2.push(item.name.as_str());
            columns.3.push(item.quantity);
            columns.4.push(item.unit_price_minor);
            columns.5.push(item.currency.as_str());
            columns
        },
    );
    let inserted: i64 = sqlx::query_scalar(
        "WITH placed AS ( \
             INSERT INTO orders (id, user_id, idempotency_key, request_hash, status, payment_method_id, \
                                 total_minor, currency, created_at, updated_at, traceparent) \
             VALUES ($1, $2, $3, $4, $9, $5, $6, $7, $8, $8, $16) \
             ON CONFLICT (user_id, idempotency_key) DO NOTHING \
             RETURNING id), \
         lines AS ( \
             INSERT INTO order_items (order_id, line, sku, name, quantity, unit_price_minor, currency) \
             SELECT placed.id, item.* FROM placed, \
                 UNNEST($10::integer[], $11::text[], $12::text[], $13::integer[], $14::bigint[], $15::text[]) \
                 AS item(line, sku, name, quantity, unit_price_minor, currency)), \
         history AS ( \
             INSERT INTO order_status_history (order_id, from_status, to_status, reason, at) \
             SELECT id, NULL, $9, 'placed', $8 FROM placed) \
         SELECT count(*) FROM placed",
    )
    .bind(order.id)
    .bind(order.user_id)
    .bind(&order.idempotency_key)
    .bind(&order.request_hash)
    .bind(order.payment_method_id)
    .bind(order.total_minor)
    .bind(&order.currency)
    .bind(order.created_at)
    .bind(order.status)
    .bind(lines)
    .bind(skus)
    .bind(names)
    .bind(quantities)
    .bind(prices)
    .bind(currencies)
    .bind(&order.traceparent)
    .fetch_one(executor)
    .await?;
    Ok(inserted == 1)
}

/// Appends a transition to an order's history.
pub async fn record_history(
    order_id: Uuid,
    from: Option<OrderStatus>,
    to: OrderStatus,
    reason: Option<&str>,
    executor: impl PgExecutor<'_>,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO order_status_history (order_id, from_status, to_status, reason) VALUES ($1, $2, $3, $4)",
    )
    .bind(order_id)
    .bind(from)
    .bind(to)
    .bind(reason)
    .execute(executor)
    .await?;
    Ok(())
}

/// The user's order placed with this key.
pub async fn find_by_key(
    user_id: Uuid,
    key: &str,
    executor: impl PgExecutor<'_>,
) -> sqlx::Result<Option<OrderRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM orders WHERE user_id = $1 AND idempotency_key = $2"
    )))
    .bind(user_id)
    .bind(key)
    .fetch_optional(executor)
    .await
}

/// An order by id.
pub async fn find(id: Uuid, executor: impl PgExecutor<'_>) -> sqlx::Result<Option<OrderRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM orders WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(executor)
    .await
}

/// An order by id, locked for the rest of the transaction.
pub async fn lock(id: Uuid, executor: impl PgExecutor<'_>) -> sqlx::Result<Option<OrderRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM orders WHERE id = $1 FOR UPDATE"
    )))
    .bind(id)
    .fetch_optional(executor)
    .await
}

/// A page of the user's orders, newest first (ids are UUID v7, so they sort by time).
pub async fn list(
    user_id: Uuid,
    before: Option<Uuid>,
    limit: i64,
    executor: impl PgExecutor<'_>,
) -> sqlx::Result<Vec<OrderRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM orders WHERE user_id = $1 AND ($2::uuid IS NULL OR id < $2) \
         ORDER BY id DESC LIMIT $3"
    )))
    .bind(user_id)
    .bind(before)
    .bind(limit)
    .fetch_all(executor)
    .await
}

/// An order with its items (in line order) and its history (oldest first).
#[derive(FromRow)]
pub struct WholeOrder {
    /// The order.
    #[sqlx(flatten)]
    pub row: OrderRow,
    /// Its items.
    pub items: sqlx::types::Json<Vec<ItemRow>>,
    /// Its history.
    pub history: sqlx::types::Json<Vec<HistoryRow>>,
}

/// The order with this id, its items and its history, in one query.
pub async fn find_whole(
    id: Uuid,
    executor: impl PgExecutor<'_>,
) -> sqlx::Result<Option<WholeOrder>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS}, \
             COALESCE((SELECT json_agg(json_build_object('line', line, 'sku', sku, 'name', name, \
                           'quantity', quantity, 'unit_price_minor', unit_price_minor, \
                           'currency', currency) ORDER BY line) \
                       FROM order_items WHERE order_id = orders.id), '[]') AS items, \
             COALESCE((SELECT json_agg(json_build_object('from_status', from_status, \
                           'to_status', to_status, 'reason', reason, 'at', at) ORDER BY id) \
                       FROM order_status_history WHERE order_id = orders.id), '[]') AS history \
         FROM orders WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(executor)
    .await
}

/// An order's items, in order.
pub async fn items(order_id: Uuid, executor: impl PgExecutor<'_>) -> sqlx::Result<Vec<ItemRow>> {
    sqlx::query_as(
        "SELECT line, sku, name, quantity, unit_price_minor, currency FROM order_items \
         WHERE order_id = $1 ORDER BY line",
    )
    .bind(order_id)
    .fetch_all(executor)
    .await
}

/// An item with the order it belongs to, to load the items of many orders at once.
#[derive(FromRow)]
struct ItemOfOrder {
    order_id: Uuid,
    #[sqlx(flatten)]
    item: ItemRow,
}

/// A history entry with its order, to load the history of many orders at once.
#[derive(FromRow)]
struct HistoryOfOrder {
    order_id: Uuid,
    #[sqlx(flatten)]
    entry: HistoryRow,
}

/// The items of several orders in one query, by order, each order's in line order. An order
/// without items has no entry.
pub async fn items_by_order(
    order_ids: &[Uuid],
    executor: impl PgExecutor<'_>,
) -> sqlx::Result<HashMap<Uuid, Vec<ItemRow>>> {
    let rows: Vec<ItemOfOrder> = sqlx::query_as(
        "SELECT order_id, line, sku, name, quantity, unit_price_minor, currency \
         FROM order_items WHERE order_id = ANY($1) ORDER BY order_id, line",
    )
    .bind(order_ids)
    .fetch_all(executor)
    .await?;
    let mut by_order: HashMap<Uuid, Vec<ItemRow>> = HashMap::with_capacity(order_ids.len());
    for row in rows {
        by_order.entry(row.order_id).or_default().push(row.item);
    }
    Ok(by_order)
}

/// The history of several orders in one query, by order, each oldest first.
pub async fn history_by_order(
    order_ids: &[Uuid],
    executor: impl PgExecutor<'_>,
) -> sqlx::Result<HashMap<Uuid, Vec<HistoryRow>>> {
    let rows: Vec<HistoryOfOrder> = sqlx::query_as(
        "SELECT order_id, from_status, to_status, reason, at FROM order_status_history \
         WHERE order_id = ANY($1) ORDER BY order_id, id",
    )
    .bind(order_ids)
    .fetch_all(executor)
    .await?;
    let mut by_order: HashMap<Uuid, Vec<HistoryRow>> = HashMap::with_capacity(order_ids.len());
    for row in rows {
        by_order.entry(row.order_id).or_default().push(row.entry);
    }
    Ok(by_order)
}

/// Claims up to `limit` sagas that are due, leasing them to `owner`.
pub async fn claim_due(
    owner: Uuid,
    limit: i64,
    lease: Duration,
    executor: impl PgExecutor<'_>,
) -> sqlx::Result<Vec<OrderRow>> {
    // The statuses are spelt out, not bound, so that the planner can use `orders_saga_due`,
    // the partial index with this very predicate.
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE orders SET lease_owner = $1, lease_until = now() + make_interval(secs => $3) \
         WHERE id IN ( \
             SELECT id FROM orders \
             WHERE status NOT IN ('CONFIRMED', 'CANCELLED') AND next_attempt_at <= now() \
               AND (lease_until IS NULL OR lease_until < now()) \
             ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED) \
         RETURNING {COLUMNS}"
    )))
    .bind(owner)
    .bind(limit)
    .bind(lease.as_secs_f64())
    .fetch_all(executor)
    .await
}

/// A saga's next state, written only if `owner` still holds the lease on the order in `from`.
#[derive(Clone, Debug)]
pub struct Transition<'a> {
    /// The status the step started from.
    pub from: OrderStatus,
    /// The status it moves to.
    pub to: OrderStatus,
    /// Why, for the history.
    pub reason: Option<&'a str>,
    /// The captured payment, once known.
    pub payment_id: Option<Uuid>,
    /// Cancellation code and words, when cancelling.
    pub cancel: Option<(&'a str, &'a str)>,
    /// Compensation still to do.
    pub owed: Compensation,
    /// Refunded so far.
    pub refunded_minor: i64,
}

/// Applies a transition in one statement: the order's new state, its history entry, a fresh
/// step. With `keep_lease`, `owner` keeps the order for that long (to take its next step at
/// once); without, the lease is let go. Returns the order as it now is, or `None` if the lease
/// was lost (another worker has the order now) and nothing was written.
pub async fn transition(
    order_id: Uuid,
    owner: Uuid,
    change: &Transition<'_>,
    keep_lease: Option<Duration>,
    executor: impl PgExecutor<'_>,
) -> sqlx::Result<Option<OrderRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "WITH moved AS ( \
             UPDATE orders SET status = $3, payment_id = COALESCE($4, payment_id), \
                 cancel_reason = COALESCE($5, cancel_reason), cancel_detail = COALESCE($6, cancel_detail), \
                 resolve_payment = $7, refund_pending = $8, release_pending = $9, refunded_minor = $10, \
                 step_attempts = 0, last_error = NULL, next_attempt_at = now(), \
                 lease_owner = CASE WHEN $12::float8 IS NULL THEN NULL ELSE lease_owner END, \
                 lease_until = now() + make_interval(secs => $12::float8), updated_at = now() \
             WHERE id = $1 AND lease_owner = $2 AND status = $11 \
             RETURNING {COLUMNS}), \
         history AS ( \
             INSERT INTO order_status_history (order_id, from_status, to_status, reason) \
             SELECT id, $11, $3, $13 FROM moved WHERE $11 <> $3) \
         SELECT {COLUMNS} FROM moved"
    )))
    .bind(order_id)
    .bind(owner)
    .bind(change.to)
    .bind(change.payment_id)
    .bind(change.cancel.map(|(code, _)| code))
    .bind(change.cancel.map(|(_, detail)| detail))
    .bind(change.owed.resolve_payment)
    .bind(change.owed.refund)
    .bind(change.owed.release_stock)
    .bind(change.refunded_minor)
    .bind(change.from)
    .bind(keep_lease.map(|lease| lease.as_secs_f64()))
    .bind(change.reason)
    .fetch_optional(executor)
    .await
}

/// Lets go of an order whose lease `owner` kept, due again at once (a stopping worker).
pub async fn release_lease(
    order_id: Uuid,
    owner: Uuid,
    executor: impl PgExecutor<'_>,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE orders SET lease_owner = NULL, lease_until = NULL, next_attempt_at = now() \
         WHERE id = $1 AND lease_owner = $2",
    )
    .bind(order_id)
    .bind(owner)
    .execute(executor)
    .await?;
    Ok(())
}

/// Starts cancelling an order the caller holds locked (`FOR UPDATE`) in `from`: records why,
/// what is owed and the history entry, and makes the saga due at once. `false` if the order
/// is no longer in `from`.
pub async fn start_cancelling(
    order_id: Uuid,
    from: OrderStatus,
    (code, detail): (&str, &str),
    owed: Compensation,
    traceparent: Option<&str>,
    tx: &mut PgConnection,
) -> sqlx::Result<bool> {
    let to = owed.status();
    let updated = sqlx::query(
        "UPDATE orders SET status = $2, cancel_reason = $3, cancel_detail = $4, \
             resolve_payment = $5, refund_pending = $6, release_pending = $7, \
             step_attempts = 0, last_error = NULL, next_attempt_at = now(), updated_at = now(), \
             traceparent = COALESCE($9, traceparent) \
         WHERE id = $1 AND status = $8",
    )
    .bind(order_id)
    .bind(to)
    .bind(code)
    .bind(detail)
    .bind(owed.resolve_payment)
    .bind(owed.refund)
    .bind(owed.release_stock)
    .bind(from)
    .bind(traceparent)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if updated == 0 {
        return Ok(false);
    }
    record_history(order_id, Some(from), to, Some(code), &mut *tx).await?;
    Ok(true)
}

/// Records a failed step to be retried after `delay`, releasing the lease.
pub async fn retry_later(
    order_id: Uuid,
    owner: Uuid,
    error: &str,
    delay: Duration,
    executor: impl PgExecutor<'_>,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE orders SET step_attempts = step_attempts + 1, last_error = $3, \
             next_attempt_at = now() + make_interval(secs => $4), \
             lease_owner = NULL, lease_until = NULL, updated_at = now() \
         WHERE id = $1 AND lease_owner = $2",
    )
    .bind(order_id)
    .bind(owner)
    .bind(error)
    .bind(delay.as_secs_f64())
    .execute(executor)
    .await?;
    Ok(())
}

/// Lets go of an order without counting an attempt (a breaker refused the call), to be picked
/// up again after `delay`.
pub async fn postpone(
    order_id: Uuid,
    owner: Uuid,
    delay: Duration,
    executor: impl PgExecutor<'_>,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE orders SET next_attempt_at = now() + make_interval(secs => $3), \
             lease_owner = NULL, lease_until = NULL \
         WHERE id = $1 AND lease_owner = $2",
    )
    .bind(order_id)
    .bind(owner)
    .bind(delay.as_secs_f64())
    .execute(executor)
    .await?;
    Ok(())
}

/// Orders not finished yet, by status, with the age in seconds of the oldest (by when it was
/// placed). Statuses with none are left out.
pub async fn in_progress(
    executor: impl PgExecutor<'_>,
) -> sqlx::Result<Vec<(OrderStatus, i64, f64)>> {
    // The predicate is the saga queue's partial index's: only unfinished orders are read.
    sqlx::query_as(
        "SELECT status, count(*), EXTRACT(EPOCH FROM now() - min(created_at))::float8 \
         FROM orders WHERE status NOT IN ('CONFIRMED', 'CANCELLED') GROUP BY status",
    )
    .fetch_all(executor)
    .await
}
