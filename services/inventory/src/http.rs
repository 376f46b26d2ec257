//! The public HTTP API (behind the gateway): the catalogue for everyone, its upkeep for
//! administrators.

use axum::Router;
use axum::extract::{FromRef, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use platform_auth::{AdminUser, JwksVerifier};
use platform_http::{ApiError, FieldError, Json, Path, Problem, Query};
use serde::Deserialize;
use utoipa::{IntoParams, OpenApi, ToSchema};
use uuid::Uuid;

use crate::cache::CachedBody;
use crate::catalogue::{
    Catalogue, DEFAULT_LOW_STOCK_THRESHOLD, ListRequest, MoneyView, NewProduct, ProductChanges,
    ProductKey, ProductPage, ProductUpdate, ProductView, StockView,
};
use crate::domain::{Category, Description, ProductName, Quantity, Sku, parse_count, parse_price};

/// What the handlers share.
#[derive(Clone, FromRef)]
pub struct AppState {
    /// The catalogue operations.
    pub catalogue: Catalogue,
    /// Verifies users' access tokens.
    pub verifier: JwksVerifier,
}

/// The API routes (without the standard layers; the application adds them).
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/products", get(list_products).post(create_product))
        // One parameter name per position: the router requires it. GET reads it as an id or
        // a SKU, PATCH as an id.
        .route(
            "/api/v1/products/{id}",
            get(get_product).patch(update_product),
        )
        .route("/api/v1/products/{id}/restock", post(restock_product))
        .with_state(state)
}

/// The OpenAPI document of this API.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Inventory service",
        description = "The product catalogue and its stock. Anyone can browse and search it; \
                       reads carry an `ETag`, and `If-None-Match` with it answers 304. \
                       Administrators add products, change them (with optimistic concurrency: \
                       send the `version` you read) and restock them. Stock is reserved, \
                       committed and released over the internal gRPC API by the order service.",
        version = "1"
    ),
    paths(list_products, get_product, create_product, update_product, restock_product),
    components(schemas(
        ProductView,
        ProductPage,
        MoneyView,
        StockView,
        CreateProductRequest,
        UpdateProductRequest,
        RestockRequest
    )),
    tags(
        (name = "products", description = "The catalogue (public reads)"),
        (name = "admin", description = "Catalogue upkeep (role `admin`)")
    )
)]
pub struct ApiDoc;

/// The OpenAPI document with the platform's shared components.
pub fn openapi() -> utoipa::openapi::OpenApi {
    platform_http::openapi::with_common_components(ApiDoc::openapi())
}

/// Listing, filtering, searching and sorting products.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only products of this category (e.g. `kitchen`).
    pub category: Option<String>,
    /// Only products whose name contains this, ignoring case (at most 100 characters).
    pub q: Option<String>,
    /// `name` (default), `-name`, `price`, `-price` or `newest`.
    pub sort: Option<String>,
    /// Page number, from 1 (default 1).
    pub page: Option<i64>,
    /// Products per page, 1 to 100 (default 20).
    pub page_size: Option<i64>,
}

/// A price in a request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PriceInput {
    /// Positive minor units (cents).
    pub minor: i64,
    /// ISO 4217 code, e.g. `EUR`.
    pub currency: String,
}

/// A new product.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "sku": "KIT-ENAMEL-MUG",
    "name": "Enamel camping mug",
    "description": "350 ml, white enamel with a blue rim.",
    "price": {"minor": 1250, "currency": "EUR"},
    "category": "kitchen",
    "initial_stock": 100,
    "low_stock_threshold": 10
}))]
pub struct CreateProductRequest {
    /// 1 to 64 letters, digits and `-`; stored upper case; unique.
    pub sku: String,
    /// 1 to 200 characters.
    pub name: String,
    /// Up to 2,000 characters.
    #[serde(default)]
    pub description: Option<String>,
    /// Price of one unit.
    #[schema(value_type = MoneyView)]
    pub price: PriceInput,
    /// 1 to 50 letters, digits and `-`; stored lower case.
    pub category: String,
    /// Units on the shelf to begin with (default 0).
    #[serde(default)]
    pub initial_stock: Option<i64>,
    /// `inventory.low_stock` is emitted when available stock falls below this (default 5).
    #[serde(default)]
    pub low_stock_threshold: Option<i64>,
}

/// Parses a new product at the edge; every invalid field is reported, each named.
impl TryFrom<CreateProductRequest> for NewProduct {
    type Error = Vec<FieldError>;

