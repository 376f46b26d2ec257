//! The public HTTP API (behind the gateway): place, read and cancel the caller's orders.

use std::time::Duration;

use axum::Router;
use axum::extract::{FromRef, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use platform_auth::{AuthenticatedUser, JwksVerifier};
use platform_http::{ApiError, FieldError, Json, PageQuery, Path, Problem, Query, paginate};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use utoipa::{IntoParams, OpenApi, ToSchema};
use uuid::Uuid;

use crate::config::OrderLimits;
use crate::domain::{NewOrder, OrderStatus, validate_items};
use crate::orders::{Order, Orders};
use crate::settled::MAX_WAIT_SECS;

/// What the handlers share.
#[derive(Clone, FromRef)]
pub struct AppState {
    /// The order operations.
    pub orders: Orders,
    /// Verifies users' access tokens.
    pub verifier: JwksVerifier,
}

/// The header that makes placing an order safe to retry.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The API routes (without the standard layers; the application adds them).
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/orders", get(list_orders).post(place_order))
        .route("/api/v1/orders/{id}", get(get_order))
        .route("/api/v1/orders/{id}/cancel", post(cancel_order))
        .with_state(state)
}

/// The OpenAPI document of this API.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Order service",
        description = "Orders and their checkout: an order is placed as PENDING and moves, \
                       asynchronously, through stock reservation (STOCK_RESERVED) and payment \
                       (PAID) to CONFIRMED, or ends CANCELLED with a reason. Read the order \
                       with `?wait=5` to hear of the outcome as soon as it is written.",
        version = "1"
    ),
    paths(place_order, get_order, list_orders, cancel_order),
    components(schemas(
        PlaceOrderRequest,
        RequestedLine,
        OrderResponse,
        OrderStatus,
        OrderLineResponse,
        MoneyResponse,
        CancellationResponse,
        HistoryEntry,
        OrderList
    )),
    tags((name = "orders", description = "The caller's orders"))
)]
pub struct ApiDoc;

/// The OpenAPI document with the platform's shared components.
pub fn openapi() -> utoipa::openapi::OpenApi {
    platform_http::openapi::with_common_components(ApiDoc::openapi())
}

/// An order to place.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "items": [{"sku": "KIT-MUG-001", "quantity": 2}],
    "payment_method_id": "019367a8-5b1e-7c2d-9e4f-0a1b2c3d4e5f"
}))]
pub struct PlaceOrderRequest {
    /// 1 to 50 lines, each SKU once.
    pub items: Vec<RequestedLine>,
    /// One of the caller's payment methods (see the payment service).
    pub payment_method_id: Uuid,
}

/// A requested line.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestedLine {
    /// Product SKU.
    pub sku: String,
    /// Units, 1 to 100.
    pub quantity: i64,
}

/// Parses an order at the edge, against the configured limits (lines per order, units per
/// line); every invalid line is reported, each named.
impl TryFrom<(PlaceOrderRequest, &OrderLimits)> for NewOrder {
    type Error = Vec<FieldError>;

    fn try_from((request, limits): (PlaceOrderRequest, &OrderLimits)) -> Result<Self, Self::Error> {
        let lines: Vec<(String, i64)> = request
            .items
            .into_iter()
            .map(|line| (line.sku, line.quantity))
            .collect();
        Ok(Self {
            items: validate_items(&lines, limits)?,
            payment_method_id: request.payment_method_id,
        })
    }
}

/// An amount: integer minor units and an ISO 4217 code.
#[derive(Debug, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct MoneyResponse {
    /// Minor units (cents).
    pub minor: i64,
    /// ISO 4217 code.
    pub currency: String,
}

/// A line of an order, priced when it was placed.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OrderLineResponse {
    /// Product SKU.
    pub sku: String,
    /// Product name at order time.
    pub name: String,
    /// Units.
    pub quantity: i32,
    /// Unit price at order time.
    pub unit_price: MoneyResponse,
    /// Unit price times quantity.
    pub line_total: MoneyResponse,
}

/// Why an order was cancelled.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CancellationResponse {
    /// `out_of_stock`, `payment_declined`, `payment_timeout`, `reservation_expired`,
    /// `customer_request` or `other`.
    pub reason: String,
    /// In words.
    pub detail: String,
}

/// A status change.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct HistoryEntry {
    /// The status entered.
    pub status: OrderStatus,
    /// Why, when there is a reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When.
    pub at: DateTime<Utc>,
}

