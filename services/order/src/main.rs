//! `order-service`: configuration from `ORDER_SERVICE__...` variables, then serve.

use std::process::ExitCode;

use order_service::{Application, Config, SERVICE_NAME};

#[tokio::main]
async fn main() -> ExitCode {
    platform_server::run_main(SERVICE_NAME, Config::from_env(), |config| async {
        let application = Application::build(config).await?;
        tracing::info!(http = %application.http_addr(), "listening");
        application
            .run_until_stopped(platform_http::shutdown_signal())
            .await
    })
    .await
}
