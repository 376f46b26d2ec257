//! Orders' states and what an order request must look like.

use std::collections::HashSet;
use std::fmt;

use platform_http::FieldError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::config::OrderLimits;

/// Where an order stands in its checkout saga.
///
/// ```text
/// PENDING --reserve--> STOCK_RESERVED --charge--> PAID --commit--> CONFIRMED
///    |                       |                      |                  |
///    | out of stock          | declined / timeout   | expired          | customer cancels
///    v                       v                      v                  v
/// CANCELLED <------------ CANCELLING (refund, release the stock) <-----+
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, sqlx::Type, Serialize, Deserialize, ToSchema)]
// `orders.status` is text with a check, and the API has always said these same names: one
// spelling for both, so rows decode straight into the enum and the JSON stays as it was.
#[sqlx(type_name = "text", rename_all = "SCREAMING_SNAKE_CASE")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    /// Placed; stock not reserved yet.
    Pending,
    /// Stock held for it; not paid yet.
    StockReserved,
    /// Paid; the reservation not committed yet.
    Paid,
    /// Sold. Terminal, unless the customer cancels it.
    Confirmed,
    /// Being undone: a refund and/or the stock's release are under way.
    Cancelling,
    /// Over, without a sale (or with the sale undone). Terminal.
    Cancelled,
}

impl OrderStatus {
    /// Every status, in the saga's order.
    pub const ALL: [Self; 6] = [
        Self::Pending,
        Self::StockReserved,
        Self::Paid,
        Self::Confirmed,
        Self::Cancelling,
        Self::Cancelled,
    ];

    /// The stored and returned name (also the metrics' label).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::StockReserved => "STOCK_RESERVED",
            Self::Paid => "PAID",
            Self::Confirmed => "CONFIRMED",
            Self::Cancelling => "CANCELLING",
            Self::Cancelled => "CANCELLED",
        }
    }

    /// Whether the saga is done with the order.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Confirmed | Self::Cancelled)
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a cancelled order still owes before it may be CANCELLED, done in this order: learn a
/// lost charge's outcome first (it decides whether there is money to give back), then refund,
/// then release the stock. Stored in the three flag columns of `orders`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct Compensation {
    /// Charge again with the same key to learn whether a charge whose answer was lost (it
    /// timed out) captured; if it did, a refund becomes owed.
    pub resolve_payment: bool,
    /// Give the captured money back.
    #[sqlx(rename = "refund_pending")]
    pub refund: bool,
    /// Give the reserved (or sold) stock back.
    #[sqlx(rename = "release_pending")]
    pub release_stock: bool,
}

impl Compensation {
    /// Nothing to undo: nothing was reserved or charged, or it is all undone.
    pub const NOTHING: Self = Self {
        resolve_payment: false,
        refund: false,
        release_stock: false,
    };

    /// Stock is held, no money was taken.
    pub const RELEASE_STOCK: Self = Self {
        release_stock: true,
        ..Self::NOTHING
    };

    /// Stock is held and a charge may or may not have captured.
    pub const RESOLVE_PAYMENT_AND_RELEASE_STOCK: Self = Self {
        resolve_payment: true,
        release_stock: true,
        refund: false,
    };

    /// Stock is held (or sold) and the money was taken.
    pub const REFUND_AND_RELEASE_STOCK: Self = Self {
        refund: true,
        release_stock: true,
        resolve_payment: false,
    };

    /// Whether anything is left to undo.
    pub fn is_owed(self) -> bool {
        self.resolve_payment || self.refund || self.release_stock
    }

    /// Where a cancelled order stands while this is owed: CANCELLING until all is undone.
    pub fn status(self) -> OrderStatus {
        if self.is_owed() {
            OrderStatus::Cancelling
        } else {
            OrderStatus::Cancelled
        }
    }
}

/// One requested line, validated: a well-formed SKU and a quantity within the limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestedItem {
    /// Upper-case SKU.
    pub sku: String,
    /// Units.
    pub quantity: u32,
}

/// An order to place, parsed: its lines (see [`validate_items`]) and the payment method
/// to charge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewOrder {
    /// The lines, in the order requested.
    pub items: Vec<RequestedItem>,
    /// One of the caller's payment methods (whether it is one is asked of the payment service).
    pub payment_method_id: Uuid,
}

