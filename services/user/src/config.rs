//! The service's own settings, beside the kit's common ones (HTTP, gRPC, NATS, JWT, service
//! credential, telemetry): defaults here, overridden by `USER_SERVICE__...` variables.

use std::time::Duration;

use anyhow::Context as _;
use platform_auth::TokenSigner;
use platform_config::{DatabaseSettings, Secret};
use serde::{Deserialize, Serialize};

/// The kit's common settings and the service's own.
pub type Settings = platform_kit::Settings<Config>;

/// What only the user service reads at start-up.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Config {
    /// The service's own PostgreSQL database (required).
    pub database: DatabaseSettings,
    /// Access and refresh tokens.
    #[serde(default)]
    pub tokens: TokenSettings,
    /// An administrator account to create (or promote) at start-up, if set.
    #[serde(default)]
    pub bootstrap_admin: Option<BootstrapAdmin>,
}

impl Config {
    /// Defaults for everything but the database.
    pub fn with_database(url: impl Into<String>) -> Self {
        Self {
            database: DatabaseSettings::new(url),
            tokens: TokenSettings::default(),
            bootstrap_admin: None,
        }
    }
}

/// How tokens are issued.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct TokenSettings {
    /// The `iss` of access tokens.
    pub issuer: String,
    /// The `aud` of access tokens: the platform's API.
    pub audience: String,
    /// Access token lifetime in seconds.
    pub access_ttl_secs: u64,
    /// Refresh token lifetime in seconds.
    pub refresh_ttl_secs: u64,
    /// The Ed25519 signing key, PKCS#8 PEM (`TOKENS__SIGNING_KEY_PEM`), with real line breaks
    /// or on one line with `\n` escapes (the form an `.env` file can hold). Unset: a key is
    /// generated at start-up, which is only fit for a single development instance.
    pub signing_key_pem: Option<Secret>,
    /// The key's id (`kid`), published in the JWKS.
    pub signing_key_id: String,
}

impl Default for TokenSettings {
    fn default() -> Self {
        Self {
            issuer: "platform-user-service".to_owned(),
            audience: "platform-api".to_owned(),
            access_ttl_secs: 15 * 60,
            refresh_ttl_secs: 30 * 24 * 3600,
            signing_key_pem: None,
            signing_key_id: "user-service-1".to_owned(),
        }
    }
}

impl TokenSettings {
    /// The configured signing key; without one, a key generated now, with a loud warning
    /// naming `variable` (fit only for a single development instance).
    pub fn signer(&self, variable: &str) -> anyhow::Result<TokenSigner> {
        let kid = self.signing_key_id.clone();
        match &self.signing_key_pem {
            Some(pem) => TokenSigner::from_pkcs8_pem(kid, &unescape_line_breaks(pem.expose()))
                .with_context(|| format!("{variable} is not an Ed25519 PKCS#8 PEM key")),
            None => {
                tracing::warn!(
                    "DEVELOPMENT ONLY: no signing key configured ({variable}); using a key \
                     generated at start-up. Tokens will not survive a restart and other replicas \
                     cannot verify them. Configure a key in any shared or production environment."
                );
                Ok(TokenSigner::generate(kid))
            }
        }
    }

    /// Access token lifetime.
    pub fn access_ttl(&self) -> Duration {
        Duration::from_secs(self.access_ttl_secs)
    }

    /// Refresh token lifetime.
    pub fn refresh_ttl(&self) -> Duration {
        Duration::from_secs(self.refresh_ttl_secs)
    }
}

/// A PEM written on one line with `\n` escapes, as `.env` files and compose hold it, with its
/// line breaks back; a PEM with real line breaks is returned as it is.
fn unescape_line_breaks(pem: &str) -> String {
    if pem.contains('\n') {
        pem.to_owned()
    } else {
        pem.trim().replace("\\n", "\n")
    }
}

/// An administrator to ensure at start-up.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct BootstrapAdmin {
    /// Their email (`BOOTSTRAP_ADMIN__EMAIL`).
    pub email: String,
    /// Their password, used only if the account does not exist yet
    /// (`BOOTSTRAP_ADMIN__PASSWORD`).
    pub password: Secret,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(vars: &[(&str, &str)]) -> Result<Settings, platform_config::ConfigError> {
        Settings::load_from(
            "USER_SERVICE",
            vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        )
    }

    #[test]
    fn a_signing_key_on_one_line_with_escaped_line_breaks_is_accepted() {
        let pem = TokenSigner::generate_pkcs8_pem();
        let one_line = pem.trim_end().replace('\n', "\\n");
        assert!(!one_line.contains('\n'));
        let url = ("USER_SERVICE__DATABASE__URL", "postgres://u:p@db/users");
        for form in [pem.as_str(), one_line.as_str()] {
            let config = load(&[url, ("USER_SERVICE__TOKENS__SIGNING_KEY_PEM", form)]).unwrap();
            let signer = config.own.tokens.signer("TOKENS__SIGNING_KEY_PEM").unwrap();
            let original = TokenSigner::from_pkcs8_pem("k".to_owned(), &pem).unwrap();
            assert_eq!(
                serde_json::to_value(signer.public_jwk()).unwrap()["x"],
                serde_json::to_value(original.public_jwk()).unwrap()["x"],
                "the same key in both forms"
            );
        }
        let garbled = load(&[
            url,
            ("USER_SERVICE__TOKENS__SIGNING_KEY_PEM", "-----BEGIN x\\n"),
        ])
        .unwrap();
        let error = garbled
            .own
            .tokens
            .signer("TOKENS__SIGNING_KEY_PEM")
            .unwrap_err();
        assert!(
            format!("{error:#}").contains("TOKENS__SIGNING_KEY_PEM"),
            "{error:#}"
        );
    }

    #[test]
    fn the_database_url_is_the_only_required_setting() {
        let error = load(&[]).unwrap_err().to_string();
        assert!(error.contains("USER_SERVICE__DATABASE__*"), "{error}");
        let error = load(&[("USER_SERVICE__DATABASE__MAX_CONNECTIONS", "5")])
            .unwrap_err()
            .to_string();
        assert!(error.contains("USER_SERVICE__DATABASE__URL"), "{error}");

        let config = load(&[("USER_SERVICE__DATABASE__URL", "postgres://u:p@db/users")]).unwrap();
        let entry = platform_kit::registry::service(crate::SERVICE_NAME);
        assert_eq!(entry.env_prefix, "USER_SERVICE");
        assert_eq!((entry.http_port, entry.grpc_port), (8081, Some(9081)));
        assert_eq!(config.own.tokens.access_ttl(), Duration::from_secs(900));
        assert!(config.own.bootstrap_admin.is_none());
        assert!(
            !format!("{config:?}").contains("u:p@db"),
            "the URL is a secret"
        );
    }

    #[test]
    fn a_bootstrap_admin_needs_both_email_and_password() {
        let error = load(&[
            ("USER_SERVICE__DATABASE__URL", "postgres://db/users"),
            ("USER_SERVICE__BOOTSTRAP_ADMIN__EMAIL", "root@example.com"),
        ])
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("USER_SERVICE__BOOTSTRAP_ADMIN__PASSWORD"),
            "{error}"
        );
    }
}
