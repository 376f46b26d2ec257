//! Wiring: configuration in, listener bound, everything running until shutdown.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::routing::get;
use platform_auth::{JwksVerifier, JwksVerifierConfig};
use platform_resilience::BreakerConfig;
use tokio::net::TcpListener;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::auth::Authenticator;
use crate::config::{Config, millis};
use crate::metrics::{REFUSED, RouteMetrics, UNMATCHED};
use crate::openapi::ApiDocs;
use crate::pipeline::Pipeline;
use crate::proxy::{Proxy, Upstream};
use crate::rate_limit::{
    RATELIMIT_LIMIT, RATELIMIT_POLICY, RATELIMIT_REMAINING, RATELIMIT_RESET, RateLimiter,
};
use crate::readiness::{Workers, upstream_health};
use crate::routes::RouteTable;
use crate::server::{Edge, HeaderLimits};

/// The gateway's name: in logs and traces.
pub const SERVICE_NAME: &str = "gateway";

/// How long in-flight requests get to finish after a shutdown signal.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(20);

/// The gateway, built and bound, ready to run.
pub struct Application {
    listener: TcpListener,
    edge: Arc<Edge>,
    shared: Shared,
    /// Whether this worker keeps `shared` fresh (the first worker does, for all).
    refreshes: bool,
    jwks_refresh: Duration,
    openapi_refresh: Duration,
}

/// What the workers of one process share: what they fetch from elsewhere and is the same for
/// all, kept fresh by the first worker. The signing keys (each worker still remembers the
/// tokens it verified, in a cache of its own thread) and the merged API documents; nothing on
/// the request path is locked across workers.
#[derive(Clone, Debug)]
pub struct Shared {
    auth: Authenticator,
    docs: Arc<ApiDocs>,
}

impl Shared {
    /// The verifier (keys fetched in the background and on first use) and the upstreams'
    /// documents, fetched now (tolerating any upstream that is down).
    async fn fetch(
        config: &Config,
        upstreams: &[Arc<Upstream>],
        table: &RouteTable,
        proxy: &Proxy,
    ) -> anyhow::Result<Self> {
        let verifier = JwksVerifier::new(
            JwksVerifierConfig::new(
                config.jwt.jwks_url.clone(),
                config.jwt.issuer.clone(),
                config.jwt.audience.clone(),
            )
            .with_min_refresh_interval(millis(config.auth.min_refresh_interval_ms)),
        )
        .context("setting up the JWKS verifier")?;
        let docs = Arc::new(ApiDocs::new(
            upstreams.to_vec(),
            table.clone(),
            proxy.client().clone(),
            Duration::from_secs(5),
        ));
        docs.refresh().await;
        Ok(Self {
            auth: Authenticator::new(verifier, config.auth.token_cache_size),
            docs,
        })
    }
}

