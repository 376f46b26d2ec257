//! The checkout saga's worker: claims due orders with a lease (several replicas can run), takes
//! each one step further, and records the outcome with the order, its history and its event in
//! one transaction. On start it picks up every order that is not finished, wherever it stopped.
//!
//! Every step is an idempotent call keyed by the order id, with a deadline, behind a circuit
//! breaker per downstream. A forward step that keeps failing transiently is retried with
//! back-off a bounded number of times, then the order is cancelled; compensation (learning a
//! timed-out charge's outcome, refunding, releasing the stock) is retried until it succeeds.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures::future::join_all;
use platform_contracts::{self as contracts, CancellationReason, OrderCancelled, OrderConfirmed};
use platform_events::{Envelope, Namespace};
use platform_proto::inventory::v1::{ReservationItem, ReservationStatus};
use platform_proto::payment::v1::PaymentStatus;
use sqlx::PgPool;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tonic::Code;
use uuid::Uuid;

use crate::config::SagaSettings;
use crate::domain::OrderStatus;
use crate::downstream::{CallError, Inventory, Payments};
use crate::orders::{SOURCE, order_lines};
use crate::store::{self, OrderRow, Transition};

/// What one step decided.
#[derive(Debug)]
enum Decision {
    /// Forward to the next status.
    Advance {
        to: OrderStatus,
        payment_id: Option<Uuid>,
    },
    /// Give up on the sale; undo what was done.
    Cancel {
        reason: CancellationReason,
        detail: String,
        resolve_payment: bool,
        refund: bool,
        release: bool,
    },
    /// One piece of compensation done: what is left.
    Compensated {
        resolve_payment: bool,
        refund: bool,
        release: bool,
        refunded_minor: i64,
        payment_id: Option<Uuid>,
    },
    /// A transient failure: try the same step again later.
    Retry(String),
    /// A breaker refused the call: try again after the delay, without counting an attempt.
    Postpone(Duration),
}

/// The saga worker.
pub struct SagaWorker {
    id: Uuid,
    pool: PgPool,
    namespace: Namespace,
    inventory: Inventory,
    payments: Payments,
    settings: SagaSettings,
    wake: Arc<Notify>,
}

impl SagaWorker {
    /// A worker over the orders in `pool`; `wake` cuts its idle wait short.
    pub fn new(
        pool: PgPool,
        namespace: Namespace,
        inventory: Inventory,
        payments: Payments,
        settings: SagaSettings,
        wake: Arc<Notify>,
    ) -> Self {
        Self {
            id: Uuid::now_v7(),
            pool,
            namespace,
            inventory,
            payments,
            settings,
            wake,
        }
    }

