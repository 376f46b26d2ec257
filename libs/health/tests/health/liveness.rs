use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use platform_health::{Health, check_fn};
use reqwest::StatusCode;

use crate::helpers::spawn_app;

#[tokio::test]
async fn liveness_answers_live_without_running_any_check() -> anyhow::Result<()> {
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = runs.clone();
    let health = Health::new().with_check(check_fn("never-answers", move || {
        counted.fetch_add(1, Ordering::SeqCst);
        std::future::pending()
    }));
    let app = spawn_app(&health).await?;

    let response = app
        .client
        .get(format!("http://{}/health/live", app.address))
        .send()
        .await?;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: serde_json::Value = response.json().await?;
    assert_eq!(body, serde_json::json!({"status": "live"}));
    assert_eq!(
        runs.load(Ordering::SeqCst),
        0,
        "liveness must not touch dependencies"
    );
    Ok(())
}

#[tokio::test]
async fn the_health_routes_sit_beside_the_service_routes_and_state() -> anyhow::Result<()> {
    let app = spawn_app(&Health::new()).await?;

    let hello = app
        .client
        .get(format!("http://{}/hello", app.address))
        .send()
        .await?;
    assert_eq!(hello.status(), StatusCode::OK);
    assert_eq!(hello.text().await?, "hello");

    let (status, body) = app.ready().await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, serde_json::json!({"status": "ready", "checks": []}));
    Ok(())
}

#[tokio::test]
async fn readiness_is_not_cached_by_anything_between_the_prober_and_the_service()
-> anyhow::Result<()> {
    let app = spawn_app(&Health::new()).await?;

    let response = app
        .client
        .get(format!("http://{}/health/ready", app.address))
        .send()
        .await?;

    assert_eq!(response.headers()["cache-control"], "no-store");
    Ok(())
}
