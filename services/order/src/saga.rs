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
use futures::StreamExt as _;
use futures::future::join_all;
use futures::stream::FuturesUnordered;
use platform_contracts::{self as contracts, CancellationReason, OrderCancelled, OrderConfirmed};
use platform_events::{Envelope, Namespace};
use platform_proto::inventory::v1::{ReservationItem, ReservationStatus};
use platform_proto::payment::v1::PaymentStatus;
use sqlx::PgPool;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tonic::{Code, Status};
use tracing::Instrument as _;
use uuid::Uuid;

use self::decide::{Action, Outcome, Plan, SagaState, Step};
use crate::config::SagaSettings;
use crate::domain::{Compensation, OrderStatus};
use crate::downstream::{CallError, Inventory, Payments};
use crate::orders::{SOURCE, order_lines};
use crate::store::{self, ItemRow, OrderRow, Transition};

/// A claim of due sagas, under way.
type ClaimFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<Vec<OrderRow>>> + Send + 'a>>;

/// Steps one claim takes at most before letting go of the order (a saga has at most five:
/// reserve, charge, commit or the compensations, and the close).
const MAX_STEPS_PER_CLAIM: usize = 8;

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

    /// Drives sagas until `stop`: up to `concurrency` at once, each taken step after step while
    /// it has somewhere to go at once (the lease is kept between steps, so no other worker
    /// takes it and no claim round is needed). A saga that must wait (a retry, an open breaker)
    /// lets go of its lease and is claimed again when due. Finishes the steps in hand.
    pub async fn run(self, stop: CancellationToken) {
        tracing::info!(worker = %self.id, "saga worker started; resuming unfinished orders");
        let concurrency = usize::try_from(self.settings.concurrency.max(1)).unwrap_or(1);
        let mut poll = tokio::time::interval(Duration::from_millis(self.settings.poll_interval_ms));
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut in_flight = FuturesUnordered::new();
        // Whether more sagas may be due than were claimed last time.
        let mut more = true;
        // A claim under way, with the slots it asks for. It runs alongside the sagas in hand,
        // never instead of them: a saga paused while holding a connection, with the claim
        // waiting for one, would starve the pool.
        let mut claiming: Option<(usize, ClaimFuture<'_>)> = None;
        loop {
            if claiming.is_none() && more && in_flight.len() < concurrency && !stop.is_cancelled() {
                let free = concurrency - in_flight.len();
                claiming = Some((free, Box::pin(self.claim(free))));
                more = false;
            }
            let claimed = async {
                match claiming.as_mut() {
                    Some((free, claim)) => (*free, claim.await),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = stop.cancelled() => break,
                (free, result) = claimed => {
                    claiming = None;
                    match result {
                        Ok(due) => {
                            more = due.len() == free;
                            in_flight.extend(due.into_iter().map(|order| self.drive(order, &stop)));
                        }
                        Err(error) => {
                            tracing::warn!(error = format!("{error:#}"), "claiming sagas failed");
                        }
                    }
                }
                Some(result) = in_flight.next(), if !in_flight.is_empty() => {
                    if let Err(error) = result {
                        tracing::warn!(error = format!("{error:#}"), "a saga step failed");
                    }
                }
                () = self.wake.notified() => more = true,
                _ = poll.tick() => more = true,
            }
        }
        while let Some(result) = in_flight.next().await {
            if let Err(error) = result {
                tracing::warn!(error = format!("{error:#}"), "a saga step failed");
            }
        }
        tracing::info!(worker = %self.id, "saga worker stopped");
    }

    /// One round: claims due sagas and takes each one step (and lets go of it); returns how
    /// many. For tests that step sagas by hand.
    pub async fn run_once(&self) -> anyhow::Result<usize> {
        let concurrency = usize::try_from(self.settings.concurrency.max(1)).unwrap_or(1);
        let due = self.claim(concurrency).await?;
        let count = due.len();
        let steps = due.iter().map(|order| async move {
            let mut items = None;
            self.step(order, &mut items, false).await
        });
        for result in join_all(steps).await {
            result?;
        }
        Ok(count)
    }

    async fn claim(&self, limit: usize) -> anyhow::Result<Vec<OrderRow>> {
        let lease = Duration::from_secs(self.settings.lease_secs);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        Ok(store::claim_due(self.id, limit, lease, &self.pool).await?)
    }

    /// Takes `order` step after step until it is finished or has to wait, or `stop`.
    async fn drive(&self, mut order: OrderRow, stop: &CancellationToken) -> anyhow::Result<()> {
        // Read once per claim: reserving needs them, and so does the final event.
        let mut items = None;
        for left in (0..MAX_STEPS_PER_CLAIM).rev() {
            let keep = left > 0;
            match self.step(&order, &mut items, keep).await? {
                Some(next) if stop.is_cancelled() => {
                    store::release_lease(next.id, self.id, &self.pool).await?;
                    return Ok(());
                }
                Some(next) => order = next,
                None => return Ok(()),
            }
        }
        Ok(())
    }

    /// Takes `order` one step. With `keep_lease`, returns the order after the step if it still
    /// holds the lease and has another step to take.
    ///
    /// The step's span (`saga {step}`) is a child of the request that placed or cancelled the
    /// order, whichever worker or replica takes it: the calls it makes and the event it writes
    /// carry that trace on.
    async fn step(
        &self,
        order: &OrderRow,
        items: &mut Option<Vec<ItemRow>>,
        keep_lease: bool,
    ) -> anyhow::Result<Option<OrderRow>> {
        let state = SagaState::from(order);
        let plan = decide::plan(&state);
        let name = match &plan {
            Plan::Finished => return Ok(None),
            Plan::Record(_) => "close",
            Plan::Call(step) => step.name(),
        };
        // Named before it starts: a span's name cannot change once its context is in use.
        let span = tracing::info_span!(
            "saga.step",
            otel.name = %format!("saga {name}"),
            otel.kind = "internal",
            order_id = %order.id,
            status = %order.status,
            saga.step = name,
            saga.result = tracing::field::Empty,
        );
        if let Some(traceparent) = &order.traceparent {
            platform_telemetry::propagation::set_parent_from_traceparent(&span, traceparent);
        }
        async {
            let started = Instant::now();
            let action = match plan {
                Plan::Finished => return Ok(None),
                Plan::Record(action) => action,
                Plan::Call(step) => {
                    let outcome = self.perform(step, order, items).await?;
                    decide::decide(&state, step, outcome, &self.settings)
                }
            };
            let result = match &action {
                Action::Advance { .. } | Action::Compensated { .. } => "ok",
                Action::Cancel(_) => "cancel",
                Action::Retry { .. } | Action::Postpone { .. } => "retry",
            };
            tracing::Span::current().record("saga.result", result);
            metrics::histogram!("orders_saga_step_duration_seconds", "step" => name, "result" => result)
                .record(started.elapsed().as_secs_f64());
            self.apply(order, action, items, keep_lease).await
        }
        .instrument(span)
        .await
    }

    /// Makes the step's call and puts the answer in the saga's words.
    async fn perform(
        &self,
        step: Step,
        order: &OrderRow,
        items: &mut Option<Vec<ItemRow>>,
    ) -> anyhow::Result<Outcome> {
        Ok(match step {
            Step::Reserve => self.reserve(order, items).await?,
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

    async fn reserve(
        &self,
        order: &OrderRow,
        items: &mut Option<Vec<ItemRow>>,
    ) -> anyhow::Result<Outcome> {
        if items.is_none() {
            *items = Some(store::items(order.id, &self.pool).await?);
        }
        let items = items
            .iter()
            .flatten()
            .map(|item| ReservationItem {
                sku: item.sku.clone(),
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

    /// Writes the decision: the new state, its history, its event; or the retry. With
    /// `keep_lease`, returns the order as it now is when it has another step to take.
    async fn apply(
        &self,
        order: &OrderRow,
        action: Action,
        items: &mut Option<Vec<ItemRow>>,
        keep_lease: bool,
    ) -> anyhow::Result<Option<OrderRow>> {
        let from = order.status;
        let to = action.status_after(from);
        let change = match &action {
            Action::Retry { after, error } => {
                tracing::info!(%error, retry_in = ?after, "step failed; retrying later");
                store::retry_later(order.id, self.id, error, *after, &self.pool).await?;
                return Ok(None);
            }
            Action::Postpone { after } => {
                store::postpone(order.id, self.id, *after, &self.pool).await?;
                return Ok(None);
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
        let lost = || {
            tracing::warn!(
                "lost the lease before recording the step; another worker has the order"
            );
        };
        if !to.is_terminal() {
            // One statement: no transaction to open and commit.
            let lease = Duration::from_secs(self.settings.lease_secs);
            let keep = keep_lease.then_some(lease);
            let moved = store::transition(order.id, self.id, &change, keep, &self.pool).await?;
            match &moved {
                None => lost(),
                Some(_) if to != from => tracing::info!(from = %from, to = %to, "order moved"),
                Some(_) => {}
            }
            return Ok(moved.filter(|_| keep_lease));
        }
        let mut tx = self.pool.begin().await?;
        let Some(row) = store::transition(order.id, self.id, &change, None, &mut *tx).await? else {
            lost();
            return Ok(None);
        };
        if items.is_none() {
            *items = Some(store::items(order.id, &mut *tx).await?);
        }
        self.announce(&row, items.as_deref().unwrap_or_default(), &mut tx)
            .await?;
        crate::settled::announce(order.id, &mut tx).await?;
        tx.commit().await?;
        tracing::info!(from = %from, to = %to, "order moved");
        record_outcome(order, to, &action);
        Ok(None)
    }

    /// The event of a finished order, in the transaction that finishes it.
    async fn announce(
        &self,
        order: &OrderRow,
        items: &[ItemRow],
        tx: &mut sqlx::PgConnection,
    ) -> anyhow::Result<()> {
        let items = order_lines(items);
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

/// How often [`report_in_progress`] reads the unfinished orders.
pub const IN_PROGRESS_INTERVAL: Duration = Duration::from_secs(10);

/// Publishes `orders_in_progress{status}` (unfinished orders per status) and
/// `orders_in_progress_oldest_age_seconds` (the oldest one's age, 0 when there is none) now
/// and every `every`, until `stop`. Every replica reports the same figures: aggregate them
/// with `max`, not `sum`.
pub async fn report_in_progress(pool: PgPool, every: Duration, stop: CancellationToken) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        match store::in_progress(&pool).await {
            Ok(rows) => {
                let mut oldest = 0.0_f64;
                for status in OrderStatus::ALL
                    .into_iter()
                    .filter(|status| !status.is_terminal())
                {
                    let (count, age) = rows
                        .iter()
                        .find(|(row, _, _)| *row == status)
                        .map_or((0, 0.0), |(_, count, age)| (*count, *age));
                    oldest = oldest.max(age);
                    #[allow(clippy::cast_precision_loss)] // counts far below 2^52
                    metrics::gauge!("orders_in_progress", "status" => status.as_str())
                        .set(count as f64);
                }
                metrics::gauge!("orders_in_progress_oldest_age_seconds").set(oldest);
            }
            Err(error) => tracing::warn!(%error, "reading the unfinished orders failed"),
        }
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
    // From placing to this outcome (for a customer's cancellation, to the end of its refund).
    let took = (chrono::Utc::now() - order.created_at)
        .to_std()
        .unwrap_or_default();
    metrics::histogram!("orders_settle_duration_seconds", "outcome" => to.as_str())
        .record(took.as_secs_f64());
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
