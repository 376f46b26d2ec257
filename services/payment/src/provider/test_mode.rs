//! The built-in test-mode provider: behaves like a card processor's test mode, with card numbers
//! that trigger each outcome. It keeps its books in tables of its own (`test_provider_*`),
//! standing in for the processor's systems, so its idempotency survives restarts as a real
//! processor's would. It never stores a card number, only what each test card does.
//!
//! | card number | outcome |
//! |---|---|
//! | 4242 4242 4242 4242, 5555 5555 5555 4444, any other valid number | captured |
//! | 4000 0000 0000 0002 | declined |
//! | 4000 0000 0000 9995 | declined: insufficient funds |
//! | 4000 0000 0000 3220 | captured, but only after the configured delay (longer than callers' deadlines) |
//! | 4000 0000 0000 0119 | the first attempt fails as unavailable; a retry with the same key captures |
//!
//! A latency (none by default) delays every answer to a charge or a refund, as a processor
//! having a bad day does.

use std::time::Duration;

use anyhow::Context as _;
use async_trait::async_trait;
use sqlx::PgPool;
use uuid::Uuid;

use super::{
    CardDetails, ChargeOutcome, DeclineReason, PaymentProvider, ProviderError, TokenizedCard,
};
use crate::domain::Money;

/// What a test card does when charged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Behaviour {
    Succeed,
    Decline,
    InsufficientFunds,
    Slow,
    FailOnce,
}

impl Behaviour {
    fn of(number: &str) -> Self {
        match number {
            "4000000000000002" => Self::Decline,
            "4000000000009995" => Self::InsufficientFunds,
            "4000000000003220" => Self::Slow,
            "4000000000000119" => Self::FailOnce,
            _ => Self::Succeed,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Succeed => "succeed",
            Self::Decline => "decline",
            Self::InsufficientFunds => "insufficient_funds",
            Self::Slow => "slow",
            Self::FailOnce => "fail_once",
        }
    }

    fn parse(stored: &str) -> Option<Self> {
        [
            Self::Succeed,
            Self::Decline,
            Self::InsufficientFunds,
            Self::Slow,
            Self::FailOnce,
        ]
        .into_iter()
        .find(|behaviour| behaviour.as_str() == stored)
    }
}

/// The test-mode provider.
#[derive(Clone)]
pub struct TestProvider {
    pool: PgPool,
    slow_delay: Duration,
    latency: Duration,
}

impl TestProvider {
    /// A provider keeping its books in `pool`; every charge and refund answers after
    /// `latency`, and the slow card's charges `slow_delay` later still.
    pub fn new(pool: PgPool, slow_delay: Duration, latency: Duration) -> Self {
        Self {
            pool,
            slow_delay,
            latency,
        }
    }

    async fn behaviour(&self, token: &str) -> Result<Behaviour, ProviderError> {
        let stored: Option<String> =
            sqlx::query_scalar("SELECT behaviour FROM test_provider_cards WHERE token = $1")
                .bind(token)
                .fetch_optional(&self.pool)
                .await
                .context("reading a test card")?;
        let stored = stored
            .ok_or_else(|| ProviderError::Rejected(format!("no card has the token {token}")))?;
        Behaviour::parse(&stored).ok_or_else(|| {
            ProviderError::Unexpected(anyhow::anyhow!("unknown test card behaviour `{stored}`"))
        })
    }
}

type ChargeRow = (Option<String>, Option<String>, Option<String>, i32);

fn outcome(row: &ChargeRow) -> Option<ChargeOutcome> {
    match row {
        (Some(outcome), Some(reference), _, _) if outcome == "captured" => {
            Some(ChargeOutcome::Captured {
                reference: reference.clone(),
            })
        }
        (Some(outcome), _, Some(reason), _) if outcome == "declined" => {
            let reason = DeclineReason::parse(reason)?;
            Some(ChargeOutcome::Declined {
                reason,
                message: decline_message(reason).to_owned(),
            })
        }
        _ => None,
    }
}

fn decline_message(reason: DeclineReason) -> &'static str {
    match reason {
        DeclineReason::Declined => "the card was declined",
        DeclineReason::InsufficientFunds => "the card has insufficient funds",
    }
}

#[async_trait]
impl PaymentProvider for TestProvider {
    async fn tokenize(&self, card: &CardDetails<'_>) -> Result<TokenizedCard, ProviderError> {
        let token = format!("tok_test_{}", Uuid::new_v4().simple());
        sqlx::query("INSERT INTO test_provider_cards (token, behaviour) VALUES ($1, $2)")
            .bind(&token)
            .bind(Behaviour::of(card.number.expose()).as_str())
            .execute(&self.pool)
            .await
            .context("storing a test card")?;
        Ok(TokenizedCard {
            token,
            brand: card.number.brand(),
            last4: card.number.last4().to_owned(),
        })
    }

