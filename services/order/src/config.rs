//! The service's own settings, beside the kit's common ones (HTTP, gRPC, NATS, JWT, service
//! credential, telemetry): defaults here, overridden by `ORDER_SERVICE__...` variables.

use std::time::Duration;

use platform_config::{DatabaseSettings, DownstreamSettings};
use serde::{Deserialize, Serialize};

/// The kit's common settings and the service's own.
pub type Settings = platform_kit::Settings<Config>;

/// What only the order service reads at start-up.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Config {
    /// The service's own PostgreSQL database (required).
    pub database: DatabaseSettings,
    /// The inventory service (`INVENTORY__URL`, `__TIMEOUT_MS` default 2000, `__BREAKER_...`).
    #[serde(default)]
    pub inventory: DownstreamSettings,
    /// The payment service (`PAYMENT__URL`, `__TIMEOUT_MS` default 3000: the charge deadline).
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
    /// Defaults for everything but the database.
    pub fn with_database(url: impl Into<String>) -> Self {
        Self {
            database: DatabaseSettings::new(url),
            inventory: DownstreamSettings::default(),
            payment: DownstreamSettings::default(),
            saga: SagaSettings::default(),
            orders: OrderLimits::default(),
        }
    }
}

/// The inventory service's deadline when `ORDER_SERVICE__INVENTORY__TIMEOUT_MS` is unset.
pub const INVENTORY_TIMEOUT: Duration = Duration::from_secs(2);

/// The payment service's deadline when `ORDER_SERVICE__PAYMENT__TIMEOUT_MS` is unset: the
/// charge deadline.
pub const PAYMENT_TIMEOUT: Duration = Duration::from_secs(3);

/// The saga worker.
#[derive(Clone, Debug, Deserialize, Serialize)]
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
    /// Whether this process runs the saga worker (`ENABLED`); replicas that only serve the API
    /// can turn it off, and tests drive steps by hand.
    pub enabled: bool,
}

impl Default for SagaSettings {
    fn default() -> Self {
        Self {
            poll_interval_ms: 200,
            lease_secs: 15,
            max_attempts: 6,
            retry_base_ms: 200,
            concurrency: 16,
            enabled: true,
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

/// What an order may hold, and how a read waits for one to finish.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct OrderLimits {
    /// Lines per order.
    pub max_items: usize,
    /// Units per line.
    pub max_quantity: u32,
    /// How often a read waiting for its order to finish (`?wait=`) reads it again without
    /// news of it, in milliseconds: the news comes from PostgreSQL's notifications, and this
    /// covers one missed while the listener reconnects.
    pub wait_recheck_ms: u64,
}

impl Default for OrderLimits {
    fn default() -> Self {
        Self {
            max_items: 50,
            max_quantity: 100,
            wait_recheck_ms: 1000,
        }
    }
}
