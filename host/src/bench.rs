//! `platform bench`: the checkout journey through the gateway at a given concurrency for a
//! bounded time. Each worker is a customer placing an order and polling it until it is
//! CONFIRMED (or CANCELLED), again and again. Prints orders per second, the latency from
//! placing an order to seeing it confirmed (p50, p95, p99), errors, and each process's resident
//! memory idle and under load.
//!
//! With `E2E_GATEWAY_URL` set it loads that deployment instead of starting a platform (see
//! [`crate::deployed`]: its administrator signs in, each customer is a client of its own, SKUs and
//! addresses are unique to the run); memory is then not measured (the processes are elsewhere).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::client::{Client, Customer};
use crate::deployed::{Deployed, READY_TIMEOUT};
use crate::launcher::{Infra, Platform, PlatformConfig, Ports, Service};

/// What to run.
#[derive(Clone, Debug, clap::Args)]
pub struct BenchOptions {
    /// Customers checking out at once.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Seconds of load (after set-up).
    #[arg(long, default_value_t = 20)]
    pub duration: u64,
    /// Stop after this many orders even if time remains.
    #[arg(long, default_value_t = 100_000)]
    pub max_orders: usize,
}

#[derive(Default)]
struct Results {
    latencies: Vec<Duration>,
    confirmed: usize,
    cancelled: usize,
    errors: BTreeMap<String, usize>,
}

/// A platform of its own on free ports, without the demo catalogue, with limits no run
/// reaches (one client address drives every customer).
fn bench_config() -> anyhow::Result<PlatformConfig> {
    let namespace = format!("bench_{}", Uuid::now_v7().simple());
    let mut config = PlatformConfig {
        bin_dir: crate::launcher::binaries_beside_this_one()?,
        infra: Infra::from_env()?,
        ports: Ports::free()?,
        namespace: namespace.clone(),
        log_dir: std::path::PathBuf::from(".local/logs").join(&namespace),
        signing_key_pem: platform_auth::TokenSigner::generate_pkcs8_pem(),
        service_secret: format!("bench-secret-{}", Uuid::new_v4().simple()),
        admin: (ADMIN.0.to_owned(), ADMIN.1.to_owned()),
        operations_email: "operations@bench.example".to_owned(),
        seed_demo: false,
        extra_env: BTreeMap::new(),
    };
    for class in ["AUTH", "READ", "WRITE"] {
        config.set(
            Service::GATEWAY,
            &format!("RATE_LIMIT__{class}__LIMIT"),
            &1_000_000,
        );
    }
    Ok(config)
}

const ADMIN: (&str, &str) = ("admin@bench.example", "correct horse battery staple");

/// Each process's resident memory, in KiB.
type Memory = BTreeMap<Service, u64>;

/// A customer checking out: their client, themselves, their card.
type Worker = (Client, Customer, Uuid);

/// Eight products with stock no run exhausts, and `customers` signed-in customers with a card,
/// each with a client from `client`. `run`, if any, makes SKUs and addresses unique to the run.
async fn set_up(
    client: impl Fn() -> Client,
    admin: (&str, &str),
    run: Option<&str>,
    customers: usize,
) -> anyhow::Result<(Vec<String>, Vec<Worker>)> {
    let suffix = run.map_or_else(String::new, |run| format!("-{run}"));
    let admin_client = client();
    let admin = admin_client.sign_in(admin.0, admin.1).await?;
    let mut skus = Vec::new();
    for index in 0..8 {
        let sku = format!("BENCH-{index}{}", suffix.to_ascii_uppercase());
        skus.push(
            admin_client
                .create_product(&admin, &sku, 500 + index * 100, 1_000_000)
                .await?,
        );
    }
    let mut signed_in = Vec::new();
    for index in 0..customers {
        let client = client();
        let customer = client
            .customer(&format!("customer-{index}{suffix}@bench.example"), "Bench")
            .await?;
        let card = client.add_card(&customer, "4242 4242 4242 4242").await?;
        signed_in.push((client, customer, card));
    }
    Ok((skus, signed_in))
}

/// Starts a fresh platform on free ports (or targets the deployment `E2E_GATEWAY_URL` names),
/// loads it, prints the figures, stops it.
pub async fn run(options: BenchOptions) -> anyhow::Result<()> {
    anyhow::ensure!(
        options.concurrency > 0 && options.duration > 0,
        "concurrency and duration must be positive"
    );
    if let Some(deployed) = Deployed::from_env() {
        return run_deployed(&options, &deployed?).await;
    }
    let config = bench_config()?;
    eprintln!("bench: starting the platform ({})", config.namespace);
    let platform = Platform::start(config).await?;
    let client = Client::new(platform.gateway_url());
    let (skus, customers) = set_up(|| client.clone(), ADMIN, None, options.concurrency).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = memory(&platform);
    let (elapsed, results, peak) = load(&options, skus, customers, || memory(&platform)).await?;
    print_report(&options, &results, elapsed, Some((&idle, &peak)));
    platform.shutdown().await?;
    Ok(())
}

