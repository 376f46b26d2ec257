//! The public HTTP API (behind the gateway) and the JWKS.

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRef, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use platform_auth::{AuthenticatedUser, JwkSet, JwksVerifier};
use platform_http::{ApiError, FieldError, Json, Problem};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};
use uuid::Uuid;

use crate::accounts::{Accounts, TokenPair, User};
use crate::domain::{DisplayName, Email, FieldErrors, NewAccount, NewPassword, ProfileChanges};

/// What the handlers share.
#[derive(Clone, FromRef)]
pub struct AppState {
    /// The account operations.
    pub accounts: Accounts,
    /// Verifies access tokens (preloaded with this service's own key).
    pub verifier: JwksVerifier,
    /// The public keys, as served at `/.well-known/jwks.json`.
    pub jwks: Arc<JwkSet>,
}

/// Where the JWKS is served.
pub const JWKS_PATH: &str = "/.well-known/jwks.json";

/// The API routes (without the standard layers; the application adds them).
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/auth/register", post(register))
        .route("/api/v1/auth/login", post(login))
        .route("/api/v1/auth/refresh", post(refresh))
        .route("/api/v1/auth/logout", post(logout))
        .route("/api/v1/users/me", get(me).patch(update_me))
        .route(JWKS_PATH, get(jwks))
        .with_state(state)
}

/// The OpenAPI document of this API.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "User service",
        description = "Accounts, login and tokens. Access tokens are EdDSA JWTs verifiable with \
                       the keys at /.well-known/jwks.json; refresh tokens are opaque and rotate \
                       on every use.",
        version = "1"
    ),
    paths(register, login, refresh, logout, me, update_me, jwks),
    components(schemas(
        RegisterRequest,
        LoginRequest,
        RefreshRequest,
        UpdateProfileRequest,
        UserResponse,
        TokenResponse
    )),
    tags(
        (name = "auth", description = "Registration and sessions"),
        (name = "users", description = "The caller's own account")
    )
)]
pub struct ApiDoc;

/// The OpenAPI document with the platform's shared components.
pub fn openapi() -> utoipa::openapi::OpenApi {
    platform_http::openapi::with_common_components(ApiDoc::openapi())
}

/// A new account.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "email": "ada@example.com",
    "password": "correct horse battery staple",
    "display_name": "Ada"
}))]
pub struct RegisterRequest {
    /// Email address; stored trimmed and in lower case, and unique.
    pub email: String,
    /// 12 to 128 characters; not a common password, not containing the email's name.
    pub password: String,
    /// The name to greet the user with (defaults to the email's name).
    pub display_name: Option<String>,
}

/// Parses a registration at the edge; every invalid field is reported, each named.
impl TryFrom<RegisterRequest> for NewAccount {
    type Error = Vec<FieldError>;

    fn try_from(request: RegisterRequest) -> Result<Self, Self::Error> {
        let mut errors = FieldErrors::default();
        let email = errors.check(Email::parse(&request.email));
        let display_name = request
            .display_name
            .as_deref()
            .map(|name| errors.check(DisplayName::parse(name)));
        // The password cannot be judged against an email that does not parse.
        let password = email.as_ref().and_then(|email| {
            errors.check(NewPassword::parse(&request.password, email, "password"))
        });
        errors.finish()?;
        let (Some(email), Some(password)) = (email, password) else {
            unreachable!("no field errors means every field parsed");
        };
        let display_name = display_name
            .flatten()
            .unwrap_or_else(|| DisplayName::from_email(&email));
        Ok(Self {
            email,
            password,
            display_name,
        })
    }
}

/// Credentials.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"email": "ada@example.com", "password": "correct horse battery staple"}))]
pub struct LoginRequest {
    /// Email address (any case).
    pub email: String,
    /// Password.
    pub password: String,
}

/// A refresh token to exchange or revoke.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"refresh_token": "rt_3q2-7wEAAAA0d7Rkbi1Qe9bq7ZKn6aRk8cAzBrW5mXo"}))]
pub struct RefreshRequest {
    /// The refresh token from a login or an earlier refresh.
    pub refresh_token: String,
}

/// Changes to the caller's account; absent fields stay as they are.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"display_name": "Ada Lovelace"}))]
pub struct UpdateProfileRequest {
    /// A new display name.
    pub display_name: Option<String>,
    /// The current password: required with `new_password`.
    pub current_password: Option<String>,
    /// A new password (same policy as registration). Signs out every session.
    pub new_password: Option<String>,
}

/// Parses the display name at the edge; the passwords are judged by the operation, against the
/// account.
impl TryFrom<UpdateProfileRequest> for ProfileChanges {
    type Error = Vec<FieldError>;

    fn try_from(request: UpdateProfileRequest) -> Result<Self, Self::Error> {
        let display_name = request
            .display_name
            .as_deref()
            .map(DisplayName::parse)
            .transpose()
            .map_err(|error| vec![error])?;
        Ok(Self {
            display_name,
            current_password: request.current_password,
            new_password: request.new_password,
        })
    }
}

/// An account.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "019367a8-5b1e-7c2d-9e4f-0a1b2c3d4e5f",
    "email": "ada@example.com",
    "display_name": "Ada",
    "roles": ["customer"],
    "created_at": "2026-11-22T09:30:00Z"
}))]
pub struct UserResponse {
    /// Account id.
    pub id: Uuid,
    /// Normalised email.
    pub email: String,
    /// Display name.
    pub display_name: String,
    /// `customer`, and `admin` for administrators.
    pub roles: Vec<String>,
    /// Registration time.
    pub created_at: DateTime<Utc>,
}

