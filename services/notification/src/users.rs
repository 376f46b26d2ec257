//! Recipients' addresses, from the user service over gRPC.

use std::time::Duration;

use platform_auth::{ServiceCredentials, ServiceTokenInterceptor};
use platform_proto::user::v1::GetUserRequest;
use platform_proto::user::v1::user_service_client::UserServiceClient;
use platform_telemetry::grpc::{GrpcClient, GrpcClientLayer};
use tonic::codegen::InterceptedService;
use tonic::transport::Channel;
use tower::ServiceBuilder;
use uuid::Uuid;

/// What a notification needs to know about a user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recipient {
    /// Their address.
    pub email: String,
    /// The name to greet them with.
    pub display_name: String,
}

/// Why a look-up failed.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// The user does not exist: retrying cannot help.
    #[error("user {0} does not exist")]
    NotFound(Uuid),
    /// The user service did not answer (or not in time): worth retrying.
    #[error("the user service is unavailable: {0}")]
    Unavailable(String),
}

type Client = UserServiceClient<InterceptedService<GrpcClient<Channel>, ServiceTokenInterceptor>>;

/// The user service, as this service sees it.
#[derive(Clone)]
pub struct UserDirectory {
    client: Client,
    timeout: Duration,
}

impl UserDirectory {
    /// A directory over the user service at `url`; connects lazily, so this service starts
    /// whether or not the user service is up.
    pub fn new(
        url: &str,
        credentials: ServiceCredentials,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        let channel = Channel::from_shared(url.to_owned())
            .map_err(|error| anyhow::anyhow!("the user service URL `{url}` is not valid: {error}"))?
            .connect_timeout(timeout)
            .connect_lazy();
        let channel = ServiceBuilder::new()
            .layer(GrpcClientLayer)
            .service(channel);
        Ok(Self {
            client: UserServiceClient::with_interceptor(
                channel,
                ServiceTokenInterceptor::new(credentials, "user-service"),
            ),
            timeout,
        })
    }

    /// The user's address and name.
    pub async fn recipient(&self, user_id: Uuid) -> Result<Recipient, LookupError> {
        let mut request = tonic::Request::new(GetUserRequest {
            user_id: user_id.to_string(),
        });
        request.set_timeout(self.timeout);
        match self.client.clone().get_user(request).await {
            Ok(response) => {
                let user = response
                    .into_inner()
                    .user
                    .ok_or_else(|| LookupError::Unavailable("an empty answer".to_owned()))?;
                Ok(Recipient {
                    email: user.email,
                    display_name: user.display_name,
                })
            }
            Err(status) if status.code() == tonic::Code::NotFound => {
                Err(LookupError::NotFound(user_id))
            }
            Err(status) => Err(LookupError::Unavailable(format!(
                "{:?}: {}",
                status.code(),
                status.message()
            ))),
        }
    }
}
