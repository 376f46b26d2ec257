//! The service's own settings, beside the kit's common ones (HTTP, gRPC, NATS, JWT, service
//! credential, telemetry): defaults here, overridden by `NOTIFICATION_SERVICE__...` variables.

use std::time::Duration;

use platform_config::{DatabaseSettings, DownstreamSettings, Secret};
use serde::{Deserialize, Serialize};

/// The kit's common settings and the service's own.
pub type Settings = platform_kit::Settings<Config>;

/// What only the notification service reads at start-up.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Config {
    /// The service's own PostgreSQL database (required).
    pub database: DatabaseSettings,
    /// The user service, where recipients' addresses come from (`USER__URL`, `__TIMEOUT_MS`
    /// default 2000, `__BREAKER_...`).
    #[serde(default)]
    pub user: DownstreamSettings,
    /// The outgoing mail server.
    #[serde(default)]
    pub smtp: SmtpSettings,
    /// Who gets what, and how delivery is retried.
    #[serde(default)]
    pub delivery: DeliverySettings,
}

impl Config {
    /// Defaults for everything but the database.
    pub fn with_database(url: impl Into<String>) -> Self {
        Self {
            database: DatabaseSettings::new(url),
            user: DownstreamSettings::default(),
            smtp: SmtpSettings::default(),
            delivery: DeliverySettings::default(),
        }
    }
}

/// The user service's deadline when `NOTIFICATION_SERVICE__USER__TIMEOUT_MS` is unset.
pub const USER_TIMEOUT: Duration = Duration::from_secs(2);

/// The SMTP server mail goes through.
#[derive(Clone, Debug, Deserialize, Serialize)]
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
            url: Secret::compiled_in("smtp://127.0.0.1:25"),
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
#[derive(Clone, Debug, Deserialize, Serialize)]
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
    /// Notifications sent at once (over as many pooled SMTP connections).
    pub concurrency: usize,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        Self {
            admin_email: "operations@shop.example".to_owned(),
            max_attempts: 8,
            retry_base_ms: 1000,
            poll_interval_ms: 250,
            concurrency: 4,
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
