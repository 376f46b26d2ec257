//! `GET /health/live` and `GET /health/ready`.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use crate::health::Health;

impl Health {
    /// `GET /health/live` and `GET /health/ready`, to merge into the service's router.
    ///
    /// The routes hold the checks themselves and need nothing from the application state, so
    /// the router is a `Router<S>` for any `S`: merge it before or after `with_state`, e.g.
    /// `Router::new().merge(api::router()).merge(health.router()).with_state(state)`.
    ///
    /// Responses carry `Cache-Control: no-store`, so no cache between the prober and the service
    /// answers for the service.
    pub fn router<S>(&self) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        let health = self.clone();
        Router::new()
            .route("/health/live", get(live))
            .route("/health/ready", get(move || ready(health.clone())))
    }
}

#[derive(Serialize)]
struct Live {
    status: &'static str,
}

/// The process is up and serving HTTP: nothing else is asked, so a dependency outage makes the
/// service unready (taken out of load balancing) but never gets it restarted.
async fn live() -> Response {
    (
        [(header::CACHE_CONTROL, "no-store")],
        Json(Live { status: "live" }),
    )
        .into_response()
}

async fn ready(health: Health) -> Response {
    let report = health.check_all().await;
    let status = if report.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, [(header::CACHE_CONTROL, "no-store")], Json(report)).into_response()
}
