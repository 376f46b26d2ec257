//! `notification-service`: configuration from `NOTIFICATION_SERVICE__...` variables, then
//! serve.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    platform_kit::main(
        notification_service::SERVICE_NAME,
        notification_service::build,
    )
    .await
}
