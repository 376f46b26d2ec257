//! The internal gRPC API: account look-ups for other services.

use platform_auth::CallerService;
use platform_proto::user::v1::user_service_server::UserService;
use platform_proto::user::v1::{GetUserRequest, GetUserResponse, User};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::accounts::Accounts;

/// `platform.user.v1.UserService`, served behind the service-credential interceptor.
pub struct UserGrpc {
    accounts: Accounts,
}

impl UserGrpc {
    /// The service over `accounts`.
    pub fn new(accounts: Accounts) -> Self {
        Self { accounts }
    }
}

#[tonic::async_trait]
impl UserService for UserGrpc {
    #[tracing::instrument(skip_all, fields(caller, user_id))]
    async fn get_user(
        &self,
        request: Request<GetUserRequest>,
    ) -> Result<Response<GetUserResponse>, Status> {
        let caller = CallerService::of(&request)?.name().to_owned();
        tracing::Span::current().record("caller", caller.as_str());
        let raw = request.into_inner().user_id;
        tracing::Span::current().record("user_id", raw.as_str());
        let id = Uuid::parse_str(&raw)
            .map_err(|_| Status::invalid_argument(format!("user_id `{raw}` is not a UUID")))?;
        let user = self.accounts.get(id).await?;
        Ok(Response::new(GetUserResponse {
            user: Some(User {
                id: user.id.to_string(),
                email: user.email,
                display_name: user.display_name,
                roles: user
                    .roles
                    .iter()
                    .map(|role| role.as_str().to_owned())
                    .collect(),
                created_at: user.created_at.to_rfc3339(),
            }),
        }))
    }
}
