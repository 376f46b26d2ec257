//! Wiring: what the {{service}} service adds to the kit.
{% if consumes != "" %}
use std::sync::Arc;

use platform_events::consumer::postgres::PgInbox;{% endif %}
use platform_events::outbox::postgres::PgOutbox;
use platform_kit::{Application, Kit};

use crate::config::Settings;
use crate::http::{self, AppState};
{% if consumes != "" %}use crate::intake::{Intake, SUBSCRIPTIONS};
{% endif %}use crate::store::Store;

/// The service's schema.
static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Connects to the database (and runs its migrations) and to NATS, and binds the HTTP
/// listener; running, it relays its outbox{% if consumes != "" %} and consumes {{consumes}}{% endif %}.
pub async fn build(settings: Settings) -> anyhow::Result<Application> {
    let config = settings.own;
    let mut kit = Kit::start(crate::SERVICE_NAME, &settings.common).await?;
    let pool = kit.postgres(&config.database, &MIGRATIONS).await?;
    kit.relay(PgOutbox::new(pool.clone(), kit.namespace().clone()));
    let store = Store::new(pool.clone(), kit.namespace().clone());
{% if consumes != "" %}    let intake = Arc::new(Intake::new(store.clone()));
    for (name, domain, types) in SUBSCRIPTIONS {
        kit.consume(name, domain, types, PgInbox::new(pool.clone()), Arc::clone(&intake));
    }
    // Operators list, replay and discard its consumers' dead letters here (admin only).
    kit.dead_letter_api("/api/v1/{{resource}}");
{% endif %}    let verifier = kit.verifier()?;
    kit.serve(http::router(AppState { store, verifier }), http::openapi())
        .await
}
