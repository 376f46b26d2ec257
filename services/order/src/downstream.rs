//! The services the saga calls, over gRPC: each call with a deadline, the service credential
//! and trace context, behind a circuit breaker per downstream.

use std::sync::Arc;
use std::time::Duration;

use platform_auth::{ServiceCredentials, ServiceTokenInterceptor};
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
use platform_resilience::{BreakerConfig, CircuitBreaker};
use platform_telemetry::grpc::{GrpcClient, GrpcClientLayer};
use tonic::codegen::InterceptedService;
use tonic::transport::Channel;
use tonic::{Code, Status};
use tower::ServiceBuilder;
use uuid::Uuid;

use crate::config::Downstream as Settings;

/// Why a call did not produce an answer the saga can act on.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The downstream is unreachable, overloaded or failing: retry later.
    #[error("{0}")]
    Unavailable(String),
    /// No answer within the deadline: the call may or may not have taken effect.
    #[error("no answer within {0:?}")]
    TimedOut(Duration),
    /// The breaker is open: no call was made; retry after the delay.
    #[error("circuit open; retry in {0:?}")]
    BreakerOpen(Duration),
    /// The downstream answered with a refusal the caller must act on (not found, failed
    /// precondition, invalid argument...).
    #[error("{}: {}", .0.code(), .0.message())]
    Refused(Status),
}

impl CallError {
    /// The refusal's code, if the downstream refused.
    pub fn refused(&self) -> Option<Code> {
        match self {
            Self::Refused(status) => Some(status.code()),
            _ => None,
        }
    }
}

type Client<C> = C;
type Stack = InterceptedService<GrpcClient<Channel>, ServiceTokenInterceptor>;

/// A downstream service: its client, its deadline, its breaker.
struct Downstream<C> {
    client: Client<C>,
    timeout: Duration,
    breaker: Arc<CircuitBreaker>,
}

fn channel(settings: &Settings) -> anyhow::Result<GrpcClient<Channel>> {
    let channel = Channel::from_shared(settings.url.clone())
        .map_err(|error| anyhow::anyhow!("`{}` is not a valid URL: {error}", settings.url))?
        .connect_timeout(settings.timeout)
        .connect_lazy();
    Ok(ServiceBuilder::new()
        .layer(GrpcClientLayer)
        .service(channel))
}

impl<C> Downstream<C> {
    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.set_timeout(self.timeout);
        request
    }

    /// Runs a call through the breaker and sorts its outcome.
    async fn call<T>(
        &self,
        call: impl Future<Output = Result<tonic::Response<T>, Status>>,
    ) -> Result<T, CallError> {
        self.breaker
            .acquire()
            .map_err(|rejected| CallError::BreakerOpen(rejected.retry_after))?;
        match call.await {
            Ok(response) => {
                self.breaker.record_success();
                Ok(response.into_inner())
            }
            Err(status) => Err(self.classify(status)),
        }
    }

    fn classify(&self, status: Status) -> CallError {
        match status.code() {
            // Our own deadline passed (tonic reports it as cancelled) or theirs did.
            Code::Cancelled | Code::DeadlineExceeded => {
                self.breaker.record_failure();
                CallError::TimedOut(self.timeout)
            }
            Code::Unavailable | Code::Unknown | Code::Internal | Code::ResourceExhausted => {
                self.breaker.record_failure();
                CallError::Unavailable(format!("{}: {}", status.code(), status.message()))
            }
            // "In progress, retry": the downstream is healthy.
            Code::Aborted => {
                self.breaker.record_success();
                CallError::Unavailable(status.message().to_owned())
            }
            _ => {
                self.breaker.record_success();
                CallError::Refused(status)
            }
        }
    }
}

/// The inventory service.
#[derive(Clone)]
pub struct Inventory(Arc<Downstream<InventoryServiceClient<Stack>>>);

/// The payment service.
#[derive(Clone)]
pub struct Payments(Arc<Downstream<PaymentServiceClient<Stack>>>);

/// Both downstreams, with breakers configured by `breaker`.
pub fn connect(
    inventory: &Settings,
    payment: &Settings,
    credentials: &ServiceCredentials,
    breaker: BreakerConfig,
) -> anyhow::Result<(Inventory, Payments)> {
    let inventory = Inventory(Arc::new(Downstream {
        client: InventoryServiceClient::with_interceptor(
            channel(inventory)?,
            ServiceTokenInterceptor::new(credentials.clone(), "inventory-service"),
        ),
        timeout: inventory.timeout,
        breaker: Arc::new(CircuitBreaker::new("inventory-service", breaker)),
    }));
    let payments = Payments(Arc::new(Downstream {
        client: PaymentServiceClient::with_interceptor(
            channel(payment)?,
            ServiceTokenInterceptor::new(credentials.clone(), "payment-service"),
        ),
        timeout: payment.timeout,
        breaker: Arc::new(CircuitBreaker::new("payment-service", breaker)),
    }));
    Ok((inventory, payments))
}

impl Inventory {
    /// Prices and availability of the SKUs.
    pub async fn products(&self, skus: Vec<String>) -> Result<Vec<Product>, CallError> {
        let this = &self.0;
        let request = this.request(GetProductsRequest { skus });
        this.call(this.client.clone().get_products(request))
            .await
            .map(|response| response.products)
    }

    /// Reserves the items for the order (all or nothing; idempotent per order).
    pub async fn reserve(
        &self,
        order_id: Uuid,
        items: Vec<ReservationItem>,
    ) -> Result<ReservationStatus, CallError> {
        let this = &self.0;
        let request = this.request(ReserveRequest {
            order_id: order_id.to_string(),
            items,
        });
        this.call(this.client.clone().reserve(request))
            .await
            .map(|response| response.status())
    }

    /// Returns the order's stock (a no-op if there is none to return).
    pub async fn release(&self, order_id: Uuid) -> Result<ReservationStatus, CallError> {
        let this = &self.0;
        let request = this.request(ReleaseRequest {
            order_id: order_id.to_string(),
        });
        this.call(this.client.clone().release(request))
            .await
            .map(|response| response.status())
    }

    /// Turns the order's reservation into a sale.
    pub async fn commit(&self, order_id: Uuid) -> Result<ReservationStatus, CallError> {
        let this = &self.0;
        let request = this.request(CommitRequest {
            order_id: order_id.to_string(),
        });
        this.call(this.client.clone().commit(request))
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
        let this = &self.0;
        let request = this.request(GetPaymentMethodRequest {
            user_id: user_id.to_string(),
            payment_method_id: payment_method_id.to_string(),
        });
        let response = this
            .call(this.client.clone().get_payment_method(request))
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
        amount: payment::Money,
        payment_method_id: Uuid,
    ) -> Result<ChargeResponse, CallError> {
        let this = &self.0;
        let request = this.request(ChargeRequest {
            order_id: order_id.to_string(),
            user_id: user_id.to_string(),
            amount: Some(amount),
            payment_method_id: payment_method_id.to_string(),
        });
        this.call(this.client.clone().charge(request)).await
    }

    /// Refunds the order (idempotent per key).
    pub async fn refund(
        &self,
        order_id: Uuid,
        amount: payment::Money,
        idempotency_key: String,
    ) -> Result<RefundResponse, CallError> {
        let this = &self.0;
        let request = this.request(RefundRequest {
            order_id: order_id.to_string(),
            amount: Some(amount),
            idempotency_key,
        });
        this.call(this.client.clone().refund(request)).await
    }
}