impl Application {
    /// Loads the route table, sets up the upstreams, the verifier and the rate limiter, fetches
    /// the upstreams' OpenAPI documents (tolerating any that is down), and binds the listener.
    ///
    /// Nothing here needs Redis or the user service to be up: the limiter connects lazily and
    /// fails open, and keys are fetched in the background (and on first use).
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        Self::build_worker(config, false, &Workers::new(1), None).await
    }

    /// [`Application::build`], for one of several workers sharing the port: the listener is
    /// bound with `SO_REUSEPORT`, so that the kernel spreads connections over the workers.
    /// Its readiness speaks for all of `workers`, which it joins.
    /// The first worker builds what the workers share (`shared` is `None`); the others are
    /// given it ([`Application::shared`]).
    pub async fn build_worker(
        config: Config,
        share_port: bool,
        workers: &Arc<Workers>,
        shared: Option<Shared>,
    ) -> anyhow::Result<Self> {
        let table = match &config.routes.file {
            Some(path) => RouteTable::from_file(path)?,
            None => RouteTable::builtin(),
        };
        let urls = config.upstream_urls();
        table.check_upstreams(&urls)?;

        let upstreams = routed_upstreams(&config, &table, &urls)?;
        for upstream in &upstreams {
            // Ends by itself with the pool.
            drop(upstream.pool().spawn_sweep());
        }

        let limiter = RateLimiter::new(config.redis.url.expose(), &config.rate_limit)?;
        let proxy = Proxy::new(&config.proxy);

        let routes = Pipeline::resolve(
            &table,
            &upstreams,
            config.http.request_timeout(),
            config.http.body_limit_bytes,
        )?;
        let refreshes = shared.is_none();
        let shared = match shared {
            Some(shared) => shared,
            None => Shared::fetch(&config, &upstreams, &table, &proxy).await?,
        };
        let (auth, docs) = (&shared.auth, &shared.docs);
        let me = workers.join(auth.verifier().clone(), docs.clone());
        let health = upstream_health(
            workers,
            me,
            if config.health.upstreams {
                &upstreams
            } else {
                &[]
            },
            proxy.client(),
            millis(config.health.timeout_ms.max(1)),
        );
        let pipeline = Arc::new(Pipeline {
            table,
            routes,
            auth: auth.clone(),
            limiter,
            proxy,
            trust_forwarded_for: config.rate_limit.trust_forwarded_for,
            unmatched: RouteMetrics::new(UNMATCHED, "none"),
        });

        let own = Router::new()
            .merge(health.router())
            .route(
                "/metrics",
                get(platform_telemetry::metrics::metrics_handler),
            )
            .merge(docs.router());
        let edge = Arc::new(Edge {
            pipeline,
            own,
            header_limits: HeaderLimits {
                max_bytes: config.server.max_header_bytes.max(1024),
                max_count: config.server.max_headers.max(16),
            },
            refused: RouteMetrics::new(REFUSED, "none"),
            cors: cors_layer(&config)?,
            hsts: config.security.hsts_max_age_secs.map(|max_age| {
                HeaderValue::try_from(format!("max-age={max_age}; includeSubDomains"))
                    .expect("digits make a valid header value")
            }),
        });

        let port = config.http.port_or(platform_registry::gateway().http_port);
        let listener = if share_port {
            bind_shared(&config.http.host, port).await?
        } else {
            platform_http::bind(&config.http.host, port, "HTTP").await?
        };
        Ok(Self {
            listener,
            edge,
            shared,
            refreshes,
            jwks_refresh: Duration::from_secs(config.auth.jwks_refresh_secs.max(1)),
            openapi_refresh: Duration::from_secs(config.openapi.refresh_secs.max(1)),
        })
    }

    /// What this worker shares with the others of its process.
    pub fn shared(&self) -> Shared {
        self.shared.clone()
    }

    /// Where the gateway listens.
    pub fn http_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves until `shutdown` resolves; then stops accepting, lets in-flight requests finish
    /// (up to a deadline) and stops the background refreshes.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let mut tasks = Vec::new();
        if self.refreshes {
            tasks = self.shared.auth.spawn_refresh(self.jwks_refresh);
            tasks.push(self.shared.docs.spawn_refresh(self.openapi_refresh));
        }
        tracing::info!(service = SERVICE_NAME, address = %self.http_addr(), "started");
        crate::server::serve(self.listener, self.edge, shutdown, DRAIN_TIMEOUT).await;
        for task in tasks {
            task.abort();
        }
        tracing::info!(service = SERVICE_NAME, "stopped");
        Ok(())
    }
}

/// Only the upstreams the table routes to: the others are neither probed nor documented.
fn routed_upstreams(
    config: &Config,
    table: &RouteTable,
    urls: &BTreeMap<String, String>,
) -> anyhow::Result<Vec<Arc<Upstream>>> {
    let breaker = BreakerConfig {
        failure_threshold: config.breaker.failure_threshold.max(1),
        cool_down: millis(config.breaker.cool_down_ms),
    };
    let mut upstreams: Vec<Arc<Upstream>> = Vec::new();
    for route in table.routes() {
        if upstreams.iter().all(|known| known.name() != route.upstream) {
            upstreams.push(Arc::new(Upstream::new(
                &route.upstream,
                &urls[&route.upstream],
                breaker,
                config.proxy.pool_settings(),
            )?));
        }
    }
    Ok(upstreams)
}

