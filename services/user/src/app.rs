//! Wiring: what the user service adds to the kit.

use std::sync::Arc;

use platform_auth::{JwksVerifier, JwksVerifierConfig};
use platform_events::outbox::postgres::PgOutbox;
use platform_kit::{Application, Kit};
use platform_proto::user::v1::user_service_server::UserServiceServer;

use crate::accounts::Accounts;
use crate::admin::ensure_admin;
use crate::config::Settings;
use crate::grpc::UserGrpc;
use crate::http::{self, AppState};

/// The service's schema.
pub(crate) static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Connects to the database (and runs its migrations) and to NATS, loads the signing key,
/// ensures the bootstrap administrator, and binds both listeners.
pub async fn build(settings: Settings) -> anyhow::Result<Application> {
    let (common, config) = (settings.common, settings.own);
    let mut kit = Kit::start(crate::SERVICE_NAME, &common).await?;
    // Counters of rare events, exported at zero from the start: a rate or an alert needs a
    // series before the first one.
    for counter in [
        "users_registered_total",
        "users_login_failures_total",
        "users_refresh_token_reuse_total",
    ] {
        metrics::counter!(counter).increment(0);
    }
    let pool = kit.postgres(&config.database, &MIGRATIONS).await?;
    kit.relay(PgOutbox::new(pool.clone(), kit.namespace().clone()));
    let signer = Arc::new(
        config
            .tokens
            .signer(&kit.variable("TOKENS__SIGNING_KEY_PEM"))?,
    );
    // Tokens are verified with this replica's own key at once; the key set URL is only asked
    // for a kid this replica does not know (another replica's key during a rotation).
    let verifier = JwksVerifier::new(JwksVerifierConfig::new(
        common.jwt.jwks_url.clone(),
        config.tokens.issuer.clone(),
        config.tokens.audience.clone(),
    ))?;
    let jwks = Arc::new(signer.jwk_set());
    verifier.preload(&jwks)?;
    let accounts = Accounts::new(pool, kit.namespace().clone(), signer, config.tokens).await?;
    if let Some(admin) = &config.bootstrap_admin {
        let (user, created) =
            ensure_admin(&accounts, &admin.email, admin.password.expose()).await?;
        tracing::info!(user_id = %user.id, created, "administrator ensured");
    }
    kit.grpc(UserServiceServer::new(UserGrpc::new(accounts.clone())));
    let purging = accounts.clone();
    kit.background(move |stop| purging.purge_expired_tokens_hourly(stop));
    let state = AppState {
        accounts,
        verifier,
        jwks,
    };
    kit.serve(http::router(state), http::openapi()).await
}