    fn try_from(request: CreateProductRequest) -> Result<Self, Self::Error> {
        let mut errors = Vec::new();
        let sku = Sku::parse(&request.sku, "sku")
            .map_err(|e| errors.push(e))
            .ok();
        let name = ProductName::parse(&request.name)
            .map_err(|e| errors.push(e))
            .ok();
        let description = Description::parse(request.description.as_deref().unwrap_or_default())
            .map_err(|e| errors.push(e))
            .ok();
        let price = parse_price(request.price.minor, &request.price.currency)
            .map_err(|e| errors.extend(e))
            .ok();
        let category = Category::parse(&request.category, "category")
            .map_err(|e| errors.push(e))
            .ok();
        let initial_stock = parse_count(request.initial_stock.unwrap_or(0), "initial_stock")
            .map_err(|e| errors.push(e))
            .ok();
        let threshold = parse_count(
            request
                .low_stock_threshold
                .unwrap_or(DEFAULT_LOW_STOCK_THRESHOLD),
            "low_stock_threshold",
        )
        .map_err(|e| errors.push(e))
        .ok();
        match (
            sku,
            name,
            description,
            price,
            category,
            initial_stock,
            threshold,
        ) {
            (
                Some(sku),
                Some(name),
                Some(description),
                Some(price),
                Some(category),
                Some(initial_stock),
                Some(low_stock_threshold),
            ) => Ok(Self {
                sku,
                name,
                description,
                price,
                category,
                initial_stock,
                low_stock_threshold,
            }),
            _ => Err(errors),
        }
    }
}

/// Changes to a product's details; absent fields stay as they are. The SKU never changes, and
/// stock changes only by restocking and orders.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"version": 1, "price": {"minor": 1100, "currency": "EUR"}}))]
pub struct UpdateProductRequest {
    /// The `version` the change is based on; a stale one gets 409.
    pub version: i64,
    /// New name.
    #[serde(default)]
    pub name: Option<String>,
    /// New description.
    #[serde(default)]
    pub description: Option<String>,
    /// New price.
    #[serde(default)]
    #[schema(value_type = Option<MoneyView>)]
    pub price: Option<PriceInput>,
    /// New category.
    #[serde(default)]
    pub category: Option<String>,
    /// New low-stock threshold.
    #[serde(default)]
    pub low_stock_threshold: Option<i64>,
}

/// Parses a change at the edge; every invalid field is reported, each named, and a change
/// that changes nothing is refused.
impl TryFrom<UpdateProductRequest> for ProductUpdate {
    type Error = Vec<FieldError>;

    fn try_from(request: UpdateProductRequest) -> Result<Self, Self::Error> {
        let mut errors = Vec::new();
        let mut changes = ProductChanges::default();
        if let Some(name) = &request.name {
            changes.name = ProductName::parse(name).map_err(|e| errors.push(e)).ok();
        }
        if let Some(description) = &request.description {
            changes.description = Description::parse(description)
                .map_err(|e| errors.push(e))
                .ok();
        }
        if let Some(price) = &request.price {
            changes.price = parse_price(price.minor, &price.currency)
                .map_err(|e| errors.extend(e))
                .ok();
        }
        if let Some(category) = &request.category {
            changes.category = Category::parse(category, "category")
                .map_err(|e| errors.push(e))
                .ok();
        }
        if let Some(threshold) = request.low_stock_threshold {
            changes.low_stock_threshold = parse_count(threshold, "low_stock_threshold")
                .map_err(|e| errors.push(e))
                .ok();
        }
        if request.version < 1 {
            errors.push(FieldError::new(
                "version",
                "must be a version read from the product",
            ));
        }
        if errors.is_empty() && changes.is_empty() {
            errors.push(FieldError::new(
                "",
                "name at least one of name, description, price, category, low_stock_threshold",
            ));
        }
        if errors.is_empty() {
            Ok(Self {
                version: request.version,
                changes,
            })
        } else {
            Err(errors)
        }
    }
}

/// Units to put on the shelf.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"quantity": 25}))]
pub struct RestockRequest {
    /// Positive, at most 1,000,000.
    pub quantity: i64,
}

/// Parses the quantity at the edge.
impl TryFrom<RestockRequest> for Quantity {
    type Error = Vec<FieldError>;

    fn try_from(request: RestockRequest) -> Result<Self, Self::Error> {
        Quantity::parse(request.quantity, "quantity").map_err(|error| vec![error])
    }
}

/// A cached body as a response: 304 when `If-None-Match` names its tag, 200 with it otherwise.
/// Either way the client is told to revalidate before reusing it.
fn cached_response(body: CachedBody, headers: &HeaderMap) -> Response {
    let etag =
        HeaderValue::from_str(&body.etag).unwrap_or_else(|_| HeaderValue::from_static("\"\""));
    let cache_control = HeaderValue::from_static("no-cache");
    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| body.matches(value));
    if not_modified {
        return (
            StatusCode::NOT_MODIFIED,
            [(header::ETAG, etag), (header::CACHE_CONTROL, cache_control)],
        )
            .into_response();
    }
    (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::ETAG, etag),
            (header::CACHE_CONTROL, cache_control),
        ],
        body.body,
    )
        .into_response()
}

