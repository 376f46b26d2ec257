//! The gateway's configuration: defaults here, overridden by `GATEWAY__...` variables.
//!
//! Every variable, its default and its meaning: `docs/configuration.md#gateway`, generated from
//! this file (its types, their doc comments and `Default`s) by `make docs`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use platform_config::{HttpSettings, JwtSettings, RedisSettings, TelemetrySettings};
use serde::{Deserialize, Serialize};

/// The prefix of every variable, e.g. `GATEWAY__UPSTREAMS__USER`.
pub const ENV_PREFIX: &str = "GATEWAY";

/// The upstreams every deployment has, with their default addresses: each service of
/// `services.toml` marked `upstream`, on its HTTP port (docs/design.md's port scheme).
pub fn default_upstreams() -> BTreeMap<String, String> {
    platform_registry::services()
        .iter()
        .filter(|service| service.upstream)
        .map(|service| {
            let url = format!("http://127.0.0.1:{}", service.http_port);
            (service.name.clone(), url)
        })
        .collect()
}

/// Everything the gateway reads at start-up.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Config {
    /// The public listener, the default upstream timeout and the body limit.
    pub http: HttpSettings,
    /// How the process serves.
    pub server: ServerSettings,
    /// Upstream base URLs by name, on top of [`default_upstreams`].
    pub upstreams: BTreeMap<String, String>,
    /// Where the route table comes from.
    pub routes: RoutesSettings,
    /// How access tokens are verified.
    pub jwt: JwtSettings,
    /// Key set refresh and the verified-token cache.
    pub auth: AuthSettings,
    /// The rate limiter's Redis.
    pub redis: RedisSettings,
    /// Rate limits.
    pub rate_limit: RateLimitSettings,
    /// The upstream HTTP client.
    pub proxy: ProxySettings,
    /// The circuit breaker of each upstream.
    pub breaker: BreakerSettings,
    /// Cross-origin requests.
    pub cors: CorsSettings,
    /// Security headers.
    pub security: SecuritySettings,
    /// The merged OpenAPI document.
    pub openapi: OpenApiSettings,
    /// Logs and traces (`TELEMETRY__FILTER`, `__LOG_FORMAT`, `__OTLP_ENDPOINT`), over the
    /// standard variables, as every service has them.
    pub telemetry: TelemetrySettings,
    /// Upstream readiness probes.
    pub health: HealthSettings,
}

impl Config {
    /// Reads the configuration from the environment.
    pub fn from_env() -> Result<Self, platform_config::ConfigError> {
        platform_config::load(ENV_PREFIX)
    }

    /// Every upstream: the defaults, overridden or extended by `GATEWAY__UPSTREAMS__*`.
    pub fn upstream_urls(&self) -> BTreeMap<String, String> {
        let mut urls = default_upstreams();
        for (name, url) in &self.upstreams {
            urls.insert(name.to_ascii_lowercase(), url.clone());
        }
        urls
    }
}

/// How the process serves (`GATEWAY__SERVER__...`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct ServerSettings {
    /// Single-threaded workers sharing the port; 0 (the default) means one per CPU core.
    pub workers: usize,
    /// The largest request head, in bytes: request line and header fields, each counted as
    /// `name: value` and its line end. Larger: 431 problem, never forwarded.
    pub max_header_bytes: usize,
    /// The most header fields a request may have. More: 431 problem, never forwarded.
    pub max_headers: usize,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            workers: 0,
            max_header_bytes: 16 * 1024,
            max_headers: 64,
        }
    }
}

impl ServerSettings {
    /// The number of workers: as configured, or one per core.
    pub fn workers(&self) -> usize {
        if self.workers > 0 {
            self.workers
        } else {
            std::thread::available_parallelism().map_or(1, usize::from)
        }
    }
}

/// Where the route table comes from (`GATEWAY__ROUTES__FILE`).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct RoutesSettings {
    /// A route table file; unset means the built-in table (`gateway/routes.default.toml`).
    pub file: Option<PathBuf>,
}

/// Key set refresh and the verified-token cache (`GATEWAY__AUTH__...`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct AuthSettings {
    /// Seconds between two background refreshes of the key set.
    pub jwks_refresh_secs: u64,
    /// Milliseconds between two fetches triggered by unknown `kid`s.
    pub min_refresh_interval_ms: u64,
    /// Verified tokens remembered per worker thread, until they expire; 0 disables the cache.
    pub token_cache_size: usize,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            jwks_refresh_secs: 300,
            min_refresh_interval_ms: 10_000,
            token_cache_size: 10_000,
        }
    }
}

