//! The operators' API over a service's dead letters, for administrators only, under the
//! service's own path (`{path}/admin/dead-letters`):
//!
//! - `GET    .../admin/dead-letters?consumer=&stream=&reason=&after=&limit=`: a page, oldest first;
//! - `GET    .../admin/dead-letters/{seq}`: one, with its headers and payload;
//! - `POST   .../admin/dead-letters/{seq}/replay`: replays it through its consumer, then deletes it;
//! - `DELETE .../admin/dead-letters/{seq}`: discards it.
//!
//! A service gets it with [`crate::Kit::dead_letter_api`]; the letters in scope are those of
//! the consumers the service registered ([`crate::Kit::consume`],
//! [`crate::Kit::replay_dead_letters`]).

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use platform_auth::{AdminUser, JwksVerifier};
use platform_events::DeadLetters;
use platform_events::dead_letters::{DeadLetter, DeadLetterError, Filter, ReplayError, Replayed};
use platform_http::{ApiError, Json, Path, Problem, Query};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

/// Page size when `limit` is absent.
const DEFAULT_LIMIT: usize = 20;
/// The largest page.
const MAX_LIMIT: usize = 100;
/// The longest `reason` filter.
const MAX_REASON: usize = 200;

#[derive(Clone, FromRef)]
struct DeadLetterState {
    letters: DeadLetters,
    verifier: JwksVerifier,
}

/// The routes under `path` (e.g. `/api/v1/notifications`) and their OpenAPI document.
pub fn api(
    path: &str,
    letters: DeadLetters,
    verifier: JwksVerifier,
) -> (Router, utoipa::openapi::OpenApi) {
    let base = format!("{}/admin/dead-letters", path.trim_end_matches('/'));
    let router = Router::new()
        .route(&base, get(list_dead_letters))
        .route(
            &format!("{base}/{{seq}}"),
            get(get_dead_letter).delete(discard_dead_letter),
        )
        .route(&format!("{base}/{{seq}}/replay"), post(replay_dead_letter))
        .with_state(DeadLetterState { letters, verifier });
    let mut doc = DeadLetterDoc::openapi();
    let paths = std::mem::take(&mut doc.paths.paths);
    for (template, item) in paths {
        doc.paths
            .paths
            .insert(format!("{}{template}", path.trim_end_matches('/')), item);
    }
    (router, doc)
}

#[derive(OpenApi)]
#[openapi(
    paths(list_dead_letters, get_dead_letter, replay_dead_letter, discard_dead_letter),
    components(schemas(DeadLetterView, DeadLetterPage, ReplayView)),
    tags((name = "dead-letters", description = "Events this service gave up on, for operators \
          (role `admin`): list, read, replay once the cause is fixed, or discard"))
)]
struct DeadLetterDoc;

/// Which dead letters to list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Only this consumer's (e.g. `notification-orders`, `notification-delivery`).
    consumer: Option<String>,
    /// Only events of this stream (`USERS`, `ORDERS`, `PAYMENTS`, `INVENTORY`; any case).
    stream: Option<String>,
    /// Only those whose error contains this, ignoring case (at most 200 characters).
    reason: Option<String>,
    /// Only those after this sequence (the previous page's `next_after`).
    after: Option<u64>,
    /// Page size, 1 to 100 (default 20).
    limit: Option<usize>,
}

