//! The phases against a platform the bench started on this machine: everything is measured.

use std::time::Duration;

use super::cpu::{self, CpuSample};
use super::stats::p50_p95_p99;
use super::stores::{self, RoundTrip, Stores};
use super::{
    ADMIN, BenchOptions, Memory, PeakMemory, Summary, burst_phase, ceiling, checkout, report,
    sampling, scrape_histograms, sign_in_phase,
};
use crate::client::Client;
use crate::launcher::{Platform, PlatformConfig, Service};

/// The order service's histogram of saga steps.
const SAGA_METRIC: &str = "orders_saga_step_duration_seconds";

/// What is read before and after a phase.
struct Probe {
    cpu: CpuSample,
    stores: Option<stores::Counters>,
}

impl Probe {
    async fn take(platform: &Platform, stores: &mut Option<Stores>) -> Self {
        let processes: Vec<(String, u32)> = Service::all()
            .filter_map(|service| Some((service.name().to_owned(), platform.pid(service)?)))
            .collect();
        let counters = match stores {
            Some(stores) => Some(stores.counters().await),
            None => None,
        };
        Self {
            cpu: CpuSample::take(&processes),
            stores: counters,
        }
    }

    /// What happened since `before`: CPU time per group, store work.
    fn since(&self, before: &Probe, ticks: u64) -> (cpu::CpuUse, Option<stores::StoreUse>) {
        let mut order: Vec<String> = Service::all().map(|s| s.name().to_owned()).collect();
        order.push("bench (load)".to_owned());
        order.extend(cpu::STORES.iter().map(|store| (*store).to_owned()));
        let stores = self
            .stores
            .as_ref()
            .zip(before.stores.as_ref())
            .map(|(after, before)| after.since(before));
        (self.cpu.since(&before.cpu, ticks, &order), stores)
    }
}

fn memory(platform: &Platform) -> Memory {
    Service::all()
        .filter_map(|service| platform.rss_kib(service).map(|rss| (service, rss)))
        .collect()
}

/// The stores, through the same servers the platform uses; `None` (and a note) if one cannot
/// be reached.
async fn connect_stores(config: &PlatformConfig) -> Option<Stores> {
    let pg_databases = platform_registry::services()
        .iter()
        .filter(|entry| entry.store == platform_registry::Store::Postgres)
        .map(|entry| config.database(&entry.database))
        .collect();
    let connected = Stores::connect(
        &config.infra.mongodb,
        config.database(&platform_registry::service("inventory").database),
        &config.infra.postgres,
        pg_databases,
        &config.infra.redis,
    )
    .await;
    match connected {
        Ok(stores) => Some(stores),
        Err(error) => {
            eprintln!("bench: store counters will not be measured: {error:#}");
            None
        }
    }
}

/// What a phase cost: CPU time per process, and the stores' work.
struct Cost {
    cpu: cpu::CpuUse,
    stores: Option<stores::StoreUse>,
}

/// The checkout phase, with the saga's steps from the order service's `/metrics`; prints both.
async fn checkout_phase(
    options: &BenchOptions,
    platform: &Platform,
    stores: &mut Option<Stores>,
    (skus, customers): (&[String], &[checkout::Worker]),
) -> anyhow::Result<(checkout::Checkout, Cost)> {
    let order_metrics = format!("{}/metrics", platform.url(Service::named("order")));
    let steps_before = scrape_histograms(Some(&order_metrics), SAGA_METRIC).await;
    let before = Probe::take(platform, stores).await;
    eprintln!(
        "bench: {} customers checking out for {} s",
        options.concurrency, options.duration
    );
    let results = checkout::run(
        Duration::from_secs(options.duration),
        options.max_orders,
        skus,
        customers,
        || memory(platform),
    )
    .await?;
    let after = Probe::take(platform, stores).await;
    let steps_after = scrape_histograms(Some(&order_metrics), SAGA_METRIC).await;
    let steps = match (steps_before, steps_after) {
        (Ok(before), Ok(after)) => Some(super::prometheus::diff(&after, &before)),
        (Err(_), Ok(after)) => Some(after),
        (_, Err(_)) => None,
    };
    report::checkout(options.concurrency, &results);
    report::saga_steps(steps.as_ref(), &results);
    let (cpu, stores) = after.since(&before, cpu::clock_ticks());
    Ok((results, Cost { cpu, stores }))
}