/// Rate limits (`GATEWAY__RATE_LIMIT__...`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct RateLimitSettings {
    /// Whether requests are counted at all.
    pub enabled: bool,
    /// Prefix of every Redis key (tests isolate themselves with it).
    pub key_prefix: String,
    /// Take the client address from the last `X-Forwarded-For` entry (set this only behind a
    /// proxy that appends it); otherwise the socket's peer address is the client.
    pub trust_forwarded_for: bool,
    /// Longest wait for Redis before the request is let through unlimited.
    pub timeout_ms: u64,
    /// Most permits a worker takes from Redis in one call (a class leases a hundredth of its
    /// limit, between 1 and this); 1 (or 0) means one call per request.
    pub max_lease: u64,
    /// Login, registration, token refresh: strict, always per client address (default 10 per
    /// minute).
    pub auth: ClassLimitSettings,
    /// Reads (default 600 per minute).
    pub read: ClassLimitSettings,
    /// Writes (default 120 per minute).
    pub write: ClassLimitSettings,
}

impl RateLimitSettings {
    /// The limit of the `auth` class, defaults filled in.
    pub fn auth_limit(&self) -> ClassLimit {
        self.auth.or(10, 60)
    }

    /// The limit of the `read` class, defaults filled in.
    pub fn read_limit(&self) -> ClassLimit {
        self.read.or(600, 60)
    }

    /// The limit of the `write` class, defaults filled in.
    pub fn write_limit(&self) -> ClassLimit {
        self.write.or(120, 60)
    }
}

/// A class's limit as configured: either part may be left to the class's default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct ClassLimitSettings {
    /// Requests allowed per window.
    pub limit: Option<u64>,
    /// The window, in seconds.
    pub window_secs: Option<u64>,
}

impl ClassLimitSettings {
    /// A limit of `limit` requests per `window_secs`.
    pub fn new(limit: u64, window_secs: u64) -> Self {
        Self {
            limit: Some(limit),
            window_secs: Some(window_secs),
        }
    }

    fn or(self, limit: u64, window_secs: u64) -> ClassLimit {
        ClassLimit {
            limit: self.limit.unwrap_or(limit),
            window_secs: self.window_secs.unwrap_or(window_secs).max(1),
        }
    }
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            key_prefix: "gateway:rl".to_owned(),
            trust_forwarded_for: false,
            timeout_ms: 100,
            max_lease: 100,
            auth: ClassLimitSettings::default(),
            read: ClassLimitSettings::default(),
            write: ClassLimitSettings::default(),
        }
    }
}

/// How many requests one client may make per window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClassLimit {
    /// Requests allowed per window.
    pub limit: u64,
    /// The window, in seconds.
    pub window_secs: u64,
}

/// The upstream HTTP client (`GATEWAY__PROXY__...`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct ProxySettings {
    /// Retries of an idempotent request whose connection could not be established.
    pub retries: u32,
    /// Back-off before the first retry (doubled for each next one).
    pub retry_backoff_ms: u64,
    /// TCP connect timeout.
    pub connect_timeout_ms: u64,
    /// Idle keep-alive connections are closed after this many seconds.
    pub pool_idle_timeout_secs: u64,
}

impl ProxySettings {
    /// How the connections to each upstream are made and kept.
    pub fn pool_settings(&self) -> crate::pool::PoolSettings {
        crate::pool::PoolSettings {
            connect_timeout: Duration::from_millis(self.connect_timeout_ms.max(1)),
            idle_timeout: Duration::from_secs(self.pool_idle_timeout_secs.max(1)),
        }
    }
}

impl Default for ProxySettings {
    fn default() -> Self {
        Self {
            retries: 2,
            retry_backoff_ms: 25,
            connect_timeout_ms: 1000,
            pool_idle_timeout_secs: 60,
        }
    }
}

/// The circuit breaker of each upstream (`GATEWAY__BREAKER__...`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct BreakerSettings {
    /// Consecutive failures (connect errors, timeouts, 502/503/504) that open it.
    pub failure_threshold: u32,
    /// How long it stays open before one trial request.
    pub cool_down_ms: u64,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            cool_down_ms: 10_000,
        }
    }
}

/// Cross-origin requests (`GATEWAY__CORS__...`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct CorsSettings {
    /// Comma-separated origins (`https://shop.example.com,https://admin.example.com`); empty:
    /// no cross-origin access.
    pub allowed_origins: String,
    /// Seconds a browser may cache a preflight answer.
    pub max_age_secs: u64,
}

impl Default for CorsSettings {
    fn default() -> Self {
        Self {
            allowed_origins: String::new(),
            max_age_secs: 600,
        }
    }
}