/// An order.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "019367a8-6b00-7000-8000-000000000001",
    "status": "CONFIRMED",
    "status_url": "/api/v1/orders/019367a8-6b00-7000-8000-000000000001",
    "items": [{"sku": "KIT-MUG-001", "name": "Enamel camping mug", "quantity": 2,
               "unit_price": {"minor": 1250, "currency": "EUR"},
               "line_total": {"minor": 2500, "currency": "EUR"}}],
    "total": {"minor": 2500, "currency": "EUR"},
    "payment_method_id": "019367a8-5b1e-7c2d-9e4f-0a1b2c3d4e5f",
    "history": [{"status": "PENDING", "reason": "placed", "at": "2026-11-22T09:31:00Z"},
                {"status": "STOCK_RESERVED", "at": "2026-11-22T09:31:00Z"},
                {"status": "PAID", "at": "2026-11-22T09:31:01Z"},
                {"status": "CONFIRMED", "at": "2026-11-22T09:31:01Z"}],
    "created_at": "2026-11-22T09:31:00Z",
    "updated_at": "2026-11-22T09:31:01Z"
}))]
pub struct OrderResponse {
    /// Order id.
    pub id: Uuid,
    /// Where the order stands in its checkout.
    pub status: OrderStatus,
    /// Where to follow it.
    pub status_url: String,
    /// Its lines.
    pub items: Vec<OrderLineResponse>,
    /// The sum of the lines.
    pub total: MoneyResponse,
    /// The card charged.
    pub payment_method_id: Uuid,
    /// The captured payment, once paid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<Uuid>,
    /// What was refunded, if anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refunded: Option<MoneyResponse>,
    /// Why it was cancelled, if it was (or is being).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancellation: Option<CancellationResponse>,
    /// Every status it went through.
    pub history: Vec<HistoryEntry>,
    /// Placed at.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl From<Order> for OrderResponse {
    fn from(order: Order) -> Self {
        let row = order.row;
        let money = |minor: i64| MoneyResponse {
            minor,
            currency: row.currency.clone(),
        };
        Self {
            id: row.id,
            status: row.status,
            status_url: format!("/api/v1/orders/{}", row.id),
            items: order
                .items
                .into_iter()
                .map(|item| OrderLineResponse {
                    unit_price: MoneyResponse {
                        minor: item.unit_price_minor,
                        currency: item.currency.clone(),
                    },
                    line_total: MoneyResponse {
                        minor: item.unit_price_minor * i64::from(item.quantity),
                        currency: item.currency,
                    },
                    sku: item.sku,
                    name: item.name,
                    quantity: item.quantity,
                })
                .collect(),
            total: money(row.total_minor),
            payment_method_id: row.payment_method_id,
            payment_id: row.payment_id,
            refunded: (row.refunded_minor > 0).then(|| money(row.refunded_minor)),
            cancellation: row
                .cancel_reason
                .clone()
                .map(|reason| CancellationResponse {
                    reason,
                    detail: row.cancel_detail.clone().unwrap_or_default(),
                }),
            history: order
                .history
                .into_iter()
                .map(|entry| HistoryEntry {
                    status: entry.to_status,
                    reason: entry.reason,
                    at: entry.at,
                })
                .collect(),
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// A page of orders.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OrderList {
    /// Newest first.
    pub items: Vec<OrderResponse>,
    /// Pass as `before` for the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_before: Option<Uuid>,
}

fn idempotency_key(headers: &HeaderMap) -> Result<String, ApiError> {
    let value = headers
        .get(IDEMPOTENCY_KEY)
        .ok_or_else(|| ApiError::BadRequest("the Idempotency-Key header is required".to_owned()))?;
    let key = value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|key| !key.is_empty() && key.len() <= 200)
        .ok_or_else(|| {
            ApiError::BadRequest(
                "the Idempotency-Key header must be 1 to 200 visible characters".to_owned(),
            )
        })?;
    Ok(key.to_owned())
}

/// Place an order. It is stored as PENDING and checked out asynchronously: follow `status_url`.
#[utoipa::path(
    post,
    path = "/api/v1/orders",
    tag = "orders",
    security(("bearer" = [])),
    params(("Idempotency-Key" = String, Header, description = "Unique per order attempt; a retry with the same key and body returns the same order")),
    request_body = PlaceOrderRequest,
    responses(
        (status = 201, description = "Placed", body = OrderResponse, headers(("location" = String, description = "The order"))),
        (status = 200, description = "A repeat of an earlier request with the same key: the same order", body = OrderResponse),
        (status = 400, description = "Missing Idempotency-Key, or a malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid access token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid lines or payment method (each named in `errors`), or a key reused with a different body", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Inventory or payment did not answer; retry with the same key", body = Problem, content_type = "application/problem+json")
    )
)]
async fn place_order(
    State(orders): State<Orders>,
    user: AuthenticatedUser,
    headers: HeaderMap,
    Json(request): Json<PlaceOrderRequest>,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    // Hashed as requested, before parsing consumes it: a retry must repeat the request itself.
    let hash = Sha256::digest(
        serde_json::to_vec(&request).map_err(|error| ApiError::Internal(error.into()))?,
    )
    .to_vec();
    let order = NewOrder::try_from((request, orders.limits())).map_err(ApiError::Validation)?;
    let placed = orders.place(user.user_id, &key, &order, hash).await?;
    let body = OrderResponse::from(placed.order);
    let location = body.status_url.clone();
    let status = if placed.replayed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, [(header::LOCATION, location)], Json(body)).into_response())
}

