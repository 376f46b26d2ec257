//! The card processor behind the service, as a trait: tokenise a card once, then charge and
//! refund the token. Every charge and refund carries an idempotency key, and a provider must
//! answer a repeated key with the first outcome, never moving money twice (card processors do
//! this; it is what makes retrying after a timeout safe).

use async_trait::async_trait;

use crate::domain::{Brand, CardNumber, Cvc, Expiry, Money};

pub mod test_mode;

/// Card details, on their way to the provider (and nowhere else).
#[derive(Debug)]
pub struct CardDetails<'a> {
    /// The number.
    pub number: &'a CardNumber,
    /// The expiry.
    pub expiry: Expiry,
    /// The security code.
    pub cvc: &'a Cvc,
}

/// What the provider gives back for a card: all the service keeps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenizedCard {
    /// The provider's reference to the card, used to charge it.
    pub token: String,
    /// Card network.
    pub brand: Brand,
    /// Last four digits, to show the user which card it is.
    pub last4: String,
}

/// Why a charge was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeclineReason {
    /// The issuer declined.
    Declined,
    /// Not enough funds.
    InsufficientFunds,
}

impl DeclineReason {
    /// The code stored and sent (`declined`, `insufficient_funds`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Declined => "declined",
            Self::InsufficientFunds => "insufficient_funds",
        }
    }

    /// Reads a stored code.
    pub fn parse(code: &str) -> Option<Self> {
        match code {
            "declined" => Some(Self::Declined),
            "insufficient_funds" => Some(Self::InsufficientFunds),
            _ => None,
        }
    }
}

/// The final outcome of a charge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChargeOutcome {
    /// The money moved.
    Captured {
        /// The provider's reference, needed to refund.
        reference: String,
    },
    /// The card was refused.
    Declined {
        /// Why, as a code.
        reason: DeclineReason,
        /// Why, in words.
        message: String,
    },
}

/// A failure to get an answer at all (as opposed to a decline, which is an answer).
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// Worth retrying with the same idempotency key.
    #[error("the payment provider is unavailable: {0}")]
    Unavailable(String),
    /// The request was refused as malformed; retrying will not help.
    #[error("the payment provider refused the request: {0}")]
    Rejected(String),
    /// Anything else.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// A card processor.
#[async_trait]
pub trait PaymentProvider: Send + Sync + 'static {
    /// Hands the card to the provider and returns its token.
    async fn tokenize(&self, card: &CardDetails<'_>) -> Result<TokenizedCard, ProviderError>;

    /// Charges `amount` to the card behind `token`. A repeated `idempotency_key` returns the
    /// first outcome.
    async fn charge(
        &self,
        idempotency_key: &str,
        token: &str,
        amount: &Money,
    ) -> Result<ChargeOutcome, ProviderError>;

    /// Refunds `amount` of a captured charge; returns the refund's reference. A repeated
    /// `idempotency_key` returns the first refund.
    async fn refund(
        &self,
        idempotency_key: &str,
        charge_reference: &str,
        amount: &Money,
    ) -> Result<String, ProviderError>;
}