impl ListQuery {
    fn parse(self, letters: &DeadLetters) -> Result<Filter, ApiError> {
        let consumer = match self.consumer {
            Some(consumer) if !letters.consumers().any(|c| c == consumer) => {
                return Err(ApiError::BadRequest(format!(
                    "`consumer` must be one of this service's consumers: {}",
                    letters.consumers().collect::<Vec<_>>().join(", ")
                )));
            }
            other => other,
        };
        let domains = platform_events::streams::domains();
        let stream = match self.stream {
            Some(stream)
                if !domains
                    .iter()
                    .any(|domain| domain.eq_ignore_ascii_case(&stream)) =>
            {
                return Err(ApiError::BadRequest(format!(
                    "`stream` must be one of {}",
                    domains
                        .iter()
                        .map(|domain| domain.to_ascii_uppercase())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            other => other,
        };
        let reason = match self.reason {
            Some(reason) if reason.trim().is_empty() || reason.chars().count() > MAX_REASON => {
                return Err(ApiError::BadRequest(format!(
                    "`reason` must be 1 to {MAX_REASON} characters"
                )));
            }
            other => other,
        };
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ApiError::BadRequest(format!(
                "`limit` must be between 1 and {MAX_LIMIT}"
            )));
        }
        Ok(Filter {
            consumer,
            stream,
            reason,
            after: self.after.unwrap_or(0),
            limit,
        })
    }
}

/// A dead letter.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "sequence": 42,
    "consumer": "notification-delivery",
    "event_type": "orders.confirmed",
    "stream": "ORDERS",
    "error": "SMTP unavailable: connection refused",
    "original_subject": "orders.confirmed",
    "deliveries": 8,
    "dead_lettered_at": "2026-12-06T09:12:44Z"
}))]
pub struct DeadLetterView {
    /// Its sequence in the dead-letter stream: its id here.
    pub sequence: u64,
    /// The consumer that gave up on it.
    pub consumer: String,
    /// The event's type.
    pub event_type: String,
    /// The stream of the event's domain.
    pub stream: String,
    /// Why it was given up.
    pub error: String,
    /// The subject the event was published on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_subject: Option<String>,
    /// Its sequence in its own stream (intake consumers' letters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_sequence: Option<u64>,
    /// Deliveries (or delivery attempts) before it was given up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deliveries: Option<i64>,
    /// When it was given up.
    pub dead_lettered_at: DateTime<Utc>,
    /// Every header (reading one letter only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, String>>,
    /// The event as it was received: JSON, or text when it is not JSON (reading one letter
    /// only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub payload: Option<serde_json::Value>,
}

impl DeadLetterView {
    fn summary(letter: DeadLetter) -> Self {
        Self {
            sequence: letter.sequence,
            consumer: letter.consumer,
            event_type: letter.event_type,
            stream: letter.stream,
            error: letter.error,
            original_subject: letter.original_subject,
            original_sequence: letter.original_sequence,
            deliveries: letter.deliveries,
            dead_lettered_at: letter.time,
            headers: None,
            payload: None,
        }
    }

    fn full(letter: DeadLetter) -> Self {
        let payload = serde_json::from_slice(&letter.payload).unwrap_or_else(|_| {
            serde_json::Value::String(String::from_utf8_lossy(&letter.payload).into_owned())
        });
        let headers = letter.headers.clone();
        Self {
            headers: Some(headers),
            payload: Some(payload),
            ..Self::summary(letter)
        }
    }
}

/// A page of dead letters.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeadLetterPage {
    /// Oldest first.
    pub items: Vec<DeadLetterView>,
    /// Pass as `after` for the next page; absent when there is no more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_after: Option<u64>,
}

/// What a replay did.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"sequence": 42, "outcome": "processed"}))]
pub struct ReplayView {
    /// The letter replayed (now deleted).
    pub sequence: u64,
    /// `processed`: done now; `already_done`: it had been done since, nothing was repeated.
    pub outcome: String,
}

fn api_error(error: DeadLetterError) -> ApiError {
    match error {
        DeadLetterError::NotFound(sequence) => ApiError::NotFound(format!(
            "no dead letter {sequence} here (it may have been replayed or discarded already)"
        )),
        DeadLetterError::NoReplay { .. } => ApiError::Conflict(error.to_string()),
        DeadLetterError::Replay {
            sequence,
            source: ReplayError::Refused(reason),
        } => ApiError::Unprocessable(format!(
            "replaying dead letter {sequence} failed again, and it is kept: {reason}"
        )),
        DeadLetterError::Replay {
            sequence,
            source: ReplayError::Unavailable(cause),
        } => ApiError::ServiceUnavailable(format!(
            "replaying dead letter {sequence} failed for now, and it is kept; retry later: \
             {cause:#}"
        )),
        DeadLetterError::Unavailable(cause) => {
            tracing::warn!(error = format!("{cause:#}"), "dead letters unavailable");
            ApiError::ServiceUnavailable(
                "the event bus (NATS JetStream) is unavailable; retry later".to_owned(),
            )
        }
    }
}