    /// Steps sagas until `stop`; finishes the steps in hand.
    pub async fn run(self, stop: CancellationToken) {
        tracing::info!(worker = %self.id, "saga worker started; resuming unfinished orders");
        let idle = Duration::from_millis(self.settings.poll_interval_ms);
        while !stop.is_cancelled() {
            let stepped = match self.run_once().await {
                Ok(count) => count,
                Err(error) => {
                    tracing::warn!(error = format!("{error:#}"), "a saga round failed");
                    0
                }
            };
            if stepped == 0 {
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = self.wake.notified() => {}
                    () = tokio::time::sleep(idle) => {}
                }
            }
        }
        tracing::info!(worker = %self.id, "saga worker stopped");
    }

    /// One round: claims due sagas and takes each one step; returns how many.
    pub async fn run_once(&self) -> anyhow::Result<usize> {
        let lease = Duration::from_secs(self.settings.lease_secs);
        let due = store::claim_due(self.id, self.settings.concurrency, lease, &self.pool).await?;
        let count = due.len();
        for result in join_all(due.into_iter().map(|order| self.step(order))).await {
            result?;
        }
        Ok(count)
    }

    #[tracing::instrument(skip_all, fields(order_id = %order.id, status = %order.status))]
    async fn step(&self, order: OrderRow) -> anyhow::Result<()> {
        let status: OrderStatus = order.status.parse().map_err(anyhow::Error::msg)?;
        let started = Instant::now();
        let (name, decision) = match status {
            OrderStatus::Pending => ("reserve", self.reserve(&order).await?),
            OrderStatus::StockReserved => ("charge", self.charge(&order).await),
            OrderStatus::Paid => ("commit", self.commit(&order).await),
            OrderStatus::Cancelling => self.compensate(&order).await,
            OrderStatus::Confirmed | OrderStatus::Cancelled => return Ok(()),
        };
        let result = match &decision {
            Decision::Advance { .. } | Decision::Compensated { .. } => "ok",
            Decision::Cancel { .. } => "cancel",
            Decision::Retry(_) | Decision::Postpone(_) => "retry",
        };
        metrics::histogram!("orders_saga_step_duration_seconds", "step" => name, "result" => result)
            .record(started.elapsed().as_secs_f64());
        self.apply(&order, status, decision).await
    }

    async fn reserve(&self, order: &OrderRow) -> anyhow::Result<Decision> {
        let items = store::items(order.id, &self.pool)
            .await?
            .into_iter()
            .map(|item| ReservationItem {
                sku: item.sku,
                quantity: i64::from(item.quantity),
            })
            .collect();
        Ok(match self.inventory.reserve(order.id, items).await {
            Ok(ReservationStatus::Reserved) => Decision::Advance {
                to: OrderStatus::StockReserved,
                payment_id: None,
            },
            // An earlier attempt reserved, and the reservation lapsed before this one.
            Ok(other) => cancel(
                CancellationReason::ReservationExpired,
                format!("the stock reservation is {}", other.as_str_name()),
                (false, false, false),
            ),
            Err(CallError::Refused(status)) if status.code() == Code::FailedPrecondition => cancel(
                CancellationReason::OutOfStock,
                status.message().to_owned(),
                (false, false, false),
            ),
            Err(CallError::Refused(status)) => cancel(
                CancellationReason::Other,
                format!("the order could not be reserved: {}", status.message()),
                (false, false, false),
            ),
            // A reservation may have been made by a call whose answer was lost: release it.
            Err(error) => self.retry_or(order, error, || {
                cancel(
                    CancellationReason::Other,
                    "the inventory did not answer".to_owned(),
                    (false, false, true),
                )
            }),
        })
    }

    async fn charge(&self, order: &OrderRow) -> Decision {
        let amount = contracts::Money::new(order.total_minor, &order.currency);
        match self
            .payments
            .charge(order.id, order.user_id, amount, order.payment_method_id)
            .await
        {
            Ok(charge) => match charge.status() {
                PaymentStatus::Captured => Decision::Advance {
                    to: OrderStatus::Paid,
                    payment_id: charge.payment_id.parse().ok(),
                },
                _ => cancel(
                    CancellationReason::PaymentDeclined,
                    format!("the payment failed: {}", charge.failure_reason),
                    (false, false, true),
                ),
            },
            // The charge may still be captured: learn its outcome (and refund it) while undoing.
            Err(CallError::TimedOut(deadline)) => cancel(
                CancellationReason::PaymentTimeout,
                format!("the payment did not answer within {deadline:?}"),
                (true, false, true),
            ),
            Err(CallError::Refused(status)) => cancel(
                CancellationReason::PaymentDeclined,
                format!("the payment was refused: {}", status.message()),
                (false, false, true),
            ),
            Err(error) => self.retry_or(order, error, || {
                cancel(
                    CancellationReason::PaymentTimeout,
                    "the payment service did not answer".to_owned(),
                    (true, false, true),
                )
            }),
        }
    }

    async fn commit(&self, order: &OrderRow) -> Decision {
        match self.inventory.commit(order.id).await {
            Ok(ReservationStatus::Committed) => Decision::Advance {
                to: OrderStatus::Confirmed,
                payment_id: None,
            },
            Ok(other) => cancel(
                CancellationReason::ReservationExpired,
                format!("the stock reservation is {}", other.as_str_name()),
                (false, true, true),
            ),
            Err(CallError::Refused(status)) => cancel(
                CancellationReason::ReservationExpired,
                status.message().to_owned(),
                (false, true, true),
            ),
            Err(error) => self.retry_or(order, error, || {
                cancel(
                    CancellationReason::ReservationExpired,
                    "the reservation could not be committed in time".to_owned(),
                    (false, true, true),
                )
            }),
        }
    }

    /// One piece of compensation, in order: learn a timed-out charge's outcome, refund,
    /// release the stock. Never gives up.
    async fn compensate(&self, order: &OrderRow) -> (&'static str, Decision) {
        let pending =
            |resolve_payment, refund, release, refunded_minor, payment_id| Decision::Compensated {
                resolve_payment,
                refund,
                release,
                refunded_minor,
                payment_id,
            };
        let retry = |error: CallError| match error {
            CallError::BreakerOpen(delay) => Decision::Postpone(delay),
            other => Decision::Retry(other.to_string()),
        };
        if order.resolve_payment {
            // Charging again with the same key returns the first charge's outcome.
            let amount = contracts::Money::new(order.total_minor, &order.currency);
            let outcome = self
                .payments
                .charge(order.id, order.user_id, amount, order.payment_method_id)
                .await;
            return (
                "resolve_payment",
                match outcome {
                    Ok(charge) if charge.status() == PaymentStatus::Captured => pending(
                        false,
                        true,
                        order.release_pending,
                        order.refunded_minor,
                        charge.payment_id.parse().ok(),
                    ),
                    Ok(_) | Err(CallError::Refused(_)) => pending(
                        false,
                        false,
                        order.release_pending,
                        order.refunded_minor,
                        None,
                    ),
                    Err(error) => retry(error),
                },
            );
        }
        if order.refund_pending {
            let amount = contracts::Money::new(order.total_minor, &order.currency);
            let key = format!("order:{}:cancel", order.id);
            return (
                "refund",
                match self.payments.refund(order.id, amount, key).await {
                    Ok(refund) => pending(
                        false,
                        false,
                        order.release_pending,
                        refund
                            .refunded_total
                            .map_or(order.total_minor, |total| total.minor),
                        None,
                    ),
                    Err(CallError::Refused(status)) => {
                        tracing::warn!(status = ?status, "nothing to refund");
                        pending(
                            false,
                            false,
                            order.release_pending,
                            order.refunded_minor,
                            None,
                        )
                    }
                    Err(error) => retry(error),
                },
            );
        }
        if order.release_pending {
            return (
                "release",
                match self.inventory.release(order.id).await {
                    Ok(_) | Err(CallError::Refused(_)) => {
                        pending(false, false, false, order.refunded_minor, None)
                    }
                    Err(error) => retry(error),
                },
            );
        }
        (
            "close",
            pending(false, false, false, order.refunded_minor, None),
        )
    }

    /// A transient failure of a forward step: retry, or after the last attempt, `give_up`.
    fn retry_or(
        &self,
        order: &OrderRow,
        error: CallError,
        give_up: impl FnOnce() -> Decision,
    ) -> Decision {
        match error {
            CallError::BreakerOpen(delay) => Decision::Postpone(delay),
            error if order.step_attempts + 1 >= self.settings.max_attempts => {
                tracing::warn!(%error, attempts = order.step_attempts + 1, "giving up on the step");
                give_up()
            }
            error => Decision::Retry(error.to_string()),
        }
    }

    /// Writes the decision: the new state, its history, its event; or the retry.
    async fn apply(
        &self,
        order: &OrderRow,
        from: OrderStatus,
        decision: Decision,
    ) -> anyhow::Result<()> {
        match decision {
            Decision::Retry(error) => {
                let delay = self.settings.retry_delay(order.step_attempts + 1);
                tracing::info!(%error, retry_in = ?delay, "step failed; retrying later");
                store::retry_later(order.id, self.id, &error, delay, &self.pool).await?;
                return Ok(());
            }
            Decision::Postpone(delay) => {
                store::postpone(order.id, self.id, delay, &self.pool).await?;
                return Ok(());
            }
            _ => {}
        }
        let (to, transition) = transition_for(order, from, &decision);
        let mut tx = self.pool.begin().await?;
        if !store::transition(order.id, self.id, &transition, &mut tx).await? {
            tracing::warn!(
                "lost the lease before recording the step; another worker has the order"
            );
            return Ok(());
        }
        if to == OrderStatus::Confirmed || to == OrderStatus::Cancelled {
            let row = store::find(order.id, &mut *tx)
                .await?
                .context("the order vanished")?;
            self.announce(&row, &mut tx).await?;
        }
        tx.commit().await?;
        if to != from {
            tracing::info!(from = %from, to = %to, "order moved");
        }
        if to.is_terminal() {
            record_outcome(order, to, &decision);
        }
        Ok(())
    }

    /// The event of a finished order, in the transaction that finishes it.
    async fn announce(&self, order: &OrderRow, tx: &mut sqlx::PgConnection) -> anyhow::Result<()> {
        let items = order_lines(&store::items(order.id, &mut *tx).await?);
        let total = contracts::Money::new(order.total_minor, &order.currency);
        if order.status == OrderStatus::Confirmed.as_str() {
            let event = Envelope::new(
                SOURCE,
                &order.id,
                OrderConfirmed {
                    order_id: order.id,
                    user_id: order.user_id,
                    items,
                    total,
                    payment_id: order
                        .payment_id
                        .context("a confirmed order without a payment")?,
                },
            );
            platform_events::outbox::postgres::enqueue(&mut *tx, &self.namespace, &event).await?;
        } else {
            let reason = order
                .cancel_reason
                .as_deref()
                .map_or(CancellationReason::Other, parse_reason);
            let event = Envelope::new(
                SOURCE,
                &order.id,
                OrderCancelled {
                    order_id: order.id,
                    user_id: order.user_id,
                    reason,
                    detail: order.cancel_detail.clone().unwrap_or_default(),
                    items,
                    total,
                    refunded: (order.refunded_minor > 0)
                        .then(|| contracts::Money::new(order.refunded_minor, &order.currency)),
                },
            );
            platform_events::outbox::postgres::enqueue(&mut *tx, &self.namespace, &event).await?;
        }
        Ok(())
    }
}

