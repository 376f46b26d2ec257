//! Wiring: what the notification service adds to the kit.

use std::sync::Arc;

use anyhow::Context as _;
use platform_events::consumer::postgres::PgInbox;
use platform_kit::{Application, Kit};
use platform_proto::user::v1::user_service_client::UserServiceClient;

use crate::channel::{Channel, SmtpChannel};
use crate::config::{Settings, USER_TIMEOUT};
use crate::delivery::{DeliveryReplay, DeliveryWorker};
use crate::http::{self, AppState};
use crate::intake::Intake;
use crate::templates::Templates;
use crate::users::UserDirectory;

/// The service's schema.
static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Connects to the database (and runs its migrations) and to NATS, compiles the templates,
/// and binds the HTTP listener; running, it consumes events and delivers notifications.
pub async fn build(settings: Settings) -> anyhow::Result<Application> {
    let config = settings.own;
    let mut kit = Kit::start(crate::SERVICE_NAME, &settings.common).await?;
    let pool = kit.postgres(&config.database, &MIGRATIONS).await?;
    let templates = Arc::new(Templates::load().context("compiling the message templates")?);
    let smtp = &config.smtp;
    let channel: Arc<dyn Channel> = Arc::new(
        SmtpChannel::new(smtp.url.expose(), &smtp.from, smtp.timeout())
            .with_context(|| format!("{} / __FROM", kit.variable("SMTP__URL")))?,
    );
    // Counters of failed deliveries, exported at zero from the start: a rate or an alert needs
    // a series before the first failure.
    for counter in ["notifications_failed_total", "notifications_retried_total"] {
        metrics::counter!(counter, "channel" => channel.name()).increment(0);
    }
    let users = UserDirectory(kit.downstream(
        "user",
        &config.user,
        USER_TIMEOUT,
        UserServiceClient::new,
    )?);
    let admin = config.delivery.admin_email.clone();
    let intake = Arc::new(Intake::new(templates, users, admin, channel.name()));
    for (name, domain, types) in crate::intake::SUBSCRIPTIONS {
        kit.consume(
            name,
            domain,
            types,
            PgInbox::new(pool.clone()),
            Arc::clone(&intake),
        );
    }
    kit.replay_dead_letters(
        crate::delivery::DELIVERY,
        Arc::new(DeliveryReplay::new(pool.clone())),
    );
    kit.dead_letter_api(http::PATH);
    let jetstream = async_nats::jetstream::new(kit.nats().clone());
    let worker = DeliveryWorker::new(
        pool.clone(),
        channel,
        config.delivery,
        jetstream,
        kit.namespace().clone(),
    );
    kit.background(move |stop| worker.run(stop));
    let verifier = kit.verifier()?;
    kit.serve(http::router(AppState { pool, verifier }), http::openapi())
        .await
}
