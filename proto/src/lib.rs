//! The platform's internal gRPC contracts, generated from `proto/` at build time.
//!
//! Each service owns one package, versioned (`v1`); a breaking change gets a new package beside
//! the old one so callers can move over at their own pace. Messages several packages carry (such
//! as `Money`) live once, in `common`.

#![allow(clippy::pedantic, missing_docs)]

/// Messages every service's contract shares, such as `Money`.
pub mod common {
    /// Version 1 of the shared messages.
    pub mod v1 {
        tonic::include_proto!("platform.common.v1");
    }
}

/// The user service: account look-ups for other services.
pub mod user {
    /// Version 1 of the user contract.
    pub mod v1 {
        tonic::include_proto!("platform.user.v1");
    }
}

/// The inventory service: catalogue look-ups and stock reservations for the checkout saga.
pub mod inventory {
    /// Version 1 of the inventory contract.
    pub mod v1 {
        tonic::include_proto!("platform.inventory.v1");
    }
}

/// The payment service: payment methods, charges and refunds for the checkout saga.
pub mod payment {
    /// Version 1 of the payment contract.
    pub mod v1 {
        tonic::include_proto!("platform.payment.v1");
    }
}
