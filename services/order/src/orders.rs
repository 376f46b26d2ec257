//! Placing, reading and cancelling orders. Placing records the order as PENDING with its
//! `orders.created` event in one transaction; the saga (`saga.rs`) takes it from there.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chrono::{SubsecRound as _, Utc};
use platform_contracts::{self as contracts, OrderCreated, OrderLine};
use platform_events::{Envelope, Namespace};
use platform_http::FieldError;
use sqlx::PgPool;
use tokio::sync::Notify;
use tokio::time::Instant;
use tonic::Code;
use uuid::Uuid;

use crate::config::OrderLimits;
use crate::domain::{Compensation, NewOrder, OrderStatus, RequestedItem};
use crate::downstream::{CallError, Inventory, Payments};
pub use crate::error::OrderError;
use crate::saga::decide::cancel_at_customer_request;
use crate::saga::reason_code;
use crate::settled::Settlements;
use crate::store::{self, HistoryRow, ItemRow, OrderRow};

/// The `source` of the events this service emits.
pub const SOURCE: &str = crate::SERVICE_NAME;

/// An order with its lines and history.
#[derive(Clone, Debug)]
pub struct Order {
    /// The order.
    pub row: OrderRow,
    /// Its lines.
    pub items: Vec<ItemRow>,
    /// Every transition.
    pub history: Vec<HistoryRow>,
}

impl From<store::WholeOrder> for Order {
    fn from(whole: store::WholeOrder) -> Self {
        Self {
            row: whole.row,
            items: whole.items.0,
            history: whole.history.0,
        }
    }
}

/// A placed order, and whether it was placed by an earlier request with the same key.
#[derive(Clone, Debug)]
pub struct Placed {
    /// The order.
    pub order: Order,
    /// True when this request repeated an earlier one.
    pub replayed: bool,
}

/// The order operations.
#[derive(Clone)]
pub struct Orders {
    pool: PgPool,
    namespace: Namespace,
    inventory: Inventory,
    payments: Payments,
    limits: OrderLimits,
    wake: Arc<Notify>,
    settlements: Settlements,
}

impl Orders {
    /// The operations over `pool`; `wake` tells the saga worker there is work, `settlements`
    /// learns which orders have finished (see [`crate::settled`]).
    pub fn new(
        pool: PgPool,
        namespace: Namespace,
        inventory: Inventory,
        payments: Payments,
        limits: OrderLimits,
        wake: Arc<Notify>,
        settlements: Settlements,
    ) -> Self {
        Self {
            pool,
            namespace,
            inventory,
            payments,
            limits,
            wake,
            settlements,
        }
    }

    /// The limits an order's lines are parsed against.
    pub fn limits(&self) -> &OrderLimits {
        &self.limits
    }

    /// Places an order: checks the payment method, prices the lines from the inventory, and stores the order as PENDING with its `orders.created` event. A repeat
    /// with the same key and request returns the first order.
    #[tracing::instrument(skip_all, fields(user_id = %user_id))]
    pub async fn place(
        &self,
        user_id: Uuid,
        idempotency_key: &str,
        new_order: &NewOrder,
        request_hash: Vec<u8>,
    ) -> Result<Placed, OrderError> {
        if let Some(existing) = store::find_by_key(user_id, idempotency_key, &self.pool).await? {
            return self.replay(existing, &request_hash).await;
        }
        // Two independent calls, made at once; the fields both find wrong are all reported.
        let (lines, currency, total) = match tokio::join!(
            self.check_payment_method(user_id, new_order.payment_method_id),
            self.price(&new_order.items),
        ) {
            (Ok(()), Ok(priced)) => priced,
            (Err(OrderError::Invalid(mut fields)), Err(OrderError::Invalid(more))) => {
                fields.extend(more);
                return Err(OrderError::Invalid(fields));
            }
            (Err(error), _) | (_, Err(error)) => return Err(error),
        };
        let now = Utc::now().trunc_subsecs(6);
        let order = OrderRow {
            id: Uuid::now_v7(),
            user_id,
            idempotency_key: idempotency_key.to_owned(),
            request_hash: request_hash.clone(),
            status: OrderStatus::Pending,
            payment_method_id: new_order.payment_method_id,
            total_minor: total,
            currency: currency.clone(),
            payment_id: None,
            refunded_minor: 0,
            cancel_reason: None,
            cancel_detail: None,
            owed: Compensation::NOTHING,
            step_attempts: 0,
            last_error: None,
            created_at: now,
            updated_at: now,
            traceparent: platform_telemetry::propagation::current_traceparent(),
        };
        let mut tx = self.pool.begin().await?;
        if !store::insert_order(&order, &lines, &mut *tx).await? {
            // Placed concurrently with the same key.
            drop(tx);
            let existing = store::find_by_key(user_id, idempotency_key, &self.pool)
                .await?
                .context("the concurrently placed order vanished")?;
            return self.replay(existing, &request_hash).await;
        }
        let event = Envelope::new(
            SOURCE,
            &order.id,
            OrderCreated {
                order_id: order.id,
                user_id,
                items: order_lines(&lines),
                total: contracts::Money::new(total, &currency),
            },
        );
        platform_events::outbox::postgres::enqueue(&mut *tx, &self.namespace, &event).await?;
        tx.commit().await?;
        metrics::counter!("orders_placed_total").increment(1);
        tracing::info!(order_id = %order.id, total, currency = %currency, "order placed");
        self.wake.notify_one();
        // Answered with what was just written, without reading it back.
        let history = vec![HistoryRow {
            from_status: None,
            to_status: order.status,
            reason: Some("placed".to_owned()),
            at: order.created_at,
        }];
        Ok(Placed {
            order: Order {
                row: order,
                items: lines,
                history,
            },
            replayed: false,
        })
    }

