//! The `create-admin` command: an administrator made (or an account promoted) without serving.

use std::sync::Arc;

use platform_auth::TokenSigner;

use crate::accounts::{Accounts, User};
use crate::app::MIGRATIONS;
use crate::config::Settings;

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

/// Ensures the administrator (configured at start-up or asked for by the command).
pub(crate) async fn ensure_admin(
    accounts: &Accounts,
    email: &str,
    password: &str,
) -> anyhow::Result<(User, bool)> {
    accounts
        .ensure_admin(email, password)
        .await
        .map_err(|error| anyhow::anyhow!("bootstrapping the administrator: {error}"))
}
