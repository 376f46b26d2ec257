//! Wiring: what the user service adds to the kit.

use std::sync::Arc;

use anyhow::Context as _;
use platform_auth::{JwksVerifier, JwksVerifierConfig, TokenSigner};
use platform_events::outbox::postgres::PgOutbox;
use platform_kit::{Application, Kit};
use platform_proto::user::v1::user_service_server::UserServiceServer;

use crate::accounts::{Accounts, User};
use crate::config::Settings;
use crate::grpc::UserGrpc;
use crate::http::{self, AppState};

/// The service's schema.
static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Connects to the database (and runs its migrations) and to NATS, loads the signing key,
/// ensures the bootstrap administrator, and binds both listeners.
pub async fn build(settings: Settings) -> anyhow::Result<Application> {
    let (common, config) = (settings.common, settings.own);
    let mut kit = Kit::start(crate::SERVICE_NAME, &common).await?;
    let pool = kit.postgres(&config.database, &MIGRATIONS).await?;
    kit.relay(PgOutbox::new(pool.clone(), kit.namespace().clone()));
    let signer = Arc::new(signing_key(&kit, &config.tokens)?);
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

fn signing_key(kit: &Kit, tokens: &crate::config::TokenSettings) -> anyhow::Result<TokenSigner> {
    let variable = kit.variable("TOKENS__SIGNING_KEY_PEM");
    let kid = tokens.signing_key_id.clone();
    match &tokens.signing_key_pem {
        Some(pem) => TokenSigner::from_pkcs8_pem(kid, pem.expose())
            .with_context(|| format!("{variable} is not an Ed25519 PKCS#8 PEM key")),
        None => {
            tracing::warn!(
                "DEVELOPMENT ONLY: no signing key configured ({variable}); using a key generated \
                 at start-up. Tokens will not survive a restart and other replicas cannot verify \
                 them. Configure a key in any shared or production environment."
            );
            Ok(TokenSigner::generate(kid))
        }
    }
}

async fn ensure_admin(
    accounts: &Accounts,
    email: &str,
    password: &str,
) -> anyhow::Result<(User, bool)> {
    accounts
        .ensure_admin(email, password)
        .await
        .map_err(|error| anyhow::anyhow!("bootstrapping the administrator: {error}"))
}

/// Creates an administrator (or grants an existing account the admin role), for the
/// `create-admin` command.
pub async fn create_admin(
    settings: &Settings,
    email: &str,
    password: &str,
) -> anyhow::Result<(User, bool)> {
    let entry = platform_kit::registry::service(crate::SERVICE_NAME);
    let variable = entry.variable("DATABASE__URL");
    let pool =
        platform_kit::connect_postgres(&settings.own.database, &MIGRATIONS, &variable).await?;
    let namespace =
        platform_events::Namespace::from_prefix(settings.common.nats.subject_prefix.as_deref())?;
    // Nothing is signed here; the key only satisfies the constructor.
    let signer = Arc::new(TokenSigner::generate("unused"));
    let accounts = Accounts::new(pool, namespace, signer, settings.own.tokens.clone()).await?;
    ensure_admin(&accounts, email, password).await
}
