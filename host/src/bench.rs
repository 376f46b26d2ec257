//! `platform bench`: where a checkout's time goes, measured in one run, without a profiler.
//!
//! It starts a fresh platform of its own on free ports (its own databases, Redis keys and NATS
//! namespace, rate limits out of the way) and runs these phases one after another:
//!
//! 1. **Checkout**: `--concurrency` customers each place an order through the gateway and poll
//!    it until it is CONFIRMED (or CANCELLED), again and again, for `--duration` seconds:
//!    orders per second and the latency placed -> CONFIRMED (p50, p95, p99). Around it the
//!    bench reads the order service's `/metrics` (time per saga step), the stores' own counters
//!    (round trips per order) and `/proc` (CPU time per order of every process: the services,
//!    the gateway, the bench itself, and the servers of PostgreSQL, Redis, NATS and SecantusDB).
//! 2. **Inventory ceiling**: the inventory service's Reserve + Commit over gRPC, as the order
//!    service calls it, at the same concurrency for the same time: what the slowest store
//!    allows, and the checkout's rate as a fraction of it.
//! 3. **Sign-in**: `--signins` sign-ins by the bench's customers (at most 15 s): the user
//!    service's peak memory while hashing passwords.
//! 4. **Burst**: `--burst` orders by up to 50 fresh customers, 50 at once; how long until all
//!    settle, until each customer has one email per order, and the event consumers' lag.
//!
//! Then each process's time from spawn to ready and its memory (idle and per phase), and a
//! summary of the ratios against their goals.
//!
//! With `E2E_GATEWAY_URL` set it loads that deployment instead of starting a platform (see
//! [`crate::deployed`]: its administrator signs in, each customer is a client of its own, SKUs and
//! addresses are unique to the run): checkout, sign-in and burst run through its gateway; what
//! needs the processes or the stores on this machine is "not measured".

pub mod burst;
pub mod ceiling;
pub mod checkout;
pub mod cpu;
mod local;
pub mod prometheus;
mod report;
pub mod signin;
pub mod stats;
pub mod stores;

use std::collections::BTreeMap;
use std::time::Duration;

use uuid::Uuid;

use self::checkout::Worker;
use self::prometheus::{Histogram, Labels};
use crate::client::Client;
use crate::deployed::{Deployed, READY_TIMEOUT};
use crate::launcher::{Infra, Platform, PlatformConfig, Ports, Service};

/// What to run.
#[derive(Clone, Debug, clap::Args)]
pub struct BenchOptions {
    /// Customers checking out at once (and workers of the inventory ceiling, and sign-ins at
    /// once).
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Seconds of checkout load (after set-up), and again of the inventory ceiling.
    #[arg(long, default_value_t = 20)]
    pub duration: u64,
    /// Stop after this many orders (and this many ceiling pairs) even if time remains.
    #[arg(long, default_value_t = 100_000)]
    pub max_orders: usize,
    /// Sign-ins in the sign-in phase (at most 15 s; 0 skips it).
    #[arg(long, default_value_t = 200)]
    pub signins: usize,
    /// Orders in the burst phase, by up to 50 fresh customers, 50 at once (0 skips it).
    #[arg(long, default_value_t = 500)]
    pub burst: usize,
}

/// The sign-in phase's time limit.
const SIGN_IN_LIMIT: Duration = Duration::from_secs(15);

/// Each process's resident memory, in KiB.
pub type Memory = BTreeMap<Service, u64>;

/// The highest of each process's samples.
#[derive(Debug, Default)]
pub struct PeakMemory(pub Memory);

impl PeakMemory {
    /// Keeps the higher of each process's peak and `sample`.
    pub fn sample(&mut self, sample: Memory) {
        for (service, rss) in sample {
            let entry = self.0.entry(service).or_default();
            *entry = (*entry).max(rss);
        }
    }
}

/// The figures the summary repeats, filled in as the phases report.
#[derive(Debug, Default)]
pub struct Summary {
    ceiling_ratio: Option<f64>,
    store_multiple: Option<f64>,
    slowest_start: Option<(Duration, Service)>,
    largest_idle: Option<(u64, Service)>,
    largest_load: Option<(u64, Service)>,
    user_sign_in_peak: Option<u64>,
    mail_after: Option<f64>,
}

/// Runs `future` while sampling `memory` every 250 ms into `peak`.
async fn sampling<T>(
    future: impl Future<Output = T>,
    memory: &impl Fn() -> Memory,
    peak: &mut PeakMemory,
) -> T {
    let mut future = std::pin::pin!(future);
    let mut ticker = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            output = &mut future => {
                peak.sample(memory());
                return output;
            }
            _ = ticker.tick() => peak.sample(memory()),
        }
    }
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

/// Starts a fresh platform on free ports (or targets the deployment `E2E_GATEWAY_URL` names),
/// runs the phases, prints the figures, stops it.
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
    let outcome = local::run(&options, &platform).await;
    platform.shutdown().await?;
    outcome
}

