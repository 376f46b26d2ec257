//! The services the saga calls, over gRPC, through the kit's client wrapper: each call with a
//! deadline, the service credential and trace context, behind a circuit breaker per
//! downstream, its outcome sorted into [`CallError`].

use platform_contracts::Money;
use platform_kit::Kit;
use platform_kit::downstream::Downstream;
use platform_proto::inventory::v1::inventory_service_client::InventoryServiceClient;
use platform_proto::inventory::v1::{
    CommitRequest, GetProductsRequest, Product, ReleaseRequest, ReservationItem, ReservationStatus,
    ReserveRequest,
};
use platform_proto::payment::v1::payment_service_client::PaymentServiceClient;
use platform_proto::payment::v1::{
    self as payment, ChargeRequest, ChargeResponse, GetPaymentMethodRequest, RefundRequest,
    RefundResponse,
};
use uuid::Uuid;

use crate::config::{Config, INVENTORY_TIMEOUT, PAYMENT_TIMEOUT};

pub use platform_kit::downstream::CallError;

type Channel = platform_kit::downstream::GrpcChannel;

/// The inventory and payment services, with their settings (or the registry's addresses and
/// the default deadlines).
pub fn connect(kit: &Kit, config: &Config) -> anyhow::Result<(Inventory, Payments)> {
    let inventory = kit.downstream(
        "inventory",
        &config.inventory,
        INVENTORY_TIMEOUT,
        InventoryServiceClient::new,
    )?;
    let payments = kit.downstream(
        "payment",
        &config.payment,
        PAYMENT_TIMEOUT,
        PaymentServiceClient::new,
    )?;
    Ok((Inventory(inventory), Payments(payments)))
}

/// The inventory service.
#[derive(Clone, Debug)]
pub struct Inventory(pub Downstream<InventoryServiceClient<Channel>>);

/// The payment service.
#[derive(Clone, Debug)]
pub struct Payments(pub Downstream<PaymentServiceClient<Channel>>);

impl Inventory {
    /// Prices and availability of the SKUs.
    pub async fn products(&self, skus: Vec<String>) -> Result<Vec<Product>, CallError> {
        let request = GetProductsRequest { skus };
        self.0
            .call(request, |mut c, r| async move { c.get_products(r).await })
            .await
            .map(|response| response.products)
    }

    /// Reserves the items for the order (all or nothing; idempotent per order).
    pub async fn reserve(
        &self,
        order_id: Uuid,
        items: Vec<ReservationItem>,
    ) -> Result<ReservationStatus, CallError> {
        let request = ReserveRequest {
            order_id: order_id.to_string(),
            items,
        };
        self.0
            .call(request, |mut c, r| async move { c.reserve(r).await })
            .await
            .map(|response| response.status())
    }

    /// Returns the order's stock (a no-op if there is none to return).
    pub async fn release(&self, order_id: Uuid) -> Result<ReservationStatus, CallError> {
        let request = ReleaseRequest {
            order_id: order_id.to_string(),
        };
        self.0
            .call(request, |mut c, r| async move { c.release(r).await })
            .await
            .map(|response| response.status())
    }

    /// Turns the order's reservation into a sale.
    pub async fn commit(&self, order_id: Uuid) -> Result<ReservationStatus, CallError> {
        let request = CommitRequest {
            order_id: order_id.to_string(),
        };
        self.0
            .call(request, |mut c, r| async move { c.commit(r).await })
            .await
            .map(|response| response.status())
    }
}

impl Payments {
    /// Whether the payment method is the user's.
    pub async fn payment_method(
        &self,
        user_id: Uuid,
        payment_method_id: Uuid,
    ) -> Result<payment::PaymentMethod, CallError> {
        let request = GetPaymentMethodRequest {
            user_id: user_id.to_string(),
            payment_method_id: payment_method_id.to_string(),
        };
        let response = self
            .0
            .call(
                request,
                |mut c, r| async move { c.get_payment_method(r).await },
            )
            .await?;
        response
            .payment_method
            .ok_or_else(|| CallError::Unavailable("an empty payment method".to_owned()))
    }

    /// Charges the order (idempotent per order id).
    pub async fn charge(
        &self,
        order_id: Uuid,
        user_id: Uuid,
        amount: Money,
        payment_method_id: Uuid,
    ) -> Result<ChargeResponse, CallError> {
        let request = ChargeRequest {
            order_id: order_id.to_string(),
            user_id: user_id.to_string(),
            amount: Some(amount.into()),
            payment_method_id: payment_method_id.to_string(),
        };
        self.0
            .call(request, |mut c, r| async move { c.charge(r).await })
            .await
    }

    /// Refunds the order (idempotent per key).
    pub async fn refund(
        &self,
        order_id: Uuid,
        amount: Money,
        idempotency_key: String,
    ) -> Result<RefundResponse, CallError> {
        let request = RefundRequest {
            order_id: order_id.to_string(),
            amount: Some(amount.into()),
            idempotency_key,
        };
        self.0
            .call(request, |mut c, r| async move { c.refund(r).await })
            .await
    }
}
