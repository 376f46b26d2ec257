//! The service's own settings, beside the kit's common ones (HTTP, gRPC, NATS, JWT, service
//! credential, telemetry): defaults here, overridden by `INVENTORY_SERVICE__...` variables.

use std::time::Duration;

use platform_config::{MongoSettings, RedisSettings};
use serde::{Deserialize, Serialize};

/// The kit's common settings and the service's own.
pub type Settings = platform_kit::Settings<Config>;

/// What only the inventory service reads at start-up.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Config {
    /// The service's own MongoDB database (required; its name defaults to `services.toml`'s).
    pub mongo: MongoSettings,
    /// The Redis the read cache lives in.
    #[serde(default)]
    pub redis: RedisSettings,
    /// The read cache.
    #[serde(default)]
    pub cache: CacheSettings,
    /// Stock reservations.
    #[serde(default)]
    pub reservations: ReservationSettings,
    /// The catalogue.
    #[serde(default)]
    pub catalogue: CatalogueSettings,
}

impl Config {
    /// Defaults for everything but the database.
    pub fn with_mongo(url: impl Into<String>) -> Self {
        Self {
            mongo: MongoSettings::new(url),
            redis: RedisSettings::default(),
            cache: CacheSettings::default(),
            reservations: ReservationSettings::default(),
            catalogue: CatalogueSettings::default(),
        }
    }
}

/// The read cache (`INVENTORY_SERVICE__CACHE__...`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct CacheSettings {
    /// How long a cached read lives, in seconds (`TTL_SECS`): the longest a read can be stale
    /// when an invalidation could not reach Redis.
    pub ttl_secs: u64,
    /// The start of every key (`KEY_PREFIX`), so that several deployments (or tests) can share
    /// one Redis.
    pub key_prefix: String,
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            ttl_secs: 60,
            key_prefix: "inventory".to_owned(),
        }
    }
}

impl CacheSettings {
    /// The TTL.
    pub fn ttl(&self) -> Duration {
        Duration::from_secs(self.ttl_secs)
    }
}

/// Stock reservations (`INVENTORY_SERVICE__RESERVATIONS__...`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct ReservationSettings {
    /// How long an uncommitted reservation holds its stock, in seconds (`TTL_SECS`).
    pub ttl_secs: u64,
    /// How often expired reservations are looked for, in seconds (`SWEEP_INTERVAL_SECS`).
    pub sweep_interval_secs: u64,
}

impl Default for ReservationSettings {
    fn default() -> Self {
        Self {
            ttl_secs: 900,
            sweep_interval_secs: 5,
        }
    }
}

impl ReservationSettings {
    /// `Err(key)` naming the first setting that is zero (neither may be).
    pub fn check(&self) -> Result<(), &'static str> {
        if self.ttl_secs == 0 {
            return Err("RESERVATIONS__TTL_SECS");
        }
        if self.sweep_interval_secs == 0 {
            return Err("RESERVATIONS__SWEEP_INTERVAL_SECS");
        }
        Ok(())
    }

    /// How long a reservation holds its stock.
    pub fn ttl(&self) -> Duration {
        Duration::from_secs(self.ttl_secs)
    }

    /// How often the sweep runs.
    pub fn sweep_interval(&self) -> Duration {
        Duration::from_secs(self.sweep_interval_secs)
    }
}

/// The catalogue (`INVENTORY_SERVICE__CATALOGUE__...`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct CatalogueSettings {
    /// Load the demo catalogue when the store has no product (`SEED_DEMO`).
    pub seed_demo: bool,
}

impl Default for CatalogueSettings {
    fn default() -> Self {
        Self { seed_demo: true }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zero_reservation_ttl_or_sweep_interval_is_named() {
        assert_eq!(ReservationSettings::default().check(), Ok(()));
        let no_ttl = ReservationSettings {
            ttl_secs: 0,
            ..ReservationSettings::default()
        };
        assert_eq!(no_ttl.check(), Err("RESERVATIONS__TTL_SECS"));
        let no_sweep = ReservationSettings {
            sweep_interval_secs: 0,
            ..ReservationSettings::default()
        };
        assert_eq!(no_sweep.check(), Err("RESERVATIONS__SWEEP_INTERVAL_SECS"));
    }

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    const ENV_PREFIX: &str = "INVENTORY_SERVICE";

    #[test]
    fn only_the_database_is_required_and_the_rest_has_defaults() {
        let config: Config = platform_config::load_from(
            ENV_PREFIX,
            vars(&[(
                "INVENTORY_SERVICE__MONGO__URL",
                "mongodb://db:27017/?replicaSet=rs0",
            )]),
        )
        .unwrap();
        let entry = platform_kit::registry::service(crate::SERVICE_NAME);
        assert_eq!(entry.env_prefix, ENV_PREFIX);
        assert_eq!(config.mongo.database_or(&entry.database), "inventory");
        assert_eq!((entry.http_port, entry.grpc_port), (8084, Some(9084)));
        assert_eq!(config.cache.ttl_secs, 60);
        assert_eq!(config.reservations.ttl_secs, 900);
        assert_eq!(config.reservations.sweep_interval_secs, 5);
        assert!(config.catalogue.seed_demo);

        let error = platform_config::load_from::<Config>(ENV_PREFIX, Vec::new())
            .unwrap_err()
            .to_string();
        assert!(error.contains("INVENTORY_SERVICE__MONGO__*"), "{error}");
    }

    #[test]
    fn sections_are_read_from_their_variables() {
        let config: Config = platform_config::load_from(
            ENV_PREFIX,
            vars(&[
                ("INVENTORY_SERVICE__MONGO__URL", "mongodb://db"),
                ("INVENTORY_SERVICE__MONGO__DATABASE", "shop"),
                ("INVENTORY_SERVICE__CACHE__TTL_SECS", "5"),
                ("INVENTORY_SERVICE__RESERVATIONS__TTL_SECS", "60"),
                ("INVENTORY_SERVICE__RESERVATIONS__SWEEP_INTERVAL_SECS", "1"),
                ("INVENTORY_SERVICE__CATALOGUE__SEED_DEMO", "false"),
            ]),
        )
        .unwrap();
        assert_eq!(config.mongo.database_or("inventory"), "shop");
        assert_eq!(config.cache.ttl(), Duration::from_secs(5));
        assert_eq!(config.reservations.ttl(), Duration::from_secs(60));
        assert_eq!(config.reservations.sweep_interval(), Duration::from_secs(1));
        assert!(!config.catalogue.seed_demo);
    }
}