/// Loads the deployment `deployed` through its gateway; what needs its processes or stores is
/// not measured.
async fn run_deployed(options: &BenchOptions, deployed: &Deployed) -> anyhow::Result<()> {
    eprintln!(
        "bench: loading the deployment at {}",
        deployed.gateway_url()
    );
    deployed.wait_ready(READY_TIMEOUT).await?;
    let run = Uuid::now_v7().simple().to_string();
    let (skus, customers) = checkout::set_up(
        || deployed.client(),
        deployed.admin()?,
        Some(&run),
        options.concurrency,
    )
    .await?;
    let no_memory = BTreeMap::new;
    eprintln!("bench: checkout for {} s", options.duration);
    let results = checkout::run(
        Duration::from_secs(options.duration),
        options.max_orders,
        &skus,
        &customers,
        no_memory,
    )
    .await?;
    let mut summary = Summary::default();
    report::checkout(options.concurrency, &results);
    println!();
    println!(
        "saga steps, inventory ceiling, store round trips, CPU, start-up and memory: not measured \
         (a deployment's processes and stores are elsewhere)"
    );
    sign_in_phase(options, &customers, no_memory, &mut summary).await;
    let mail_api = std::env::var("MAIL_API_URL").ok();
    burst_phase(
        options,
        &|| deployed.client(),
        (&run, &skus),
        (mail_api.as_deref(), None),
        &no_memory,
        &mut summary,
    )
    .await;
    report::summary(&summary);
    Ok(())
}

/// The sign-in phase, if asked for: prints its block; returns the peaks.
async fn sign_in_phase(
    options: &BenchOptions,
    customers: &[Worker],
    memory: impl Fn() -> Memory,
    summary: &mut Summary,
) -> Memory {
    if options.signins == 0 {
        return Memory::new();
    }
    eprintln!("bench: {} sign-ins", options.signins);
    let signing_in: Vec<_> = customers
        .iter()
        .map(|(client, customer, _)| (client.clone(), customer.clone()))
        .collect();
    let results = signin::run(
        &signing_in,
        options.signins,
        options.concurrency,
        SIGN_IN_LIMIT,
        memory,
    )
    .await;
    report::sign_ins(&results, options.concurrency, summary);
    results.peak
}

/// The burst phase, if asked for: prints its block (or why it failed); returns the peaks.
/// `run` makes the customers' addresses unique; `skus` are the products to order. `sources` are
/// the mail catcher's API and the notification service's `/metrics` URL, when reachable.
async fn burst_phase(
    options: &BenchOptions,
    client: &impl Fn() -> Client,
    (run, skus): (&str, &[String]),
    (mail_api, notification_metrics): (Option<&str>, Option<&str>),
    memory: &impl Fn() -> Memory,
    summary: &mut Summary,
) -> Memory {
    if options.burst == 0 {
        return Memory::new();
    }
    let count = options.burst.min(burst::MAX_CUSTOMERS);
    eprintln!("bench: registering {count} customers for the burst");
    let customers = match burst::set_up(client, count, run, options.concurrency).await {
        Ok(customers) => customers,
        Err(error) => {
            println!();
            println!("burst: could not register its customers: {error:#}");
            return Memory::new();
        }
    };
    let lag_before = scrape_histograms(notification_metrics, LAG_METRIC).await;
    let mut peak = PeakMemory::default();
    let mut results = burst::Burst::default();
    eprintln!("bench: {} orders at once", options.burst);
    let placed = sampling(
        burst::place(&customers, skus, options.burst, &mut results),
        memory,
        &mut peak,
    )
    .await;
    eprintln!("bench: waiting for {} orders to settle", placed.len());
    results.settled = sampling(burst::settle(&customers, &placed), memory, &mut peak).await;
    if let Some(api) = mail_api {
        eprintln!("bench: waiting for the emails");
        results.mail = sampling(
            burst::mail(api, &customers, &results.settled),
            memory,
            &mut peak,
        )
        .await;
    } else {
        results.mail.unreadable = Some("no mail catcher: MAIL_API_URL is not set".to_owned());
    }
    results.notifications = burst::notifications(&customers).await;
    let lag = match (
        lag_before,
        scrape_histograms(notification_metrics, LAG_METRIC).await,
    ) {
        (_, Err(why)) => Err(why),
        (Ok(before), Ok(after)) => Ok(prometheus::diff(&after, &before)),
        (Err(_), Ok(after)) => Ok(after),
    };
    report::burst(&results, options.burst, &lag, summary);
    peak.0
}

/// The event consumers' lag: seconds from an event's timestamp to the start of its handling.
const LAG_METRIC: &str = "events_consume_lag_seconds";

/// The histograms named `name` in the `/metrics` at `url`, or why there are none.
async fn scrape_histograms(
    url: Option<&str>,
    name: &str,
) -> Result<BTreeMap<Labels, Histogram>, String> {
    let url = url.ok_or_else(|| "not measured (the service is elsewhere)".to_owned())?;
    let text = scrape(url)
        .await
        .map_err(|error| format!("not measured ({error:#})"))?;
    let found = prometheus::histograms(&prometheus::parse(&text), name);
    if found.is_empty() {
        Err(format!("not exported (no {name} histogram in {url})"))
    } else {
        Ok(found)
    }
}

async fn scrape(url: &str) -> anyhow::Result<String> {
    let response = reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(10))
        .send()
        .await?
        .error_for_status()?;
    Ok(response.text().await?)
}
