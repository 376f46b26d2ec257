//! The service's tables. Each function takes an executor, so the caller decides the
//! transaction.

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgExecutor};
use uuid::Uuid;

/// A row of `users`.
#[derive(Clone, Debug, FromRow)]
pub struct UserRow {
    /// Account id.
    pub id: Uuid,
    /// Normalised email.
    pub email: String,
    /// Name to greet the user with.
    pub display_name: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// Role names.
    pub roles: Vec<String>,
    /// Registration time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// The outcome of inserting an account.
pub enum Inserted {
    /// Stored.
    Created,
    /// Another account has this email.
    EmailTaken,
}

/// Inserts an account; a duplicate email is an outcome, not an error.
pub async fn insert_user(user: &UserRow, executor: impl PgExecutor<'_>) -> sqlx::Result<Inserted> {
    let result = sqlx::query(
        "INSERT INTO users (id, email, display_name, password_hash, roles, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(user.id)
    .bind(&user.email)
    .bind(&user.display_name)
    .bind(&user.password_hash)
    .bind(&user.roles)
    .bind(user.created_at)
    .bind(user.updated_at)
    .execute(executor)
    .await;
    match result {
        Ok(_) => Ok(Inserted::Created),
        Err(sqlx::Error::Database(error)) if error.constraint() == Some("users_email_key") => {
            Ok(Inserted::EmailTaken)
        }
        Err(error) => Err(error),
    }
}

const USER_COLUMNS: &str = "id, email, display_name, password_hash, roles, created_at, updated_at";

/// The account with this (normalised) email.
pub async fn find_user_by_email(
    email: &str,
    executor: impl PgExecutor<'_>,
) -> sqlx::Result<Option<UserRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {USER_COLUMNS} FROM users WHERE email = $1"
    )))
    .bind(email)
    .fetch_optional(executor)
    .await
}

/// The account with this id.
pub async fn find_user(id: Uuid, executor: impl PgExecutor<'_>) -> sqlx::Result<Option<UserRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {USER_COLUMNS} FROM users WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(executor)
    .await
}

/// Changes an account's display name and/or password hash; returns the updated row.
pub async fn update_user(
    id: Uuid,
    display_name: Option<&str>,
    password_hash: Option<&str>,
    executor: impl PgExecutor<'_>,
) -> sqlx::Result<Option<UserRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE users SET \
             display_name = COALESCE($2, display_name), \
             password_hash = COALESCE($3, password_hash), \
             updated_at = now() \
         WHERE id = $1 RETURNING {USER_COLUMNS}"
    )))
    .bind(id)
    .bind(display_name)
    .bind(password_hash)
    .fetch_optional(executor)
    .await
}

/// Gives an account a role (no-op if it has it); returns the updated row.
pub async fn grant_role(
    id: Uuid,
    role: &str,
    executor: impl PgExecutor<'_>,
) -> sqlx::Result<Option<UserRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE users SET \
             roles = CASE WHEN $2 = ANY(roles) THEN roles ELSE array_append(roles, $2) END, \
             updated_at = now() \
         WHERE id = $1 RETURNING {USER_COLUMNS}"
    )))
    .bind(id)
    .bind(role)
    .fetch_optional(executor)
    .await
}

/// A row of `refresh_tokens`.
#[derive(Clone, Debug, FromRow)]
pub struct RefreshTokenRow {
    /// Token id.
    pub id: Uuid,
    /// Whose.
    pub user_id: Uuid,
    /// The login it descends from.
    pub family_id: Uuid,
    /// SHA-256 of the token.
    pub token_hash: Vec<u8>,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
    /// When it was exchanged for its successor.
    pub used_at: Option<DateTime<Utc>>,
    /// When it (or its family) was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Stores a new refresh token.
pub async fn insert_refresh_token(
    token: &RefreshTokenRow,
    executor: impl PgExecutor<'_>,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(token.id)
    .bind(token.user_id)
    .bind(token.family_id)
    .bind(&token.token_hash)
    .bind(token.expires_at)
    .execute(executor)
    .await?;
    Ok(())
}

/// The token with this hash, locked for the rest of the transaction: two refreshes with the
/// same token are serialised, and the second sees that the first used it.
pub async fn lock_refresh_token(
    token_hash: &[u8],
    executor: impl PgExecutor<'_>,
) -> sqlx::Result<Option<RefreshTokenRow>> {
    sqlx::query_as(
        "SELECT id, user_id, family_id, token_hash, expires_at, used_at, revoked_at \
         FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE",
    )
    .bind(token_hash)
    .fetch_optional(executor)
    .await
}

/// Marks a token exchanged for its successor.
pub async fn mark_refresh_token_used(id: Uuid, executor: impl PgExecutor<'_>) -> sqlx::Result<()> {
    sqlx::query("UPDATE refresh_tokens SET used_at = now() WHERE id = $1")
        .bind(id)
        .execute(executor)
        .await?;
    Ok(())
}

/// Revokes every live token of a family; returns how many.
pub async fn revoke_family(family_id: Uuid, executor: impl PgExecutor<'_>) -> sqlx::Result<u64> {
    let result = sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = now() \
         WHERE family_id = $1 AND revoked_at IS NULL",
    )
    .bind(family_id)
    .execute(executor)
    .await?;
    Ok(result.rows_affected())
}

/// Revokes every live token of a user (all their sessions); returns how many.
pub async fn revoke_user_tokens(user_id: Uuid, executor: impl PgExecutor<'_>) -> sqlx::Result<u64> {
    let result = sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL",
    )
    .bind(user_id)
    .execute(executor)
    .await?;
    Ok(result.rows_affected())
}

/// Deletes tokens that expired more than a day ago (kept that long so a late reuse of an
/// expired token is still recognised); returns how many.
pub async fn purge_expired_refresh_tokens(executor: impl PgExecutor<'_>) -> sqlx::Result<u64> {
    let result =
        sqlx::query("DELETE FROM refresh_tokens WHERE expires_at < now() - interval '1 day'")
            .execute(executor)
            .await?;
    Ok(result.rows_affected())
}
