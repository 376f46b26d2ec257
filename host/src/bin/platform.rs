//! `platform`: the whole platform on one machine.
//!
//! - `platform run`: every service and the gateway as processes on the standard ports, against
//!   the local infrastructure (`make run` starts it first), until Ctrl-C.
//! - `platform bench`: the checkout benchmark (`make bench`), with where the time goes.
//! - `platform dead-letters list|show|replay|discard`: a running platform's dead letters,
//!   through its gateway, as an administrator.
//!
//! Each process is its service's own binary, found beside this one (`cargo build --bins`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use platform_host::launcher::{binaries_beside_this_one, persistent_signing_key};
use platform_host::{Infra, Platform, PlatformConfig, Ports};

#[derive(Parser)]
#[command(about = "The whole platform on one machine")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every service and the gateway until Ctrl-C.
    Run,
    /// Measure where a checkout's time goes: throughput and latency through the gateway, the
    /// inventory's ceiling, store round trips, CPU, saga steps, start-up, memory, a burst.
    Bench(platform_host::bench::BenchOptions),
    /// List, show, replay or discard dead letters through the gateway (as an administrator).
    DeadLetters(platform_host::dead_letters::DeadLetterOptions),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("platform: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        match cli.command {
            Command::Run => report(run().await),
            Command::Bench(options) => report(platform_host::bench::run(options).await),
            Command::DeadLetters(options) => {
                report(platform_host::dead_letters::run(options).await.map(|out| {
                    print!("{out}");
                }))
            }
        }
    })
}

fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("platform: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// A secret kept in a file under `.local/run`, generated the first time.
fn persistent_secret(path: &std::path::Path) -> anyhow::Result<String> {
    if let Ok(secret) = std::fs::read_to_string(path) {
        return Ok(secret.trim().to_owned());
    }
    let secret =
        uuid::Uuid::new_v4().simple().to_string() + &uuid::Uuid::new_v4().simple().to_string();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, &secret)?;
    Ok(secret)
}

async fn run() -> anyhow::Result<()> {
    let root = PathBuf::from(std::env::var("PLATFORM_ROOT").unwrap_or_else(|_| ".".to_owned()));
    let local = root.join(".local");
    let admin_password = persistent_secret(&local.join("run/admin-password"))?;
    let config = PlatformConfig {
        bin_dir: binaries_beside_this_one()?,
        infra: Infra::from_env()?,
        ports: Ports::standard(),
        namespace: String::new(),
        log_dir: local.join("logs"),
        signing_key_pem: persistent_signing_key(&local.join("run/user-signing-key.pem"))?,
        service_secret: persistent_secret(&local.join("run/service-secret"))?,
        admin: ("admin@shop.example".to_owned(), admin_password.clone()),
        operations_email: "operations@shop.example".to_owned(),
        seed_demo: true,
        extra_env: std::collections::BTreeMap::new(),
    };
    let mail_api =
        std::env::var("MAIL_API_URL").unwrap_or_else(|_| "http://127.0.0.1:58025".to_owned());
    eprintln!(
        "platform: starting the services (logs in {})",
        config.log_dir.display()
    );
    let platform = Platform::start(config).await?;
    let gateway = platform.gateway_url();
    println!();
    println!(
        "  storefront     {}",
        platform.url(platform_host::launcher::Service::STOREFRONT)
    );
    println!("  gateway        {gateway}");
    println!("  API docs       {gateway}/docs");
    println!("  captured mail  {mail_api}/messages");
    println!("  administrator  admin@shop.example / {admin_password}");
    println!("  logs           .local/logs/<service>.log");
    println!();
    println!("Every service is ready. Ctrl-C stops them all.");
    platform_http::shutdown_signal().await;
    eprintln!("platform: stopping");
    tokio::time::timeout(Duration::from_secs(60), platform.shutdown()).await??;
    eprintln!("platform: stopped");
    Ok(())
}
