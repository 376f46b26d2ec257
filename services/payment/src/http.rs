//! The public HTTP API (behind the gateway): the caller's payment methods and payments.

use axum::Router;
use axum::extract::{FromRef, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use platform_auth::{AuthenticatedUser, JwksVerifier};
use platform_http::{ApiError, FieldError, Json, PageQuery, Path, Problem, Query, paginate};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};
use uuid::Uuid;

use crate::domain::{CardNumber, Cvc, Expiry, NewCard, PaymentStatus};
use crate::payments::{PaymentMethod, Payments};
use crate::store::PaymentRow;

/// What the handlers share.
#[derive(Clone, FromRef)]
pub struct AppState {
    /// The payment operations.
    pub payments: Payments,
    /// Verifies users' access tokens.
    pub verifier: JwksVerifier,
}

/// The API routes (without the standard layers; the application adds them).
pub fn router(state: AppState) -> Router {
    Router::new()
        .route(
            "/api/v1/payment-methods",
            get(list_methods).post(add_method),
        )
        .route(
            "/api/v1/payment-methods/{id}",
            axum::routing::delete(remove_method),
        )
        .route("/api/v1/payments", get(list_payments))
        .route("/api/v1/payments/{id}", get(get_payment))
        .with_state(state)
}

/// The OpenAPI document of this API.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Payment service",
        description = "Payment methods and payments. Card details are sent once, to add a \
                       payment method: only the provider's token, the brand, the last four \
                       digits and the expiry are kept. Charges and refunds happen over the \
                       internal gRPC API, driven by the order service.",
        version = "1"
    ),
    paths(add_method, list_methods, remove_method, list_payments, get_payment),
    components(schemas(
        AddPaymentMethodRequest,
        PaymentMethodResponse,
        PaymentMethodList,
        PaymentResponse,
        PaymentStatus,
        PaymentList,
        MoneyResponse
    )),
    tags(
        (name = "payment methods", description = "The caller's cards"),
        (name = "payments", description = "The caller's payments")
    )
)]
pub struct ApiDoc;

/// The OpenAPI document with the platform's shared components.
pub fn openapi() -> utoipa::openapi::OpenApi {
    platform_http::openapi::with_common_components(ApiDoc::openapi())
}

/// Card details, sent once. Never stored or logged beyond the last four digits.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"card_number": "4242 4242 4242 4242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}))]
pub struct AddPaymentMethodRequest {
    /// 12 to 19 digits (spaces and dashes ignored), passing the Luhn check.
    pub card_number: String,
    /// 1 to 12.
    pub exp_month: i64,
    /// Four digits (or two); the card must not have expired.
    pub exp_year: i64,
    /// 3 digits (4 for American Express).
    pub cvc: String,
}

/// Parses the card at the edge; every invalid field is reported, each named. The expiry is
/// judged against today's date.
impl TryFrom<AddPaymentMethodRequest> for NewCard {
    type Error = Vec<FieldError>;

    fn try_from(request: AddPaymentMethodRequest) -> Result<Self, Self::Error> {
        let mut errors = Vec::new();
        let number = CardNumber::parse(&request.card_number)
            .map_err(|e| errors.push(e))
            .ok();
        let expiry = Expiry::parse(request.exp_month, request.exp_year, Utc::now().date_naive())
            .map_err(|e| errors.extend(e))
            .ok();
        // The code's length depends on the brand: it cannot be judged without a number.
        let cvc = number.as_ref().and_then(|number| {
            Cvc::parse(&request.cvc, number.brand())
                .map_err(|e| errors.push(e))
                .ok()
        });
        match (number, expiry, cvc) {
            (Some(number), Some(expiry), Some(cvc)) => Ok(Self {
                number,
                expiry,
                cvc,
            }),
            _ => Err(errors),
        }
    }
}

/// A stored card.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "019367a8-5b1e-7c2d-9e4f-0a1b2c3d4e5f",
    "brand": "visa",
    "last4": "4242",
    "exp_month": 12,
    "exp_year": 2030,
    "created_at": "2026-11-22T09:30:00Z"
}))]
pub struct PaymentMethodResponse {
    /// Id, to place orders with.
    pub id: Uuid,
    /// `visa`, `mastercard`, `amex`, `discover` or `unknown`.
    pub brand: String,
    /// Last four digits.
    pub last4: String,
    /// Expiry month.
    pub exp_month: u8,
    /// Expiry year.
    pub exp_year: u16,
    /// When it was added.
    pub created_at: DateTime<Utc>,
}

impl From<PaymentMethod> for PaymentMethodResponse {
    fn from(method: PaymentMethod) -> Self {
        Self {
            id: method.id,
            brand: method.brand,
            last4: method.last4,
            exp_month: method.exp_month,
            exp_year: method.exp_year,
            created_at: method.created_at,
        }
    }
}

/// The caller's cards.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PaymentMethodList {
    /// Oldest first.
    pub items: Vec<PaymentMethodResponse>,
}

/// An amount: integer minor units and an ISO 4217 code.
#[derive(Debug, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct MoneyResponse {
    /// Minor units (cents).
    pub minor: i64,
    /// ISO 4217 code.
    pub currency: String,
}

