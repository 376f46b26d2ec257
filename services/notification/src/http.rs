//! The public HTTP API (behind the gateway): the caller's own notifications.

use axum::Router;
use axum::extract::{FromRef, State};
use axum::routing::get;
use chrono::{DateTime, Utc};
use platform_auth::{AuthenticatedUser, JwksVerifier};
use platform_http::{ApiError, Json, PageQuery, Problem, Query, paginate};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use utoipa::{OpenApi, ToSchema};
use uuid::Uuid;

use crate::error::NotificationError;
use crate::store::{self, NotificationRow};

/// What the handlers share.
#[derive(Clone, FromRef)]
pub struct AppState {
    /// The store.
    pub pool: PgPool,
    /// Verifies users' access tokens.
    pub verifier: JwksVerifier,
}

/// The service's public path; its operators' dead-letter API is under it
/// (`/api/v1/notifications/admin/dead-letters`, `platform_kit::dead_letters`).
pub const PATH: &str = "/api/v1/notifications";

/// The API routes (without the standard layers; the application adds them).
pub fn router(state: AppState) -> Router {
    Router::new()
        .route(PATH, get(list_notifications))
        .with_state(state)
}

/// The OpenAPI document of this API.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Notification service",
        description = "The messages the platform sent the caller (welcome, order confirmed or \
                       cancelled, payment failed), with their delivery status.",
        version = "1"
    ),
    paths(list_notifications),
    components(schemas(NotificationResponse, NotificationList)),
    tags((name = "notifications", description = "The caller's notifications"))
)]
pub struct ApiDoc;

/// The OpenAPI document with the platform's shared components.
pub fn openapi() -> utoipa::openapi::OpenApi {
    platform_http::openapi::with_common_components(ApiDoc::openapi())
}

/// A notification.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "019367a8-7d3e-7f4a-8b5c-6d7e8f901234",
    "event_type": "orders.confirmed",
    "channel": "email",
    "recipient": "ada@example.com",
    "subject": "Your order 4D5E6F70 is confirmed: €49.98",
    "status": "sent",
    "attempts": 1,
    "created_at": "2026-11-22T09:31:02Z",
    "sent_at": "2026-11-22T09:31:02Z"
}))]
pub struct NotificationResponse {
    /// Id (the message's `Message-ID`).
    pub id: Uuid,
    /// The event it answered.
    pub event_type: String,
    /// `email`.
    pub channel: String,
    /// Where it went.
    pub recipient: String,
    /// Subject line.
    pub subject: String,
    /// `pending`, `sent` or `failed`.
    pub status: String,
    /// Delivery attempts so far.
    pub attempts: i32,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
    /// When it was delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<DateTime<Utc>>,
}

impl From<NotificationRow> for NotificationResponse {
    fn from(row: NotificationRow) -> Self {
        Self {
            id: row.id,
            event_type: row.event_type,
            channel: row.channel,
            recipient: row.recipient,
            subject: row.subject,
            status: row.status,
            attempts: row.attempts,
            created_at: row.created_at,
            sent_at: row.sent_at,
        }
    }
}

/// A page of notifications.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NotificationList {
    /// Newest first.
    pub items: Vec<NotificationResponse>,
    /// Pass as `before` for the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_before: Option<Uuid>,
}

/// The caller's notifications, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/notifications",
    tag = "notifications",
    security(("bearer" = [])),
    params(PageQuery),
    responses(
        (status = 200, description = "A page of notifications", body = NotificationList),
        (status = 400, description = "A malformed or out-of-range parameter", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid access token", body = Problem, content_type = "application/problem+json")
    )
)]
async fn list_notifications(
    State(pool): State<PgPool>,
    user: AuthenticatedUser,
    Query(page): Query<PageQuery>,
) -> Result<Json<NotificationList>, ApiError> {
    let limit = page.limit()?;
    let rows = store::list_for_user(user.user_id, page.before, page.fetch()?, &pool)
        .await
        .map_err(NotificationError::from)?;
    let (rows, next_before) = paginate(rows, limit, |row| row.id);
    let items = rows.into_iter().map(Into::into).collect();
    Ok(Json(NotificationList { items, next_before }))
}
