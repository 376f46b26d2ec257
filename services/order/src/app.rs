//! Wiring: what the order service adds to the kit.

use std::sync::Arc;

use platform_events::outbox::postgres::PgOutbox;
use platform_kit::{Application, Kit};
use tokio::sync::Notify;

use crate::config::Settings;
use crate::downstream;
use crate::http::{self, AppState};
use crate::orders::Orders;
use crate::saga::SagaWorker;
use crate::settled::{self, Settlements};

/// The service's schema.
static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Connects to the database (and runs its migrations) and to NATS, prepares the clients of
/// inventory and payment, and binds the HTTP listener.
pub async fn build(settings: Settings) -> anyhow::Result<Application> {
    build_with_worker(settings).await.map(|(app, _)| app)
}

/// [`build`], and a saga worker over the same orders for stepping sagas by hand (tests,
/// tools); the service runs its own worker unless `ORDER_SERVICE__SAGA__ENABLED=false`.
pub async fn build_with_worker(settings: Settings) -> anyhow::Result<(Application, SagaWorker)> {
    let config = settings.own;
    let mut kit = Kit::start(crate::SERVICE_NAME, &settings.common).await?;
    let pool = kit.postgres(&config.database, &MIGRATIONS).await?;
    let namespace = kit.namespace().clone();
    kit.relay(PgOutbox::new(pool.clone(), namespace.clone()));
    let (inventory, payments) = downstream::connect(&kit, &config)?;
    // Placing an order wakes the worker, so a saga starts at once rather than at the next poll.
    let wake = Arc::new(Notify::new());
    let worker = || {
        SagaWorker::new(
            pool.clone(),
            namespace.clone(),
            inventory.clone(),
            payments.clone(),
            config.saga.clone(),
            Arc::clone(&wake),
        )
    };
    if config.saga.enabled {
        let running = worker();
        kit.background(move |stop| running.run(stop));
    }
    let worker = worker();
    {
        let pool = pool.clone();
        kit.background(move |stop| {
            crate::saga::report_in_progress(pool, crate::saga::IN_PROGRESS_INTERVAL, stop)
        });
    }
    // Requests waiting for their order to finish hear of it from PostgreSQL, whichever replica
    // finished it.
    let settlements = Settlements::default();
    {
        let (pool, settlements) = (pool.clone(), settlements.clone());
        kit.background(move |stop| settled::listen(pool, settlements, stop));
    }
    let orders = Orders::new(
        pool,
        namespace,
        inventory,
        payments,
        config.orders,
        wake,
        settlements,
    );
    let verifier = kit.verifier()?;
    let app = kit
        .serve(http::router(AppState { orders, verifier }), http::openapi())
        .await?;
    Ok((app, worker))
}
