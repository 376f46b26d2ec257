//! Connecting to NATS the way every service should.

use std::time::Duration;

use anyhow::Context as _;

/// Connects to NATS with settings that suit a long-running service: the service may start
/// before NATS does (the client keeps trying in the background, and this waits only a few
/// seconds for the first connection), reconnects forever with a capped delay, and names itself
/// in the server's connection list.
pub async fn connect(url: &str, client_name: &str) -> anyhow::Result<async_nats::Client> {
    let client = async_nats::ConnectOptions::new()
        .name(client_name)
        .retry_on_initial_connect()
        .connection_timeout(Duration::from_secs(2))
        .reconnect_delay_callback(|attempts| {
            Duration::from_millis(100 * u64::try_from(attempts.min(20)).unwrap_or(20))
        })
        .connect(url)
        .await
        .with_context(|| format!("connecting to NATS at {url}"))?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while client.connection_state() != async_nats::connection::State::Connected {
        if tokio::time::Instant::now() >= deadline {
            tracing::warn!(
                url,
                "NATS is not reachable yet; continuing, and connecting in the background"
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(client)
}
