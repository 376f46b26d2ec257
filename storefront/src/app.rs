//! Wiring: the session store, the gateway client, the pages, the listener.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{get, post};
use platform_health::{Health, RedisCheck};
use tokio::net::TcpListener;

use crate::gateway::Gateway;
use crate::pages::{self, AppState, Shop};
use crate::session::Sessions;
use crate::views::Views;
use crate::{Config, SERVICE_NAME};

/// How long in-flight requests may finish after shutdown starts.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The storefront, bound and ready to serve.
pub struct App {
    listener: TcpListener,
    router: Router,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("address", &self.listener.local_addr().ok())
            .finish_non_exhaustive()
    }
}

/// The pages and the assets, on `shop`, with the platform's request id, request span,
/// metrics, deadline and body limit. Not `platform_http::with_standard_layers`: that one turns
/// bare errors and unknown paths into problem+json, and a browser must get pages.
pub fn router(shop: AppState, http: &platform_config::HttpSettings) -> Router {
    let pages = Router::new()
        .route("/", get(pages::catalogue))
        .route("/products/{sku}", get(pages::product))
        .route("/cart", get(pages::cart))
        .route("/cart/add", post(pages::cart_add))
        .route("/cart/update", post(pages::cart_update))
        .route("/cart/remove", post(pages::cart_remove))
        .route("/register", get(pages::register_page).post(pages::register))
        .route("/login", get(pages::login_page).post(pages::login))
        .route("/logout", post(pages::logout))
        .route("/account/cards", get(pages::cards))
        .route(
            "/account/cards/new",
            get(pages::card_form).post(pages::add_card),
        )
        .route("/checkout", post(pages::checkout))
        .route("/orders", get(pages::orders))
        .route("/orders/{id}", get(pages::order))
        .route("/orders/{id}/status", get(pages::order_status))
        .route("/orders/{id}/cancel", post(pages::cancel_order))
        .route("/notifications", get(pages::notifications))
        .route("/admin", get(pages::admin))
        .route("/admin/products", post(pages::create_product))
        .route("/admin/products/{id}/restock", post(pages::restock))
        .fallback(pages::not_found)
        .layer(middleware::from_fn_with_state(
            shop.clone(),
            pages::with_session,
        ));
    let assets = Router::new()
        .route("/static/app.css", get(pages::css))
        .route("/static/app.js", get(pages::js));
    Router::new()
        .merge(pages)
        .merge(assets)
        .with_state(shop)
        .layer(DefaultBodyLimit::max(http.body_limit_bytes))
        .layer(middleware::from_fn_with_state(
            http.request_timeout(),
            platform_http::layers::enforce_timeout,
        ))
        .route_layer(middleware::from_fn(platform_telemetry::metrics::track_http))
        .layer(middleware::from_fn(platform_http::layers::trace_request))
        .layer(middleware::from_fn(platform_http::request_id::request_id))
}

impl App {
    /// Connects to Redis, builds the pages and binds the listener.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let redis = redis::Client::open(config.redis.url.expose())?;
        let connection = redis::aio::ConnectionManager::new(redis).await?;
        let sessions = Sessions::new(
            connection.clone(),
            &config.session.key_prefix,
            Duration::from_secs(config.session.ttl_secs.max(60)),
            config.session.secure_cookie,
        );
        let shop = Arc::new(Shop::new(
            Gateway::new(&config.gateway)?,
            sessions,
            Views::new()?,
            config.shop.name.clone(),
        ));
        let health = Health::new().with_check(RedisCheck::new(connection));
        let router = router(shop, &config.http).merge(health.router()).route(
            "/metrics",
            get(platform_telemetry::metrics::metrics_handler),
        );
        let listener = platform_http::bind(&config.http.host, config.port(), "HTTP").await?;
        Ok(Self { listener, router })
    }

    /// Where it listens.
    pub fn http_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves until `shutdown` resolves.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        tracing::info!(service = SERVICE_NAME, address = %self.http_addr(), "started");
        platform_http::serve(self.listener, self.router, shutdown, DRAIN_TIMEOUT).await?;
        tracing::info!(service = SERVICE_NAME, "stopped");
        Ok(())
    }
}
