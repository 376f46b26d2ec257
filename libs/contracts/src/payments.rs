//! The events of the payment service (`payments.*`).

use platform_events::Event;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Money;

/// `payments.captured`: money moved from the customer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentCaptured {
    /// The payment.
    pub payment_id: Uuid,
    /// The order it pays for.
    pub order_id: Uuid,
    /// Who paid.
    pub user_id: Uuid,
    /// How much.
    pub amount: Money,
}

impl Event for PaymentCaptured {
    const TYPE: &'static str = "payments.captured";
}

/// Why a charge failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentFailureReason {
    /// The card issuer declined.
    Declined,
    /// Not enough funds.
    InsufficientFunds,
    /// The card has expired.
    ExpiredCard,
    /// The provider did not answer in time or failed.
    ProviderUnavailable,
    /// A reason this version of the contract does not know yet.
    #[serde(other)]
    Other,
}

/// `payments.failed`: a charge did not capture.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentFailed {
    /// The payment attempt.
    pub payment_id: Uuid,
    /// The order it was for.
    pub order_id: Uuid,
    /// Who tried to pay.
    pub user_id: Uuid,
    /// How much.
    pub amount: Money,
    /// Why, as a code.
    pub reason: PaymentFailureReason,
    /// Why, in words.
    pub message: String,
}

impl Event for PaymentFailed {
    const TYPE: &'static str = "payments.failed";
}

/// `payments.refunded`: money went back to the customer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRefunded {
    /// The refund.
    pub refund_id: Uuid,
    /// The payment refunded.
    pub payment_id: Uuid,
    /// Its order.
    pub order_id: Uuid,
    /// Who receives the money.
    pub user_id: Uuid,
    /// This refund's amount.
    pub amount: Money,
    /// Everything refunded for the payment so far, this refund included.
    pub refunded_total: Money,
}

impl Event for PaymentRefunded {
    const TYPE: &'static str = "payments.refunded";
}

#[cfg(test)]
mod tests {
    //! Each payload's JSON, written out by hand: if one of these fails, a consumer somewhere
    //! would too.

    use serde_json::json;

    use super::*;
    use crate::pinning::{eur, id, parses, pinned};

    #[test]
    fn payment_events_are_pinned() {
        pinned(
            &PaymentCaptured {
                payment_id: id(3),
                order_id: id(2),
                user_id: id(1),
                amount: eur(2500),
            },
            &json!({
                "payment_id": "03030303-0303-0303-0303-030303030303",
                "order_id": "02020202-0202-0202-0202-020202020202",
                "user_id": "01010101-0101-0101-0101-010101010101",
                "amount": {"minor": 2500, "currency": "EUR"}
            }),
        );
        pinned(
            &PaymentFailed {
                payment_id: id(3),
                order_id: id(2),
                user_id: id(1),
                amount: eur(2500),
                reason: PaymentFailureReason::InsufficientFunds,
                message: "insufficient funds".to_owned(),
            },
            &json!({
                "payment_id": "03030303-0303-0303-0303-030303030303",
                "order_id": "02020202-0202-0202-0202-020202020202",
                "user_id": "01010101-0101-0101-0101-010101010101",
                "amount": {"minor": 2500, "currency": "EUR"},
                "reason": "insufficient_funds",
                "message": "insufficient funds"
            }),
        );
        pinned(
            &PaymentRefunded {
                refund_id: id(4),
                payment_id: id(3),
                order_id: id(2),
                user_id: id(1),
                amount: eur(1000),
                refunded_total: eur(2500),
            },
            &json!({
                "refund_id": "04040404-0404-0404-0404-040404040404",
                "payment_id": "03030303-0303-0303-0303-030303030303",
                "order_id": "02020202-0202-0202-0202-020202020202",
                "user_id": "01010101-0101-0101-0101-010101010101",
                "amount": {"minor": 1000, "currency": "EUR"},
                "refunded_total": {"minor": 2500, "currency": "EUR"}
            }),
        );
    }

    #[test]
    fn an_unknown_failure_reason_reads_as_other_instead_of_failing() {
        let reason: PaymentFailureReason = parses(json!("card_lost"));
        assert_eq!(reason, PaymentFailureReason::Other);
    }
}
