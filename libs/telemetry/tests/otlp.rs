//! With `OTEL_EXPORTER_OTLP_ENDPOINT` set, spans reach an OTLP/gRPC collector (a real tonic
//! server implementing the collector's trace service), tagged with the service name.
//!
//! Its own test binary: `init` installs the process-wide subscriber.

use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use platform_telemetry::{LogFormat, TelemetryConfig};
use tokio::sync::mpsc;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

struct Collector(mpsc::UnboundedSender<ExportTraceServiceRequest>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let _ = self.0.send(request.into_inner());
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_are_exported_to_the_configured_otlp_collector() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let (exports, mut received) = mpsc::unbounded_channel();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(Collector(exports)))
            .serve_with_incoming(TcpIncoming::from(listener)),
    );

    let guard = platform_telemetry::init(&TelemetryConfig {
        service_name: "otlp-test-service".to_owned(),
        log_format: LogFormat::Json,
        filter: "info".to_owned(),
        otlp_endpoint: Some(endpoint),
    })
    .unwrap();
    tracing::info_span!("reserve_stock", order_id = "o-1").in_scope(|| {
        tracing::info!("reserving");
    });
    // Dropping the guard flushes the batch exporter.
    tokio::task::spawn_blocking(move || drop(guard))
        .await
        .unwrap();

    let request = tokio::time::timeout(Duration::from_secs(10), received.recv())
        .await
        .expect("the collector received an export")
        .unwrap();
    let resource_spans = &request.resource_spans[0];
    let service_name = resource_spans
        .resource
        .as_ref()
        .unwrap()
        .attributes
        .iter()
        .find(|attribute| attribute.key == "service.name")
        .and_then(|attribute| attribute.value.as_ref()?.value.as_ref())
        .cloned();
    assert_eq!(
        service_name,
        Some(Value::StringValue("otlp-test-service".to_owned()))
    );
    let names: Vec<&str> = resource_spans
        .scope_spans
        .iter()
        .flat_map(|scope| &scope.spans)
        .map(|span| span.name.as_str())
        .collect();
    assert!(
        names.contains(&"reserve_stock"),
        "exported spans: {names:?}"
    );
}
