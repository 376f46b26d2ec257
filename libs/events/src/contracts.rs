//! The platform's event payloads: the contract between the services that emit them and the
//! services that consume them. Each type's JSON form is pinned by a test below; changing it is
//! a breaking change that needs a new `SCHEMA_VERSION`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::envelope::Event;

/// An amount of money: integer minor units (cents) and an ISO 4217 currency code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    /// Minor units, e.g. 1999 for 19.99.
    pub minor: i64,
    /// ISO 4217 code, e.g. `EUR`.
    pub currency: String,
}

/// Currencies the platform sells and charges in (ISO 4217).
pub const CURRENCIES: &[&str] = &[
    "EUR", "USD", "GBP", "CHF", "SEK", "NOK", "DKK", "PLN", "CZK", "CAD", "AUD", "JPY",
];

/// The largest amount a price or a charge may have, in minor units (ten million units of the
/// currency).
pub const MAX_MINOR: i64 = 1_000_000_000;

impl Money {
    /// An amount in minor units of `currency`.
    pub fn new(minor: i64, currency: &str) -> Self {
        Self {
            minor,
            currency: currency.to_owned(),
        }
    }

    /// Checks an amount that comes from outside: positive, at most [`MAX_MINOR`], in one of
    /// [`CURRENCIES`]. Each error is a (field, message) pair naming `{field}.minor` or
    /// `{field}.currency`, e.g. `price.minor`.
    pub fn parse(field: &str, minor: i64, currency: &str) -> Result<Self, Vec<(String, String)>> {
        let mut errors = Vec::new();
        if minor <= 0 {
            errors.push((
                format!("{field}.minor"),
                "must be a positive number of minor units".to_owned(),
            ));
        } else if minor > MAX_MINOR {
            errors.push((
                format!("{field}.minor"),
                format!("must be at most {MAX_MINOR} minor units"),
            ));
        }
        if !CURRENCIES.contains(&currency) {
            errors.push((
                format!("{field}.currency"),
                format!("must be one of {}", CURRENCIES.join(", ")),
            ));
        }
        if errors.is_empty() {
            Ok(Self::new(minor, currency))
        } else {
            Err(errors)
        }
    }
}

/// `users.registered`: a new account exists.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRegistered {
    /// The account.
    pub user_id: Uuid,
    /// Its normalised email address.
    pub email: String,
    /// The name to greet the user with.
    pub display_name: String,
}

impl Event for UserRegistered {
    const TYPE: &'static str = "users.registered";
}

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

/// A quantity of one SKU.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockLine {
    /// Product SKU.
    pub sku: String,
    /// Units.
    pub quantity: u32,
}

/// `inventory.stock_reserved`: stock is held for an order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockReserved {
    /// The order holding the stock.
    pub order_id: Uuid,
    /// What is held.
    pub items: Vec<StockLine>,
    /// When the hold lapses unless committed.
    pub expires_at: DateTime<Utc>,
}

impl Event for StockReserved {
    const TYPE: &'static str = "inventory.stock_reserved";
}

/// Why reserved stock went back on the shelf.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseReason {
    /// The order released it (cancelled before commit).
    Released,
    /// Its time ran out.
    Expired,
    /// A committed sale was undone (a confirmed order was cancelled).
    Restocked,
    /// A reason this version of the contract does not know yet.
    #[serde(other)]
    Other,
}

/// `inventory.stock_released`: held (or sold) stock is available again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockReleased {
    /// The order that held it.
    pub order_id: Uuid,
    /// What came back.
    pub items: Vec<StockLine>,
    /// Why.
    pub reason: ReleaseReason,
}

impl Event for StockReleased {
    const TYPE: &'static str = "inventory.stock_released";
}

/// `inventory.stock_committed`: held stock was sold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockCommitted {
    /// The order that bought it.
    pub order_id: Uuid,
    /// What was sold.
    pub items: Vec<StockLine>,
}

impl Event for StockCommitted {
    const TYPE: &'static str = "inventory.stock_committed";
}

/// `inventory.low_stock`: a product's available stock fell below its threshold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LowStock {
    /// The product's id in the inventory service.
    pub product_id: String,
    /// Its SKU.
    pub sku: String,
    /// Its name.
    pub name: String,
    /// Units available now.
    pub available: i64,
    /// The product's low-stock threshold.
    pub threshold: i64,
}

impl Event for LowStock {
    const TYPE: &'static str = "inventory.low_stock";
}

#[cfg(test)]
mod tests {
    //! Each payload's JSON, written out by hand: if one of these fails, a consumer somewhere
    //! would too.

    use serde::de::DeserializeOwned;
    use serde_json::{Value, json};

    use super::*;

