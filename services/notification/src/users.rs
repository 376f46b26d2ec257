//! Recipients' addresses, from the user service over gRPC (through the kit's client wrapper:
//! deadline, service credential, breaker).

use platform_kit::downstream::{Downstream, GrpcChannel};
use platform_proto::user::v1::GetUserRequest;
use platform_proto::user::v1::user_service_client::UserServiceClient;
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

type Client = UserServiceClient<GrpcChannel>;

/// The user service, as this service sees it.
#[derive(Clone, Debug)]
pub struct UserDirectory(pub Downstream<Client>);

impl UserDirectory {
    /// The user's address and name.
    pub async fn recipient(&self, user_id: Uuid) -> Result<Recipient, LookupError> {
        let request = GetUserRequest {
            user_id: user_id.to_string(),
        };
        match self
            .0
            .call(request, |mut c, r| async move { c.get_user(r).await })
            .await
        {
            Ok(response) => {
                let user = response
                    .user
                    .ok_or_else(|| LookupError::Unavailable("an empty answer".to_owned()))?;
                Ok(Recipient {
                    email: user.email,
                    display_name: user.display_name,
                })
            }
            Err(error) if error.refused() == Some(tonic::Code::NotFound) => {
                Err(LookupError::NotFound(user_id))
            }
            Err(error) => Err(LookupError::Unavailable(error.to_string())),
        }
    }
}
