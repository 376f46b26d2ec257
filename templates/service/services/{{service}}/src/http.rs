//! The public HTTP API (behind the gateway): the caller's {{resource}}.

use axum::Router;
use axum::extract::{FromRef, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use platform_auth::{AuthenticatedUser, JwksVerifier};
use platform_http::{ApiError, Json, PageQuery, Path, Problem, Query, paginate};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};
use uuid::Uuid;

use crate::domain::{self, Reference};
use crate::store::Store;

/// What the handlers share.
#[derive(Clone, FromRef)]
pub struct AppState {
    /// The {{resource}}.
    pub store: Store,
    /// Verifies users' access tokens.
    pub verifier: JwksVerifier,
}

/// The API routes (without the standard layers; the kit adds them).
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/{{resource}}", get(list).post(create))
        .route("/api/v1/{{resource}}/{id}", get(fetch))
        .with_state(state)
}

/// The OpenAPI document of this API.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "{{Service}} service",
        description = "The caller's {{resource}}{% if consumes != "" %}: created over this API, and recorded from {{consumes}}{% endif %}.",
        version = "1"
    ),
    paths(create, list, fetch),
    components(schemas(Create{{Record}}Request, {{Record}}Response, {{Record}}List)),
    tags((name = "{{resource}}", description = "The caller's {{resource}}"))
)]
pub struct ApiDoc;

/// The OpenAPI document with the platform's shared components.
pub fn openapi() -> utoipa::openapi::OpenApi {
    platform_http::openapi::with_common_components(ApiDoc::openapi())
}

/// A new {{record}}.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"reference": "A-1042"}))]
pub struct Create{{Record}}Request {
    /// What it is about: 1 to 200 characters (trimmed), no control characters.
    pub reference: String,
}

/// A {{record}}.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct {{Record}}Response {
    /// Its id.
    pub id: Uuid,
    /// What it is about.
    pub reference: String,
    /// The event type that caused it; absent when created over this API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
}

impl From<domain::{{Record}}> for {{Record}}Response {
    fn from(record: domain::{{Record}}) -> Self {
        Self {
            id: record.id,
            reference: record.reference,
            cause: record.cause,
            created_at: record.created_at,
        }
    }
}

/// A page of {{resource}}, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct {{Record}}List {
    /// The {{resource}}.
    pub items: Vec<{{Record}}Response>,
    /// Pass it as `before` for the next page; absent on the last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_before: Option<Uuid>,
}

/// Creates a {{record}} for the caller.
#[utoipa::path(
    post,
    path = "/api/v1/{{resource}}",
    tag = "{{resource}}",
    security(("bearer" = [])),
    request_body = Create{{Record}}Request,
    responses(
        (status = 201, description = "Created", body = {{Record}}Response),
        (status = 401, description = "Missing or invalid access token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An invalid `reference`, named in `errors`", body = Problem, content_type = "application/problem+json")
    )
)]
async fn create(
    State(store): State<Store>,
    user: AuthenticatedUser,
    Json(request): Json<Create{{Record}}Request>,
) -> Result<Response, ApiError> {
    let reference =
        Reference::parse(&request.reference).map_err(|error| ApiError::Validation(vec![error]))?;
    let created = store.create(user.user_id, &reference).await?;
    let location = format!("/api/v1/{{resource}}/{}", created.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json({{Record}}Response::from(created)),
    )
        .into_response())
}

/// The caller's {{resource}}, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/{{resource}}",
    tag = "{{resource}}",
    security(("bearer" = [])),
    params(PageQuery),
    responses(
        (status = 200, description = "A page of {{resource}}", body = {{Record}}List),
        (status = 400, description = "A malformed or out-of-range parameter", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid access token", body = Problem, content_type = "application/problem+json")
    )
)]
async fn list(
    State(store): State<Store>,
    user: AuthenticatedUser,
    Query(page): Query<PageQuery>,
) -> Result<Json<{{Record}}List>, ApiError> {
    let limit = page.limit()?;
    let rows = store.list(user.user_id, page.fetch()?, page.before).await?;
    let (rows, next_before) = paginate(rows, limit, |row| row.id);
    let items = rows.into_iter().map(Into::into).collect();
    Ok(Json({{Record}}List { items, next_before }))
}

/// One of the caller's {{resource}}.
#[utoipa::path(
    get,
    path = "/api/v1/{{resource}}/{id}",
    tag = "{{resource}}",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "{{Record}} id")),
    responses(
        (status = 200, description = "The {{record}}", body = {{Record}}Response),
        (status = 401, description = "Missing or invalid access token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such {{record}} among the caller's", body = Problem, content_type = "application/problem+json")
    )
)]
async fn fetch(
    State(store): State<Store>,
    user: AuthenticatedUser,
    Path(id): Path<Uuid>,
) -> Result<Json<{{Record}}Response>, ApiError> {
    let found = store.get(user.user_id, id).await?;
    found
        .map(|record| Json(record.into()))
        .ok_or_else(|| ApiError::NotFound(format!("no {{record}} {id} among yours")))
}
