//! The service's configuration: defaults here, overridden by `NOTIFICATION_SERVICE__...`
//! variables.

use std::time::Duration;

use platform_config::{
    DatabaseSettings, HttpSettings, JwtSettings, NatsSettings, Secret, ServiceAuthSettings,
};
use serde::Deserialize;

/// The prefix of every variable, e.g. `NOTIFICATION_SERVICE__DATABASE__URL`.
pub const ENV_PREFIX: &str = "NOTIFICATION_SERVICE";

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
    /// The credential this service presents to the user service.
    #[serde(default)]
    pub service_auth: ServiceAuthSettings,
    /// Where recipients' addresses come from.
    #[serde(default)]
    pub user_service: UserServiceSettings,
    /// The outgoing mail server.
    #[serde(default)]
    pub smtp: SmtpSettings,
    /// Who gets what, and how delivery is retried.
    #[serde(default)]
    pub delivery: DeliverySettings,
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
            user_service: UserServiceSettings::default(),
            smtp: SmtpSettings::default(),
            delivery: DeliverySettings::default(),
        }
    }
}

/// The user service's gRPC API.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct UserServiceSettings {
    /// Its address (`URL`), e.g. `http://user:9081`.
    pub url: String,
    /// How long a look-up may take, in milliseconds.
    pub timeout_ms: u64,
}

impl Default for UserServiceSettings {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:9081".to_owned(),
            timeout_ms: 2000,
        }
    }
}

/// The SMTP server mail goes through.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct SmtpSettings {
    /// `smtp://host:port` (plain), `smtp://host:port?tls=required` (STARTTLS), `smtps://host`
    /// (TLS); credentials as `user:password@host`.
    pub url: Secret,
    /// The sender, e.g. `Shop <no-reply@shop.example>`.
    pub from: String,
    /// Seconds an SMTP exchange may take.
    pub timeout_secs: u64,
}

impl Default for SmtpSettings {
    fn default() -> Self {
        Self {
            url: Secret::new("smtp://127.0.0.1:25"),
            from: "Shop <no-reply@shop.example>".to_owned(),
            timeout_secs: 10,
        }
    }
}

impl SmtpSettings {
    /// The SMTP timeout.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs)
    }
}

/// Delivery policy.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct DeliverySettings {
    /// Where low-stock alerts go.
    pub admin_email: String,
    /// Delivery attempts before a notification is given up (and dead-lettered).
    pub max_attempts: i32,
    /// Delay before the first retry, in milliseconds; it doubles per attempt, up to 10 minutes.
    pub retry_base_ms: u64,
    /// How often the delivery worker looks for due notifications, in milliseconds.
    pub poll_interval_ms: u64,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        Self {
            admin_email: "operations@shop.example".to_owned(),
            max_attempts: 8,
            retry_base_ms: 1000,
            poll_interval_ms: 250,
        }
    }
}

impl DeliverySettings {
    /// The delay after the `attempt`-th failure: the base, doubling, at most 10 minutes.
    pub fn retry_delay(&self, attempt: i32) -> Duration {
        let doublings = u32::try_from(attempt.saturating_sub(1).clamp(0, 20)).unwrap_or(0);
        Duration::from_millis(self.retry_base_ms.saturating_mul(1 << doublings))
            .min(Duration::from_secs(600))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_exponentially_up_to_ten_minutes() {
        let delivery = DeliverySettings::default();
        assert_eq!(delivery.retry_delay(1), Duration::from_secs(1));
        assert_eq!(delivery.retry_delay(2), Duration::from_secs(2));
        assert_eq!(delivery.retry_delay(4), Duration::from_secs(8));
        assert_eq!(delivery.retry_delay(30), Duration::from_secs(600));
    }
}
