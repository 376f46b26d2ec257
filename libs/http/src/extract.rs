//! Extractors whose rejections are problem+json: use these instead of axum's `Json`, `Path` and
//! `Query`, whose rejections are plain text.
//!
//! | what went wrong                                        | status |
//! |--------------------------------------------------------|--------|
//! | no or non-JSON `Content-Type`                          | 415    |
//! | body is not JSON (the detail gives line and column)    | 400    |
//! | JSON of the wrong shape (`errors` lists the fields)    | 422    |
//! | body larger than the limit                             | 413    |
//! | path parameter that does not parse (named)             | 400    |
//! | query parameter missing or not parsing (named)         | 400    |
//! | a control character in a JSON string (field named)     | 422    |
//! | a control character in a path or query parameter       | 400    |
//!
//! Control characters: see [`crate::text`]; line breaks and tabs are let through (a free text
//! may hold them), any other is refused wherever it is.

use std::error::Error as _;
use std::fmt;

use axum::body::Bytes;
use axum::extract::path::ErrorKind;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::layers::BodyLimit;
use crate::problem::{ApiError, FieldError};
use crate::text;

/// JSON request body (extractor) or response body (response), with problem+json rejections.
///
/// As a response it sets `Content-Type: application/json`; a value that fails to serialize
/// becomes an opaque 500 whose cause is logged, not a body that leaks the serializer's message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[must_use]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        check_json_content_type(request.headers())?;
        // Read before the request is consumed, to say what the limit is if the body breaks it.
        let limit = request.extensions().get::<BodyLimit>().copied();
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| body_read_error(rejection.status(), limit, &rejection))?;
        Self::from_bytes(&bytes)
    }
}

impl<T: DeserializeOwned> Json<T> {
    /// Parses a JSON document, with the same errors as the extractor (400 or 422).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ApiError> {
        let mut deserializer = serde_json::Deserializer::from_slice(bytes);
        let value = serde_path_to_error::deserialize(&mut deserializer)
            .map_err(|error| json_error(&error))?;
        // Trailing data after the document (`{"a":1} x`) is a syntax error, not a valid body.
        deserializer.end().map_err(|error| syntax_error(&error))?;
        if text::json_has_forbidden_control(bytes) {
            // Rare: parse again, to name the field.
            let field = serde_json::from_slice(bytes)
                .ok()
                .and_then(|document| text::forbidden_control_in_json(&document))
                .unwrap_or_else(|| FieldError::new("", "must not contain control characters"));
            return Err(ApiError::Validation(vec![field]));
        }
        Ok(Self(value))
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        match serde_json::to_vec(&self.0) {
            Ok(body) => (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                body,
            )
                .into_response(),
            Err(error) => ApiError::Internal(
                anyhow::Error::new(error).context("serializing a JSON response body"),
            )
            .into_response(),
        }
    }
}

impl<T> std::ops::Deref for Json<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> std::ops::DerefMut for Json<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<T> From<T> for Json<T> {
    fn from(value: T) -> Self {
        Self(value)
    }
}

/// `application/json` or any `application/*+json`, parameters (`; charset=utf-8`) allowed.
fn check_json_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Err(ApiError::UnsupportedMediaType(
            "the request body must be JSON, sent with `Content-Type: application/json`; \
             the request had no Content-Type"
                .to_owned(),
        ));
    };
    let essence = value
        .to_str()
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let is_json = essence == "application/json"
        || essence
            .strip_prefix("application/")
            .is_some_and(|subtype| subtype.ends_with("+json"));
    if is_json {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType(format!(
            "the request body must be JSON, sent with `Content-Type: application/json`; \
             the request had `{}`",
            String::from_utf8_lossy(value.as_bytes())
        )))
    }
}

/// Reading the body failed: over the limit (413), or the connection broke (400).
fn body_read_error(
    status: StatusCode,
    limit: Option<BodyLimit>,
    error: &dyn fmt::Display,
) -> ApiError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge(match limit {
            Some(BodyLimit(limit)) => {
                format!("the request body is larger than the limit of {limit} bytes")
            }
            None => "the request body is larger than this endpoint accepts".to_owned(),
        })
    } else {
        ApiError::BadRequest(format!("the request body could not be read: {error}"))
    }
}

