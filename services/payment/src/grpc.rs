//! The internal gRPC API: payment methods, charges and refunds for the checkout saga.

use platform_auth::CallerService;
use platform_http::FieldError;
use platform_proto::common::v1 as common;
use platform_proto::payment::v1::payment_service_server::PaymentService;
use platform_proto::payment::v1::{
    self as proto, ChargeRequest, ChargeResponse, GetPaymentMethodRequest,
    GetPaymentMethodResponse, PaymentStatus, RefundRequest, RefundResponse,
};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::domain::{self, Money};
use crate::payments::{PaymentError, Payments};

/// `platform.payment.v1.PaymentService`, served behind the service-credential interceptor.
pub struct PaymentGrpc {
    payments: Payments,
}

impl PaymentGrpc {
    /// The service over `payments`.
    pub fn new(payments: Payments) -> Self {
        Self { payments }
    }
}

fn uuid(field: &str, raw: &str) -> Result<Uuid, Status> {
    Uuid::parse_str(raw)
        .map_err(|_| Status::invalid_argument(format!("{field} `{raw}` is not a UUID")))
}

fn money(amount: Option<common::Money>) -> Result<Money, Status> {
    let amount = amount.ok_or_else(|| Status::invalid_argument("amount is required"))?;
    Money::try_from(amount).map_err(|invalid| {
        let fields = invalid.in_field("amount").into_iter();
        PaymentError::Invalid(fields.map(FieldError::from).collect()).into()
    })
}

#[tonic::async_trait]
impl PaymentService for PaymentGrpc {
    async fn get_payment_method(
        &self,
        request: Request<GetPaymentMethodRequest>,
    ) -> Result<Response<GetPaymentMethodResponse>, Status> {
        CallerService::of(&request)?;
        let request = request.into_inner();
        let user_id = uuid("user_id", &request.user_id)?;
        let id = uuid("payment_method_id", &request.payment_method_id)?;
        let method = self.payments.method(user_id, id).await?;
        Ok(Response::new(GetPaymentMethodResponse {
            payment_method: Some(proto::PaymentMethod {
                id: method.id.to_string(),
                brand: method.brand,
                last4: method.last4,
                exp_month: u32::from(method.exp_month),
                exp_year: u32::from(method.exp_year),
            }),
        }))
    }

    #[tracing::instrument(skip_all, fields(caller, order_id))]
    async fn charge(
        &self,
        request: Request<ChargeRequest>,
    ) -> Result<Response<ChargeResponse>, Status> {
        let caller = CallerService::of(&request)?.name().to_owned();
        tracing::Span::current().record("caller", caller.as_str());
        let request = request.into_inner();
        tracing::Span::current().record("order_id", request.order_id.as_str());
        let order_id = uuid("order_id", &request.order_id)?;
        let user_id = uuid("user_id", &request.user_id)?;
        let method_id = uuid("payment_method_id", &request.payment_method_id)?;
        let amount = money(request.amount)?;
        let payment = self
            .payments
            .charge(order_id, user_id, &amount, method_id)
            .await?;
        let status = match payment.status {
            domain::PaymentStatus::Captured => PaymentStatus::Captured,
            domain::PaymentStatus::Failed => PaymentStatus::Failed,
            // `charge` answers a pending payment with `InProgress`; the contract has no word
            // for it.
            domain::PaymentStatus::Pending => PaymentStatus::Unspecified,
        };
        Ok(Response::new(ChargeResponse {
            payment_id: payment.id.to_string(),
            status: status.into(),
            failure_reason: payment.failure_reason.unwrap_or_default(),
        }))
    }

    #[tracing::instrument(skip_all, fields(caller, order_id))]
    async fn refund(
        &self,
        request: Request<RefundRequest>,
    ) -> Result<Response<RefundResponse>, Status> {
        let caller = CallerService::of(&request)?.name().to_owned();
        tracing::Span::current().record("caller", caller.as_str());
        let request = request.into_inner();
        tracing::Span::current().record("order_id", request.order_id.as_str());
        let order_id = uuid("order_id", &request.order_id)?;
        let amount = money(request.amount)?;
        let refund = self
            .payments
            .refund(order_id, &amount, Some(request.idempotency_key.as_str()))
            .await?;
        Ok(Response::new(RefundResponse {
            refund_id: refund.id.to_string(),
            refunded_total: Some(refund.refunded_total.into()),
            payment_id: refund.payment_id.to_string(),
        }))
    }
}
