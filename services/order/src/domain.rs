//! Orders' states and what an order request must look like.

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use platform_http::FieldError;

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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
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
    /// The stored and returned name.
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

impl FromStr for OrderStatus {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        [
            Self::Pending,
            Self::StockReserved,
            Self::Paid,
            Self::Confirmed,
            Self::Cancelling,
            Self::Cancelled,
        ]
        .into_iter()
        .find(|status| status.as_str() == value)
        .ok_or_else(|| format!("unknown order status `{value}`"))
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
        };
        assert_eq!(validate_items(&[], &limits).unwrap_err()[0].field, "items");
        let three = items(&[("A", 1), ("B", 1), ("C", 1)]);
        assert_eq!(
            validate_items(&three, &limits).unwrap_err()[0].message,
            "must hold at most 2 items"
        );
    }

    #[test]
    fn statuses_round_trip_and_know_when_they_are_done() {
        for status in [
            "PENDING",
            "STOCK_RESERVED",
            "PAID",
            "CONFIRMED",
            "CANCELLING",
            "CANCELLED",
        ] {
            assert_eq!(status.parse::<OrderStatus>().unwrap().as_str(), status);
        }
        assert!(OrderStatus::Confirmed.is_terminal());
        assert!(!OrderStatus::Cancelling.is_terminal());
    }
}
