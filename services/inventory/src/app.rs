//! Wiring: what the inventory service adds to the kit.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use platform_events::outbox::mongo::MongoOutbox;
use platform_kit::{Application, Kit};
use platform_proto::inventory::v1::inventory_service_server::InventoryServiceServer;

use crate::cache::ReadCache;
use crate::catalogue::Catalogue;
use crate::config::Settings;
use crate::grpc::InventoryGrpc;
use crate::http::{self, AppState};
use crate::stock::{Stock, run_expiry_sweep};
use crate::store::Store;

/// Connects to MongoDB (creating the collections and indexes, and loading the demo catalogue
/// into an empty store when configured to), Redis (lazily: the service runs without it, and
/// readiness leaves it out, since reads answer without the cache) and NATS, and binds both
/// listeners.
pub async fn build(settings: Settings) -> anyhow::Result<Application> {
    let config = settings.own;
    let mut kit = Kit::start(crate::SERVICE_NAME, &settings.common).await?;
    // Counters of rare events, exported at zero from the start: a rate or an alert needs a
    // series before the first one.
    for counter in [
        "inventory_cache_invalidation_failures_total",
        "inventory_transaction_retries_total",
    ] {
        metrics::counter!(counter).increment(0);
    }
    if let Err(key) = config.reservations.check() {
        anyhow::bail!("{} must be at least 1", kit.variable(key));
    }
    let store = Store::new(kit.mongo(&config.mongo).await?);
    store
        .ensure_schema()
        .await
        .context("preparing the database")?;
    let outbox = MongoOutbox::new(store.database(), kit.namespace().clone());
    outbox.ensure_indexes().await?;
    kit.relay(MongoOutbox::new(store.database(), kit.namespace().clone()));
    let cache = ReadCache::connect(
        config.redis.url.expose(),
        &config.cache.key_prefix,
        config.cache.ttl(),
    )
    .with_context(|| kit.variable("REDIS__URL"))?;
    let catalogue = Catalogue::new(store.clone(), cache.clone());
    if config.catalogue.seed_demo {
        catalogue.seed_demo_if_empty().await?;
    }
    let ttl = config.reservations.ttl();
    let stock = Stock::new(store, cache.clone(), Arc::new(outbox), ttl);
    let sweep_interval = config.reservations.sweep_interval();
    let sweeping = stock.clone();
    kit.background(move |stop| run_expiry_sweep(sweeping, sweep_interval, stop));
    // Invalidations owed while Redis was away are retried every second.
    kit.background(move |stop| cache.run_invalidation_retries(Duration::from_secs(1), stop));
    let state = AppState {
        catalogue: catalogue.clone(),
        verifier: kit.verifier()?,
    };
    kit.grpc(InventoryServiceServer::new(InventoryGrpc::new(
        catalogue, stock,
    )));
    kit.serve(http::router(state), http::openapi()).await
}
