//! Several single-threaded workers in one process, sharing the port.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

use platform_testkit::eventually;
use platform_testkit::service::http_client;

use crate::helpers::{ECHO_ROUTES, StandIn, config};

#[tokio::test]
async fn several_workers_share_the_port_each_with_its_own_pool_fetch_documents_once_and_stop_together()
 {
    platform_telemetry::init_for_tests();
    platform_http::install_crypto_provider();
    let upstream = StandIn::start("echo").await;
    let mut config = config(
        ECHO_ROUTES,
        &[("echo", &upstream.url)],
        "http://127.0.0.1:9/j",
    )
    .await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    config.http.port = Some(port);
    let routes = config.routes.file.clone().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let workers = tokio::spawn(gateway::run_workers(config, 2, async {
        let _ = stopped.await;
    }));

    let url = format!("http://127.0.0.1:{port}/api/v1/echo");
    eventually(Duration::from_secs(10), "the workers to listen", || async {
        http_client().get(&url).send().await.ok().map(|_| ())
    })
    .await
    .unwrap();
    // One request per new client connection, one at a time: a single worker would send them
    // all over its one pooled upstream connection; the kernel spreads client connections over
    // both workers' listeners, and each worker has its own pool.
    for _ in 0..40 {
        let response = http_client().get(&url).send().await.unwrap();
        assert_eq!(response.status(), 200);
    }
    let upstream_connections: HashSet<_> = upstream.seen().iter().map(|seen| seen.from).collect();
    assert_eq!(upstream_connections.len(), 2, "{upstream_connections:?}");
    // What the workers fetch from elsewhere, the first fetches for all: once, not per worker.
    assert_eq!(
        upstream.state.documents_served.load(Ordering::SeqCst),
        1,
        "the upstream's API document is fetched once for both workers"
    );

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(30), workers)
        .await
        .expect("every worker stops")
        .unwrap()
        .unwrap();
    assert!(
        http_client().get(&url).send().await.is_err(),
        "nothing listens any more"
    );
    std::fs::remove_file(routes).unwrap();
}
