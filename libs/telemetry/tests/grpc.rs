//! The gRPC layers on a real tonic server and client: one trace across the call, and metrics by
//! method and status code.

use std::time::Duration;

use opentelemetry::trace::{SpanKind, TraceContextExt as _};
use platform_proto::user::v1::user_service_client::UserServiceClient;
use platform_proto::user::v1::user_service_server::{UserService, UserServiceServer};
use platform_proto::user::v1::{GetUserRequest, GetUserResponse, User};
use platform_telemetry::grpc::{GrpcClientLayer, GrpcServerLayer};
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};
use tower::ServiceBuilder;
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

const METHOD: &str = "/platform.user.v1.UserService/GetUser";
/// The spans' name: OpenTelemetry's `package.Service/Method`.
const SPAN_NAME: &str = "platform.user.v1.UserService/GetUser";

struct Users;

#[tonic::async_trait]
impl UserService for Users {
    async fn get_user(
        &self,
        request: Request<GetUserRequest>,
    ) -> Result<Response<GetUserResponse>, Status> {
        let user_id = request.into_inner().user_id;
        if user_id == "missing" {
            return Err(Status::not_found("no such user"));
        }
        Ok(Response::new(GetUserResponse {
            user: Some(User {
                id: user_id,
                ..User::default()
            }),
        }))
    }
}

async fn client()
-> UserServiceClient<platform_telemetry::grpc::GrpcClient<tonic::transport::Channel>> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .layer(GrpcServerLayer)
            .add_service(UserServiceServer::new(Users))
            .serve_with_incoming(TcpIncoming::from(listener)),
    );
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    UserServiceClient::new(
        ServiceBuilder::new()
            .layer(GrpcClientLayer)
            .service(channel),
    )
}

fn get(user_id: &str) -> Request<GetUserRequest> {
    Request::new(GetUserRequest {
        user_id: user_id.to_owned(),
    })
}

#[tokio::test]
async fn a_call_is_one_trace_from_the_caller_through_the_client_to_the_server() {
    platform_telemetry::init_for_tests();
    let mut client = client().await;
    let caller = tracing::info_span!("place_order");
    let caller_context = caller.context().span().span_context().clone();
    client
        .get_user(get("u-1"))
        .instrument(caller.clone())
        .await
        .unwrap();
    drop(caller);

    let trace_id = caller_context.trace_id();
    let mut spans = Vec::new();
    for _ in 0..100 {
        spans = platform_telemetry::testing::finished_spans()
            .into_iter()
            .filter(|span| span.span_context.trace_id() == trace_id)
            .collect();
        if spans.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let find = |kind: SpanKind| {
        spans
            .iter()
            .find(|span| span.span_kind == kind && span.name == SPAN_NAME)
            .unwrap_or_else(|| panic!("no {kind:?} span for {SPAN_NAME} in {spans:#?}"))
    };
    let client_span = find(SpanKind::Client);
    let server_span = find(SpanKind::Server);
    // OpenTelemetry's RPC conventions: the method's parts as attributes.
    for span in [client_span, server_span] {
        let attribute = |key: &str| {
            span.attributes
                .iter()
                .find(|kv| kv.key.as_str() == key)
                .map(|kv| kv.value.to_string())
        };
        assert_eq!(attribute("rpc.system").as_deref(), Some("grpc"));
        assert_eq!(
            attribute("rpc.service").as_deref(),
            Some("platform.user.v1.UserService")
        );
        assert_eq!(attribute("rpc.method").as_deref(), Some("GetUser"));
    }
    assert!(
        server_span
            .attributes
            .iter()
            .any(|kv| kv.key.as_str() == "rpc.grpc.status_code"
                && kv.value == opentelemetry::Value::I64(0)),
        "the server span records the status code as a number: {server_span:#?}"
    );
    assert_eq!(client_span.parent_span_id, caller_context.span_id());
    assert_eq!(
        server_span.parent_span_id,
        client_span.span_context.span_id(),
        "the server span is the client span's child, across the wire"
    );
}

#[tokio::test]
async fn calls_are_counted_by_method_and_status_code() {
    platform_telemetry::init_for_tests();
    let mut client = client().await;
    let before = count_line(METHOD, "5");
    client.get_user(get("u-1")).await.unwrap();
    let status = client.get_user(get("missing")).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound);
    client.get_user(get("missing")).await.unwrap_err();

    let metrics = platform_telemetry::metrics::render();
    assert!(
        count_line(METHOD, "0") >= 1,
        "successful calls are counted with code 0:\n{metrics}"
    );
    assert_eq!(
        count_line(METHOD, "5"),
        before + 2,
        "NOT_FOUND calls are counted with code 5:\n{metrics}"
    );
    assert!(metrics.contains("grpc_server_request_duration_seconds_bucket"));
}

/// The value of `grpc_server_requests_total` for a method and code (0 if absent).
fn count_line(method: &str, code: &str) -> u64 {
    platform_telemetry::metrics::render()
        .lines()
        .find(|line| {
            line.starts_with("grpc_server_requests_total{")
                && line.contains(&format!("method=\"{method}\""))
                && line.contains(&format!("code=\"{code}\""))
        })
        .and_then(|line| line.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0)
}
