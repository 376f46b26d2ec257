//! RFC 9457 problem details: the one error shape every HTTP API of the platform answers with.

use std::fmt;
use std::sync::Arc;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The detail of every 500: it says nothing about the cause, which is logged instead.
pub(crate) const INTERNAL_ERROR_DETAIL: &str = "an unexpected error occurred; it has been logged \
     and can be traced by the request's x-request-id";

/// An RFC 9457 problem details object, as it is written on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({
    "type": "about:blank",
    "title": "Unprocessable Entity",
    "status": 422,
    "detail": "the request has 1 invalid field",
    "errors": [{"field": "email", "message": "must be an email address"}]
}))]
pub struct Problem {
    /// A URI reference for the kind of problem; `about:blank` means the status says it all.
    #[serde(rename = "type", default = "about_blank")]
    pub kind: String,
    /// The status code's reason phrase.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong with this request, in words a client developer can act on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Which fields were invalid and why (validation problems only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

fn about_blank() -> String {
    "about:blank".to_owned()
}

/// One invalid field of a request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FieldError {
    /// The field's path in the request, e.g. `items[2].quantity`.
    pub field: String,
    /// Why its value was refused.
    pub message: String,
}

impl FieldError {
    /// A field error.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// A (field, message) pair, as validation outside this crate reports it.
impl From<(String, String)> for FieldError {
    fn from((field, message): (String, String)) -> Self {
        Self::new(field, message)
    }
}

impl Problem {
    /// A problem with the given status, its reason phrase as title, and a detail.
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            kind: about_blank(),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: Some(detail.into()),
            errors: Vec::new(),
        }
    }

    /// A problem that says no more than its status (for statuses produced by middleware).
    pub fn from_status(status: StatusCode) -> Self {
        Self {
            detail: None,
            ..Self::new(status, String::new())
        }
    }

    /// The status code as a typed value (500 if the number is out of range).
    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let mut response = (status, axum::Json(self)).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        response
    }
}

/// What a handler can fail with; each variant renders as problem+json with its status.
///
/// Domain errors of a service convert into this (`impl From<DomainError> for ApiError`), so
/// handlers use `?` and the mapping to HTTP lives in one place.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is malformed (unparseable body, bad path or query parameter).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// 401: no credentials, or credentials that do not verify.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// 403: authenticated, but not allowed to do this.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// 404: no such resource (or not one the caller may see).
    #[error("not found: {0}")]
    NotFound(String),
    /// 409: the request conflicts with the current state (duplicate, stale version).
    #[error("conflict: {0}")]
    Conflict(String),
    /// 413: the body is larger than the route accepts.
    #[error("payload too large: {0}")]
    PayloadTooLarge(String),
    /// 415: the body is not in a media type the route accepts.
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    /// 422: well-formed, but some fields are invalid.
    #[error("validation failed: {} invalid field(s)", .0.len())]
    Validation(Vec<FieldError>),
    /// 422: well-formed, but the request as a whole cannot be processed.
    #[error("unprocessable: {0}")]
    Unprocessable(String),
    /// 429: over the rate limit; retry after the given number of seconds.
    #[error("too many requests: {detail}")]
    TooManyRequests {
        /// What limit was hit.
        detail: String,
        /// Seconds until a retry may succeed (`Retry-After`).
        retry_after_secs: u64,
    },
    /// 503: a dependency is unavailable; retrying later may succeed.
    #[error("service unavailable: {0}")]
    ServiceUnavailable(String),
    /// 504: a dependency did not answer in time.
    #[error("gateway timeout: {0}")]
    GatewayTimeout(String),
    /// 500: a bug or an unexpected failure. The body says nothing about it; the cause is
    /// logged once, with its chain, by the request logging middleware.
    #[error("internal error: {0:#}")]
    Internal(#[from] anyhow::Error),
}

/// The cause of a 500, handed from [`ApiError::into_response`] to the logging middleware in the
/// response extensions so that it is logged once, with the request's span.
#[derive(Clone, Debug)]
pub struct InternalErrorCause(pub Arc<anyhow::Error>);