    #[test]
    fn amounts_are_positive_bounded_and_in_a_known_currency() {
        let field = |errors: Vec<(String, String)>| errors[0].0.clone();
        assert_eq!(
            Money::parse("price", 1999, "EUR"),
            Ok(Money::new(1999, "EUR"))
        );
        assert_eq!(
            field(Money::parse("price", 0, "EUR").unwrap_err()),
            "price.minor"
        );
        assert_eq!(
            field(Money::parse("amount", -5, "EUR").unwrap_err()),
            "amount.minor"
        );
        assert_eq!(
            Money::parse("price", MAX_MINOR + 1, "EUR").unwrap_err()[0],
            (
                "price.minor".to_owned(),
                "must be at most 1000000000 minor units".to_owned()
            )
        );
        assert!(Money::parse("price", MAX_MINOR, "JPY").is_ok());
        assert_eq!(
            field(Money::parse("price", 100, "eur").unwrap_err()),
            "price.currency"
        );
        assert_eq!(Money::parse("amount", -1, "XXX").unwrap_err().len(), 2);
    }

    fn id(n: u8) -> Uuid {
        Uuid::from_bytes([n; 16])
    }

    fn eur(minor: i64) -> Money {
        Money::new(minor, "EUR")
    }

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

    /// Serialises to exactly `expected` and reads back to the same value.
    fn pinned<T: Event + PartialEq + std::fmt::Debug>(value: &T, expected: &Value) {
        assert_eq!(
            &serde_json::to_value(value).unwrap(),
            expected,
            "{}",
            T::TYPE
        );
        let back: T = serde_json::from_value(expected.clone()).unwrap();
        assert_eq!(&back, value, "{}", T::TYPE);
    }

    fn parses<T: DeserializeOwned>(value: Value) -> T {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn user_registered_is_pinned() {
        pinned(
            &UserRegistered {
                user_id: id(1),
                email: "ada@example.com".to_owned(),
                display_name: "Ada".to_owned(),
            },
            &json!({
                "user_id": "01010101-0101-0101-0101-010101010101",
                "email": "ada@example.com",
                "display_name": "Ada"
            }),
        );
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
    fn inventory_events_are_pinned() {
        let items = vec![StockLine {
            sku: "MUG-001".to_owned(),
            quantity: 2,
        }];
        let items_json = json!([{"sku": "MUG-001", "quantity": 2}]);
        pinned(
            &StockReserved {
                order_id: id(2),
                items: items.clone(),
                expires_at: "2026-11-21T10:15:00Z".parse().unwrap(),
            },
            &json!({
                "order_id": "02020202-0202-0202-0202-020202020202",
                "items": items_json,
                "expires_at": "2026-11-21T10:15:00Z"
            }),
        );
        pinned(
            &StockReleased {
                order_id: id(2),
                items: items.clone(),
                reason: ReleaseReason::Expired,
            },
            &json!({
                "order_id": "02020202-0202-0202-0202-020202020202",
                "items": items_json,
                "reason": "expired"
            }),
        );
        pinned(
            &StockCommitted {
                order_id: id(2),
                items,
            },
            &json!({
                "order_id": "02020202-0202-0202-0202-020202020202",
                "items": items_json
            }),
        );
        pinned(
            &LowStock {
                product_id: "6740c1f2a1b2c3d4e5f60718".to_owned(),
                sku: "MUG-001".to_owned(),
                name: "Enamel mug".to_owned(),
                available: 3,
                threshold: 5,
            },
            &json!({
                "product_id": "6740c1f2a1b2c3d4e5f60718",
                "sku": "MUG-001",
                "name": "Enamel mug",
                "available": 3,
                "threshold": 5
            }),
        );
    }

    #[test]
    fn an_unknown_reason_code_reads_as_other_instead_of_failing() {
        let reason: CancellationReason = parses(json!("fraud_suspected"));
        assert_eq!(reason, CancellationReason::Other);
        let reason: PaymentFailureReason = parses(json!("card_lost"));
        assert_eq!(reason, PaymentFailureReason::Other);
    }

    #[test]
    fn every_event_type_names_its_subject() {
        let types = [
            UserRegistered::TYPE,
            OrderCreated::TYPE,
            OrderConfirmed::TYPE,
            OrderCancelled::TYPE,
            PaymentCaptured::TYPE,
            PaymentFailed::TYPE,
            PaymentRefunded::TYPE,
            StockReserved::TYPE,
            StockReleased::TYPE,
            StockCommitted::TYPE,
            LowStock::TYPE,
        ];
        for event_type in types {
            let (domain, name) = event_type.split_once('.').unwrap();
            assert!(
                crate::streams::DOMAINS.contains(&domain),
                "{event_type} has no stream"
            );
            assert!(!name.contains(['.', '*', '>', ' ']), "{event_type}");
        }
    }
}
