//! The service's configuration: defaults here, overridden by `ORDER_SERVICE__...` variables.

use std::time::Duration;

use platform_config::{
    DatabaseSettings, HttpSettings, JwtSettings, NatsSettings, ServiceAuthSettings,
};
use serde::Deserialize;

/// The prefix of every variable, e.g. `ORDER_SERVICE__DATABASE__URL`.
pub const ENV_PREFIX: &str = "ORDER_SERVICE";

/// Everything the service reads at start-up.
#[derive(Clone, Debug, Deserialize)]
pub struct Config {
    /// The HTTP API.
    #[serde(default)]
    pub http: HttpSettings,
    /// The service's own PostgreSQL database (required).
    pub database: DatabaseSettings,
    /// The event bus.
    #[serde(default)]
    pub nats: NatsSettings,
    /// Verifying users' access tokens.
    #[serde(default)]
    pub jwt: JwtSettings,
    /// The credential this service presents to inventory and payment.
    #[serde(default)]
    pub service_auth: ServiceAuthSettings,
    /// The inventory service.
    #[serde(default = "default_inventory")]
    pub inventory: DownstreamSettings,
    /// The payment service.
    #[serde(default = "default_payment")]
    pub payment: DownstreamSettings,
    /// How the checkout saga runs.
    #[serde(default)]
    pub saga: SagaSettings,
    /// Limits on what an order may hold.
    #[serde(default)]
    pub orders: OrderLimits,
}

impl Config {
    /// Reads the configuration from the environment.
    pub fn from_env() -> Result<Self, platform_config::ConfigError> {
        platform_config::load(ENV_PREFIX)
    }

    /// Defaults for everything but the database.
    pub fn with_database(url: impl Into<String>) -> Self {
        Self {
            http: HttpSettings::default(),
            database: DatabaseSettings::new(url),
            nats: NatsSettings::default(),
            jwt: JwtSettings::default(),
            service_auth: ServiceAuthSettings::default(),
            inventory: default_inventory(),
            payment: default_payment(),
            saga: SagaSettings::default(),
            orders: OrderLimits::default(),
        }
    }
}

/// A service this one calls over gRPC.
#[derive(Clone, Debug, Deserialize)]
pub struct DownstreamSettings {
    /// Its gRPC address (`URL`), e.g. `http://inventory:9084`.
    pub url: String,
    /// The deadline of each call, in milliseconds (`TIMEOUT_MS`).
    pub timeout_ms: u64,
}

impl DownstreamSettings {
    /// The deadline of each call.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}

fn default_inventory() -> DownstreamSettings {
    DownstreamSettings {
        url: "http://127.0.0.1:9084".to_owned(),
        timeout_ms: 2000,
    }
}

fn default_payment() -> DownstreamSettings {
    DownstreamSettings {
        url: "http://127.0.0.1:9083".to_owned(),
        timeout_ms: 3000,
    }
}

/// The saga worker.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct SagaSettings {
    /// How often the worker looks for due sagas when idle, in milliseconds.
    pub poll_interval_ms: u64,
    /// How long a worker holds a saga it is stepping, in seconds. A worker that dies holding
    /// one delays it by this much.
    pub lease_secs: u64,
    /// Attempts of a forward step (reserve, charge, commit) before the order is cancelled.
    /// Compensation is retried until it succeeds.
    pub max_attempts: i32,
    /// Delay before the first retry, in milliseconds; doubles per attempt, up to 30 s.
    pub retry_base_ms: u64,
    /// Sagas stepped at once by one worker.
    pub concurrency: i64,
    /// Consecutive failures that open a downstream's circuit breaker.
    pub breaker_threshold: u32,
    /// How long an open breaker refuses calls, in milliseconds.
    pub breaker_cool_down_ms: u64,
}

impl Default for SagaSettings {
    fn default() -> Self {
        Self {
            poll_interval_ms: 200,
            lease_secs: 15,
            max_attempts: 6,
            retry_base_ms: 200,
            concurrency: 16,
            breaker_threshold: 5,
            breaker_cool_down_ms: 5000,
        }
    }
}

impl SagaSettings {
    /// The delay after the `attempt`-th failure.
    pub fn retry_delay(&self, attempt: i32) -> Duration {
        platform_resilience::backoff(
            Duration::from_millis(self.retry_base_ms),
            u32::try_from(attempt).unwrap_or(1),
            Duration::from_secs(30),
        )
    }
}

/// What an order may hold.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct OrderLimits {
    /// Lines per order.
    pub max_items: usize,
    /// Units per line.
    pub max_quantity: u32,
}

impl Default for OrderLimits {
    fn default() -> Self {
        Self {
            max_items: 50,
            max_quantity: 100,
        }
    }
}