fn json_error(error: &serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    use serde_json::error::Category;
    match error.inner().classify() {
        Category::Data => {
            let path = error.path().to_string();
            let message = message_without_position(error.inner());
            ApiError::Validation(vec![field_error(&path, &message)])
        }
        Category::Syntax | Category::Eof | Category::Io => syntax_error(error.inner()),
    }
}

fn syntax_error(error: &serde_json::Error) -> ApiError {
    ApiError::BadRequest(format!(
        "the request body is not valid JSON: {} at line {} column {}",
        message_without_position(error),
        error.line(),
        error.column()
    ))
}

/// serde_json appends " at line L column C" to its messages; a field error needs the message
/// alone (the position in the document means nothing once the field is named).
fn message_without_position(error: &serde_json::Error) -> String {
    let message = error.to_string();
    let suffix = format!(" at line {} column {}", error.line(), error.column());
    message
        .strip_suffix(&suffix)
        .map_or_else(|| message.clone(), str::to_owned)
}

/// A field error from a serde path and message. A missing field is reported by serde at its
/// parent's path (`items[1]`, "missing field `quantity`"): name the field itself instead
/// (`items[1].quantity`, "is required").
fn field_error(path: &str, message: &str) -> FieldError {
    if let Some(name) = missing_field_name(message) {
        let field = if path == "." {
            name.to_owned()
        } else {
            format!("{path}.{name}")
        };
        return FieldError::new(field, "is required");
    }
    let field = if path == "." { "" } else { path };
    FieldError::new(field, message)
}

fn missing_field_name(message: &str) -> Option<&str> {
    message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.strip_suffix('`'))
}

/// Path parameters, deserialized like axum's `Path`; a parameter that does not parse is a 400
/// that names it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => {
                if let Ok(params) = RawPathParams::from_request_parts(parts, state).await {
                    for (name, value) in &params {
                        if let Some(c) = text::forbidden_control_character(value) {
                            return Err(ApiError::BadRequest(format!(
                                "path parameter `{name}` {}",
                                text::control_character_message(c)
                            )));
                        }
                    }
                }
                Ok(Self(value))
            }
            Err(rejection) => {
                // The names of the parameters, to name the bad one when axum's error does not.
                let names: Vec<String> = RawPathParams::from_request_parts(parts, state)
                    .await
                    .map(|params| params.iter().map(|(name, _)| name.to_owned()).collect())
                    .unwrap_or_default();
                Err(path_error(rejection, &names))
            }
        }
    }
}

fn path_error(rejection: PathRejection, names: &[String]) -> ApiError {
    let PathRejection::FailedToDeserializePathParams(error) = rejection else {
        // No path parameters at all: the extractor is used on a route without any.
        return ApiError::Internal(anyhow::anyhow!("path extractor: {rejection}"));
    };
    let kind = error.into_kind();
    let bad = |name: &str, value: &str, why: &str| {
        ApiError::BadRequest(format!(
            "path parameter `{name}` has an invalid value `{value}`: {why}"
        ))
    };
    match &kind {
        ErrorKind::ParseErrorAtKey {
            key,
            value,
            expected_type,
        } => bad(
            key,
            value,
            &format!("expected a {}", short_type(expected_type)),
        ),
        ErrorKind::ParseErrorAtIndex {
            index,
            value,
            expected_type,
        } => {
            let name = names.get(*index).map_or("?", String::as_str);
            bad(
                name,
                value,
                &format!("expected a {}", short_type(expected_type)),
            )
        }
        ErrorKind::ParseError {
            value,
            expected_type,
        } => {
            // A single value (`Path<Uuid>`): the route has one parameter, so that is the one.
            let name = match names {
                [only] => only.as_str(),
                _ => "?",
            };
            bad(
                name,
                value,
                &format!("expected a {}", short_type(expected_type)),
            )
        }
        ErrorKind::DeserializeError {
            key,
            value,
            message,
        } => bad(key, value, message),
        ErrorKind::InvalidUtf8InPathParam { key } => ApiError::BadRequest(format!(
            "path parameter `{key}` is not valid UTF-8 once percent-decoded"
        )),
        ErrorKind::Message(message) => {
            ApiError::BadRequest(format!("a path parameter is invalid: {message}"))
        }
        // The type does not fit the route (wrong arity, unsupported type): a bug, not the
        // client's fault.
        _ => ApiError::Internal(anyhow::anyhow!("path extractor: {kind}")),
    }
}

