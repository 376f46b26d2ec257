//! Sections every service's configuration has, so they read the same everywhere: a service
//! embeds them (`#[serde(default)] pub http: HttpSettings`) and passes its own default ports.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::Secret;

/// The HTTP listener and its limits (`{PREFIX}__HTTP__...`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct HttpSettings {
    /// Interface to bind (`HOST`).
    pub host: String,
    /// Port (`PORT`); unset means the process's default (`services.toml`), 0 any free port.
    pub port: Option<u16>,
    /// Seconds a request may take before it is answered with 503 (`REQUEST_TIMEOUT_SECS`).
    pub request_timeout_secs: u64,
    /// Largest request body in bytes (`BODY_LIMIT_BYTES`).
    pub body_limit_bytes: usize,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            host: "0.0.0.0".to_owned(),
            port: None,
            request_timeout_secs: 10,
            body_limit_bytes: 64 * 1024,
        }
    }
}

impl HttpSettings {
    /// The configured port, or the service's default.
    pub fn port_or(&self, default: u16) -> u16 {
        self.port.unwrap_or(default)
    }

    /// The request timeout.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }
}

/// The gRPC listener (`{PREFIX}__GRPC__...`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct GrpcSettings {
    /// Interface to bind (`HOST`).
    pub host: String,
    /// Port (`PORT`); unset means the process's default (`services.toml`), 0 any free port.
    pub port: Option<u16>,
}

impl Default for GrpcSettings {
    fn default() -> Self {
        Self {
            host: "0.0.0.0".to_owned(),
            port: None,
        }
    }
}

/// The service's own PostgreSQL database (`{PREFIX}__DATABASE__...`).
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct DatabaseSettings {
    /// Connection URL (`URL`, required), e.g. `postgres://user:password@host:5432/orders`.
    pub url: Secret,
    /// Pool size (`MAX_CONNECTIONS`).
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
}

fn default_max_connections() -> u32 {
    10
}

impl DatabaseSettings {
    /// Settings for a database URL, with the default pool size.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: Secret::new(url),
            max_connections: default_max_connections(),
        }
    }
}

/// The event bus (`{PREFIX}__NATS__...`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct NatsSettings {
    /// Server URL (`URL`).
    pub url: String,
    /// A prefix for every subject and stream (`SUBJECT_PREFIX`): empty in production; tests
    /// isolate themselves with it.
    pub subject_prefix: Option<String>,
    /// Events each of the service's consumers processes at once (`CONSUMER_CONCURRENCY`).
    /// Above 1, two events may be applied in either order.
    pub consumer_concurrency: usize,
}

impl Default for NatsSettings {
    fn default() -> Self {
        Self {
            url: "nats://127.0.0.1:4222".to_owned(),
            subject_prefix: None,
            consumer_concurrency: 4,
        }
    }
}

/// The shared secret behind service-to-service credentials (`{PREFIX}__SERVICE_AUTH__SECRET`).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct ServiceAuthSettings {
    /// At least 32 bytes. Unset: an obviously insecure development secret, with a warning.
    pub secret: Option<Secret>,
}

/// How a service verifies the access tokens users present (`{PREFIX}__JWT__...`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct JwtSettings {
    /// The user service's key set (`JWKS_URL`).
    pub jwks_url: String,
    /// Expected `iss` (`ISSUER`).
    pub issuer: String,
    /// Expected `aud` (`AUDIENCE`).
    pub audience: String,
}

impl Default for JwtSettings {
    fn default() -> Self {
        Self {
            jwks_url: "http://127.0.0.1:8081/.well-known/jwks.json".to_owned(),
            issuer: "platform-user-service".to_owned(),
            audience: "platform-api".to_owned(),
        }
    }
}

/// The service's own MongoDB database (`{PREFIX}__MONGO__...`).
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct MongoSettings {
    /// Connection string (`URL`, required), e.g. `mongodb://user:password@host:27017/?replicaSet=rs0`.
    pub url: Secret,
    /// Database name (`DATABASE`); unset means the service's default.
    #[serde(default)]
    pub database: Option<String>,
}

