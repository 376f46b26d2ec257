//! The checkout saga's worker: claims due orders with a lease (several replicas can run), takes
//! each one step further, and records the outcome with the order, its history and its event in
//! one transaction. On start it picks up every order that is not finished, wherever it stopped.
//!
//! Every step is an idempotent call keyed by the order id, with a deadline, behind a circuit
//! breaker per downstream. What to call, and what an answer leads to (advance, cancel with
//! compensation, retry with back-off, give up), is decided in [`decide`], without I/O; this
//! module only claims orders, makes the calls and records the decisions.

pub mod decide;

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
use tonic::{Code, Status};
use uuid::Uuid;

use self::decide::{Action, Outcome, Plan, SagaState, Step};
use crate::config::SagaSettings;
use crate::domain::{Compensation, OrderStatus};
use crate::downstream::{CallError, Inventory, Payments};
use crate::orders::{SOURCE, order_lines};
use crate::store::{self, OrderRow, Transition};

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
        let state = SagaState::from(&order);
        let started = Instant::now();
        let (name, action) = match decide::plan(&state) {
            Plan::Finished => return Ok(()),
            Plan::Record(action) => ("close", action),
            Plan::Call(step) => {
                let outcome = self.perform(step, &order).await?;
                let action = decide::decide(&state, step, outcome, &self.settings);
                (step.name(), action)
            }
        };
        let result = match &action {
            Action::Advance { .. } | Action::Compensated { .. } => "ok",
            Action::Cancel(_) => "cancel",
            Action::Retry { .. } | Action::Postpone { .. } => "retry",
        };
        metrics::histogram!("orders_saga_step_duration_seconds", "step" => name, "result" => result)
            .record(started.elapsed().as_secs_f64());
        self.apply(&order, action).await
    }

    /// Makes the step's call and puts the answer in the saga's words.
    async fn perform(&self, step: Step, order: &OrderRow) -> anyhow::Result<Outcome> {
        Ok(match step {
            Step::Reserve => self.reserve(order).await?,
            // Charging again with the same key returns the first charge's outcome, which is
            // how a charge whose answer was lost is resolved.
            Step::Charge | Step::ResolvePayment => self.charge(order).await,
            Step::Commit => self.commit(order).await,
            Step::Refund => self.refund(order).await,
            Step::ReleaseStock => match self.inventory.release(order.id).await {
                Ok(_) => Outcome::StockReleased,
                // Nothing held for the order: there is nothing to give back.
                Err(error) => unanswered(error, |_| Outcome::StockReleased),
            },
        })
    }

    async fn reserve(&self, order: &OrderRow) -> anyhow::Result<Outcome> {
        let items = store::items(order.id, &self.pool)
            .await?
            .into_iter()
            .map(|item| ReservationItem {
                sku: item.sku,
                quantity: i64::from(item.quantity),
            })
            .collect();
        Ok(match self.inventory.reserve(order.id, items).await {
            Ok(ReservationStatus::Reserved) => Outcome::Reserved,
            Ok(other) => Outcome::ReservationExpired(format!(
                "the stock reservation is {}",
                other.as_str_name()
            )),
            Err(error) => unanswered(error, |status| {
                if status.code() == Code::FailedPrecondition {
                    Outcome::OutOfStock(status.message().to_owned())
                } else {
                    Outcome::ReservationRefused(format!(
                        "the order could not be reserved: {}",
                        status.message()
                    ))
                }
            }),
        })
    }

    async fn charge(&self, order: &OrderRow) -> Outcome {
        let amount = contracts::Money::new(order.total_minor, &order.currency);
        match self
            .payments
            .charge(order.id, order.user_id, amount, order.payment_method_id)
            .await
        {
            Ok(charge) if charge.status() == PaymentStatus::Captured => Outcome::Charged {
                payment_id: charge.payment_id.parse().ok(),
            },
            Ok(charge) => {
                Outcome::Declined(format!("the payment failed: {}", charge.failure_reason))
            }
            Err(error) => unanswered(error, |status| {
                Outcome::Declined(format!("the payment was refused: {}", status.message()))
            }),
        }
    }

    async fn commit(&self, order: &OrderRow) -> Outcome {
        match self.inventory.commit(order.id).await {
            Ok(ReservationStatus::Committed) => Outcome::Committed,
            Ok(other) => Outcome::ReservationExpired(format!(
                "the stock reservation is {}",
                other.as_str_name()
            )),
            Err(error) => unanswered(error, |status| {
                Outcome::ReservationExpired(status.message().to_owned())
            }),
        }
    }

    async fn refund(&self, order: &OrderRow) -> Outcome {
        let amount = contracts::Money::new(order.total_minor, &order.currency);
        // One key per order: a refund retried after a lost answer is made once.
        let key = format!("order:{}:cancel", order.id);
        match self.payments.refund(order.id, amount, key).await {
            Ok(refund) => Outcome::Refunded {
                refunded_total_minor: refund.refunded_total.map(|total| total.minor),
            },
            Err(error) => unanswered(error, |status| {
                tracing::warn!(status = ?status, "nothing to refund");
                Outcome::NothingToRefund(status.message().to_owned())
            }),
        }
    }

    /// Writes the decision: the new state, its history, its event; or the retry.
    async fn apply(&self, order: &OrderRow, action: Action) -> anyhow::Result<()> {
        let from = order.status;
        let to = action.status_after(from);
        let change = match &action {
            Action::Retry { after, error } => {
                tracing::info!(%error, retry_in = ?after, "step failed; retrying later");
                store::retry_later(order.id, self.id, error, *after, &self.pool).await?;
                return Ok(());
            }
            Action::Postpone { after } => {
                store::postpone(order.id, self.id, *after, &self.pool).await?;
                return Ok(());
            }
            Action::Advance { payment_id, .. } => Transition {
                from,
                to,
                reason: None,
                payment_id: *payment_id,
                cancel: None,
                owed: Compensation::NOTHING,
                refunded_minor: order.refunded_minor,
            },
            Action::Cancel(cancellation) => {
                let code = reason_code(cancellation.reason);
                Transition {
                    from,
                    to,
                    reason: Some(code),
                    payment_id: None,
                    cancel: Some((code, cancellation.detail.as_str())),
                    owed: cancellation.compensation,
                    refunded_minor: order.refunded_minor,
                }
            }
            Action::Compensated {
                still_owed,
                refunded_minor,
                payment_id,
            } => Transition {
                from,
                to,
                reason: order.cancel_reason.as_deref(),
                payment_id: *payment_id,
                cancel: None,
                owed: *still_owed,
                refunded_minor: *refunded_minor,
            },
        };
        let mut tx = self.pool.begin().await?;
        if !store::transition(order.id, self.id, &change, &mut tx).await? {
            tracing::warn!(
                "lost the lease before recording the step; another worker has the order"
            );
            return Ok(());
        }
        if to.is_terminal() {
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
            record_outcome(order, to, &action);
        }
        Ok(())
    }

    /// The event of a finished order, in the transaction that finishes it.
    async fn announce(&self, order: &OrderRow, tx: &mut sqlx::PgConnection) -> anyhow::Result<()> {
        let items = order_lines(&store::items(order.id, &mut *tx).await?);
        let total = contracts::Money::new(order.total_minor, &order.currency);
        if order.status == OrderStatus::Confirmed {
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

impl From<&OrderRow> for SagaState {
    fn from(order: &OrderRow) -> Self {
        Self {
            status: order.status,
            owed: order.owed,
            attempts: order.step_attempts,
            total_minor: order.total_minor,
            refunded_minor: order.refunded_minor,
        }
    }
}

/// A call that produced no answer the saga can use as is: a downstream's refusal is put in
/// words by `refused`, the rest says why there was no answer.
fn unanswered(error: CallError, refused: impl FnOnce(Status) -> Outcome) -> Outcome {
    match error {
        CallError::TimedOut(deadline) => Outcome::TimedOut(deadline),
        CallError::Unavailable(error) => Outcome::Unavailable(error),
        CallError::BreakerOpen(delay) => Outcome::BreakerOpen(delay),
        CallError::Refused(status) => refused(status),
    }
}

/// Counts a finished saga by outcome and reason.
fn record_outcome(order: &OrderRow, to: OrderStatus, action: &Action) {
    let reason = if to == OrderStatus::Cancelled {
        order.cancel_reason.clone().or_else(|| match action {
            Action::Cancel(cancellation) => Some(reason_code(cancellation.reason).to_owned()),
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
