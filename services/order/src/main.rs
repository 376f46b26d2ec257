//! `order-service`: configuration from `ORDER_SERVICE__...` variables, then serve.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    platform_kit::main(order_service::SERVICE_NAME, order_service::build).await
}
