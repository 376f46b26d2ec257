//! The service's own settings, beside the kit's common ones (HTTP, NATS, JWT, service
//! credential, telemetry): overridden by `{{env_prefix}}__...` variables.

use platform_config::DatabaseSettings;
use serde::{Deserialize, Serialize};

/// The kit's common settings and the service's own.
pub type Settings = platform_kit::Settings<Config>;

/// What only the {{service}} service reads at start-up.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Config {
    /// The service's own PostgreSQL database (required): `{{env_prefix}}__DATABASE__URL`.
    pub database: DatabaseSettings,
}

impl Config {
    /// Defaults for everything but the database.
    pub fn with_database(url: impl Into<String>) -> Self {
        Self {
            database: DatabaseSettings::new(url),
        }
    }
}