/// `core::num::parse::u32` reads as `u32` to a client.
fn short_type(type_name: &str) -> &str {
    type_name.rsplit("::").next().unwrap_or(type_name)
}

/// Query string parameters, deserialized like axum's `Query`; a missing or unparseable
/// parameter is a 400 that names it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let value = axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|axum::extract::Query(value)| Self(value))
            .map_err(|rejection| query_error(&rejection))?;
        let pairs = form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes());
        for (name, value) in pairs {
            if let Some(c) = text::forbidden_control_character(&name)
                .or_else(|| text::forbidden_control_character(&value))
            {
                return Err(ApiError::BadRequest(format!(
                    "query parameter `{}` {}",
                    name.escape_debug(),
                    text::control_character_message(c)
                )));
            }
        }
        Ok(value)
    }
}

/// axum keeps the `serde_path_to_error` error (which knows the parameter) in the rejection's
/// source chain; the query deserializer's error type is serde's `value::Error`.
fn query_error(rejection: &QueryRejection) -> ApiError {
    type QueryError = serde_path_to_error::Error<serde::de::value::Error>;
    let mut source = rejection.source();
    while let Some(error) = source {
        if let Some(error) = error.downcast_ref::<QueryError>() {
            let FieldError { field, message } =
                field_error(&error.path().to_string(), &error.inner().to_string());
            return ApiError::BadRequest(if field.is_empty() {
                format!("the query string is invalid: {message}")
            } else {
                format!("query parameter `{field}` {}", with_verb(&message))
            });
        }
        source = error.source();
    }
    ApiError::BadRequest(format!(
        "the query string is invalid: {}",
        rejection.body_text()
    ))
}

/// "is required" reads on; "invalid digit found in string" needs an "is invalid:" before it.
fn with_verb(message: &str) -> String {
    if message.starts_with("is ") {
        message.to_owned()
    } else {
        format!("is invalid: {message}")
    }
}

impl<T> std::ops::Deref for Path<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> std::ops::Deref for Query<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Order {
        items: Vec<Item>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Item {
        sku: String,
        quantity: u32,
    }

    fn problem_of(error: &ApiError) -> serde_json::Value {
        serde_json::to_value(error.to_problem()).unwrap()
    }

    #[test]
    fn a_missing_nested_field_is_named_by_its_full_path() {
        let error =
            Json::<Order>::from_bytes(br#"{"items":[{"sku":"a","quantity":1},{"sku":"b"}]}"#)
                .unwrap_err();
        assert_eq!(
            problem_of(&error)["errors"],
            serde_json::json!([{"field": "items[1].quantity", "message": "is required"}])
        );
    }

    #[test]
    fn trailing_data_after_the_document_is_a_syntax_error() {
        let error = Json::<serde_json::Value>::from_bytes(br#"{"a":1} x"#).unwrap_err();
        assert_eq!(error.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            problem_of(&error)["detail"],
            "the request body is not valid JSON: trailing characters at line 1 column 9"
        );
    }

    #[test]
    fn json_content_types_with_parameters_or_a_json_suffix_are_accepted() {
        for accepted in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON",
            "application/merge-patch+json",
        ] {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(accepted));
            assert!(check_json_content_type(&headers).is_ok(), "{accepted}");
        }
        for refused in [
            "text/plain",
            "application/jsonp",
            "text/json",
            "application/x-www-form-urlencoded",
        ] {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(refused));
            assert!(check_json_content_type(&headers).is_err(), "{refused}");
        }
    }
}
