//! The contracts between the platform's services: [`Money`], and the payload of every event the
//! platform emits, each implementing [`platform_events::Event`].
//!
//! Each payload's JSON form is pinned by a test; changing it is a breaking change that needs a
//! new `SCHEMA_VERSION`. The modules follow the domains (and streams) the events belong to:
//!
//! - `money`: [`Money`], checked with [`Money::parse`], and its gRPC form
//!   (`platform_proto::common::v1::Money`).
//! - `users`: `users.registered`.
//! - `orders`: `orders.created`, `orders.confirmed`, `orders.cancelled`.
//! - `payments`: `payments.captured`, `payments.failed`, `payments.refunded`.
//! - `inventory`: `inventory.stock_reserved`, `inventory.stock_released`,
//!   `inventory.stock_committed`, `inventory.low_stock`.

mod inventory;
mod money;
mod orders;
mod payments;
mod users;

pub use inventory::{
    LowStock, ReleaseReason, StockCommitted, StockLine, StockReleased, StockReserved,
};
pub use money::{CURRENCIES, InvalidMoney, MAX_MINOR, Money};
pub use orders::{CancellationReason, OrderCancelled, OrderConfirmed, OrderCreated, OrderLine};
pub use payments::{PaymentCaptured, PaymentFailed, PaymentFailureReason, PaymentRefunded};
pub use users::UserRegistered;

#[cfg(test)]
mod pinning {
    //! What the tests of every module share: fixed ids and amounts, and the check that a payload
    //! has exactly the JSON written out by hand.

    use platform_events::Event;
    use serde::de::DeserializeOwned;
    use serde_json::Value;
    use uuid::Uuid;

    use crate::Money;

    pub fn id(n: u8) -> Uuid {
        Uuid::from_bytes([n; 16])
    }

    pub fn eur(minor: i64) -> Money {
        Money::new(minor, "EUR")
    }

    /// Serialises to exactly `expected` and reads back to the same value.
    pub fn pinned<T: Event + PartialEq + std::fmt::Debug>(value: &T, expected: &Value) {
        assert_eq!(
            &serde_json::to_value(value).unwrap(),
            expected,
            "{}",
            T::TYPE
        );
        let back: T = serde_json::from_value(expected.clone()).unwrap();
        assert_eq!(&back, value, "{}", T::TYPE);
    }

    pub fn parses<T: DeserializeOwned>(value: Value) -> T {
        serde_json::from_value(value).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use platform_events::Event;
    use platform_events::streams::domains;

    use super::*;

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
            assert!(domains().contains(&domain), "{event_type} has no stream");
            assert!(!name.contains(['.', '*', '>', ' ']), "{event_type}");
        }
    }
}
