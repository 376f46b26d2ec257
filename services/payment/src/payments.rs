//! What the service does: keep payment methods, charge them once per order, refund within what
//! was captured.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, SubsecRound as _, Utc};
use platform_contracts::{
    self as contracts, PaymentCaptured, PaymentFailed, PaymentFailureReason, PaymentRefunded,
};
use platform_events::{Envelope, Namespace};
use platform_http::FieldError;
use sqlx::PgPool;
use tracing::Instrument as _;
use uuid::Uuid;

use crate::domain::{Money, NewCard, PaymentStatus};
pub use crate::error::PaymentError;
use crate::provider::{CardDetails, ChargeOutcome, DeclineReason, PaymentProvider};
use crate::store::{self, PaymentMethodRow, PaymentRow, RefundRow};

/// The `source` of the events this service emits.
pub const SOURCE: &str = crate::SERVICE_NAME;

/// How long a worker may talk to the provider about a charge before another may take over.
const CHARGE_LEASE: Duration = Duration::from_secs(60);

/// A stored card, as the user sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentMethod {
    /// Id, to pay with.
    pub id: Uuid,
    /// Card network.
    pub brand: String,
    /// Last four digits.
    pub last4: String,
    /// Expiry month.
    pub exp_month: u8,
    /// Expiry year.
    pub exp_year: u16,
    /// When it was added.
    pub created_at: DateTime<Utc>,
}

impl From<PaymentMethodRow> for PaymentMethod {
    fn from(row: PaymentMethodRow) -> Self {
        Self {
            id: row.id,
            brand: row.brand,
            last4: row.last4,
            exp_month: u8::try_from(row.exp_month).unwrap_or_default(),
            exp_year: u16::try_from(row.exp_year).unwrap_or_default(),
            created_at: row.created_at,
        }
    }
}

/// The outcome of a refund.
#[derive(Clone, Debug)]
pub struct Refund {
    /// Refund id.
    pub id: Uuid,
    /// The payment refunded.
    pub payment_id: Uuid,
    /// Everything refunded for the payment so far, this refund included.
    pub refunded_total: Money,
}

/// The payment operations, over the service's database and a provider.
#[derive(Clone)]
pub struct Payments {
    pool: PgPool,
    namespace: Namespace,
    provider: Arc<dyn PaymentProvider>,
}

impl Payments {
    /// The operations over `pool`, emitting events into `namespace`, moving money with
    /// `provider`.
    pub fn new(pool: PgPool, namespace: Namespace, provider: Arc<dyn PaymentProvider>) -> Self {
        Self {
            pool,
            namespace,
            provider,
        }
    }

    /// Hands a parsed card to the provider and stores only what the provider returns.
    #[tracing::instrument(skip_all, fields(user_id = %user_id))]
    pub async fn add_method(
        &self,
        user_id: Uuid,
        card: &NewCard,
    ) -> Result<PaymentMethod, PaymentError> {
        let expiry = card.expiry;
        let tokenized = self
            .provider
            .tokenize(&CardDetails {
                number: &card.number,
                expiry,
                cvc: &card.cvc,
            })
            .await?;
        let row = PaymentMethodRow {
            id: Uuid::now_v7(),
            user_id,
            provider_token: tokenized.token,
            brand: tokenized.brand.as_str().to_owned(),
            last4: tokenized.last4,
            exp_month: i16::from(expiry.month),
            exp_year: i16::try_from(expiry.year).context("expiry year")?,
            created_at: Utc::now().trunc_subsecs(6),
        };
        store::insert_method(&row, &self.pool).await?;
        tracing::info!(payment_method_id = %row.id, brand = %row.brand, "payment method added");
        Ok(row.into())
    }