    /// The payment method must be one of the user's.
    async fn check_payment_method(
        &self,
        user_id: Uuid,
        payment_method_id: Uuid,
    ) -> Result<(), OrderError> {
        match self
            .payments
            .payment_method(user_id, payment_method_id)
            .await
        {
            Ok(_) => Ok(()),
            Err(CallError::Refused(status)) if status.code() == Code::NotFound => {
                Err(OrderError::Invalid(vec![FieldError::new(
                    "payment_method_id",
                    "is not one of your payment methods",
                )]))
            }
            Err(error) => Err(OrderError::Unavailable(format!(
                "the payment service: {error}"
            ))),
        }
    }

    /// Prices the lines from the inventory: the lines, their currency, the total.
    async fn price(
        &self,
        items: &[RequestedItem],
    ) -> Result<(Vec<ItemRow>, String, i64), OrderError> {
        let skus: Vec<String> = items.iter().map(|item| item.sku.clone()).collect();
        let products = match self.inventory.products(skus.clone()).await {
            Ok(products) => products,
            Err(CallError::Refused(status)) if status.code() == Code::NotFound => {
                let index = skus
                    .iter()
                    .position(|sku| status.message().contains(sku.as_str()))
                    .unwrap_or(0);
                return Err(OrderError::Invalid(vec![FieldError::new(
                    format!("items[{index}].sku"),
                    "is not a product we sell",
                )]));
            }
            Err(error) => {
                return Err(OrderError::Unavailable(format!(
                    "the inventory service: {error}"
                )));
            }
        };
        let by_sku: HashMap<&str, _> = products.iter().map(|p| (p.sku.as_str(), p)).collect();
        let mut lines = Vec::with_capacity(items.len());
        let mut currency: Option<String> = None;
        let mut total: i64 = 0;
        for (index, item) in items.iter().enumerate() {
            let product = by_sku
                .get(item.sku.as_str())
                .context("the inventory did not price a requested SKU")?;
            let price = product
                .price
                .as_ref()
                .context("a product without a price")?;
            if currency.get_or_insert_with(|| price.currency.clone()) != &price.currency {
                return Err(OrderError::Invalid(vec![FieldError::new(
                    format!("items[{index}].sku"),
                    "is priced in another currency than the rest of the order",
                )]));
            }
            total = price
                .minor
                .checked_mul(i64::from(item.quantity))
                .and_then(|line| total.checked_add(line))
                .context("the order total does not fit")?;
            lines.push(ItemRow {
                line: i32::try_from(index).unwrap_or(i32::MAX),
                sku: item.sku.clone(),
                // The catalogue refuses control characters, but a name stored before it did (or
                // around its API) must not make every order for the product fail.
                name: platform_http::text::without_control_characters(&product.name).into_owned(),
                quantity: i32::try_from(item.quantity).unwrap_or(i32::MAX),
                unit_price_minor: price.minor,
                currency: price.currency.clone(),
            });
        }
        let currency = currency.context("an order without lines")?;
        if total <= 0 {
            return Err(OrderError::Invalid(vec![FieldError::new(
                "items",
                "the order's total must be more than zero",
            )]));
        }
        Ok((lines, currency, total))
    }

    async fn replay(&self, existing: OrderRow, request_hash: &[u8]) -> Result<Placed, OrderError> {
        if existing.request_hash != request_hash {
            return Err(OrderError::KeyReused);
        }
        Ok(Placed {
            order: self.load(existing).await?,
            replayed: true,
        })
    }

