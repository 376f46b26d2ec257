//! `notification-service`: configuration from `NOTIFICATION_SERVICE__...` variables, then run.

use std::process::ExitCode;

use notification_service::{Application, Config, SERVICE_NAME};
use platform_telemetry::TelemetryConfig;

#[tokio::main]
async fn main() -> ExitCode {
    platform_http::install_crypto_provider();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("{SERVICE_NAME}: {error}");
            return ExitCode::FAILURE;
        }
    };
    let _telemetry = match platform_telemetry::init(&TelemetryConfig::from_env(SERVICE_NAME)) {
        Ok(guard) => guard,
        Err(error) => {
            eprintln!("{SERVICE_NAME}: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = async {
        let application = Application::build(config).await?;
        tracing::info!(http = %application.http_addr(), "listening");
        application
            .run_until_stopped(platform_http::shutdown_signal())
            .await
    }
    .await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "{SERVICE_NAME} failed");
            eprintln!("{SERVICE_NAME}: {error:#}");
            ExitCode::FAILURE
        }
    }
}