/// The state a decision moves an order to (only for decisions that move it).
fn transition_for<'a>(
    order: &'a OrderRow,
    from: OrderStatus,
    decision: &'a Decision,
) -> (OrderStatus, Transition<'a>) {
    let finished = |resolve_payment: bool, refund: bool, release: bool| {
        if resolve_payment || refund || release {
            OrderStatus::Cancelling
        } else {
            OrderStatus::Cancelled
        }
    };
    match decision {
        Decision::Advance { to, payment_id } => (
            *to,
            Transition {
                from: from.as_str(),
                to: to.as_str(),
                reason: None,
                payment_id: *payment_id,
                cancel: None,
                pending: (false, false, false),
                refunded_minor: order.refunded_minor,
            },
        ),
        Decision::Cancel {
            reason,
            detail,
            resolve_payment,
            refund,
            release,
        } => {
            let to = finished(*resolve_payment, *refund, *release);
            (
                to,
                Transition {
                    from: from.as_str(),
                    to: to.as_str(),
                    reason: Some(reason_code(*reason)),
                    payment_id: None,
                    cancel: Some((reason_code(*reason), detail.as_str())),
                    pending: (*resolve_payment, *refund, *release),
                    refunded_minor: order.refunded_minor,
                },
            )
        }
        Decision::Compensated {
            resolve_payment,
            refund,
            release,
            refunded_minor,
            payment_id,
        } => {
            let to = finished(*resolve_payment, *refund, *release);
            (
                to,
                Transition {
                    from: from.as_str(),
                    to: to.as_str(),
                    reason: order.cancel_reason.as_deref(),
                    payment_id: *payment_id,
                    cancel: None,
                    pending: (*resolve_payment, *refund, *release),
                    refunded_minor: *refunded_minor,
                },
            )
        }
        Decision::Retry(_) | Decision::Postpone(_) => {
            unreachable!("retries and postponements are recorded without a transition")
        }
    }
}