/// Browse the catalogue: filter by category, search names, sort, page through.
#[utoipa::path(
    get,
    path = "/api/v1/products",
    tag = "products",
    params(ListQuery, ("If-None-Match" = Option<String>, Header, description = "The `ETag` of a previous answer")),
    responses(
        (status = 200, description = "A page of products", body = ProductPage,
         headers(("ETag" = String, description = "The tag of this answer"))),
        (status = 304, description = "Unchanged since the answer `If-None-Match` names"),
        (status = 400, description = "A malformed or out-of-range parameter (e.g. `page_size` over 100)", body = Problem, content_type = "application/problem+json")
    )
)]
async fn list_products(
    State(catalogue): State<Catalogue>,
    Query(query): Query<ListQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let request = ListRequest::parse(
        query.category.as_deref(),
        query.q.as_deref(),
        query.sort.as_deref(),
        query.page,
        query.page_size,
    )?;
    Ok(cached_response(catalogue.list(&request).await?, &headers))
}

/// One product, by id (a UUID) or by SKU (anything else).
#[utoipa::path(
    get,
    path = "/api/v1/products/{id_or_sku}",
    tag = "products",
    params(
        ("id_or_sku" = String, Path, description = "A product id (UUID) or SKU (any case)"),
        ("If-None-Match" = Option<String>, Header, description = "The `ETag` of a previous answer")
    ),
    responses(
        (status = 200, description = "The product", body = ProductView,
         headers(("ETag" = String, description = "The tag of this answer"))),
        (status = 304, description = "Unchanged since the answer `If-None-Match` names"),
        (status = 400, description = "Neither a UUID nor a well-formed SKU", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such product", body = Problem, content_type = "application/problem+json")
    )
)]
async fn get_product(
    State(catalogue): State<Catalogue>,
    Path(id_or_sku): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let key = ProductKey::parse(&id_or_sku)?;
    Ok(cached_response(catalogue.product(&key).await?, &headers))
}

/// Add a product (administrators).
#[utoipa::path(
    post,
    path = "/api/v1/products",
    tag = "admin",
    security(("bearer" = [])),
    request_body = CreateProductRequest,
    responses(
        (status = 201, description = "Added", body = ProductView),
        (status = 401, description = "Missing or invalid access token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an administrator", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A product with this SKU exists", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, each named in `errors`", body = Problem, content_type = "application/problem+json")
    )
)]
async fn create_product(
    State(catalogue): State<Catalogue>,
    admin: AdminUser,
    Json(request): Json<CreateProductRequest>,
) -> Result<Response, ApiError> {
    let product = NewProduct::try_from(request).map_err(ApiError::Validation)?;
    let created = catalogue.create(product).await?;
    tracing::info!(admin = %admin.user_id, product_id = %created.id, "product added");
    let location = format!("/api/v1/products/{}", created.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(created),
    )
        .into_response())
}

/// Change a product's details (administrators), based on the `version` read.
#[utoipa::path(
    patch,
    path = "/api/v1/products/{id_or_sku}",
    tag = "admin",
    security(("bearer" = [])),
    params(("id_or_sku" = Uuid, Path, description = "Product id (a UUID; not a SKU)")),
    request_body = UpdateProductRequest,
    responses(
        (status = 200, description = "Changed; `version` moved on", body = ProductView),
        (status = 400, description = "Malformed id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid access token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an administrator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such product", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`version` is stale: someone changed the product since it was read", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, each named in `errors`", body = Problem, content_type = "application/problem+json")
    )
)]
async fn update_product(
    State(catalogue): State<Catalogue>,
    admin: AdminUser,
    Path(id): Path<Uuid>,
    Json(request): Json<UpdateProductRequest>,
) -> Result<Json<ProductView>, ApiError> {
    let update = ProductUpdate::try_from(request).map_err(ApiError::Validation)?;
    let updated = catalogue
        .update(id, update.version, &update.changes)
        .await?;
    tracing::info!(admin = %admin.user_id, version = updated.version, "product changed");
    Ok(Json(updated))
}

/// Put units on the shelf (administrators).
#[utoipa::path(
    post,
    path = "/api/v1/products/{id}/restock",
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Product id")),
    request_body = RestockRequest,
    responses(
        (status = 200, description = "Restocked", body = ProductView),
        (status = 400, description = "Malformed id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid access token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an administrator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such product", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`quantity` is not positive", body = Problem, content_type = "application/problem+json")
    )
)]
async fn restock_product(
    State(catalogue): State<Catalogue>,
    admin: AdminUser,
    Path(id): Path<Uuid>,
    Json(request): Json<RestockRequest>,
) -> Result<Json<ProductView>, ApiError> {
    let quantity = Quantity::try_from(request).map_err(ApiError::Validation)?;
    let restocked = catalogue.restock(id, quantity).await?;
    tracing::info!(admin = %admin.user_id, quantity = quantity.get(), "product restocked");
    Ok(Json(restocked))
}