/// One of the caller's orders.
#[utoipa::path(
    get,
    path = "/api/v1/orders/{id}",
    tag = "orders",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Order id"), WaitQuery),
    responses(
        (status = 200, description = "The order (with `wait`: once it is CONFIRMED or CANCELLED, or as it is when the wait is over)", body = OrderResponse),
        (status = 400, description = "A malformed id or `wait`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order among the caller's", body = Problem, content_type = "application/problem+json")
    )
)]
async fn get_order(
    State(orders): State<Orders>,
    user: AuthenticatedUser,
    Path(id): Path<Uuid>,
    Query(query): Query<WaitQuery>,
) -> Result<Json<OrderResponse>, ApiError> {
    let wait = query.wait()?;
    Ok(Json(
        orders
            .get_when_finished(user.user_id, id, wait)
            .await?
            .into(),
    ))
}

/// `?wait=`: how long to hold the answer for the order to finish.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct WaitQuery {
    /// Seconds, 0 to 5: answer once the order is CONFIRMED or CANCELLED, or when they have
    /// passed, with the order as it then is (default 0: at once). Saves polling for the outcome.
    pub wait: Option<u64>,
}

impl WaitQuery {
    /// The wait asked for, checked: a 400 problem when out of range.
    pub fn wait(&self) -> Result<Duration, ApiError> {
        match self.wait.unwrap_or(0) {
            secs @ 0..=MAX_WAIT_SECS => Ok(Duration::from_secs(secs)),
            _ => Err(ApiError::BadRequest(format!(
                "`wait` must be between 0 and {MAX_WAIT_SECS} seconds"
            ))),
        }
    }
}

/// The caller's orders, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/orders",
    tag = "orders",
    security(("bearer" = [])),
    params(PageQuery),
    responses(
        (status = 200, description = "A page of orders", body = OrderList),
        (status = 400, description = "A malformed or out-of-range parameter", body = Problem, content_type = "application/problem+json")
    )
)]
async fn list_orders(
    State(orders): State<Orders>,
    user: AuthenticatedUser,
    Query(page): Query<PageQuery>,
) -> Result<Json<OrderList>, ApiError> {
    let limit = page.limit()?;
    let found = orders
        .list(user.user_id, page.before, page.fetch()?)
        .await?;
    let (found, next_before) = paginate(found, limit, |order| order.row.id);
    let items = found.into_iter().map(Into::into).collect();
    Ok(Json(OrderList { items, next_before }))
}

/// Cancel a confirmed order: it is refunded, its stock returned, and it ends CANCELLED.
#[utoipa::path(
    post,
    path = "/api/v1/orders/{id}/cancel",
    tag = "orders",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Order id")),
    responses(
        (status = 202, description = "Cancelling: follow `status_url` until CANCELLED", body = OrderResponse),
        (status = 404, description = "No such order among the caller's", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The order is not CONFIRMED", body = Problem, content_type = "application/problem+json")
    )
)]
async fn cancel_order(
    State(orders): State<Orders>,
    user: AuthenticatedUser,
    Path(id): Path<Uuid>,
) -> Result<Response, ApiError> {
    let order = orders.cancel(user.user_id, id).await?;
    Ok((StatusCode::ACCEPTED, Json(OrderResponse::from(order))).into_response())
}
