//! The events of the order service (`orders.*`).

use platform_events::Event;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Money;

/// One line of an order, priced when the order was placed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    /// Product SKU.
    pub sku: String,
    /// Product name at order time.
    pub name: String,
    /// Units ordered.
    pub quantity: u32,
    /// Price of one unit at order time.
    pub unit_price: Money,
    /// `unit_price` times `quantity`.
    pub line_total: Money,
}

/// `orders.created`: an order was placed and its checkout saga starts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCreated {
    /// The order.
    pub order_id: Uuid,
    /// Who placed it.
    pub user_id: Uuid,
    /// What was ordered.
    pub items: Vec<OrderLine>,
    /// The sum of the lines.
    pub total: Money,
}

impl Event for OrderCreated {
    const TYPE: &'static str = "orders.created";
}

/// `orders.confirmed`: stock is committed and payment captured.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderConfirmed {
    /// The order.
    pub order_id: Uuid,
    /// Who placed it.
    pub user_id: Uuid,
    /// What was ordered.
    pub items: Vec<OrderLine>,
    /// What was charged.
    pub total: Money,
    /// The captured payment.
    pub payment_id: Uuid,
}

impl Event for OrderConfirmed {
    const TYPE: &'static str = "orders.confirmed";
}

/// Why an order was cancelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CancellationReason {
    /// An item could not be reserved.
    OutOfStock,
    /// The payment was declined (including insufficient funds).
    PaymentDeclined,
    /// The payment provider did not answer in time.
    PaymentTimeout,
    /// The stock reservation expired before it could be committed.
    ReservationExpired,
    /// The customer cancelled a confirmed order.
    CustomerRequest,
    /// A reason this version of the contract does not know yet.
    #[serde(other)]
    Other,
}

/// `orders.cancelled`: the order ended without a sale (or the sale was undone).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCancelled {
    /// The order.
    pub order_id: Uuid,
    /// Who placed it.
    pub user_id: Uuid,
    /// Why, as a code.
    pub reason: CancellationReason,
    /// Why, in words a customer understands.
    pub detail: String,
    /// What was ordered.
    pub items: Vec<OrderLine>,
    /// The order's total.
    pub total: Money,
    /// What was refunded, when money had been captured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refunded: Option<Money>,
}

impl Event for OrderCancelled {
    const TYPE: &'static str = "orders.cancelled";
}

#[cfg(test)]
mod tests {
    //! Each payload's JSON, written out by hand: if one of these fails, a consumer somewhere
    //! would too.

    use serde_json::{Value, json};

    use super::*;
    use crate::pinning::{eur, id, parses, pinned};

    fn line() -> OrderLine {
        OrderLine {
            sku: "MUG-001".to_owned(),
            name: "Enamel mug".to_owned(),
            quantity: 2,
            unit_price: eur(1250),
            line_total: eur(2500),
        }
    }

    fn line_json() -> Value {
        json!({
            "sku": "MUG-001",
            "name": "Enamel mug",
            "quantity": 2,
            "unit_price": {"minor": 1250, "currency": "EUR"},
            "line_total": {"minor": 2500, "currency": "EUR"}
        })
    }

    #[test]
    fn order_events_are_pinned() {
        pinned(
            &OrderCreated {
                order_id: id(2),
                user_id: id(1),
                items: vec![line()],
                total: eur(2500),
            },
            &json!({
                "order_id": "02020202-0202-0202-0202-020202020202",
                "user_id": "01010101-0101-0101-0101-010101010101",
                "items": [line_json()],
                "total": {"minor": 2500, "currency": "EUR"}
            }),
        );
        pinned(
            &OrderConfirmed {
                order_id: id(2),
                user_id: id(1),
                items: vec![line()],
                total: eur(2500),
                payment_id: id(3),
            },
            &json!({
                "order_id": "02020202-0202-0202-0202-020202020202",
                "user_id": "01010101-0101-0101-0101-010101010101",
                "items": [line_json()],
                "total": {"minor": 2500, "currency": "EUR"},
                "payment_id": "03030303-0303-0303-0303-030303030303"
            }),
        );
        pinned(
            &OrderCancelled {
                order_id: id(2),
                user_id: id(1),
                reason: CancellationReason::PaymentDeclined,
                detail: "Your card was declined.".to_owned(),
                items: vec![line()],
                total: eur(2500),
                refunded: None,
            },
            &json!({
                "order_id": "02020202-0202-0202-0202-020202020202",
                "user_id": "01010101-0101-0101-0101-010101010101",
                "reason": "payment_declined",
                "detail": "Your card was declined.",
                "items": [line_json()],
                "total": {"minor": 2500, "currency": "EUR"}
            }),
        );
    }

    #[test]
    fn a_cancellation_can_carry_the_refund() {
        let json = json!({
            "order_id": "02020202-0202-0202-0202-020202020202",
            "user_id": "01010101-0101-0101-0101-010101010101",
            "reason": "customer_request",
            "detail": "You cancelled the order.",
            "items": [],
            "total": {"minor": 2500, "currency": "EUR"},
            "refunded": {"minor": 2500, "currency": "EUR"}
        });
        let cancelled: OrderCancelled = parses(json.clone());
        assert_eq!(cancelled.refunded, Some(eur(2500)));
        assert_eq!(serde_json::to_value(&cancelled).unwrap(), json);
    }

    #[test]
    fn an_unknown_cancellation_reason_reads_as_other_instead_of_failing() {
        let reason: CancellationReason = parses(json!("fraud_suspected"));
        assert_eq!(reason, CancellationReason::Other);
    }
}