impl CorsSettings {
    /// The allowed origins, trimmed, without empty entries.
    pub fn origins(&self) -> Vec<String> {
        self.allowed_origins
            .split(',')
            .map(str::trim)
            .filter(|origin| !origin.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

/// Security headers (`GATEWAY__SECURITY__...`).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct SecuritySettings {
    /// `Strict-Transport-Security: max-age=...`; set it only where clients reach the gateway
    /// over TLS (a terminating load balancer in front of it).
    pub hsts_max_age_secs: Option<u64>,
}

/// The merged OpenAPI document (`GATEWAY__OPENAPI__...`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct OpenApiSettings {
    /// Seconds between two fetches of the upstreams' documents.
    pub refresh_secs: u64,
}

impl Default for OpenApiSettings {
    fn default() -> Self {
        Self { refresh_secs: 60 }
    }
}

/// Upstream readiness probes (`GATEWAY__HEALTH__...`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct HealthSettings {
    /// Timeout of each upstream's `/health/ready`, in milliseconds.
    pub timeout_ms: u64,
    /// Whether readiness also asks every upstream (`GATEWAY__HEALTH__UPSTREAMS`, default
    /// true: "the platform is ready", as `make run` and compose wait for). Off where an
    /// orchestrator routes by readiness (Kubernetes): one unready service must not take the
    /// whole edge out of rotation; its routes answer 503 on their own.
    pub upstreams: bool,
}

impl Default for HealthSettings {
    fn default() -> Self {
        Self {
            timeout_ms: 1000,
            upstreams: true,
        }
    }
}

/// Milliseconds as a duration.
pub(crate) fn millis(value: u64) -> Duration {
    Duration::from_millis(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(vars: &[(&str, &str)]) -> Result<Config, platform_config::ConfigError> {
        platform_config::load_from(
            ENV_PREFIX,
            vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        )
    }

    #[test]
    fn nothing_is_required_and_the_defaults_are_the_documented_ones() {
        let config = load(&[]).unwrap();
        assert_eq!(
            config.http.port_or(platform_registry::gateway().http_port),
            8080
        );
        assert_eq!(platform_registry::gateway().env_prefix, ENV_PREFIX);
        assert_eq!(config.upstream_urls()["inventory"], "http://127.0.0.1:8084");
        assert!(config.rate_limit.enabled);
        assert_eq!(config.rate_limit.max_lease, 100);
        assert_eq!(
            config.rate_limit.auth_limit(),
            ClassLimit {
                limit: 10,
                window_secs: 60
            }
        );
        assert!(config.cors.origins().is_empty());
        assert!(config.routes.file.is_none());
    }

    #[test]
    fn variables_override_upstreams_limits_and_origins() {
        let config = load(&[
            ("GATEWAY__UPSTREAMS__USER", "http://user:8081"),
            ("GATEWAY__UPSTREAMS__SEARCH", "http://search:9000"),
            ("GATEWAY__RATE_LIMIT__READ__LIMIT", "5"),
            ("GATEWAY__RATE_LIMIT__WRITE__WINDOW_SECS", "1"),
            ("GATEWAY__RATE_LIMIT__TRUST_FORWARDED_FOR", "true"),
            ("GATEWAY__RATE_LIMIT__MAX_LEASE", "1"),
            (
                "GATEWAY__CORS__ALLOWED_ORIGINS",
                "https://a.example, https://b.example",
            ),
            ("GATEWAY__ROUTES__FILE", "/etc/gateway/routes.toml"),
        ])
        .unwrap();
        let upstreams = config.upstream_urls();
        assert_eq!(upstreams["user"], "http://user:8081");
        assert_eq!(upstreams["search"], "http://search:9000");
        assert_eq!(upstreams["order"], "http://127.0.0.1:8082");
        assert_eq!(
            config.rate_limit.read_limit(),
            ClassLimit {
                limit: 5,
                window_secs: 60
            },
            "the window keeps its default"
        );
        assert_eq!(
            config.rate_limit.write_limit(),
            ClassLimit {
                limit: 120,
                window_secs: 1
            }
        );
        assert_eq!(config.rate_limit.auth_limit().limit, 10);
        assert!(config.rate_limit.trust_forwarded_for);
        assert_eq!(config.rate_limit.max_lease, 1);
        assert_eq!(
            config.cors.origins(),
            vec!["https://a.example", "https://b.example"]
        );
        assert_eq!(
            config.routes.file.as_deref(),
            Some(std::path::Path::new("/etc/gateway/routes.toml"))
        );
    }

    #[test]
    fn a_malformed_value_names_its_variable() {
        let error = load(&[("GATEWAY__BREAKER__FAILURE_THRESHOLD", "many")])
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("GATEWAY__BREAKER__FAILURE_THRESHOLD"),
            "{error}"
        );
    }
}
