//! The ceiling: the inventory service's own reserve-and-commit path, driven directly over its
//! gRPC API as the order service's saga drives it (same credential, same calls), at the
//! checkout's concurrency. Every checkout reserves and commits stock once, so checkout cannot
//! go faster than this; how close it comes says how much the rest of the journey costs.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use platform_auth::{ServiceCredentials, ServiceSecret, ServiceTokenInterceptor};
use platform_proto::inventory::v1::inventory_service_client::InventoryServiceClient;
use platform_proto::inventory::v1::{CommitRequest, ReservationItem, ReserveRequest};
use tokio::sync::Mutex;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use uuid::Uuid;

/// Each call's deadline.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

type Inventory = InventoryServiceClient<InterceptedService<Channel, ServiceTokenInterceptor>>;

/// What the ceiling phase measured.
#[derive(Debug, Default)]
pub struct Ceiling {
    /// Reserve + Commit pairs that both succeeded.
    pub pairs: usize,
    /// How long each successful pair took.
    pub latencies: Vec<Duration>,
    /// Failures by kind.
    pub errors: BTreeMap<String, usize>,
    /// How long the phase took.
    pub elapsed: Duration,
}

/// A client of the inventory service at `url`, calling as `caller` (a binary name of
/// `services.toml`, e.g. `order-service`) with the platform's shared `secret`.
pub async fn connect(url: &str, caller: &str, secret: &str) -> anyhow::Result<Inventory> {
    let channel = Channel::from_shared(url.to_owned())
        .with_context(|| format!("`{url}` is not a valid URL"))?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .with_context(|| format!("connecting to the inventory service at {url}"))?;
    let credentials = ServiceCredentials::new(caller, ServiceSecret::new(secret)?);
    let audience = platform_registry::service("inventory").binary.clone();
    Ok(InventoryServiceClient::with_interceptor(
        channel,
        ServiceTokenInterceptor::new(credentials, audience),
    ))
}

/// `concurrency` workers, each reserving one of `skus` (quantity 1) for a fresh order id and
/// committing it, again and again, for `duration` (and at most `max_pairs` pairs in all).
pub async fn run(
    inventory: Inventory,
    skus: &[String],
    concurrency: usize,
    duration: Duration,
    max_pairs: usize,
) -> anyhow::Result<Ceiling> {
    let results = Arc::new(Mutex::new(Ceiling::default()));
    let started_pairs = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + duration;
    let workers: Vec<_> = (0..concurrency)
        .map(|index| {
            let mut inventory = inventory.clone();
            let skus = skus.to_vec();
            let results = Arc::clone(&results);
            let started_pairs = Arc::clone(&started_pairs);
            tokio::spawn(async move {
                let mut round = index;
                while Instant::now() < deadline
                    && started_pairs.fetch_add(1, Ordering::Relaxed) < max_pairs
                {
                    round += 1;
                    let sku = &skus[round % skus.len()];
                    let begun = Instant::now();
                    let outcome = reserve_and_commit(&mut inventory, sku).await;
                    let mut results = results.lock().await;
                    match outcome {
                        Ok(()) => {
                            results.pairs += 1;
                            results.latencies.push(begun.elapsed());
                        }
                        Err(error) => *results.errors.entry(error).or_default() += 1,
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.context("a ceiling worker failed")?;
    }
    let mut results = std::mem::take(&mut *results.lock().await);
    results.elapsed = started.elapsed();
    Ok(results)
}

/// One pair; the error is the failing call and its gRPC code (a short, countable kind).
async fn reserve_and_commit(inventory: &mut Inventory, sku: &str) -> Result<(), String> {
    let order_id = Uuid::now_v7().to_string();
    let mut reserve = tonic::Request::new(ReserveRequest {
        order_id: order_id.clone(),
        items: vec![ReservationItem {
            sku: sku.to_owned(),
            quantity: 1,
        }],
    });
    reserve.set_timeout(CALL_TIMEOUT);
    inventory
        .reserve(reserve)
        .await
        .map_err(|status| format!("Reserve: {:?}", status.code()))?;
    let mut commit = tonic::Request::new(CommitRequest { order_id });
    commit.set_timeout(CALL_TIMEOUT);
    inventory
        .commit(commit)
        .await
        .map_err(|status| format!("Commit: {:?}", status.code()))?;
    Ok(())
}