fn cancel(
    reason: CancellationReason,
    detail: String,
    (resolve_payment, refund, release): (bool, bool, bool),
) -> Decision {
    Decision::Cancel {
        reason,
        detail,
        resolve_payment,
        refund,
        release,
    }
}

/// Counts a finished saga by outcome and reason.
fn record_outcome(order: &OrderRow, to: OrderStatus, decision: &Decision) {
    let reason = if to == OrderStatus::Cancelled {
        order.cancel_reason.clone().or_else(|| match decision {
            Decision::Cancel { reason, .. } => Some(reason_code(*reason).to_owned()),
            _ => None,
        })
    } else {
        None
    };
    metrics::counter!(
        "orders_saga_outcomes_total",
        "outcome" => to.as_str(),
        "reason" => reason.unwrap_or_default()
    )
    .increment(1);
}

/// The stored code of a cancellation reason (the event's JSON form).
pub fn reason_code(reason: CancellationReason) -> &'static str {
    match reason {
        CancellationReason::OutOfStock => "out_of_stock",
        CancellationReason::PaymentDeclined => "payment_declined",
        CancellationReason::PaymentTimeout => "payment_timeout",
        CancellationReason::ReservationExpired => "reservation_expired",
        CancellationReason::CustomerRequest => "customer_request",
        CancellationReason::Other => "other",
    }
}

fn parse_reason(code: &str) -> CancellationReason {
    serde_json::from_value(serde_json::Value::String(code.to_owned()))
        .unwrap_or(CancellationReason::Other)
}
