//! Authentication and authorisation for the platform's services.
//!
//! Two kinds of caller, two kinds of credential:
//!
//! - **Users** carry a short-lived access token issued by the user service: an asymmetric JWT
//!   (EdDSA/Ed25519, or RS256) whose header names its key (`kid`). A [`JwksVerifier`] checks it
//!   against the keys the user service publishes as a JWKS, fetched and cached by `kid`. In
//!   axum, [`AuthenticatedUser`] (and [`AdminUser`]) are extractors; [`TokenSigner`] is the
//!   issuing side.
//! - **Services** call each other over gRPC with a short-lived HS256 JWT minted from a shared
//!   secret ([`ServiceCredentials`]): [`ServiceTokenInterceptor`] attaches it on the client,
//!   [`ServiceAuthInterceptor`] checks it on the server and hands the handler the
//!   [`CallerService`].
//!
//! # Protecting HTTP routes
//!
//! ```no_run
//! use axum::{Router, extract::FromRef, routing::get};
//! use platform_auth::{AdminUser, AuthenticatedUser, JwksVerifier, JwksVerifierConfig, Role};
//! use platform_http::ApiError;
//!
//! #[derive(Clone, FromRef)]
//! struct AppState {
//!     verifier: JwksVerifier,
//! }
//!
//! async fn me(user: AuthenticatedUser) -> String {
//!     user.email
//! }
//!
//! async fn restock(admin: AdminUser) -> String {
//!     format!("restocked by {}", admin.user_id)
//! }
//!
//! async fn report(user: AuthenticatedUser) -> Result<String, ApiError> {
//!     user.require_role(Role::Admin)?; // 403 problem+json otherwise
//!     Ok("report".to_owned())
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = JwksVerifierConfig::new(
//!     "http://user:8081/.well-known/jwks.json",
//!     "platform-user",
//!     "platform-api",
//! );
//! let verifier = JwksVerifier::new(config)?;
//! let _refresher = verifier.spawn_refresh(std::time::Duration::from_secs(300));
//! let app: Router = Router::new()
//!     .route("/me", get(me))
//!     .route("/restock", get(restock))
//!     .route("/report", get(report))
//!     .with_state(AppState { verifier });
//! # Ok(())
//! # }
//! ```
//!
//! # Protecting internal gRPC
//!
//! Wrap each generated server, so that services such as `grpc.health.v1` stay open to probes:
//!
//! ```no_run
//! use platform_auth::{CallerService, ServiceAuthInterceptor, ServiceCredentials, ServiceTokenInterceptor};
//! use platform_proto::user::v1::user_service_client::UserServiceClient;
//! use platform_proto::user::v1::user_service_server::{UserService, UserServiceServer};
//! use platform_proto::user::v1::{GetUserRequest, GetUserResponse};
//! use tonic::{Request, Response, Status};
//!
//! struct Users;
//!
//! #[tonic::async_trait]
//! impl UserService for Users {
//!     async fn get_user(
//!         &self,
//!         request: Request<GetUserRequest>,
//!     ) -> Result<Response<GetUserResponse>, Status> {
//!         let caller = CallerService::of(&request)?;
//!         tracing::info!(caller = caller.name(), "GetUser");
//!         Err(Status::not_found("no such user"))
//!     }
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // Server (the user service). Production configures its secret: ServiceSecret::new(..)?.
//! let credentials = ServiceCredentials::dev_only_insecure("user");
//! let server = tonic::transport::Server::builder().add_service(
//!     UserServiceServer::with_interceptor(Users, ServiceAuthInterceptor::new(&credentials)),
//! );
//!
//! // Client (the notification service calling the user service).
//! let credentials = ServiceCredentials::dev_only_insecure("notification");
//! let channel = tonic::transport::Endpoint::from_static("http://user:9081").connect_lazy();
//! let mut users = UserServiceClient::with_interceptor(
//!     channel,
//!     ServiceTokenInterceptor::new(credentials, "user"),
//! );
//! # let _ = (server, &mut users);
//! # Ok(())
//! # }
//! ```

mod claims;
mod error;
mod extract;
mod jwks;
mod service;
mod signer;

pub use claims::{AuthenticatedUser, Claims, Role, UnknownRole};
pub use error::{AuthError, JwksError, KeyError};
pub use extract::{AdminUser, bearer_token};
pub use jsonwebtoken::jwk::{Jwk, JwkSet};
pub use jwks::{JwksVerifier, JwksVerifierConfig};
pub use service::{
    CallerService, DEV_ONLY_INSECURE_SERVICE_SECRET, MIN_SERVICE_SECRET_LEN,
    ServiceAuthInterceptor, ServiceClaims, ServiceCredentials, ServiceSecret,
    ServiceTokenInterceptor,
};
pub use signer::TokenSigner;
