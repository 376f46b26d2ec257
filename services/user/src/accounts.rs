//! What the service does: register, log in, refresh, log out, read and change an account.

use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, SubsecRound as _, Utc};
use platform_auth::{Claims, Role, TokenSigner};
use platform_contracts::UserRegistered;
use platform_events::{Envelope, Namespace};
use platform_http::FieldError;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::config::TokenSettings;
use crate::domain::{DisplayName, Email, FieldErrors, NewAccount, NewPassword, ProfileChanges};
pub use crate::error::AccountError;
use crate::password::Passwords;
use crate::store::{self, Inserted, RefreshTokenRow, UserRow};
use crate::tokens::{hash_refresh_token, looks_like_refresh_token, new_refresh_token};

/// The `source` of the events this service emits.
pub const SOURCE: &str = crate::SERVICE_NAME;

/// An account, as the rest of the service sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// Account id.
    pub id: Uuid,
    /// Normalised email.
    pub email: String,
    /// Name to greet the user with.
    pub display_name: String,
    /// What the account may do.
    pub roles: Vec<Role>,
    /// Registration time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl TryFrom<UserRow> for User {
    type Error = anyhow::Error;

    fn try_from(row: UserRow) -> Result<Self, Self::Error> {
        let roles = row
            .roles
            .iter()
            .map(|role| {
                Role::from_str(role)
                    .map_err(|_| anyhow::anyhow!("user {} has an unknown role `{role}`", row.id))
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Self {
            id: row.id,
            email: row.email,
            display_name: row.display_name,
            roles,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

/// An access token and the refresh token that renews it.
#[derive(Clone, Debug)]
pub struct TokenPair {
    /// Signed JWT.
    pub access_token: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Opaque token for `/auth/refresh`.
    pub refresh_token: String,
    /// Seconds until the refresh token expires.
    pub refresh_expires_in: u64,
}

/// The account operations, over the service's database.
#[derive(Clone)]
pub struct Accounts {
    pool: PgPool,
    namespace: Namespace,
    passwords: Passwords,
    signer: Arc<TokenSigner>,
    tokens: Arc<TokenSettings>,
}

impl Accounts {
    /// The operations over `pool`, emitting events into `namespace` and signing with `signer`.
    pub async fn new(
        pool: PgPool,
        namespace: Namespace,
        signer: Arc<TokenSigner>,
        tokens: TokenSettings,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            pool,
            namespace,
            passwords: Passwords::new().await?,
            signer,
            tokens: Arc::new(tokens),
        })
    }

    /// Creates a customer account and emits `users.registered` in the same transaction.
    #[tracing::instrument(skip_all)]
    pub async fn register(&self, account: &NewAccount) -> Result<User, AccountError> {
        self.create(
            &account.email,
            &account.password,
            &account.display_name,
            &[Role::Customer],
        )
        .await?
        .ok_or(AccountError::EmailTaken)
    }

    /// Inserts an account and its `users.registered` event; `None` if the email is taken.
    async fn create(
        &self,
        email: &Email,
        password: &NewPassword,
        display_name: &DisplayName,
        roles: &[Role],
    ) -> Result<Option<User>, AccountError> {
        // Microseconds, as PostgreSQL stores them: the answer matches later reads.
        let now = Utc::now().trunc_subsecs(6);
        let row = UserRow {
            id: Uuid::now_v7(),
            email: email.as_str().to_owned(),
            display_name: display_name.as_str().to_owned(),
            password_hash: self.passwords.hash(password.expose()).await?,
            roles: roles.iter().map(|role| role.as_str().to_owned()).collect(),
            created_at: now,
            updated_at: now,
        };
        let mut tx = self.pool.begin().await?;
        if let Inserted::EmailTaken = store::insert_user(&row, &mut *tx).await? {
            return Ok(None);
        }
        let event = Envelope::new(
            SOURCE,
            &row.id,
            UserRegistered {
                user_id: row.id,
                email: row.email.clone(),
                display_name: row.display_name.clone(),
            },
        );
        platform_events::outbox::postgres::enqueue(&mut *tx, &self.namespace, &event).await?;
        tx.commit().await?;
        tracing::info!(user_id = %row.id, "account registered");
        metrics::counter!("users_registered_total").increment(1);
        Ok(Some(User::try_from(row)?))
    }

    /// Checks the credentials and starts a session: a new refresh token family.
    #[tracing::instrument(skip_all)]
    pub async fn login(&self, email: &str, password: &str) -> Result<TokenPair, AccountError> {
        // An address that cannot exist is looked up anyway (and finds nothing): every failed
        // login takes the same path, and so the same time.
        let email = Email::parse(email)
            .map_or_else(|_| email.trim().to_lowercase(), |e| e.as_str().to_owned());
        let row = store::find_user_by_email(&email, &self.pool).await?;
        let verified = self
            .passwords
            .verify(password, row.as_ref().map(|row| row.password_hash.as_str()))
            .await?;
        let Some(row) = row.filter(|_| verified) else {
            metrics::counter!("users_login_failures_total").increment(1);
            return Err(AccountError::BadCredentials);
        };
        let user = User::try_from(row)?;
        let mut tx = self.pool.begin().await?;
        let pair = self.issue(&user, Uuid::now_v7(), &mut tx).await?;
        tx.commit().await?;
        tracing::info!(user_id = %user.id, "logged in");
        Ok(pair)
    }

    /// Exchanges a refresh token for a new pair. A token presented a second time revokes its
    /// whole family: whoever holds the newer token (the legitimate client or the thief) must
    /// log in again.
    #[tracing::instrument(skip_all)]
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenPair, AccountError> {
        if !looks_like_refresh_token(refresh_token) {
            return Err(AccountError::BadRefreshToken(
                "the refresh token is not valid",
            ));
        }
        let mut tx = self.pool.begin().await?;
        let Some(token) =
            store::lock_refresh_token(&hash_refresh_token(refresh_token), &mut *tx).await?
        else {
            return Err(AccountError::BadRefreshToken(
                "the refresh token is not valid",
            ));
        };
        if token.revoked_at.is_some() {
            return Err(AccountError::BadRefreshToken(
                "the refresh token has been revoked: log in again",
            ));
        }
        if token.used_at.is_some() {
            let revoked = store::revoke_family(token.family_id, &mut *tx).await?;
            tx.commit().await?;
            tracing::warn!(
                user_id = %token.user_id,
                family_id = %token.family_id,
                revoked,
                "a used refresh token was presented again; its family is revoked"
            );
            metrics::counter!("users_refresh_token_reuse_total").increment(1);
            return Err(AccountError::RefreshTokenReused);
        }
        if token.expires_at <= Utc::now() {
            return Err(AccountError::BadRefreshToken(
                "the refresh token has expired: log in again",
            ));
        }
        let user = store::find_user(token.user_id, &mut *tx).await?.ok_or(
            AccountError::BadRefreshToken("the refresh token is not valid"),
        )?;
        let user = User::try_from(user)?;
        store::mark_refresh_token_used(token.id, &mut *tx).await?;
        let pair = self.issue(&user, token.family_id, &mut tx).await?;
        tx.commit().await?;
        Ok(pair)
    }

    /// Ends the session a refresh token belongs to (its whole family). Unknown or already
    /// revoked tokens are fine: the session is over either way.
    #[tracing::instrument(skip_all)]
    pub async fn logout(&self, refresh_token: &str) -> Result<(), AccountError> {
        if !looks_like_refresh_token(refresh_token) {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        if let Some(token) =
            store::lock_refresh_token(&hash_refresh_token(refresh_token), &mut *tx).await?
        {
            store::revoke_family(token.family_id, &mut *tx).await?;
            tracing::info!(user_id = %token.user_id, "logged out");
        }
        tx.commit().await?;
        Ok(())
    }

    /// The account with this id.
    pub async fn get(&self, id: Uuid) -> Result<User, AccountError> {
        let row = store::find_user(id, &self.pool)
            .await?
            .ok_or(AccountError::NotFound)?;
        Ok(User::try_from(row)?)
    }

    /// Changes the caller's display name and/or password. A new password needs the current one,
    /// and signs out every session (all refresh tokens are revoked). The passwords are judged
    /// here, not at the edge: the policy needs the account's email, the check its hash.
    #[tracing::instrument(skip_all, fields(user_id = %id))]
    pub async fn update_profile(
        &self,
        id: Uuid,
        changes: &ProfileChanges,
    ) -> Result<User, AccountError> {
        let ProfileChanges {
            display_name,
            current_password,
            new_password,
        } = changes;
        let current = self.get(id).await?;
        let email = Email::parse(&current.email)
            .map_err(|e| anyhow::anyhow!("stored email is invalid: {}", e.message))?;
        let mut errors = FieldErrors::default();
        let new_password = new_password
            .as_deref()
            .and_then(|raw| errors.check(NewPassword::parse(raw, &email, "new_password")));
        if new_password.is_some() {
            match current_password.as_deref() {
                None => {
                    errors.check::<()>(Err(FieldError::new(
                        "current_password",
                        "is required to change the password",
                    )));
                }
                Some(current_password) => {
                    let row = store::find_user(id, &self.pool)
                        .await?
                        .ok_or(AccountError::NotFound)?;
                    if !self
                        .passwords
                        .verify(current_password, Some(&row.password_hash))
                        .await?
                    {
                        errors
                            .check::<()>(Err(FieldError::new("current_password", "is incorrect")));
                    }
                }
            }
        }
        errors.finish().map_err(AccountError::Invalid)?;

        let password_hash = match &new_password {
            Some(password) => Some(self.passwords.hash(password.expose()).await?),
            None => None,
        };
        let mut tx = self.pool.begin().await?;
        let row = store::update_user(
            id,
            display_name.as_ref().map(DisplayName::as_str),
            password_hash.as_deref(),
            &mut *tx,
        )
        .await?
        .ok_or(AccountError::NotFound)?;
        if password_hash.is_some() {
            let revoked = store::revoke_user_tokens(id, &mut *tx).await?;
            tracing::info!(revoked, "password changed; every session signed out");
        }
        tx.commit().await?;
        Ok(User::try_from(row)?)
    }

    /// Makes sure an administrator with this email exists: creates the account (with this
    /// password) or grants an existing one the admin role. Returns it and whether it was
    /// created.
    pub async fn ensure_admin(
        &self,
        email: &str,
        password: &str,
    ) -> Result<(User, bool), AccountError> {
        let email = Email::parse(email).map_err(|error| AccountError::Invalid(vec![error]))?;
        if let Some(row) = store::find_user_by_email(email.as_str(), &self.pool).await? {
            let row = store::grant_role(row.id, Role::Admin.as_str(), &self.pool)
                .await?
                .ok_or(AccountError::NotFound)?;
            return Ok((User::try_from(row)?, false));
        }
        let password = NewPassword::parse(password, &email, "password")
            .map_err(|error| AccountError::Invalid(vec![error]))?;
        let display_name = DisplayName::from_email(&email);
        match self
            .create(
                &email,
                &password,
                &display_name,
                &[Role::Customer, Role::Admin],
            )
            .await?
        {
            Some(user) => Ok((user, true)),
            // Created concurrently (another replica bootstrapping): promote it instead.
            None => Box::pin(self.ensure_admin(email.as_str(), password.expose())).await,
        }
    }

    /// Deletes refresh tokens nobody can use any more.
    pub async fn purge_expired_tokens(&self) -> anyhow::Result<u64> {
        store::purge_expired_refresh_tokens(&self.pool)
            .await
            .context("purging expired refresh tokens")
    }

    /// Purges expired refresh tokens every hour until `stop`.
    pub async fn purge_expired_tokens_hourly(self, stop: CancellationToken) {
        let mut hourly = tokio::time::interval(Duration::from_secs(3600));
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = hourly.tick() => {}
            }
            match self.purge_expired_tokens().await {
                Ok(0) => {}
                Ok(purged) => tracing::info!(purged, "purged expired refresh tokens"),
                Err(error) => tracing::warn!(
                    error = format!("{error:#}"),
                    "purging refresh tokens failed"
                ),
            }
        }
    }

    /// Signs an access token and stores a new refresh token of `family_id`, in `tx`.
    async fn issue(
        &self,
        user: &User,
        family_id: Uuid,
        tx: &mut sqlx::PgConnection,
    ) -> Result<TokenPair, AccountError> {
        let access_ttl = self.tokens.access_ttl();
        let claims = Claims::new(
            user.id,
            user.email.clone(),
            user.roles.clone(),
            self.tokens.issuer.clone(),
            self.tokens.audience.clone(),
            access_ttl,
        );
        let access_token = self
            .signer
            .sign(&claims)
            .context("signing an access token")?;
        let refresh_ttl = self.tokens.refresh_ttl();
        let refresh_token = new_refresh_token();
        let row = RefreshTokenRow {
            id: Uuid::now_v7(),
            user_id: user.id,
            family_id,
            token_hash: hash_refresh_token(&refresh_token),
            expires_at: Utc::now()
                + chrono::Duration::from_std(refresh_ttl).context("refresh token lifetime")?,
            used_at: None,
            revoked_at: None,
        };
        store::insert_refresh_token(&row, &mut *tx).await?;
        Ok(TokenPair {
            access_token,
            expires_in: access_ttl.as_secs(),
            refresh_token,
            refresh_expires_in: refresh_ttl.as_secs(),
        })
    }
}
