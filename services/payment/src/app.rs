//! Wiring: what the payment service adds to the kit.

use std::sync::Arc;

use platform_events::outbox::postgres::PgOutbox;
use platform_kit::{Application, Kit};
use platform_proto::payment::v1::payment_service_server::PaymentServiceServer;

use crate::config::Settings;
use crate::grpc::PaymentGrpc;
use crate::http::{self, AppState};
use crate::payments::Payments;
use crate::provider::PaymentProvider;
use crate::provider::test_mode::TestProvider;

/// The service's schema.
static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Connects to the database (and runs its migrations) and to NATS, and binds both listeners,
/// so that the ports are known before anything is served.
pub async fn build(settings: Settings) -> anyhow::Result<Application> {
    let config = settings.own;
    let mut kit = Kit::start(crate::SERVICE_NAME, &settings.common).await?;
    let pool = kit.postgres(&config.database, &MIGRATIONS).await?;
    kit.relay(PgOutbox::new(pool.clone(), kit.namespace().clone()));
    let provider: Arc<dyn PaymentProvider> = match config.provider.kind.as_str() {
        "test" => Arc::new(TestProvider::new(
            pool.clone(),
            config.provider.slow_card_delay(),
            config.provider.latency(),
        )),
        other => anyhow::bail!(
            "{}: unknown provider `{other}` (this build has `test`)",
            kit.variable("PROVIDER__KIND")
        ),
    };
    let payments = Payments::new(pool, kit.namespace().clone(), provider);
    kit.grpc(PaymentServiceServer::new(PaymentGrpc::new(
        payments.clone(),
    )));
    let verifier = kit.verifier()?;
    kit.serve(
        http::router(AppState { payments, verifier }),
        http::openapi(),
    )
    .await
}