impl MongoSettings {
    /// Settings for a connection string, with the service's default database.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: Secret::new(url),
            database: None,
        }
    }

    /// The configured database name, or the service's default.
    pub fn database_or<'a>(&'a self, default: &'a str) -> &'a str {
        self.database.as_deref().unwrap_or(default)
    }
}

/// A Redis server (`{PREFIX}__REDIS__...`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct RedisSettings {
    /// URL (`URL`); may carry a password.
    pub url: Secret,
}

impl Default for RedisSettings {
    fn default() -> Self {
        Self {
            url: Secret::compiled_in("redis://127.0.0.1:6379"),
        }
    }
}

/// Logs and traces (`{PREFIX}__TELEMETRY__...`); each unset key falls back to the standard
/// variable (`RUST_LOG`, `LOG_FORMAT`, `OTEL_EXPORTER_OTLP_ENDPOINT`).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct TelemetrySettings {
    /// `tracing` filter directives (`FILTER`), e.g. `info,sqlx=warn`; unset: `RUST_LOG`.
    pub filter: Option<String>,
    /// `json` or `pretty` (`LOG_FORMAT`); unset: `LOG_FORMAT`.
    pub log_format: Option<String>,
    /// OTLP/gRPC collector endpoint (`OTLP_ENDPOINT`); unset: `OTEL_EXPORTER_OTLP_ENDPOINT`,
    /// and no export when neither is set.
    pub otlp_endpoint: Option<String>,
}

/// The sections every service has, whatever it does: its listeners, the event bus, how it
/// verifies users' tokens, its service credential, and its telemetry. A service's own sections
/// sit beside them in [`crate::Settings`].
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct CommonSettings {
    /// The HTTP API (`HTTP__...`).
    pub http: HttpSettings,
    /// The internal gRPC API, for services that have one (`GRPC__...`).
    pub grpc: GrpcSettings,
    /// The event bus (`NATS__...`).
    pub nats: NatsSettings,
    /// Verifying users' access tokens (`JWT__...`).
    pub jwt: JwtSettings,
    /// The credential presented and checked on internal gRPC calls (`SERVICE_AUTH__...`).
    pub service_auth: ServiceAuthSettings,
    /// Logs and traces (`TELEMETRY__...`).
    pub telemetry: TelemetrySettings,
}

/// A service this one calls over gRPC (`{PREFIX}__{CALLEE}__...`); unset keys take the
/// caller's defaults for that callee (its address from the service registry).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct DownstreamSettings {
    /// Its gRPC address (`URL`), e.g. `http://inventory:9084`; unset: the callee's gRPC port
    /// on this host.
    pub url: Option<String>,
    /// The deadline of each call, in milliseconds (`TIMEOUT_MS`); unset: the caller's default
    /// for that callee.
    pub timeout_ms: Option<u64>,
    /// Consecutive failures that open the circuit breaker (`BREAKER_THRESHOLD`).
    pub breaker_threshold: Option<u32>,
    /// How long an open breaker refuses calls, in milliseconds (`BREAKER_COOL_DOWN_MS`).
    pub breaker_cool_down_ms: Option<u64>,
}

impl DownstreamSettings {
    /// Consecutive failures that open the breaker when `BREAKER_THRESHOLD` is unset.
    pub const DEFAULT_BREAKER_THRESHOLD: u32 = 5;
    /// Milliseconds an open breaker refuses calls when `BREAKER_COOL_DOWN_MS` is unset.
    pub const DEFAULT_BREAKER_COOL_DOWN_MS: u64 = 5000;

    /// The address of a callee whose gRPC API listens on `grpc_port`, when `URL` is unset.
    pub fn local_url(grpc_port: u16) -> String {
        format!("http://127.0.0.1:{grpc_port}")
    }
}
