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
    #[serde(default)]
    pub inventory: DownstreamSettings,
    /// The payment service.
    #[serde(default)]
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
            inventory: DownstreamSettings::default(),
            payment: DownstreamSettings::default(),
            saga: SagaSettings::default(),
            orders: OrderLimits::default(),
        }
    }
}

/// A service this one calls over gRPC; unset keys take the defaults of that service.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct DownstreamSettings {
    /// Its gRPC address (`URL`), e.g. `http://inventory:9084`.
    pub url: Option<String>,
    /// The deadline of each call, in milliseconds (`TIMEOUT_MS`).
    pub timeout_ms: Option<u64>,
}

/// A downstream's settings with the defaults filled in.
#[derive(Clone, Debug)]
pub struct Downstream {
    /// gRPC address.
    pub url: String,
    /// Deadline of each call.
    pub timeout: Duration,
}

impl DownstreamSettings {
    fn resolve(&self, url: &str, timeout_ms: u64) -> Downstream {
        Downstream {
            url: self.url.clone().unwrap_or_else(|| url.to_owned()),
            timeout: Duration::from_millis(self.timeout_ms.unwrap_or(timeout_ms)),
        }
    }
}

impl Config {
    /// The inventory service (default `http://127.0.0.1:9084`, 2 s).
    pub fn inventory(&self) -> Downstream {
        self.inventory.resolve("http://127.0.0.1:9084", 2000)
    }

    /// The payment service (default `http://127.0.0.1:9083`, 3 s: the charge deadline).
    pub fn payment(&self) -> Downstream {
        self.payment.resolve("http://127.0.0.1:9083", 3000)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn load(vars: &[(&str, &str)]) -> Config {
        platform_config::load_from(
            ENV_PREFIX,
            vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        )
        .unwrap()
    }

    #[test]
    fn a_downstream_set_in_part_keeps_the_other_defaults() {
        let config = load(&[
            ("ORDER_SERVICE__DATABASE__URL", "postgres://db/orders"),
            ("ORDER_SERVICE__INVENTORY__URL", "http://inventory:9084"),
            ("ORDER_SERVICE__PAYMENT__TIMEOUT_MS", "500"),
        ]);
        assert_eq!(config.inventory().url, "http://inventory:9084");
        assert_eq!(config.inventory().timeout, Duration::from_secs(2));
        assert_eq!(config.payment().url, "http://127.0.0.1:9083");
        assert_eq!(config.payment().timeout, Duration::from_millis(500));
    }
}
