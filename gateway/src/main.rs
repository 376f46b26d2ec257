//! `gateway`: serves the platform's public API. Configuration comes from `GATEWAY__...`
//! environment variables (see the `config` module).

use std::process::ExitCode;

use gateway::{Config, SERVICE_NAME};
use platform_telemetry::TelemetryConfig;

// The proxy path allocates on every request, from every worker thread.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // `gateway healthcheck [--live]`: the container images have no curl.
    let gateway = platform_registry::gateway();
    if let Some(code) = platform_health::probe::run_if_asked(&gateway.env_prefix, gateway.http_port)
    {
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
    // The first worker runs here; the others get threads of their own (see `run_workers`).
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("{SERVICE_NAME}: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let _telemetry = match platform_telemetry::init(
            &TelemetryConfig::from_env(SERVICE_NAME).overridden_by(&config.telemetry),
        ) {
            Ok(guard) => guard,
            Err(error) => {
                eprintln!("{SERVICE_NAME}: {error}");
                return ExitCode::FAILURE;
            }
        };
        let workers = config.server.workers();
        match gateway::run_workers(config, workers, platform_http::shutdown_signal()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                tracing::error!(error = format!("{error:#}"), "{SERVICE_NAME} failed");
                eprintln!("{SERVICE_NAME}: {error:#}");
                ExitCode::FAILURE
            }
        }
    })
}