impl fmt::Display for InternalErrorCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#}", self.0)
    }
}

impl ApiError {
    /// 422 for a single invalid field.
    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }

    /// The HTTP status this error renders with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Validation(_) | Self::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::ServiceUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::GatewayTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The problem details this error renders as.
    pub fn to_problem(&self) -> Problem {
        let status = self.status();
        match self {
            Self::BadRequest(detail)
            | Self::Unauthorized(detail)
            | Self::Forbidden(detail)
            | Self::NotFound(detail)
            | Self::Conflict(detail)
            | Self::PayloadTooLarge(detail)
            | Self::UnsupportedMediaType(detail)
            | Self::Unprocessable(detail)
            | Self::ServiceUnavailable(detail)
            | Self::GatewayTimeout(detail)
            | Self::TooManyRequests { detail, .. } => Problem::new(status, detail.clone()),
            Self::Validation(errors) => {
                let detail = match errors.as_slice() {
                    [one] => format!("`{}` {}", one.field, one.message),
                    many => format!("the request has {} invalid fields", many.len()),
                };
                Problem {
                    errors: errors.clone(),
                    ..Problem::new(status, detail)
                }
            }
            Self::Internal(_) => Problem::new(status, INTERNAL_ERROR_DETAIL),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = self.to_problem().into_response();
        match self {
            Self::TooManyRequests {
                retry_after_secs, ..
            } => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            }
            Self::Unauthorized(_) => {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            Self::Internal(error) => {
                response
                    .extensions_mut()
                    .insert(InternalErrorCause(Arc::new(error)));
            }
            _ => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_validation_problem_has_this_exact_json_form() {
        let problem = ApiError::Validation(vec![
            FieldError::new("email", "must be an email address"),
            FieldError::new("items[0].quantity", "must be at least 1"),
        ])
        .to_problem();
        assert_eq!(
            serde_json::to_string(&problem).unwrap(),
            r#"{"type":"about:blank","title":"Unprocessable Entity","status":422,"detail":"the request has 2 invalid fields","errors":[{"field":"email","message":"must be an email address"},{"field":"items[0].quantity","message":"must be at least 1"}]}"#
        );
    }

    #[test]
    fn a_problem_without_detail_or_errors_leaves_both_out() {
        assert_eq!(
            serde_json::to_string(&Problem::from_status(StatusCode::NOT_FOUND)).unwrap(),
            r#"{"type":"about:blank","title":"Not Found","status":404}"#
        );
    }

    #[test]
    fn a_single_invalid_field_is_named_in_the_detail() {
        let problem = ApiError::invalid_field("email", "must be an email address").to_problem();
        assert_eq!(
            serde_json::to_value(&problem).unwrap(),
            serde_json::json!({
                "type": "about:blank",
                "title": "Unprocessable Entity",
                "status": 422,
                "detail": "`email` must be an email address",
                "errors": [{"field": "email", "message": "must be an email address"}]
            })
        );
    }

    #[test]
    fn a_problem_without_a_type_reads_as_about_blank() {
        let problem: Problem =
            serde_json::from_str(r#"{"title":"Conflict","status":409,"detail":"taken"}"#).unwrap();
        assert_eq!(problem, Problem::new(StatusCode::CONFLICT, "taken"));
    }

    #[tokio::test]
    async fn an_internal_error_renders_opaquely_and_hands_its_cause_to_the_logger() {
        let error = anyhow::anyhow!("password=hunter2").context("loading the user");
        let response = ApiError::Internal(error).into_response();

        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(response.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
        let cause = response.extensions().get::<InternalErrorCause>().unwrap();
        assert_eq!(cause.to_string(), "loading the user: password=hunter2");
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let body = String::from_utf8(body.to_vec()).unwrap();
        assert_eq!(
            body,
            format!(
                r#"{{"type":"about:blank","title":"Internal Server Error","status":500,"detail":"{INTERNAL_ERROR_DETAIL}"}}"#
            )
        );
    }
}
