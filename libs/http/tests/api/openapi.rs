//! `GET /openapi.json`.

use crate::helpers::spawn_app;

#[tokio::test]
async fn the_openapi_document_is_served_with_the_common_components() {
    let app = spawn_app().await;
    let response = app.get("/openapi.json").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let doc: serde_json::Value = response.json().await.unwrap();
    assert_eq!(doc["info"]["title"], "test service");
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let components = &doc["components"];
    assert_eq!(components["schemas"]["Problem"]["type"], "object");
    assert_eq!(components["schemas"]["FieldError"]["type"], "object");
    assert_eq!(
        components["securitySchemes"]["bearer"],
        serde_json::json!({
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "An access token from the user service: `Authorization: Bearer <jwt>`"
        })
    );
}