impl From<User> for UserResponse {
    fn from(user: User) -> Self {
        Self {
            id: user.id,
            email: user.email,
            display_name: user.display_name,
            roles: user
                .roles
                .iter()
                .map(|role| role.as_str().to_owned())
                .collect(),
            created_at: user.created_at,
        }
    }
}

/// A session's tokens.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "access_token": "eyJhbGciOiJFZERTQSIsImtpZCI6InVzZXItc2VydmljZS0xIn0.eyJzdWIiOiIuLi4ifQ.c2ln",
    "token_type": "Bearer",
    "expires_in": 900,
    "refresh_token": "rt_3q2-7wEAAAA0d7Rkbi1Qe9bq7ZKn6aRk8cAzBrW5mXo",
    "refresh_expires_in": 2_592_000
}))]
pub struct TokenResponse {
    /// Send as `Authorization: Bearer <access_token>`.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Exchange at `/api/v1/auth/refresh` for a new pair; usable once.
    pub refresh_token: String,
    /// Seconds until the refresh token expires.
    pub refresh_expires_in: u64,
}

/// Token responses must not be cached anywhere (RFC 6749, section 5.1).
fn tokens(pair: TokenPair) -> Response {
    let mut response = Json(TokenResponse {
        access_token: pair.access_token,
        token_type: "Bearer".to_owned(),
        expires_in: pair.expires_in,
        refresh_token: pair.refresh_token,
        refresh_expires_in: pair.refresh_expires_in,
    })
    .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Register an account.
#[utoipa::path(
    post,
    path = "/api/v1/auth/register",
    tag = "auth",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "Registered; a `users.registered` event follows", body = UserResponse,
         headers(("location" = String, description = "The new account: /api/v1/users/me"))),
        (status = 409, description = "An account with this email exists", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, each named in `errors`", body = Problem, content_type = "application/problem+json")
    )
)]
async fn register(
    State(accounts): State<Accounts>,
    Json(request): Json<RegisterRequest>,
) -> Result<Response, ApiError> {
    let account = NewAccount::try_from(request).map_err(ApiError::Validation)?;
    let user = accounts.register(&account).await?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, "/api/v1/users/me")],
        Json(UserResponse::from(user)),
    )
        .into_response())
}

/// Log in: an access token and a refresh token.
#[utoipa::path(
    post,
    path = "/api/v1/auth/login",
    tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in", body = TokenResponse),
        (status = 401, description = "Wrong email or password (the same answer for both)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Missing fields", body = Problem, content_type = "application/problem+json")
    )
)]
async fn login(
    State(accounts): State<Accounts>,
    Json(request): Json<LoginRequest>,
) -> Result<Response, ApiError> {
    Ok(tokens(
        accounts.login(&request.email, &request.password).await?,
    ))
}

/// Exchange a refresh token for a new pair (the old one stops working).
#[utoipa::path(
    post,
    path = "/api/v1/auth/refresh",
    tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "A new pair", body = TokenResponse),
        (status = 401, description = "Unknown, expired or revoked token; a reused token also signs out its whole session", body = Problem, content_type = "application/problem+json")
    )
)]
async fn refresh(
    State(accounts): State<Accounts>,
    Json(request): Json<RefreshRequest>,
) -> Result<Response, ApiError> {
    Ok(tokens(accounts.refresh(&request.refresh_token).await?))
}

/// Log out: revoke the session the refresh token belongs to.
#[utoipa::path(
    post,
    path = "/api/v1/auth/logout",
    tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 204, description = "Signed out (also when the token was unknown or already revoked)"),
        (status = 422, description = "Missing field", body = Problem, content_type = "application/problem+json")
    )
)]
async fn logout(
    State(accounts): State<Accounts>,
    Json(request): Json<RefreshRequest>,
) -> Result<StatusCode, ApiError> {
    accounts.logout(&request.refresh_token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's account.
#[utoipa::path(
    get,
    path = "/api/v1/users/me",
    tag = "users",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The account", body = UserResponse),
        (status = 401, description = "Missing, expired or invalid access token", body = Problem, content_type = "application/problem+json")
    )
)]
async fn me(
    State(accounts): State<Accounts>,
    user: AuthenticatedUser,
) -> Result<Json<UserResponse>, ApiError> {
    Ok(Json(accounts.get(user.user_id).await?.into()))
}

/// Change the caller's display name or password.
#[utoipa::path(
    patch,
    path = "/api/v1/users/me",
    tag = "users",
    security(("bearer" = [])),
    request_body = UpdateProfileRequest,
    responses(
        (status = 200, description = "The updated account", body = UserResponse),
        (status = 401, description = "Missing, expired or invalid access token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, or a wrong current password", body = Problem, content_type = "application/problem+json")
    )
)]
async fn update_me(
    State(accounts): State<Accounts>,
    user: AuthenticatedUser,
    Json(request): Json<UpdateProfileRequest>,
) -> Result<Json<UserResponse>, ApiError> {
    let changes = ProfileChanges::try_from(request).map_err(ApiError::Validation)?;
    let updated = accounts.update_profile(user.user_id, &changes).await?;
    Ok(Json(updated.into()))
}

/// The public keys access tokens are signed with (RFC 7517).
#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    tag = "auth",
    responses((status = 200, description = "The JWK set", body = Object))
)]
async fn jwks(State(jwks): State<Arc<JwkSet>>) -> Response {
    let mut response = Json(jwks.as_ref().clone()).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}
