//! The service's own settings, beside the kit's common ones (HTTP, gRPC, NATS, JWT, service
//! credential, telemetry): defaults here, overridden by `PAYMENT_SERVICE__...` variables.

use std::time::Duration;

use platform_config::DatabaseSettings;
use serde::{Deserialize, Serialize};

/// The kit's common settings and the service's own.
pub type Settings = platform_kit::Settings<Config>;

/// What only the payment service reads at start-up.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Config {
    /// The service's own PostgreSQL database (required).
    pub database: DatabaseSettings,
    /// The payment provider.
    #[serde(default)]
    pub provider: ProviderSettings,
}

impl Config {
    /// Defaults for everything but the database.
    pub fn with_database(url: impl Into<String>) -> Self {
        Self {
            database: DatabaseSettings::new(url),
            provider: ProviderSettings::default(),
        }
    }
}

/// Which provider charges cards, and how the test provider behaves.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct ProviderSettings {
    /// `test`: the built-in test-mode provider (the only one shipped; its test cards are in
    /// `services/payment/README.md`).
    pub kind: String,
    /// How long the test provider's slow card takes to answer, in milliseconds.
    pub slow_card_delay_ms: u64,
    /// How long the test provider takes to answer every charge and refund, in milliseconds
    /// (added to the slow card's delay): 0 answers at once; more than the order service's
    /// payment deadline plays a provider slower than every caller's patience.
    pub latency_ms: u64,
}

impl Default for ProviderSettings {
    fn default() -> Self {
        Self {
            kind: "test".to_owned(),
            slow_card_delay_ms: 10_000,
            latency_ms: 0,
        }
    }
}

impl ProviderSettings {
    /// The slow card's delay.
    pub fn slow_card_delay(&self) -> Duration {
        Duration::from_millis(self.slow_card_delay_ms)
    }

    /// How long every charge and refund takes.
    pub fn latency(&self) -> Duration {
        Duration::from_millis(self.latency_ms)
    }
}