/// A payment.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "019367a8-6c2f-7d3e-8f50-1b2c3d4e5f60",
    "order_id": "019367a8-6b00-7000-8000-000000000001",
    "payment_method_id": "019367a8-5b1e-7c2d-9e4f-0a1b2c3d4e5f",
    "amount": {"minor": 4998, "currency": "EUR"},
    "status": "captured",
    "refunded": {"minor": 0, "currency": "EUR"},
    "created_at": "2026-11-22T09:31:00Z"
}))]
pub struct PaymentResponse {
    /// Payment id.
    pub id: Uuid,
    /// The order it pays for.
    pub order_id: Uuid,
    /// The card charged.
    pub payment_method_id: Uuid,
    /// The amount charged.
    pub amount: MoneyResponse,
    /// Where the charge stands.
    pub status: PaymentStatus,
    /// Why it failed (`declined`, `insufficient_funds`), when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    /// Refunded so far.
    pub refunded: MoneyResponse,
    /// When it was made.
    pub created_at: DateTime<Utc>,
}

impl From<PaymentRow> for PaymentResponse {
    fn from(row: PaymentRow) -> Self {
        Self {
            id: row.id,
            order_id: row.order_id,
            payment_method_id: row.payment_method_id,
            amount: MoneyResponse {
                minor: row.amount_minor,
                currency: row.currency.clone(),
            },
            status: row.status,
            failure_reason: row.failure_reason,
            refunded: MoneyResponse {
                minor: row.refunded_minor,
                currency: row.currency,
            },
            created_at: row.created_at,
        }
    }
}

/// A page of payments.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PaymentList {
    /// Newest first.
    pub items: Vec<PaymentResponse>,
    /// Pass as `before` for the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_before: Option<Uuid>,
}

/// Add a card: validated, handed to the provider, and kept only as the provider's token.
#[utoipa::path(
    post,
    path = "/api/v1/payment-methods",
    tag = "payment methods",
    security(("bearer" = [])),
    request_body = AddPaymentMethodRequest,
    responses(
        (status = 201, description = "Added", body = PaymentMethodResponse),
        (status = 401, description = "Missing or invalid access token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid card number, past expiry or malformed CVC, each named in `errors`", body = Problem, content_type = "application/problem+json")
    )
)]
async fn add_method(
    State(payments): State<Payments>,
    user: AuthenticatedUser,
    Json(request): Json<AddPaymentMethodRequest>,
) -> Result<Response, ApiError> {
    let card = NewCard::try_from(request).map_err(ApiError::Validation)?;
    let method = payments.add_method(user.user_id, &card).await?;
    let location = format!("/api/v1/payment-methods/{}", method.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(PaymentMethodResponse::from(method)),
    )
        .into_response())
}

/// The caller's cards.
#[utoipa::path(
    get,
    path = "/api/v1/payment-methods",
    tag = "payment methods",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's cards", body = PaymentMethodList),
        (status = 401, description = "Missing or invalid access token", body = Problem, content_type = "application/problem+json")
    )
)]
async fn list_methods(
    State(payments): State<Payments>,
    user: AuthenticatedUser,
) -> Result<Json<PaymentMethodList>, ApiError> {
    let items = payments.list_methods(user.user_id).await?;
    Ok(Json(PaymentMethodList {
        items: items.into_iter().map(Into::into).collect(),
    }))
}

/// Remove one of the caller's cards (payments made with it stay).
#[utoipa::path(
    delete,
    path = "/api/v1/payment-methods/{id}",
    tag = "payment methods",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Payment method id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "Malformed id", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such card among the caller's", body = Problem, content_type = "application/problem+json")
    )
)]
async fn remove_method(
    State(payments): State<Payments>,
    user: AuthenticatedUser,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, ApiError> {
    payments.remove_method(user.user_id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's payments, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/payments",
    tag = "payments",
    security(("bearer" = [])),
    params(PageQuery),
    responses(
        (status = 200, description = "A page of payments", body = PaymentList),
        (status = 400, description = "A malformed or out-of-range parameter", body = Problem, content_type = "application/problem+json")
    )
)]
async fn list_payments(
    State(payments): State<Payments>,
    user: AuthenticatedUser,
    Query(page): Query<PageQuery>,
) -> Result<Json<PaymentList>, ApiError> {
    let limit = page.limit()?;
    let rows = payments
        .payments(user.user_id, page.before, page.fetch()?)
        .await?;
    let (rows, next_before) = paginate(rows, limit, |row| row.id);
    let items = rows.into_iter().map(Into::into).collect();
    Ok(Json(PaymentList { items, next_before }))
}

/// One of the caller's payments.
#[utoipa::path(
    get,
    path = "/api/v1/payments/{id}",
    tag = "payments",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Payment id")),
    responses(
        (status = 200, description = "The payment", body = PaymentResponse),
        (status = 404, description = "No such payment among the caller's", body = Problem, content_type = "application/problem+json")
    )
)]
async fn get_payment(
    State(payments): State<Payments>,
    user: AuthenticatedUser,
    Path(id): Path<Uuid>,
) -> Result<Json<PaymentResponse>, ApiError> {
    Ok(Json(payments.payment(user.user_id, id).await?.into()))
}
