//! `<binary> healthcheck`: the std-only probe asks a real health router and reports why not.

use std::time::Duration;

use platform_health::probe::{self, Probe};
use platform_health::{Health, check_fn};

use crate::helpers::spawn_app;

const TIMEOUT: Duration = Duration::from_secs(3);

async fn get(address: std::net::SocketAddr, probe: Probe) -> Result<(), String> {
    let path = match probe {
        Probe::Ready => "/health/ready",
        Probe::Live => "/health/live",
    };
    tokio::task::spawn_blocking(move || probe::get(address, path, TIMEOUT))
        .await
        .unwrap()
}

#[tokio::test]
async fn a_ready_service_passes_the_probe() -> anyhow::Result<()> {
    let health = Health::new().with_check(check_fn("store", || async { Ok(()) }));
    let app = spawn_app(&health).await?;

    assert_eq!(get(app.address, Probe::Ready).await, Ok(()));
    assert_eq!(get(app.address, Probe::Live).await, Ok(()));
    Ok(())
}

#[tokio::test]
async fn an_unready_service_fails_the_probe_naming_the_check_that_is_down() -> anyhow::Result<()> {
    let health = Health::new().with_check(check_fn("postgres", || async {
        Err("connection refused".to_owned())
    }));
    let app = spawn_app(&health).await?;

    let why = get(app.address, Probe::Ready).await.unwrap_err();
    assert!(why.contains("503"), "{why}");
    assert!(
        why.contains("postgres") && why.contains("connection refused"),
        "{why}"
    );
    // Liveness does not depend on the store.
    assert_eq!(get(app.address, Probe::Live).await, Ok(()));
    Ok(())
}

#[tokio::test]
async fn nothing_listening_fails_the_probe_naming_the_address() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);

    let why = get(address, Probe::Ready).await.unwrap_err();
    assert!(why.contains(&address.to_string()), "{why}");
}
