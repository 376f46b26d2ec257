use std::sync::Arc;
use std::time::{Duration, Instant};

use platform_health::{CheckFuture, Health, HealthCheck, PostgresCheck, check_fn};
use reqwest::StatusCode;
use sqlx::postgres::PgPoolOptions;
use tokio::net::TcpListener;

use crate::helpers::{check, spawn_app};

/// A dependency that never answers.
struct Hangs;

impl HealthCheck for Hangs {
    fn name(&self) -> &'static str {
        "hangs"
    }

    fn check(&self) -> CheckFuture<'_> {
        Box::pin(async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(())
        })
    }
}

#[tokio::test]
async fn a_check_that_hangs_is_reported_down_within_about_the_timeout() -> anyhow::Result<()> {
    let health = Health::new()
        .with_timeout(Duration::from_millis(300))
        .with_check(Hangs)
        .with_check(check_fn("fine", || async { Ok(()) }));
    let app = spawn_app(&health).await?;

    let started = Instant::now();
    let (status, body) = app.ready().await?;
    let elapsed = started.elapsed();

    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["status"], "unready");
    let hangs = check(&body, "hangs");
    assert_eq!(hangs["status"], "down");
    assert_eq!(hangs["error"], "timed out after 300ms");
    let latency = hangs["latency_ms"].as_f64().unwrap_or_default();
    assert!((300.0..1000.0).contains(&latency), "latency {latency} ms");
    assert_eq!(check(&body, "fine")["status"], "up");
    assert!(
        elapsed >= Duration::from_millis(300),
        "answered after {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_secs(2),
        "answered after {elapsed:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_postgres_that_accepts_connections_but_never_answers_is_down_after_the_default_timeout()
-> anyhow::Result<()> {
    // A server that accepts connections and then says nothing, like a hung process.
    let black_hole = TcpListener::bind("127.0.0.1:0").await?;
    let address = black_hole.local_addr()?;
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = black_hole.accept().await {
            held.push(socket);
        }
    });
    // sqlx's default acquire timeout (30 s): only the check's own timeout can end the wait.
    let pool = PgPoolOptions::new()
        .connect_lazy(&format!("postgres://postgres:postgres@{address}/postgres"))?;
    let app = spawn_app(&Health::new().with_check(PostgresCheck::new(pool))).await?;

    let started = Instant::now();
    let (status, body) = app.ready().await?;
    let elapsed = started.elapsed();

    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(check(&body, "postgres")["error"], "timed out after 2s");
    assert!(
        elapsed >= Duration::from_secs(2),
        "answered after {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_secs(5),
        "answered after {elapsed:?}"
    );
    Ok(())
}

#[tokio::test]
async fn checks_run_concurrently_so_each_gets_the_whole_timeout() -> anyhow::Result<()> {
    // Each check waits for the other to start: run one after the other, the first would time out.
    let both_started = Arc::new(tokio::sync::Barrier::new(2));
    let waits_for_other = |name: &'static str| {
        let barrier = both_started.clone();
        check_fn(name, move || {
            let barrier = barrier.clone();
            async move {
                barrier.wait().await;
                Ok(())
            }
        })
    };
    let health = Health::new()
        .with_timeout(Duration::from_secs(5))
        .with_check(waits_for_other("first"))
        .with_check(waits_for_other("second"));
    let app = spawn_app(&health).await?;

    let (status, body) = app.ready().await?;

    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(check(&body, "first")["status"], "up");
    assert_eq!(check(&body, "second")["status"], "up");
    Ok(())
}
