//! Graceful shutdown and the drain deadline.

use std::time::{Duration, Instant};

use platform_testkit::service::http_client;

use crate::helpers::{spawn_app, spawn_app_with, test_config};

#[tokio::test]
async fn an_in_flight_request_completes_after_shutdown_while_new_connections_are_refused() {
    let mut app = spawn_app().await;
    let slow = tokio::spawn({
        let client = app.client.clone();
        let url = app.url("/slow?ms=600");
        async move { client.get(url).send().await }
    });
    app.slow_started.notified().await;

    app.shut_down();

    // The listener closes shortly after the signal; from then on connections are refused.
    let deadline = Instant::now() + Duration::from_millis(500);
    loop {
        match http_client().get(app.url("/request-id")).send().await {
            Err(error) if error.is_connect() => break,
            _ if Instant::now() > deadline => panic!("still accepting connections after shutdown"),
            _ => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
    assert!(
        !slow.is_finished(),
        "the slow request should still be in flight"
    );

    let response = slow.await.unwrap().unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "slept 600 ms");
    let served = tokio::time::timeout(Duration::from_secs(2), app.server)
        .await
        .expect("serve returns once drained");
    served.unwrap().unwrap();
}

#[tokio::test]
async fn serving_stops_waiting_for_requests_still_running_at_the_drain_deadline() {
    let config = platform_http::HttpConfig {
        request_timeout: Duration::from_secs(30),
        ..test_config()
    };
    let mut app = spawn_app_with(&config, Duration::from_millis(200)).await;
    let slow = tokio::spawn({
        let client = app.client.clone();
        let url = app.url("/slow?ms=20000");
        async move { client.get(url).send().await }
    });
    app.slow_started.notified().await;

    let signalled = Instant::now();
    app.shut_down();
    let served = tokio::time::timeout(Duration::from_secs(3), app.server)
        .await
        .expect("serve returns at the drain deadline, not when the request ends");
    served.unwrap().unwrap();
    assert!(
        signalled.elapsed() >= Duration::from_millis(200),
        "waited for the deadline"
    );
    assert!(
        !slow.is_finished(),
        "the slow request was left behind, not completed"
    );
    slow.abort();
}

#[cfg(unix)]
#[tokio::test]
async fn the_shutdown_signal_resolves_when_the_process_receives_sigterm() {
    use tokio::signal::unix::{SignalKind, signal};

    platform_telemetry::init_for_tests();
    // Our own listener first: from now on SIGTERM is handled by Tokio and cannot end the test
    // process, whenever `shutdown_signal` gets to install its own.
    let _keep_sigterm_handled = signal(SignalKind::terminate()).unwrap();
    let waiting = tokio::spawn(platform_http::shutdown_signal());
    let deadline = Instant::now() + Duration::from_secs(5);
    while !waiting.is_finished() {
        assert!(Instant::now() < deadline, "shutdown_signal ignored SIGTERM");
        let status = std::process::Command::new("kill")
            .args(["-TERM", &std::process::id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    waiting.await.unwrap();
}