/// Loads the deployment `deployed`, prints the figures (without memory).
async fn run_deployed(options: &BenchOptions, deployed: &Deployed) -> anyhow::Result<()> {
    eprintln!(
        "bench: loading the deployment at {}",
        deployed.gateway_url()
    );
    deployed.wait_ready(READY_TIMEOUT).await?;
    let run = Uuid::now_v7().simple().to_string();
    let (skus, customers) = set_up(
        || deployed.client(),
        deployed.admin()?,
        Some(&run),
        options.concurrency,
    )
    .await?;
    let (elapsed, results, _) = load(options, skus, customers, BTreeMap::new).await?;
    print_report(options, &results, elapsed, None);
    Ok(())
}

/// Each customer checks out again and again for the options' duration; returns the time it took,
/// the results and each process's peak of `memory` (sampled every 250 ms).
async fn load(
    options: &BenchOptions,
    skus: Vec<String>,
    customers: Vec<Worker>,
    memory: impl Fn() -> Memory,
) -> anyhow::Result<(Duration, Results, Memory)> {
    eprintln!(
        "bench: {} customers checking out for {} s",
        options.concurrency, options.duration
    );
    let results = Arc::new(Mutex::new(Results::default()));
    let running = Arc::new(AtomicBool::new(true));
    let placed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(options.duration);
    let workers: Vec<_> = customers
        .into_iter()
        .enumerate()
        .map(|(index, (client, customer, card))| {
            let skus = skus.clone();
            let results = Arc::clone(&results);
            let running = Arc::clone(&running);
            let placed = Arc::clone(&placed);
            let max_orders = options.max_orders;
            tokio::spawn(async move {
                let mut round = index;
                while running.load(Ordering::Relaxed)
                    && Instant::now() < deadline
                    && placed.fetch_add(1, Ordering::Relaxed) < max_orders
                {
                    round += 1;
                    let sku = skus[round % skus.len()].as_str();
                    let outcome = checkout(&client, &customer, sku, card).await;
                    let mut results = results.lock().await;
                    match outcome {
                        Ok((status, latency)) if status == "CONFIRMED" => {
                            results.confirmed += 1;
                            results.latencies.push(latency);
                        }
                        Ok(_) => results.cancelled += 1,
                        Err(error) => *results.errors.entry(error.to_string()).or_default() += 1,
                    }
                }
            })
        })
        .collect();

    let mut peak = Memory::new();
    while Instant::now() < deadline && workers.iter().any(|worker| !worker.is_finished()) {
        for (service, rss) in memory() {
            let entry = peak.entry(service).or_default();
            *entry = (*entry).max(rss);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    running.store(false, Ordering::Relaxed);
    for worker in workers {
        worker.await.context("a bench worker failed")?;
    }
    let elapsed = started.elapsed();
    let results = std::mem::take(&mut *results.lock().await);
    Ok((elapsed, results, peak))
}

/// One checkout: place, then poll until finished. Returns the final status and the time from
/// placing to seeing it.
async fn checkout(
    client: &Client,
    customer: &Customer,
    sku: &str,
    card: Uuid,
) -> anyhow::Result<(String, Duration)> {
    let started = Instant::now();
    let id = client
        .order_id(customer, &[(sku, 1)], card)
        .await
        .map_err(|_| anyhow::anyhow!("placing failed"))?;
    let order = client
        .finished(customer, id, Duration::from_secs(60))
        .await
        .map_err(|_| anyhow::anyhow!("did not finish within 60 s"))?;
    Ok((
        order["status"].as_str().unwrap_or_default().to_owned(),
        started.elapsed(),
    ))
}

fn memory(platform: &Platform) -> Memory {
    Service::all()
        .filter_map(|service| platform.rss_kib(service).map(|rss| (service, rss)))
        .collect()
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 * fraction).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index]
}

fn print_report(
    options: &BenchOptions,
    results: &Results,
    elapsed: Duration,
    memory: Option<(&Memory, &Memory)>,
) {
    let mut latencies = results.latencies.clone();
    latencies.sort();
    let ms = |duration: Duration| duration.as_secs_f64() * 1000.0;
    println!();
    println!(
        "checkout through the gateway: {} customers, {:.1} s",
        options.concurrency,
        elapsed.as_secs_f64()
    );
    println!(
        "  orders confirmed   {:>8}   ({:.1} per second)",
        results.confirmed,
        results.confirmed as f64 / elapsed.as_secs_f64()
    );
    println!("  orders cancelled   {:>8}", results.cancelled);
    println!(
        "  errors             {:>8}   {:?}",
        results.errors.values().sum::<usize>(),
        results.errors
    );
    println!(
        "  placed -> CONFIRMED  p50 {:.1} ms   p95 {:.1} ms   p99 {:.1} ms",
        ms(percentile(&latencies, 0.50)),
        ms(percentile(&latencies, 0.95)),
        ms(percentile(&latencies, 0.99))
    );
    let Some((idle, peak)) = memory else {
        println!("  resident memory    not measured (a deployment's processes are elsewhere)");
        return;
    };
    println!("  resident memory (MiB)   idle   under load");
    for service in Service::all() {
        println!(
            "    {:<14} {:>11.1} {:>12.1}",
            service.name(),
            idle.get(&service).copied().unwrap_or_default() as f64 / 1024.0,
            peak.get(&service).copied().unwrap_or_default() as f64 / 1024.0
        );
    }
}