/// The inventory ceiling: its figures, cost and memory peaks.
async fn ceiling_phase(
    options: &BenchOptions,
    platform: &Platform,
    stores: &mut Option<Stores>,
    skus: &[String],
) -> anyhow::Result<(ceiling::Ceiling, Cost, Memory)> {
    let config = platform.config();
    let inventory = ceiling::connect(
        &format!(
            "http://127.0.0.1:{}",
            config.ports.grpc[&Service::named("inventory")]
        ),
        &platform_registry::service("order").binary,
        &config.service_secret,
    )
    .await?;
    let mut peak = PeakMemory::default();
    let before = Probe::take(platform, stores).await;
    eprintln!(
        "bench: the inventory's Reserve + Commit, {} at once for {} s",
        options.concurrency, options.duration
    );
    let limit = ceiling::run(
        inventory,
        skus,
        options.concurrency,
        Duration::from_secs(options.duration),
        options.max_orders,
    );
    let limit = sampling(limit, &|| memory(platform), &mut peak).await?;
    let after = Probe::take(platform, stores).await;
    let (cpu, stores) = after.since(&before, cpu::clock_ticks());
    Ok((limit, Cost { cpu, stores }, peak.0))
}

/// Every phase, with every figure.
pub(super) async fn run(options: &BenchOptions, platform: &Platform) -> anyhow::Result<()> {
    let client = Client::new(platform.gateway_url());
    let (skus, customers) =
        checkout::set_up(|| client.clone(), ADMIN, None, options.concurrency).await?;
    let mut stores = connect_stores(platform.config()).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let memory = || memory(platform);
    let idle = memory();
    let rtt = match &mut stores {
        Some(stores) => stores.round_trip().await,
        None => RoundTrip::default(),
    };
    let mut summary = Summary::default();

    let (results, checkout_cost) =
        checkout_phase(options, platform, &mut stores, (&skus, &customers)).await?;
    let (limit, ceiling_cost, ceiling_peak) =
        ceiling_phase(options, platform, &mut stores, &skus).await?;
    report::ceiling(options.concurrency, &limit, &results, &mut summary);
    report::stores(
        &rtt,
        [
            ("order", checkout_cost.stores.as_ref(), results.confirmed),
            ("pair", ceiling_cost.stores.as_ref(), limit.pairs),
        ],
        p50_p95_p99(&results.latencies)[0],
        &mut summary,
    );
    report::cpu(
        [
            ("order", Some(&checkout_cost.cpu), results.confirmed),
            ("pair", Some(&ceiling_cost.cpu), limit.pairs),
        ],
        std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
    );

    let sign_in_peak = sign_in_phase(options, &customers, memory, &mut summary).await;
    let mail_api =
        std::env::var("MAIL_API_URL").unwrap_or_else(|_| "http://127.0.0.1:58025".to_owned());
    let notification_metrics = format!("{}/metrics", platform.url(Service::named("notification")));
    let run = platform.config().namespace.clone();
    let burst_peak = burst_phase(
        options,
        &|| client.clone(),
        (&run, &skus),
        (Some(&mail_api), Some(&notification_metrics)),
        &memory,
        &mut summary,
    )
    .await;

    report::memory(
        platform.ready_after(),
        &idle,
        &[
            ("checkout", &results.peak),
            ("ceiling", &ceiling_peak),
            ("sign-in", &sign_in_peak),
            ("burst", &burst_peak),
        ],
        &mut summary,
    );
    report::summary(&summary);
    Ok(())
}