    async fn charge(
        &self,
        idempotency_key: &str,
        token: &str,
        amount: &Money,
    ) -> Result<ChargeOutcome, ProviderError> {
        let behaviour = self.behaviour(token).await?;
        // Record the attempt (or count another one), and read what the books already say.
        let row: ChargeRow = sqlx::query_as(
            "INSERT INTO test_provider_charges (idempotency_key, token, amount_minor, currency) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (idempotency_key) DO UPDATE \
                 SET attempts = test_provider_charges.attempts + 1 \
             RETURNING outcome, reference, decline_reason, attempts",
        )
        .bind(idempotency_key)
        .bind(token)
        .bind(amount.minor)
        .bind(&amount.currency)
        .fetch_one(&self.pool)
        .await
        .context("recording a test charge")?;
        tokio::time::sleep(self.latency).await;
        if let Some(done) = outcome(&row) {
            return Ok(done);
        }
        let decided = match behaviour {
            Behaviour::FailOnce if row.3 == 1 => {
                return Err(ProviderError::Unavailable(
                    "processing error (test card 4000 0000 0000 0119 fails its first attempt)"
                        .to_owned(),
                ));
            }
            Behaviour::Slow => {
                tokio::time::sleep(self.slow_delay).await;
                ("captured", None)
            }
            Behaviour::Succeed | Behaviour::FailOnce => ("captured", None),
            Behaviour::Decline => ("declined", Some(DeclineReason::Declined)),
            Behaviour::InsufficientFunds => ("declined", Some(DeclineReason::InsufficientFunds)),
        };
        let reference = format!("ch_test_{}", Uuid::new_v4().simple());
        // The first outcome written wins: a concurrent attempt with the same key reads it.
        let row: ChargeRow = sqlx::query_as(
            "UPDATE test_provider_charges SET \
                 outcome = COALESCE(outcome, $2), \
                 reference = CASE WHEN outcome IS NULL THEN $3 ELSE reference END, \
                 decline_reason = CASE WHEN outcome IS NULL THEN $4 ELSE decline_reason END \
             WHERE idempotency_key = $1 \
             RETURNING outcome, reference, decline_reason, attempts",
        )
        .bind(idempotency_key)
        .bind(decided.0)
        .bind((decided.0 == "captured").then_some(reference))
        .bind(decided.1.map(DeclineReason::as_str))
        .fetch_one(&self.pool)
        .await
        .context("settling a test charge")?;
        outcome(&row).ok_or_else(|| {
            ProviderError::Unexpected(anyhow::anyhow!("the test charge has no outcome"))
        })
    }

    async fn refund(
        &self,
        idempotency_key: &str,
        charge_reference: &str,
        amount: &Money,
    ) -> Result<String, ProviderError> {
        tokio::time::sleep(self.latency).await;
        let mut tx = self.pool.begin().await.context("starting a test refund")?;
        let repeated: Option<String> = sqlx::query_scalar(
            "SELECT reference FROM test_provider_refunds WHERE idempotency_key = $1",
        )
        .bind(idempotency_key)
        .fetch_optional(&mut *tx)
        .await
        .context("reading a test refund")?;
        if let Some(reference) = repeated {
            return Ok(reference);
        }
        // Locking the charge serialises refunds of it, so their sum is checked atomically.
        let captured: Option<i64> = sqlx::query_scalar(
            "SELECT amount_minor FROM test_provider_charges \
             WHERE reference = $1 AND outcome = 'captured' FOR UPDATE",
        )
        .bind(charge_reference)
        .fetch_optional(&mut *tx)
        .await
        .context("reading a test charge")?;
        let captured = captured.ok_or_else(|| {
            ProviderError::Rejected(format!("no captured charge {charge_reference}"))
        })?;
        let refunded: i64 = sqlx::query_scalar(
            "SELECT COALESCE(sum(amount_minor), 0)::bigint FROM test_provider_refunds \
             WHERE charge_reference = $1",
        )
        .bind(charge_reference)
        .fetch_one(&mut *tx)
        .await
        .context("summing test refunds")?;
        if refunded + amount.minor > captured {
            return Err(ProviderError::Rejected(format!(
                "refunding {} would exceed the {} left of the charge",
                amount.minor,
                captured - refunded
            )));
        }
        let reference = format!("re_test_{}", Uuid::new_v4().simple());
        sqlx::query(
            "INSERT INTO test_provider_refunds \
                 (idempotency_key, charge_reference, amount_minor, reference) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(idempotency_key)
        .bind(charge_reference)
        .bind(amount.minor)
        .bind(&reference)
        .execute(&mut *tx)
        .await
        .context("recording a test refund")?;
        tx.commit().await.context("committing a test refund")?;
        Ok(reference)
    }
}
