//! `platform node <service>`: one service in this process, configured from its environment
//! variables exactly as its own binary is.

use std::process::ExitCode;

use crate::launcher::Service;

/// Runs `service` until SIGTERM or SIGINT.
pub async fn run(service: Service) -> ExitCode {
    let shutdown = platform_http::shutdown_signal;
    match service {
        Service::User => {
            platform_server::run_main(
                user_service::SERVICE_NAME,
                user_service::Config::from_env(),
                |config| async {
                    let app = user_service::Application::build(config).await?;
                    app.run_until_stopped(shutdown()).await
                },
            )
            .await
        }
        Service::Inventory => {
            platform_server::run_main(
                inventory_service::SERVICE_NAME,
                inventory_service::Config::from_env(),
                |config| async {
                    let app = inventory_service::Application::build(config).await?;
                    app.run_until_stopped(shutdown()).await
                },
            )
            .await
        }
        Service::Payment => {
            platform_server::run_main(
                payment_service::SERVICE_NAME,
                payment_service::Config::from_env(),
                |config| async {
                    let app = payment_service::Application::build(config).await?;
                    app.run_until_stopped(shutdown()).await
                },
            )
            .await
        }
        Service::Order => {
            platform_server::run_main(
                order_service::SERVICE_NAME,
                order_service::Config::from_env(),
                |config| async {
                    let app = order_service::Application::build(config).await?;
                    app.run_until_stopped(shutdown()).await
                },
            )
            .await
        }
        Service::Notification => {
            platform_server::run_main(
                notification_service::SERVICE_NAME,
                notification_service::Config::from_env(),
                |config| async {
                    let app = notification_service::Application::build(config).await?;
                    app.run_until_stopped(shutdown()).await
                },
            )
            .await
        }
        Service::Gateway => {
            platform_server::run_main(
                gateway::SERVICE_NAME,
                gateway::Config::from_env(),
                |config| async {
                    let app = gateway::Application::build(config).await?;
                    app.run_until_stopped(shutdown()).await
                },
            )
            .await
        }
    }
}
