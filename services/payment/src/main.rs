//! `payment-service`: configuration from `PAYMENT_SERVICE__...` variables, then serve.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    platform_kit::main(payment_service::SERVICE_NAME, payment_service::build).await
}
