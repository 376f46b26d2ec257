//! The checkout phase: each customer places an order through the gateway and reads it, waiting
//! for the outcome (`?wait=`), until it is CONFIRMED (or CANCELLED), again and again, for a
//! bounded time.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::sync::Mutex;
use uuid::Uuid;

use super::{Memory, PeakMemory};
use crate::client::{Client, Customer};

/// A customer checking out: their client, themselves, their card.
pub type Worker = (Client, Customer, Uuid);

/// What the checkout phase measured.
#[derive(Debug, Default)]
pub struct Checkout {
    /// Placed -> CONFIRMED, per confirmed order.
    pub latencies: Vec<Duration>,
    /// Orders confirmed.
    pub confirmed: usize,
    /// Orders cancelled.
    pub cancelled: usize,
    /// Failures by kind.
    pub errors: BTreeMap<String, usize>,
    /// How long the phase took.
    pub elapsed: Duration,
    /// Each process's peak resident memory during the phase.
    pub peak: Memory,
}

/// Eight products with stock no run exhausts, and `customers` signed-in customers with a card,
/// each with a client from `client`. `run`, if any, makes SKUs and addresses unique to the run.
pub async fn set_up(
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

/// Each customer checks out again and again for `duration` (at most `max_orders` orders in
/// all); `memory` is sampled every 250 ms for the peaks.
pub async fn run(
    duration: Duration,
    max_orders: usize,
    skus: &[String],
    customers: &[Worker],
    memory: impl Fn() -> Memory,
) -> anyhow::Result<Checkout> {
    let results = Arc::new(Mutex::new(Checkout::default()));
    let running = Arc::new(AtomicBool::new(true));
    let placed = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + duration;
    let workers: Vec<_> = customers
        .iter()
        .cloned()
        .enumerate()
        .map(|(index, (client, customer, card))| {
            let skus = skus.to_vec();
            let results = Arc::clone(&results);
            let running = Arc::clone(&running);
            let placed = Arc::clone(&placed);
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

    let mut peak = PeakMemory::default();
    while Instant::now() < deadline && workers.iter().any(|worker| !worker.is_finished()) {
        peak.sample(memory());
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    running.store(false, Ordering::Relaxed);
    for worker in workers {
        worker.await.context("a bench worker failed")?;
    }
    let mut results = std::mem::take(&mut *results.lock().await);
    results.elapsed = started.elapsed();
    results.peak = peak.0;
    Ok(results)
}

/// One checkout: place, then wait until finished. Returns the final status and the time from
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
