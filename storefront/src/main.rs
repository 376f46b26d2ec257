//! `storefront`: the web shop. Configuration comes from `STOREFRONT__...` environment variables
//! (see the `config` module).

use std::process::ExitCode;

use platform_telemetry::TelemetryConfig;
use storefront::{Config, SERVICE_NAME};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    // `storefront healthcheck [--live]`: the container images have no curl.
    let entry = platform_registry::storefront();
    if let Some(code) = platform_health::probe::run_if_asked(&entry.env_prefix, entry.http_port) {
        return code;
    }
    platform_http::memory::with_allocator_settings();
    platform_http::install_crypto_provider();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("{SERVICE_NAME}: {error}");
            return ExitCode::FAILURE;
        }
    };
    let _telemetry = match platform_telemetry::init(
        &TelemetryConfig::from_env(SERVICE_NAME).overridden_by(&config.telemetry),
    ) {
        Ok(guard) => guard,
        Err(error) => {
            eprintln!("{SERVICE_NAME}: {error}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = async {
        let app = storefront::App::build(config).await?;
        app.run_until_stopped(platform_http::shutdown_signal())
            .await
    };
    match outcome.await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "{SERVICE_NAME} failed");
            eprintln!("{SERVICE_NAME}: {error:#}");
            ExitCode::FAILURE
        }
    }
}
