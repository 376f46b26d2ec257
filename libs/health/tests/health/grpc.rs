use std::sync::Arc;
use std::time::Duration;

use platform_health::{GrpcHealthServer, Health, check_fn};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Server};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::helpers::{DOWN_WITHIN, Dependencies, RECOVERED_WITHIN};

const SERVICE: &str = "test.v1.Widgets";

/// A tonic server with nothing but the health service, on a port of its own.
struct GrpcApp {
    client: HealthClient<Channel>,
    stop_server: CancellationToken,
}

impl GrpcApp {
    async fn spawn(service: GrpcHealthServer) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let stop_server = CancellationToken::new();
        let stop = stop_server.clone();
        tokio::spawn(
            Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(TcpIncoming::from(listener), async move {
                    stop.cancelled().await;
                }),
        );
        let channel = Channel::from_shared(format!("http://{address}"))?
            .connect()
            .await?;
        Ok(Self {
            client: HealthClient::new(channel),
            stop_server,
        })
    }

    async fn status(&self, service: &str) -> anyhow::Result<ServingStatus> {
        let response = self
            .client
            .clone()
            .check(HealthCheckRequest {
                service: service.to_owned(),
            })
            .await?;
        Ok(response.into_inner().status())
    }

    /// Waits until the server and [`SERVICE`] both report `expected`.
    async fn wait_for(&self, expected: ServingStatus, within: Duration) -> anyhow::Result<()> {
        platform_testkit::eventually(within, &format!("{expected:?}"), || async {
            let server = self.status("").await.ok()?;
            let service = self.status(SERVICE).await.ok()?;
            (server == expected && service == expected).then_some(())
        })
        .await
    }
}

impl Drop for GrpcApp {
    fn drop(&mut self) {
        self.stop_server.cancel();
    }
}

async fn start(
    health: &Health,
    shutdown: &CancellationToken,
) -> (GrpcHealthServer, JoinHandle<()>) {
    health
        .grpc()
        .service(SERVICE)
        .interval(Duration::from_millis(100))
        .start(shutdown.clone())
        .await
}

#[tokio::test]
async fn grpc_health_is_not_serving_while_a_dependency_is_down_and_serving_once_it_returns()
-> anyhow::Result<()> {
    let dependencies = Dependencies::connect().await?;
    let shutdown = CancellationToken::new();
    let (service, _reporter) = start(&dependencies.health, &shutdown).await;
    let app = GrpcApp::spawn(service).await?;

    app.wait_for(ServingStatus::Serving, RECOVERED_WITHIN)
        .await?;

    dependencies.redis.cut();
    app.wait_for(ServingStatus::NotServing, DOWN_WITHIN).await?;

    dependencies.redis.restore();
    app.wait_for(ServingStatus::Serving, RECOVERED_WITHIN)
        .await?;
    shutdown.cancel();
    Ok(())
}

#[tokio::test]
async fn grpc_health_is_not_serving_until_the_first_check_passes() -> anyhow::Result<()> {
    platform_telemetry::init_for_tests();
    let released = Arc::new(tokio::sync::Semaphore::new(0));
    let gate = released.clone();
    let health = Health::new()
        .with_timeout(Duration::from_secs(60))
        .with_check(check_fn("gated", move || {
            let gate = gate.clone();
            async move {
                let _permit = gate.acquire().await.map_err(|error| error.to_string())?;
                Ok(())
            }
        }));
    let shutdown = CancellationToken::new();
    let (service, _reporter) = start(&health, &shutdown).await;
    let app = GrpcApp::spawn(service).await?;

    assert_eq!(app.status("").await?, ServingStatus::NotServing);
    assert_eq!(app.status(SERVICE).await?, ServingStatus::NotServing);

    released.add_permits(1000);
    app.wait_for(ServingStatus::Serving, Duration::from_secs(5))
        .await?;
    shutdown.cancel();
    Ok(())
}

#[tokio::test]
async fn grpc_health_turns_not_serving_and_stops_reporting_on_shutdown() -> anyhow::Result<()> {
    platform_telemetry::init_for_tests();
    let health = Health::new().with_check(check_fn("fine", || async { Ok(()) }));
    let shutdown = CancellationToken::new();
    let (service, reporter) = start(&health, &shutdown).await;
    let app = GrpcApp::spawn(service).await?;
    app.wait_for(ServingStatus::Serving, Duration::from_secs(5))
        .await?;

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), reporter).await??;

    // The server itself is still up (draining), and says it no longer serves.
    assert_eq!(app.status("").await?, ServingStatus::NotServing);
    assert_eq!(app.status(SERVICE).await?, ServingStatus::NotServing);
    Ok(())
}
