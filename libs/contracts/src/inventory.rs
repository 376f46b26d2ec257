//! The events of the inventory service (`inventory.*`).

use chrono::{DateTime, Utc};
use platform_events::Event;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

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

    use serde_json::json;

    use super::*;
    use crate::pinning::{id, pinned};

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
}