/// Checks an order's lines: at least one, at most `max_items`, each SKU well-formed and
/// listed once, each quantity between 1 and `max_quantity`. Every problem is reported.
pub fn validate_items(
    items: &[(String, i64)],
    limits: &OrderLimits,
) -> Result<Vec<RequestedItem>, Vec<FieldError>> {
    let mut errors = Vec::new();
    if items.is_empty() {
        errors.push(FieldError::new("items", "must hold at least one item"));
    }
    if items.len() > limits.max_items {
        errors.push(FieldError::new(
            "items",
            format!("must hold at most {} items", limits.max_items),
        ));
    }
    let mut seen = HashSet::new();
    let mut parsed = Vec::with_capacity(items.len());
    for (index, (sku, quantity)) in items.iter().enumerate() {
        let sku = sku.trim().to_ascii_uppercase();
        if sku.is_empty()
            || sku.len() > 64
            || !sku.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            errors.push(FieldError::new(
                format!("items[{index}].sku"),
                "must be 1 to 64 letters, digits or dashes",
            ));
        } else if !seen.insert(sku.clone()) {
            errors.push(FieldError::new(
                format!("items[{index}].sku"),
                "is listed twice; put the whole quantity on one line",
            ));
        }
        let max = i64::from(limits.max_quantity);
        if *quantity < 1 || *quantity > max {
            errors.push(FieldError::new(
                format!("items[{index}].quantity"),
                format!("must be between 1 and {max}"),
            ));
        }
        parsed.push(RequestedItem {
            sku,
            quantity: u32::try_from(*quantity).unwrap_or(0),
        });
    }
    if errors.is_empty() {
        Ok(parsed)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(list: &[(&str, i64)]) -> Vec<(String, i64)> {
        list.iter()
            .map(|(sku, quantity)| ((*sku).to_owned(), *quantity))
            .collect()
    }

    #[test]
    fn valid_items_are_normalised() {
        let parsed = validate_items(&items(&[(" mug-001 ", 2)]), &OrderLimits::default()).unwrap();
        assert_eq!(
            parsed,
            [RequestedItem {
                sku: "MUG-001".to_owned(),
                quantity: 2
            }]
        );
    }

    #[test]
    fn every_bad_line_is_named() {
        let errors = validate_items(
            &items(&[("MUG-001", 0), ("bad sku!", 1), ("MUG-001", 101)]),
            &OrderLimits::default(),
        )
        .unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "items[0].quantity",
                "items[1].sku",
                "items[2].sku",
                "items[2].quantity"
            ]
        );
    }

    #[test]
    fn empty_and_oversized_orders_are_refused() {
        let limits = OrderLimits {
            max_items: 2,
            max_quantity: 5,
            ..OrderLimits::default()
        };
        assert_eq!(validate_items(&[], &limits).unwrap_err()[0].field, "items");
        let three = items(&[("A", 1), ("B", 1), ("C", 1)]);
        assert_eq!(
            validate_items(&three, &limits).unwrap_err()[0].message,
            "must hold at most 2 items"
        );
    }

    #[test]
    fn statuses_keep_their_upper_case_wire_names_and_know_when_they_are_done() {
        for status in [
            OrderStatus::Pending,
            OrderStatus::StockReserved,
            OrderStatus::Paid,
            OrderStatus::Confirmed,
            OrderStatus::Cancelling,
            OrderStatus::Cancelled,
        ] {
            let json = serde_json::to_value(status).unwrap();
            assert_eq!(json, status.as_str());
            assert_eq!(serde_json::from_value::<OrderStatus>(json).unwrap(), status);
        }
        assert!(OrderStatus::Confirmed.is_terminal());
        assert!(!OrderStatus::Cancelling.is_terminal());
    }

    #[test]
    fn a_cancelled_order_stays_cancelling_while_anything_is_owed() {
        assert_eq!(Compensation::NOTHING.status(), OrderStatus::Cancelled);
        for owed in [
            Compensation::RELEASE_STOCK,
            Compensation::RESOLVE_PAYMENT_AND_RELEASE_STOCK,
            Compensation::REFUND_AND_RELEASE_STOCK,
        ] {
            assert_eq!(owed.status(), OrderStatus::Cancelling, "{owed:?}");
        }
    }
}