/// Binds `host:port` with `SO_REUSEPORT`, so that several workers can each have a listener.
async fn bind_shared(host: &str, port: u16) -> anyhow::Result<TcpListener> {
    let addr = tokio::net::lookup_host((host, port))
        .await?
        .next()
        .with_context(|| format!("`{host}` resolves to no address"))?;
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    #[cfg(unix)]
    socket.set_reuseport(true)?;
    socket
        .bind(addr)
        .with_context(|| format!("binding the HTTP listener to {addr}"))?;
    Ok(socket.listen(1024)?)
}

/// Runs `workers` gateways in this process, each on a single-threaded runtime of its own
/// thread with its own listener on the shared port (`SO_REUSEPORT`: the kernel spreads
/// connections), upstream connection pool, Redis connection and cache of verified tokens:
/// nothing on the request path is locked across workers, as nginx's worker processes share
/// nothing. What they fetch from elsewhere ([`Shared`]: the signing keys, the API documents)
/// is fetched once, by the first worker, which runs on the calling runtime. All stop when
/// `shutdown` resolves.
///
/// Each worker has its own circuit breakers, so an upstream that fails is cut off by each
/// worker after `GATEWAY__BREAKER__FAILURE_THRESHOLD` failures of its own.
pub async fn run_workers(
    config: Config,
    workers: usize,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let workers = workers.max(1);
    let board = Workers::new(workers);
    let first = Application::build_worker(config.clone(), workers > 1, &board, None).await?;
    let port = first.http_addr().port();
    tracing::info!(address = %first.http_addr(), workers, "listening");
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut threads = Vec::new();
    for index in 1..workers {
        let mut config = config.clone();
        config.http.port = Some(port);
        let mut stopped = stopped.clone();
        let board = board.clone();
        let shared = first.shared();
        let thread = std::thread::Builder::new()
            .name(format!("gateway-worker-{index}"))
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                runtime.block_on(async move {
                    let worker =
                        Application::build_worker(config, true, &board, Some(shared)).await?;
                    worker
                        .run_until_stopped(async move {
                            let _ = stopped.wait_for(|stop| *stop).await;
                        })
                        .await
                })
            })
            .context("starting a worker thread")?;
        threads.push(thread);
    }
    let result = first
        .run_until_stopped(async move {
            shutdown.await;
            let _ = stop.send(true);
        })
        .await;
    for thread in threads {
        match thread.join() {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::error!(error = format!("{error:#}"), "a worker failed"),
            Err(_) => tracing::error!("a worker thread panicked"),
        }
    }
    result
}

/// CORS from `GATEWAY__CORS__ALLOWED_ORIGINS`; `None` when no origin is allowed.
fn cors_layer(config: &Config) -> anyhow::Result<Option<CorsLayer>> {
    let origins = config.cors.origins();
    if origins.is_empty() {
        return Ok(None);
    }
    let origins = origins
        .iter()
        .map(|origin| {
            HeaderValue::from_str(origin).map_err(|_| {
                anyhow::anyhow!("GATEWAY__CORS__ALLOWED_ORIGINS: `{origin}` is not a valid origin")
            })
        })
        .collect::<anyhow::Result<Arc<[_]>>>()?;
    Ok(Some(
        CorsLayer::new()
            // A predicate rather than a list: the layer is cloned per request, and this clones
            // an `Arc`, not the list.
            .allow_origin(AllowOrigin::predicate(move |origin, _| {
                origins.contains(origin)
            }))
            .allow_methods([
                Method::GET,
                Method::HEAD,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
                Method::OPTIONS,
            ])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::ACCEPT,
                header::IF_NONE_MATCH,
                HeaderName::from_static("idempotency-key"),
                HeaderName::from_static(platform_http::X_REQUEST_ID),
                HeaderName::from_static("traceparent"),
            ])
            .expose_headers([
                HeaderName::from_static(platform_http::X_REQUEST_ID),
                header::ETAG,
                header::LOCATION,
                header::RETRY_AFTER,
                RATELIMIT_LIMIT,
                RATELIMIT_REMAINING,
                RATELIMIT_RESET,
                RATELIMIT_POLICY,
            ])
            .max_age(Duration::from_secs(config.cors.max_age_secs)),
    ))
}