/// Dead letters of this service's consumers, oldest first (administrators).
#[utoipa::path(
    get,
    path = "/admin/dead-letters",
    tag = "dead-letters",
    security(("bearer" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "A page of dead letters", body = DeadLetterPage),
        (status = 400, description = "A malformed or unknown parameter", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid access token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an administrator", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "NATS is unavailable", body = Problem, content_type = "application/problem+json")
    )
)]
async fn list_dead_letters(
    _admin: AdminUser,
    State(letters): State<DeadLetters>,
    Query(query): Query<ListQuery>,
) -> Result<Json<DeadLetterPage>, ApiError> {
    let filter = query.parse(&letters)?;
    let page = letters.list(&filter).await.map_err(api_error)?;
    Ok(Json(DeadLetterPage {
        items: page
            .items
            .into_iter()
            .map(DeadLetterView::summary)
            .collect(),
        next_after: page.next_after,
    }))
}

/// One dead letter, with its headers and payload (administrators).
#[utoipa::path(
    get,
    path = "/admin/dead-letters/{seq}",
    tag = "dead-letters",
    security(("bearer" = [])),
    params(("seq" = u64, Path, description = "The letter's sequence")),
    responses(
        (status = 200, description = "The dead letter", body = DeadLetterView),
        (status = 400, description = "`seq` is not a number", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid access token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an administrator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such dead letter", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "NATS is unavailable", body = Problem, content_type = "application/problem+json")
    )
)]
async fn get_dead_letter(
    _admin: AdminUser,
    State(letters): State<DeadLetters>,
    Path(seq): Path<u64>,
) -> Result<Json<DeadLetterView>, ApiError> {
    let letter = letters.get(seq).await.map_err(api_error)?;
    Ok(Json(DeadLetterView::full(letter)))
}

/// Replay a dead letter through its consumer, then delete it (administrators). Idempotent: what
/// was done meanwhile is not done again (`already_done`).
#[utoipa::path(
    post,
    path = "/admin/dead-letters/{seq}/replay",
    tag = "dead-letters",
    security(("bearer" = [])),
    params(("seq" = u64, Path, description = "The letter's sequence")),
    responses(
        (status = 200, description = "Replayed and deleted", body = ReplayView),
        (status = 400, description = "`seq` is not a number", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid access token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an administrator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such dead letter (or replayed or discarded already)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "It failed again for good; it is kept", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "NATS, or what the replay needs, is unavailable; it is kept", body = Problem, content_type = "application/problem+json")
    )
)]
async fn replay_dead_letter(
    admin: AdminUser,
    State(letters): State<DeadLetters>,
    Path(seq): Path<u64>,
) -> Result<Json<ReplayView>, ApiError> {
    let replayed = letters.replay(seq).await.map_err(api_error)?;
    tracing::info!(admin = %admin.user_id, sequence = seq, outcome = ?replayed, "dead letter replayed by an operator");
    Ok(Json(ReplayView {
        sequence: seq,
        outcome: match replayed {
            Replayed::Processed => "processed",
            Replayed::AlreadyDone => "already_done",
        }
        .to_owned(),
    }))
}

/// Discard a dead letter (administrators).
#[utoipa::path(
    delete,
    path = "/admin/dead-letters/{seq}",
    tag = "dead-letters",
    security(("bearer" = [])),
    params(("seq" = u64, Path, description = "The letter's sequence")),
    responses(
        (status = 204, description = "Discarded"),
        (status = 400, description = "`seq` is not a number", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid access token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an administrator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such dead letter", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "NATS is unavailable", body = Problem, content_type = "application/problem+json")
    )
)]
async fn discard_dead_letter(
    admin: AdminUser,
    State(letters): State<DeadLetters>,
    Path(seq): Path<u64>,
) -> Result<StatusCode, ApiError> {
    letters.discard(seq).await.map_err(api_error)?;
    tracing::info!(admin = %admin.user_id, sequence = seq, "dead letter discarded");
    Ok(StatusCode::NO_CONTENT)
}
