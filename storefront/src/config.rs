//! The storefront's configuration: defaults here, overridden by `STOREFRONT__...` variables.
//!
//! Every variable, its default and its meaning: `docs/configuration.md#storefront`, generated from
//! this file (its types, their doc comments and `Default`s) by `make docs`.

use std::time::Duration;

use platform_config::{HttpSettings, RedisSettings, TelemetrySettings};
use serde::{Deserialize, Serialize};

/// The prefix of every variable, e.g. `STOREFRONT__GATEWAY__URL`.
pub const ENV_PREFIX: &str = "STOREFRONT";

/// Everything the storefront reads at start-up.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Config {
    /// The public listener.
    pub http: HttpSettings,
    /// The gateway it calls.
    pub gateway: GatewaySettings,
    /// The session store.
    pub redis: RedisSettings,
    /// Sessions.
    pub session: SessionSettings,
    /// What the shop calls itself.
    pub shop: ShopSettings,
    /// Logs and traces.
    pub telemetry: TelemetrySettings,
}

impl Config {
    /// Reads the configuration from the environment.
    pub fn from_env() -> Result<Self, platform_config::ConfigError> {
        platform_config::load(ENV_PREFIX)
    }

    /// The port to listen on: the configured one, or the registry's.
    pub fn port(&self) -> u16 {
        self.http.port_or(platform_registry::storefront().http_port)
    }
}

/// The gateway (`STOREFRONT__GATEWAY__...`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct GatewaySettings {
    /// Its base URL (`URL`).
    pub url: String,
    /// Longest wait for one call (`TIMEOUT_MS`).
    pub timeout_ms: u64,
}

impl Default for GatewaySettings {
    fn default() -> Self {
        Self {
            url: format!(
                "http://127.0.0.1:{}",
                platform_registry::gateway().http_port
            ),
            timeout_ms: 8000,
        }
    }
}

impl GatewaySettings {
    /// The timeout of one call.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms.max(1))
    }
}

/// Sessions (`STOREFRONT__SESSION__...`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct SessionSettings {
    /// Prefix of the Redis keys (`KEY_PREFIX`).
    pub key_prefix: String,
    /// Idle lifetime in seconds (`TTL_SECS`).
    pub ttl_secs: u64,
    /// Whether the cookie is `Secure` (`SECURE_COOKIE`).
    pub secure_cookie: bool,
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self {
            key_prefix: "storefront".to_owned(),
            ttl_secs: 7 * 24 * 3600,
            secure_cookie: true,
        }
    }
}

/// The shop (`STOREFRONT__SHOP__...`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct ShopSettings {
    /// Its name (`NAME`).
    pub name: String,
}

impl Default for ShopSettings {
    fn default() -> Self {
        Self {
            name: "Platform Shop".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_point_at_the_local_platform() {
        let config: Config = platform_config::load_from(ENV_PREFIX, Vec::new()).unwrap();
        assert_eq!(config.port(), 8000);
        assert_eq!(config.gateway.url, "http://127.0.0.1:8080");
        assert!(config.session.secure_cookie);
        assert_eq!(config.session.ttl_secs, 604_800);
    }

    #[test]
    fn variables_override_the_defaults() {
        let config: Config = platform_config::load_from(
            ENV_PREFIX,
            vec![
                (
                    "STOREFRONT__GATEWAY__URL".to_owned(),
                    "http://gateway:8080".to_owned(),
                ),
                (
                    "STOREFRONT__SESSION__SECURE_COOKIE".to_owned(),
                    "false".to_owned(),
                ),
                ("STOREFRONT__HTTP__PORT".to_owned(), "0".to_owned()),
            ],
        )
        .unwrap();
        assert_eq!(config.gateway.url, "http://gateway:8080");
        assert!(!config.session.secure_cookie);
        assert_eq!(config.port(), 0);
    }
}
