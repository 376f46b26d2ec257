//! A service's `main`, written once.

use std::future::Future;
use std::process::ExitCode;

use platform_config::Settings;
use platform_telemetry::TelemetryConfig;
use serde::de::DeserializeOwned;

use crate::Application;

/// A whole service `main`: reads the service's [`Settings`] from its variables (the prefix from
/// `services.toml`), sets up telemetry, builds the service with `build`, and serves until
/// SIGTERM or Ctrl-C. `service` is the service's binary name (`order-service`).
///
/// `<binary> healthcheck [--live]` probes the running service instead (see
/// [`platform_health::probe`]): the container images have no curl.
pub async fn main<S, F, Fut>(service: &'static str, build: F) -> ExitCode
where
    S: DeserializeOwned,
    F: FnOnce(Settings<S>) -> Fut,
    Fut: Future<Output = anyhow::Result<Application>>,
{
    let entry = platform_registry::service(service);
    if let Some(code) = platform_health::probe::run_if_asked(&entry.env_prefix, entry.http_port) {
        return code;
    }
    run_main(
        service,
        Settings::load(&entry.env_prefix),
        |settings| async move { serve(build(settings).await?).await },
    )
    .await
}

/// Serves a built service until SIGTERM or Ctrl-C, saying where it listens.
pub async fn serve(application: Application) -> anyhow::Result<()> {
    tracing::info!(
        http = %application.http_addr(),
        grpc = ?application.grpc_addr(),
        "listening"
    );
    application
        .run_until_stopped(platform_http::shutdown_signal())
        .await
}

/// The start of any `main` of the platform: installs the TLS crypto provider, takes the
/// configuration (stopping with a message naming the bad setting), sets up telemetry, then runs
/// `serve` until it returns; any error is logged and printed, and the process exits non-zero.
/// For binaries with commands of their own beside serving (the user service's `create-admin`).
pub async fn run_main<S, F, Fut>(
    name: &'static str,
    settings: Result<Settings<S>, platform_config::ConfigError>,
    serve: F,
) -> ExitCode
where
    F: FnOnce(Settings<S>) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    platform_http::memory::with_allocator_settings();
    platform_http::install_crypto_provider();
    let settings = match settings {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("{name}: {error}");
            return ExitCode::FAILURE;
        }
    };
    let telemetry = TelemetryConfig::from_env(name).overridden_by(&settings.common.telemetry);
    let _telemetry = match platform_telemetry::init(&telemetry) {
        Ok(guard) => guard,
        Err(error) => {
            eprintln!("{name}: {error}");
            return ExitCode::FAILURE;
        }
    };
    match serve(settings).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "{name} failed");
            eprintln!("{name}: {error:#}");
            ExitCode::FAILURE
        }
    }
}