    /// The user's payment methods.
    pub async fn list_methods(&self, user_id: Uuid) -> Result<Vec<PaymentMethod>, PaymentError> {
        Ok(store::list_methods(user_id, &self.pool)
            .await?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// One of the user's payment methods (another user's is not found).
    pub async fn method(&self, user_id: Uuid, id: Uuid) -> Result<PaymentMethod, PaymentError> {
        store::find_method(user_id, id, &self.pool)
            .await?
            .map(Into::into)
            .ok_or_else(|| method_not_found(id))
    }

    /// Removes one of the user's payment methods (payments made with it stay).
    pub async fn remove_method(&self, user_id: Uuid, id: Uuid) -> Result<(), PaymentError> {
        if store::remove_method(user_id, id, &self.pool).await? {
            Ok(())
        } else {
            Err(method_not_found(id))
        }
    }

    /// Charges an order once. A repeat (also a concurrent one) returns the first outcome and
    /// never moves money twice; a decline is an outcome (`failed`), not an error.
    #[tracing::instrument(skip_all, fields(order_id = %order_id, user_id = %user_id))]
    pub async fn charge(
        &self,
        order_id: Uuid,
        user_id: Uuid,
        amount: &Money,
        payment_method_id: Uuid,
    ) -> Result<PaymentRow, PaymentError> {
        let method = store::find_method(user_id, payment_method_id, &self.pool)
            .await?
            .ok_or_else(|| method_not_found(payment_method_id))?;
        let now = Utc::now().trunc_subsecs(6);
        let payment = PaymentRow {
            id: Uuid::now_v7(),
            order_id,
            user_id,
            payment_method_id: method.id,
            amount_minor: amount.minor,
            currency: amount.currency.clone(),
            status: PaymentStatus::Pending,
            provider_reference: None,
            failure_reason: None,
            failure_message: None,
            refunded_minor: 0,
            created_at: now,
            updated_at: now,
        };
        if store::insert_pending(&payment, CHARGE_LEASE, &self.pool).await? {
            return self.settle_detached(payment).await;
        }
        let existing = store::find_by_order(order_id, &self.pool)
            .await?
            .context("the order's payment vanished")?;
        if existing.user_id != user_id
            || existing.amount_minor != amount.minor
            || existing.currency != amount.currency
            || existing.payment_method_id != payment_method_id
        {
            return Err(PaymentError::KeyReused(format!(
                "order {order_id} was already charged with other details"
            )));
        }
        match existing.status {
            PaymentStatus::Pending => {
                if store::take_over(existing.id, CHARGE_LEASE, &self.pool).await? {
                    tracing::info!(payment_id = %existing.id, "resuming a charge whose worker gave up");
                    self.settle_detached(existing).await
                } else {
                    Err(PaymentError::InProgress)
                }
            }
            PaymentStatus::Captured | PaymentStatus::Failed => Ok(existing),
        }
    }

    /// Asks the provider and records the outcome in a task of its own, so that a caller who
    /// stops waiting (a deadline) does not leave the charge half-done.
    async fn settle_detached(&self, payment: PaymentRow) -> Result<PaymentRow, PaymentError> {
        let this = self.clone();
        to_completion("charge", async move { this.settle(payment).await }).await
    }

    async fn settle(&self, payment: PaymentRow) -> Result<PaymentRow, PaymentError> {
        let token = store::method_token(payment.payment_method_id, &self.pool).await?;
        let amount = Money {
            minor: payment.amount_minor,
            currency: payment.currency.clone(),
        };
        let outcome = match self
            .provider
            .charge(&payment.id.to_string(), &token, &amount)
            .await
        {
            Ok(outcome) => outcome,
            Err(error) => {
                tracing::warn!(payment_id = %payment.id, %error, "charge not settled; it can be retried");
                store::release(payment.id, &self.pool).await?;
                return Err(error.into());
            }
        };
        let mut tx = self.pool.begin().await?;
        let settled = match &outcome {
            ChargeOutcome::Captured { reference } => {
                store::settle(
                    payment.id,
                    PaymentStatus::Captured,
                    Some(reference),
                    None,
                    &mut *tx,
                )
                .await?
            }
            ChargeOutcome::Declined { reason, message } => {
                store::settle(
                    payment.id,
                    PaymentStatus::Failed,
                    None,
                    Some((reason.as_str(), message)),
                    &mut *tx,
                )
                .await?
            }
        };
        let Some(settled) = settled else {
            // Another worker settled it first (after this one's lease lapsed); the provider
            // answered both with the same outcome, and its row is the record.
            drop(tx);
            return Ok(store::find_by_order(payment.order_id, &self.pool)
                .await?
                .context("the settled payment vanished")?);
        };
        let money = contracts::Money::new(settled.amount_minor, &settled.currency);
        match &outcome {
            ChargeOutcome::Captured { .. } => {
                let event = Envelope::new(
                    SOURCE,
                    &settled.order_id,
                    PaymentCaptured {
                        payment_id: settled.id,
                        order_id: settled.order_id,
                        user_id: settled.user_id,
                        amount: money,
                    },
                );
                platform_events::outbox::postgres::enqueue(&mut *tx, &self.namespace, &event)
                    .await?;
                metrics::counter!("payments_captured_total", "currency" => settled.currency.clone())
                    .increment(1);
            }
            ChargeOutcome::Declined { reason, message } => {
                let event = Envelope::new(
                    SOURCE,
                    &settled.order_id,
                    PaymentFailed {
                        payment_id: settled.id,
                        order_id: settled.order_id,
                        user_id: settled.user_id,
                        amount: money,
                        reason: match reason {
                            DeclineReason::Declined => PaymentFailureReason::Declined,
                            DeclineReason::InsufficientFunds => {
                                PaymentFailureReason::InsufficientFunds
                            }
                        },
                        message: message.clone(),
                    },
                );
                platform_events::outbox::postgres::enqueue(&mut *tx, &self.namespace, &event)
                    .await?;
                metrics::counter!("payments_failed_total", "reason" => reason.as_str())
                    .increment(1);
            }
        }
        tx.commit().await?;
        tracing::info!(payment_id = %settled.id, status = %settled.status, "charge settled");
        Ok(settled)
    }

    /// Refunds part or all of an order's captured payment. The same `idempotency_key` (by
    /// default the order id) returns the first refund; refunds never exceed the capture.
    #[tracing::instrument(skip_all, fields(order_id = %order_id))]
    pub async fn refund(
        &self,
        order_id: Uuid,
        amount: &Money,
        idempotency_key: Option<&str>,
    ) -> Result<Refund, PaymentError> {
        let order_key = order_id.to_string();
        let key = idempotency_key
            .filter(|key| !key.is_empty())
            .unwrap_or(&order_key);
        if key.len() > 200 {
            return Err(PaymentError::Invalid(vec![FieldError::new(
                "idempotency_key",
                "must be at most 200 characters",
            )]));
        }
        // In a task of its own, as a charge is: a caller whose deadline passes while the
        // provider is slow must not undo a refund the provider made. Its retry waits for the
        // lock below and finds the refund recorded; otherwise a provider slower than every
        // deadline would leave the refund, and whatever waits on it, undone for ever.
        let this = self.clone();
        let (key, amount) = (key.to_owned(), amount.clone());
        to_completion("refund", async move {
            this.record_refund(order_id, &amount, &key).await
        })
        .await
    }

    async fn record_refund(
        &self,
        order_id: Uuid,
        amount: &Money,
        key: &str,
    ) -> Result<Refund, PaymentError> {
        let mut tx = self.pool.begin().await?;
        // The lock serialises refunds of one payment, so the limit below holds under concurrency.
        let payment = store::lock_by_order(order_id, &mut *tx)
            .await?
            .ok_or_else(|| PaymentError::NotFound(format!("no payment for order {order_id}")))?;
        let total = |refunded: i64| Money {
            minor: refunded,
            currency: payment.currency.clone(),
        };
        if let Some(previous) = store::find_refund(payment.id, key, &mut *tx).await? {
            if previous.amount_minor != amount.minor || previous.currency != amount.currency {
                return Err(PaymentError::KeyReused(format!(
                    "refund `{key}` was already made with another amount"
                )));
            }
            return Ok(Refund {
                id: previous.id,
                payment_id: payment.id,
                refunded_total: total(payment.refunded_minor),
            });
        }
        if payment.status != PaymentStatus::Captured {
            return Err(PaymentError::Precondition(format!(
                "the payment for order {order_id} is {}, so there is nothing to refund",
                payment.status
            )));
        }
        if amount.currency != payment.currency {
            return Err(PaymentError::Invalid(vec![FieldError::new(
                "amount.currency",
                format!("must be {}, the currency of the payment", payment.currency),
            )]));
        }
        let refundable = payment.amount_minor - payment.refunded_minor;
        if amount.minor > refundable {
            return Err(PaymentError::Precondition(format!(
                "a refund of {} exceeds the {refundable} {} still refundable",
                amount.minor, payment.currency
            )));
        }
        let reference = payment
            .provider_reference
            .as_deref()
            .context("a captured payment without a provider reference")?;
        let refund_id = Uuid::now_v7();
        let provider_reference = self
            .provider
            .refund(&format!("{}:{key}", payment.id), reference, amount)
            .await?;
        store::insert_refund(
            &RefundRow {
                id: refund_id,
                payment_id: payment.id,
                idempotency_key: key.to_owned(),
                amount_minor: amount.minor,
                currency: amount.currency.clone(),
                provider_reference,
            },
            &mut *tx,
        )
        .await?;
        let updated = store::add_refunded(payment.id, amount.minor, &mut *tx).await?;
        let event = Envelope::new(
            SOURCE,
            &order_id,
            PaymentRefunded {
                refund_id,
                payment_id: payment.id,
                order_id,
                user_id: payment.user_id,
                amount: amount.clone(),
                refunded_total: contracts::Money::new(updated.refunded_minor, &updated.currency),
            },
        );
        platform_events::outbox::postgres::enqueue(&mut *tx, &self.namespace, &event).await?;
        tx.commit().await?;
        metrics::counter!("payments_refunded_total", "currency" => updated.currency.clone())
            .increment(1);
        tracing::info!(payment_id = %payment.id, refund_id = %refund_id, "refunded");
        Ok(Refund {
            id: refund_id,
            payment_id: payment.id,
            refunded_total: total(updated.refunded_minor),
        })
    }

    /// One of the user's payments (another user's is not found).
    pub async fn payment(&self, user_id: Uuid, id: Uuid) -> Result<PaymentRow, PaymentError> {
        store::find_payment(user_id, id, &self.pool)
            .await?
            .ok_or_else(|| PaymentError::NotFound(format!("no payment {id}")))
    }

    /// A page of the user's payments, newest first.
    pub async fn payments(
        &self,
        user_id: Uuid,
        before: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<PaymentRow>, PaymentError> {
        Ok(store::list_payments(user_id, before, limit, &self.pool).await?)
    }
}

fn method_not_found(id: Uuid) -> PaymentError {
    PaymentError::NotFound(format!("no payment method {id}"))
}

/// Runs `work` in a task of its own (in the caller's span) and waits for it. A caller that stops
/// waiting (its deadline) drops only the wait, never the work: a provider call is always
/// recorded, and the caller's retry reads the outcome.
async fn to_completion<T: Send + 'static>(
    what: &str,
    work: impl Future<Output = Result<T, PaymentError>> + Send + 'static,
) -> Result<T, PaymentError> {
    tokio::spawn(work.in_current_span())
        .await
        .with_context(|| format!("the {what} task failed"))?
}
