//! `inventory-service`: configuration from `INVENTORY_SERVICE__...` variables, then serve.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    platform_kit::main(inventory_service::SERVICE_NAME, inventory_service::build).await
}