    async fn load(&self, row: OrderRow) -> Result<Order, OrderError> {
        self.load_all(vec![row])
            .await?
            .pop()
            .context("a loaded order vanished")
            .map_err(OrderError::from)
    }

    /// The orders with their items and history: two queries however many orders there are.
    async fn load_all(&self, rows: Vec<OrderRow>) -> Result<Vec<Order>, OrderError> {
        let ids: Vec<Uuid> = rows.iter().map(|row| row.id).collect();
        let (mut items, mut history) = tokio::try_join!(
            store::items_by_order(&ids, &self.pool),
            store::history_by_order(&ids, &self.pool),
        )?;
        Ok(rows
            .into_iter()
            .map(|row| Order {
                items: items.remove(&row.id).unwrap_or_default(),
                history: history.remove(&row.id).unwrap_or_default(),
                row,
            })
            .collect())
    }

    /// One of the user's orders (another user's is not found), in one query: clients poll it
    /// while their order is under way.
    pub async fn get(&self, user_id: Uuid, id: Uuid) -> Result<Order, OrderError> {
        let whole = store::find_whole(id, &self.pool)
            .await?
            .filter(|whole| whole.row.user_id == user_id)
            .ok_or(OrderError::NotFound)?;
        Ok(whole.into())
    }

    /// [`Orders::get`], held until the order is finished (CONFIRMED or CANCELLED) or `wait`
    /// has passed, whichever comes first; at once when it already is finished or `wait` is zero.
    /// The answer is the order as read last.
    pub async fn get_when_finished(
        &self,
        user_id: Uuid,
        id: Uuid,
        wait: Duration,
    ) -> Result<Order, OrderError> {
        if wait.is_zero() {
            return self.get(user_id, id).await;
        }
        let deadline = Instant::now() + wait;
        let recheck = Duration::from_millis(self.limits.wait_recheck_ms.max(10));
        let watch = self.settlements.watch(id);
        loop {
            // Listening before reading: news arriving in between is kept, not lost.
            let notified = watch.notify().notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let order = self.get(user_id, id).await?;
            let now = Instant::now();
            if order.row.status.is_terminal() || now >= deadline {
                return Ok(order);
            }
            // News from the listener, or a fresh look anyway (it may have missed some).
            let _ = tokio::time::timeout_at(deadline.min(now + recheck), notified).await;
        }
    }

    /// A page of the user's orders, newest first.
    pub async fn list(
        &self,
        user_id: Uuid,
        before: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<Order>, OrderError> {
        let rows = store::list(user_id, before, limit, &self.pool).await?;
        self.load_all(rows).await
    }

    /// Cancels a confirmed order: it becomes CANCELLING, and the saga refunds it, returns its
    /// stock and closes it as CANCELLED.
    #[tracing::instrument(skip_all, fields(user_id = %user_id, order_id = %id))]
    pub async fn cancel(&self, user_id: Uuid, id: Uuid) -> Result<Order, OrderError> {
        let mut tx = self.pool.begin().await?;
        let row = store::lock(id, &mut *tx)
            .await?
            .filter(|row| row.user_id == user_id)
            .ok_or(OrderError::NotFound)?;
        let cancellation = cancel_at_customer_request(row.status).map_err(OrderError::Conflict)?;
        let started = store::start_cancelling(
            id,
            row.status,
            (
                reason_code(cancellation.reason),
                cancellation.detail.as_str(),
            ),
            cancellation.compensation,
            platform_telemetry::propagation::current_traceparent().as_deref(),
            &mut tx,
        )
        .await?;
        if !started {
            // The row is locked, so its status cannot have changed under us.
            return Err(anyhow::anyhow!("the locked order changed while cancelling it").into());
        }
        tx.commit().await?;
        self.wake.notify_one();
        let whole = store::find_whole(id, &self.pool)
            .await?
            .ok_or(OrderError::NotFound)?;
        Ok(whole.into())
    }
}

/// The event form of an order's lines.
pub fn order_lines(items: &[ItemRow]) -> Vec<OrderLine> {
    items
        .iter()
        .map(|item| OrderLine {
            sku: item.sku.clone(),
            name: item.name.clone(),
            quantity: u32::try_from(item.quantity).unwrap_or(0),
            unit_price: contracts::Money::new(item.unit_price_minor, &item.currency),
            line_total: contracts::Money::new(
                item.unit_price_minor * i64::from(item.quantity),
                &item.currency,
            ),
        })
        .collect()
}
