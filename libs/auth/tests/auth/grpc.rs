//! Service-to-service credentials through a real tonic server and client over 127.0.0.1.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use platform_auth::{
    CallerService, DEV_ONLY_INSECURE_SERVICE_SECRET, ServiceAuthInterceptor, ServiceClaims,
    ServiceCredentials, ServiceSecret, ServiceTokenInterceptor,
};
use platform_proto::user::v1::user_service_client::UserServiceClient;
use platform_proto::user::v1::user_service_server::{UserService, UserServiceServer};
use platform_proto::user::v1::{GetUserRequest, GetUserResponse, User};
use tokio::net::TcpListener;
use tonic::service::Interceptor;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Endpoint, Server};
use tonic::{Code, Request, Response, Status};

/// What the handler saw of one call.
#[derive(Clone, Debug, PartialEq, Eq)]
struct SeenCall {
    caller: String,
    authorization_visible: bool,
}

#[derive(Clone, Default)]
struct Users {
    seen: Arc<Mutex<Vec<SeenCall>>>,
}

#[tonic::async_trait]
impl UserService for Users {
    async fn get_user(
        &self,
        request: Request<GetUserRequest>,
    ) -> Result<Response<GetUserResponse>, Status> {
        let caller = CallerService::of(&request)?.name().to_owned();
        self.seen.lock().unwrap().push(SeenCall {
            caller: caller.clone(),
            authorization_visible: request.metadata().get("authorization").is_some(),
        });
        Ok(Response::new(GetUserResponse {
            user: Some(User {
                id: request.into_inner().user_id,
                email: "ada@example.com".to_owned(),
                display_name: format!("looked up for {caller}"),
                roles: vec!["customer".to_owned()],
                created_at: "2025-01-01T00:00:00Z".to_owned(),
            }),
        }))
    }
}

/// The user service's gRPC server, behind the credential check, on 127.0.0.1:0.
async fn spawn_user_service(users: Users) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let credentials = ServiceCredentials::dev_only_insecure("user");
    let service =
        UserServiceServer::with_interceptor(users, ServiceAuthInterceptor::new(&credentials));
    tokio::spawn(async move {
        Server::builder()
            .add_service(service)
            .serve_with_incoming(TcpIncoming::from(listener))
            .await
            .unwrap();
    });
    address
}

async fn channel(address: SocketAddr) -> Channel {
    Endpoint::from_shared(format!("http://{address}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

async fn get_user<I: Interceptor>(
    address: SocketAddr,
    interceptor: I,
) -> Result<GetUserResponse, Status> {
    let mut client = UserServiceClient::with_interceptor(channel(address).await, interceptor);
    client
        .get_user(GetUserRequest {
            user_id: "0195b4d2-8a3e-7c1f-9d2a-3b4c5d6e7f80".to_owned(),
        })
        .await
        .map(Response::into_inner)
}

/// An interceptor that attaches exactly `token` as the bearer credential.
fn bearer(token: String) -> impl Interceptor {
    move |mut request: Request<()>| {
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        Ok(request)
    }
}

/// An interceptor that attaches nothing.
fn no_credentials() -> impl Interceptor {
    |request: Request<()>| Ok::<_, Status>(request)
}

#[tokio::test]
async fn a_call_with_credentials_succeeds_and_the_handler_sees_the_caller() {
    platform_telemetry::init_for_tests();
    let users = Users::default();
    let address = spawn_user_service(users.clone()).await;
    let interceptor = ServiceTokenInterceptor::new(
        ServiceCredentials::dev_only_insecure("notification"),
        "user",
    );

    let response = get_user(address, interceptor).await.unwrap();

    assert_eq!(
        response.user.unwrap().display_name,
        "looked up for notification"
    );
    assert_eq!(
        *users.seen.lock().unwrap(),
        vec![SeenCall {
            caller: "notification".to_owned(),
            authorization_visible: false,
        }]
    );
}

#[tokio::test]
async fn many_calls_through_one_client_all_carry_a_valid_credential() {
    platform_telemetry::init_for_tests();
    let users = Users::default();
    let address = spawn_user_service(users.clone()).await;
    let interceptor =
        ServiceTokenInterceptor::new(ServiceCredentials::dev_only_insecure("order"), "user");
    let mut client = UserServiceClient::with_interceptor(channel(address).await, interceptor);

    for _ in 0..5 {
        client
            .get_user(GetUserRequest {
                user_id: "anyone".to_owned(),
            })
            .await
            .unwrap();
    }

    assert_eq!(users.seen.lock().unwrap().len(), 5);
}

#[tokio::test]
async fn a_call_without_credentials_is_unauthenticated() {
    platform_telemetry::init_for_tests();
    let users = Users::default();
    let address = spawn_user_service(users.clone()).await;

    let status = get_user(address, no_credentials()).await.unwrap_err();

    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(
        status.message().contains("missing service credential"),
        "{status:?}"
    );
    assert!(
        users.seen.lock().unwrap().is_empty(),
        "the handler never ran"
    );
}

#[tokio::test]
async fn a_call_with_a_garbled_authorization_is_unauthenticated() {
    platform_telemetry::init_for_tests();
    let address = spawn_user_service(Users::default()).await;

    let status = get_user(address, bearer("not-a-jwt".to_owned()))
        .await
        .unwrap_err();

    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(status.message(), "the service credential is malformed");
}

#[tokio::test]
async fn a_call_with_an_expired_credential_is_unauthenticated() {
    platform_telemetry::init_for_tests();
    let users = Users::default();
    let address = spawn_user_service(users.clone()).await;
    let mut claims = ServiceClaims::new("order", "user", Duration::from_secs(300));
    claims.iat -= chrono::TimeDelta::minutes(10);
    claims.exp -= chrono::TimeDelta::minutes(10);
    let token = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(DEV_ONLY_INSECURE_SERVICE_SECRET.as_bytes()),
    )
    .unwrap();

    let status = get_user(address, bearer(token)).await.unwrap_err();

    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(status.message(), "the service credential has expired");
    assert!(users.seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_call_with_a_credential_minted_for_another_service_is_unauthenticated() {
    platform_telemetry::init_for_tests();
    let users = Users::default();
    let address = spawn_user_service(users.clone()).await;
    let interceptor =
        ServiceTokenInterceptor::new(ServiceCredentials::dev_only_insecure("order"), "payment");

    let status = get_user(address, interceptor).await.unwrap_err();

    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(
        status.message(),
        "the service credential was issued for another service"
    );
    assert!(users.seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_call_signed_with_another_secret_is_unauthenticated() {
    platform_telemetry::init_for_tests();
    let users = Users::default();
    let address = spawn_user_service(users.clone()).await;
    let secret = ServiceSecret::new("a-completely-different-secret-of-enough-length").unwrap();
    let interceptor =
        ServiceTokenInterceptor::new(ServiceCredentials::new("order", secret), "user");

    let status = get_user(address, interceptor).await.unwrap_err();

    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(
        status.message(),
        "the service credential's signature is invalid"
    );
    assert!(users.seen.lock().unwrap().is_empty());
}
