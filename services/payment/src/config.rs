//! The service's configuration: defaults here, overridden by `PAYMENT_SERVICE__...` variables.

use std::time::Duration;

use platform_config::{
    DatabaseSettings, GrpcSettings, HttpSettings, JwtSettings, NatsSettings, ServiceAuthSettings,
};
use serde::Deserialize;

/// The prefix of every variable, e.g. `PAYMENT_SERVICE__DATABASE__URL`.
pub const ENV_PREFIX: &str = "PAYMENT_SERVICE";

/// Everything the service reads at start-up.
#[derive(Clone, Debug, Deserialize)]
pub struct Config {
    /// The HTTP API.
    #[serde(default)]
    pub http: HttpSettings,
    /// The internal gRPC API.
    #[serde(default)]
    pub grpc: GrpcSettings,
    /// The service's own PostgreSQL database (required).
    pub database: DatabaseSettings,
    /// The event bus.
    #[serde(default)]
    pub nats: NatsSettings,
    /// Verifying users' access tokens.
    #[serde(default)]
    pub jwt: JwtSettings,
    /// The credential other services present on internal gRPC calls.
    #[serde(default)]
    pub service_auth: ServiceAuthSettings,
    /// The payment provider.
    #[serde(default)]
    pub provider: ProviderSettings,
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
            grpc: GrpcSettings::default(),
            database: DatabaseSettings::new(url),
            nats: NatsSettings::default(),
            jwt: JwtSettings::default(),
            service_auth: ServiceAuthSettings::default(),
            provider: ProviderSettings::default(),
        }
    }
}

/// Which provider charges cards, and how the test provider behaves.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct ProviderSettings {
    /// `test`: the built-in test-mode provider (the only one shipped; see the README for its
    /// test cards).
    pub kind: String,
    /// How long the test provider's slow card takes to answer, in milliseconds.
    pub slow_card_delay_ms: u64,
}

impl Default for ProviderSettings {
    fn default() -> Self {
        Self {
            kind: "test".to_owned(),
            slow_card_delay_ms: 10_000,
        }
    }
}

impl ProviderSettings {
    /// The slow card's delay.
    pub fn slow_card_delay(&self) -> Duration {
        Duration::from_millis(self.slow_card_delay_ms)
    }
}
