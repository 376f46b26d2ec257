//! docs/configuration.md is generated from the code: each process's settings types, their doc
//! comments, and the defaults its own code computes. A stale file fails here;
//! `UPDATE_DOCS=1` (`make docs`) rewrites it.

use std::path::PathBuf;
use std::time::Duration;

use platform_docs::{CONFIGURATION_DOCUMENT, Process, check_listed, registry_binaries};
use serde_json::Value;

/// Every process of `services.toml`, with its settings type and the defaults only its code
/// knows (the rest are the settings' own, and the registry's ports).
fn processes() -> Vec<Process> {
    vec![
        Process::edge::<gateway::Config>(platform_registry::gateway(), |config| {
            let upstreams: serde_json::Map<String, Value> = config
                .upstream_urls()
                .into_iter()
                .map(|(name, url)| (name, url.into()))
                .collect();
            let limits = &config.rate_limit;
            vec![
                (
                    "http.port",
                    config
                        .http
                        .port_or(platform_registry::gateway().http_port)
                        .into(),
                ),
                ("upstreams", upstreams.into()),
                ("rate_limit.auth.limit", limits.auth_limit().limit.into()),
                (
                    "rate_limit.auth.window_secs",
                    limits.auth_limit().window_secs.into(),
                ),
                ("rate_limit.read.limit", limits.read_limit().limit.into()),
                (
                    "rate_limit.read.window_secs",
                    limits.read_limit().window_secs.into(),
                ),
                ("rate_limit.write.limit", limits.write_limit().limit.into()),
                (
                    "rate_limit.write.window_secs",
                    limits.write_limit().window_secs.into(),
                ),
            ]
        }),
        Process::edge::<storefront::Config>(platform_registry::storefront(), |config| {
            vec![("http.port", config.port().into())]
        }),
        Process::service::<user_service::Config>("user-service"),
        Process::service_with::<order_service::Config>("order-service", |settings| {
            let own = &settings.own;
            vec![
                (
                    "inventory.timeout_ms",
                    deadline(
                        own.inventory.timeout_ms,
                        order_service::config::INVENTORY_TIMEOUT,
                    ),
                ),
                (
                    "payment.timeout_ms",
                    deadline(
                        own.payment.timeout_ms,
                        order_service::config::PAYMENT_TIMEOUT,
                    ),
                ),
            ]
        }),
        Process::service::<payment_service::Config>("payment-service"),
        Process::service::<inventory_service::Config>("inventory-service"),
        Process::service_with::<notification_service::Config>("notification-service", |settings| {
            vec![(
                "user.timeout_ms",
                deadline(
                    settings.own.user.timeout_ms,
                    notification_service::config::USER_TIMEOUT,
                ),
            )]
        }),
        // A new service goes above this line (tools/scaffold adds it here).
    ]
}

/// A callee's deadline in milliseconds: as configured, else the caller's default.
fn deadline(configured: Option<u64>, default: Duration) -> Value {
    configured
        .unwrap_or_else(|| u64::try_from(default.as_millis()).unwrap_or(u64::MAX))
        .into()
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn the_configuration_reference_is_what_the_code_reads() {
    let generated = platform_docs::configuration_reference(&root(), &processes())
        .unwrap_or_else(|error| panic!("{error}"));
    let update = std::env::var_os("UPDATE_DOCS").is_some();
    platform_docs::check_or_update(&root(), CONFIGURATION_DOCUMENT, &generated, update)
        .unwrap_or_else(|error| panic!("{error}"));
}

#[test]
fn every_process_of_the_registry_is_in_the_reference() {
    let processes = processes();
    let listed: Vec<&str> = processes.iter().map(|p| p.binary.as_str()).collect();
    check_listed(&registry_binaries(), &listed).unwrap_or_else(|error| panic!("{error}"));
}
