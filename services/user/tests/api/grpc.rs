//! `platform.user.v1.UserService/GetUser`, behind the service credential.

use std::time::Duration;

use platform_auth::{ServiceCredentials, ServiceSecret, ServiceTokenInterceptor};
use platform_proto::user::v1::GetUserRequest;
use platform_proto::user::v1::user_service_client::UserServiceClient;
use tonic::Code;
use tonic::transport::Channel;

use crate::helpers::{SERVICE_SECRET, TestApp, spawn_app};

async fn channel(app: &TestApp) -> Channel {
    Channel::from_shared(app.grpc_address.clone())
        .unwrap()
        .connect()
        .await
        .unwrap()
}

fn credentials(secret: &str) -> ServiceCredentials {
    ServiceCredentials::new("notification-service", ServiceSecret::new(secret).unwrap())
}

async fn get_user(
    app: &TestApp,
    interceptor: ServiceTokenInterceptor,
    user_id: &str,
) -> Result<platform_proto::user::v1::User, tonic::Status> {
    let mut client = UserServiceClient::with_interceptor(channel(app).await, interceptor);
    client
        .get_user(GetUserRequest {
            user_id: user_id.to_owned(),
        })
        .await
        .map(|response| response.into_inner().user.unwrap())
}

async fn registered_id(app: &TestApp) -> (String, String) {
    let email = app.registered().await;
    let tokens = app.tokens(&email).await;
    let user = app.verifier().verify(&tokens.access_token).await.unwrap();
    (user.user_id.to_string(), email)
}

#[tokio::test]
async fn another_service_with_a_credential_can_look_a_user_up() {
    let app = spawn_app().await;
    let (id, email) = registered_id(&app).await;
    let interceptor = ServiceTokenInterceptor::new(credentials(SERVICE_SECRET), "user-service");

    let user = get_user(&app, interceptor, &id).await.unwrap();

    assert_eq!(user.id, id);
    assert_eq!(user.email, email);
    assert_eq!(user.roles, ["customer"]);
    assert!(chrono::DateTime::parse_from_rfc3339(&user.created_at).is_ok());
}

#[tokio::test]
async fn calls_without_a_valid_credential_are_unauthenticated() {
    let app = spawn_app().await;
    let (id, _) = registered_id(&app).await;

    let mut anonymous = UserServiceClient::new(channel(&app).await);
    let status = anonymous
        .get_user(GetUserRequest {
            user_id: id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);

    let for_another_service =
        ServiceTokenInterceptor::new(credentials(SERVICE_SECRET), "payment-service");
    let status = get_user(&app, for_another_service, &id).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");

    let wrong_secret = ServiceTokenInterceptor::new(
        credentials("another-secret-that-is-at-least-32-bytes"),
        "user-service",
    );
    let status = get_user(&app, wrong_secret, &id).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn unknown_and_malformed_ids_are_not_found_and_invalid() {
    let app = spawn_app().await;
    let interceptor = ServiceTokenInterceptor::new(credentials(SERVICE_SECRET), "user-service");

    let missing = get_user(&app, interceptor.clone(), &uuid::Uuid::now_v7().to_string())
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    let malformed = get_user(&app, interceptor, "not-a-uuid").await.unwrap_err();
    assert_eq!(malformed.code(), Code::InvalidArgument);
    assert!(malformed.message().contains("not-a-uuid"));
}

#[tokio::test]
async fn grpc_health_reports_the_service_serving_without_a_credential() {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;

    let app = spawn_app().await;
    let health = HealthClient::new(channel(&app).await);
    let status = platform_testkit::eventually(Duration::from_secs(10), "SERVING", || {
        let mut health = health.clone();
        async move {
            let response = health
                .check(HealthCheckRequest {
                    service: "platform.user.v1.UserService".to_owned(),
                })
                .await
                .ok()?;
            let status = response.into_inner().status();
            (status == ServingStatus::Serving).then_some(status)
        }
    })
    .await
    .unwrap();
    assert_eq!(status, ServingStatus::Serving);
}
