//! The OpenAPI document of a service: served at `GET /openapi.json`, with the platform's common
//! components (the problem schemas and the bearer security scheme).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use utoipa::openapi::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Components, RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

use crate::problem::{ApiError, FieldError, Problem};

/// The path the document is served at.
pub const OPENAPI_PATH: &str = "/openapi.json";

/// The name of the JWT bearer security scheme, for `security(("bearer" = []))`.
pub const BEARER_SCHEME: &str = "bearer";

/// A router answering `GET /openapi.json` with `doc`.
pub fn openapi_router<S>(doc: &OpenApi) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    // Serialized once: the document does not change while the process runs.
    let body = serde_json::to_vec(doc)
        .map(Bytes::from)
        .map_err(|error| Arc::new(anyhow::Error::new(error)));
    Router::new().route(
        OPENAPI_PATH,
        get(move || {
            let body = body.clone();
            async move {
                match body {
                    Ok(body) => {
                        ([(header::CONTENT_TYPE, "application/json")], body).into_response()
                    }
                    Err(error) => ApiError::Internal(anyhow::anyhow!(
                        "serializing the OpenAPI document: {error:#}"
                    ))
                    .into_response(),
                }
            }
        }),
    )
}

/// Adds the platform's common components to `doc`: the `Problem` and `FieldError` schemas and
/// the `bearer` HTTP security scheme (JWT). Existing components are kept.
pub fn with_common_components(mut doc: OpenApi) -> OpenApi {
    let components = doc.components.get_or_insert_with(Components::new);
    let schemas: [(String, RefOr<Schema>); 2] = [
        (Problem::name().into_owned(), Problem::schema()),
        (FieldError::name().into_owned(), FieldError::schema()),
    ];
    components.schemas.extend(schemas);
    components.add_security_scheme(
        BEARER_SCHEME,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .description(Some(
                    "An access token from the user service: `Authorization: Bearer <jwt>`",
                ))
                .build(),
        ),
    );
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_common_components_are_added_and_existing_ones_kept() {
        let mut doc = utoipa::openapi::OpenApiBuilder::new().build();
        let mut components = Components::new();
        components
            .schemas
            .insert("Order".to_owned(), String::schema());
        doc.components = Some(components);

        let json = serde_json::to_value(with_common_components(doc)).unwrap();
        let components = &json["components"];
        assert!(components["schemas"]["Order"].is_object());
        assert_eq!(
            components["schemas"]["Problem"]["properties"]["errors"]["items"]["$ref"],
            "#/components/schemas/FieldError"
        );
        assert_eq!(
            components["schemas"]["FieldError"]["required"],
            serde_json::json!(["field", "message"])
        );
        assert_eq!(components["securitySchemes"]["bearer"]["type"], "http");
        assert_eq!(components["securitySchemes"]["bearer"]["scheme"], "bearer");
        assert_eq!(
            components["securitySchemes"]["bearer"]["bearerFormat"],
            "JWT"
        );
    }
}
