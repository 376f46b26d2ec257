//! Telemetry for every binary of the platform, in one call.
//!
//! - [`init`] sets up `tracing` (pretty logs on a terminal, JSON otherwise), an OpenTelemetry
//!   tracer that exports over OTLP/gRPC when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, and the
//!   Prometheus recorder behind `/metrics`.
//! - [`propagation`] carries W3C `traceparent` across HTTP, gRPC and NATS.
//! - [`metrics`] renders `/metrics` and records HTTP request counts and durations.
//! - [`grpc`] holds tower layers that do the same for tonic servers and clients.
//!
//! Spans always go through the OpenTelemetry layer, even with no exporter configured, so trace
//! context is real and propagates between services whether or not anything collects it.

use std::io::IsTerminal;
use std::sync::OnceLock;
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

pub mod grpc;
pub mod metrics;
pub mod propagation;
#[cfg(feature = "testing")]
pub mod testing;

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable, coloured: for a terminal.
    Pretty,
    /// One JSON object per line: for containers and log shippers.
    Json,
}

/// What [`init`] needs to know; [`TelemetryConfig::from_env`] reads it the usual way.
#[derive(Clone, Debug)]
pub struct TelemetryConfig {
    /// The `service.name` resource attribute and the name in every log line.
    pub service_name: String,
    /// Log line format.
    pub log_format: LogFormat,
    /// `tracing` filter directives, e.g. `info,sqlx=warn`.
    pub filter: String,
    /// OTLP/gRPC collector endpoint; `None` keeps traces in-process (still propagated).
    pub otlp_endpoint: Option<String>,
}

impl TelemetryConfig {
    /// Reads `RUST_LOG` (default `info`), `LOG_FORMAT` (`json` or `pretty`; default: pretty on a
    /// terminal, JSON otherwise) and `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn from_env(service_name: &str) -> Self {
        let log_format = match std::env::var("LOG_FORMAT").ok().as_deref() {
            Some("json") => LogFormat::Json,
            Some("pretty") => LogFormat::Pretty,
            _ if std::io::stdout().is_terminal() => LogFormat::Pretty,
            _ => LogFormat::Json,
        };
        Self {
            service_name: service_name.to_owned(),
            log_format,
            filter: std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_owned()),
            otlp_endpoint: std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
                .ok()
                .filter(|endpoint| !endpoint.trim().is_empty()),
        }
    }
}

impl TelemetryConfig {
    /// This configuration with what a service's `{PREFIX}__TELEMETRY__...` section sets
    /// (filter, log format, OTLP endpoint) taking precedence over the standard variables.
    #[must_use]
    pub fn overridden_by(mut self, settings: &platform_config::TelemetrySettings) -> Self {
        if let Some(filter) = &settings.filter {
            self.filter.clone_from(filter);
        }
        match settings.log_format.as_deref() {
            Some("json") => self.log_format = LogFormat::Json,
            Some("pretty") => self.log_format = LogFormat::Pretty,
            _ => {}
        }
        if let Some(endpoint) = settings
            .otlp_endpoint
            .as_ref()
            .filter(|endpoint| !endpoint.trim().is_empty())
        {
            self.otlp_endpoint = Some(endpoint.clone());
        }
        self
    }
}

/// Keeps the tracer provider alive; dropping it flushes and shuts down trace export.
#[must_use = "dropping the guard shuts trace export down"]
pub struct TelemetryGuard {
    provider: SdkTracerProvider,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Err(error) = self.provider.shutdown_with_timeout(Duration::from_secs(5)) {
            eprintln!("telemetry: flushing traces on shutdown failed: {error}");
        }
    }
}

/// Errors [`init`] reports instead of starting half-instrumented.
#[derive(Debug)]
pub struct InitError(String);

impl std::fmt::Display for InitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InitError {}

/// Sets up logging, tracing, trace export and the metrics recorder for this process.
///
/// Call it once, early in `main`, inside the Tokio runtime (the OTLP exporter needs one).
pub fn init(config: &TelemetryConfig) -> Result<TelemetryGuard, InitError> {
    let filter = EnvFilter::try_new(&config.filter).map_err(|error| {
        InitError(format!(
            "RUST_LOG `{}` is not a valid filter: {error}",
            config.filter
        ))
    })?;

    let mut provider = SdkTracerProvider::builder().with_resource(
        Resource::builder()
            .with_service_name(config.service_name.clone())
            .build(),
    );
    if let Some(endpoint) = &config.otlp_endpoint {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint.clone())
            .build()
            .map_err(|error| {
                InitError(format!("OTEL_EXPORTER_OTLP_ENDPOINT `{endpoint}`: {error}"))
            })?;
        provider = provider.with_batch_exporter(exporter);
    }
    let provider = provider.build();
    let tracer = provider.tracer(config.service_name.clone());

    let fmt = match config.log_format {
        LogFormat::Pretty => tracing_subscriber::fmt::layer().with_target(true).boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .boxed(),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(tracing_opentelemetry::layer().with_tracer(tracer))
        .try_init()
        .map_err(|error| {
            InitError(format!(
                "a tracing subscriber is already installed: {error}"
            ))
        })?;

    metrics::install_recorder();
    tracing::info!(
        service = %config.service_name,
        otlp = config.otlp_endpoint.as_deref().unwrap_or("off"),
        "telemetry initialised"
    );
    Ok(TelemetryGuard { provider })
}

/// Telemetry for test binaries: once per process, silent unless `TEST_LOG` is set (its value is
/// the filter, `1` meaning `info`). Spans are recorded by OpenTelemetry either way, so tests see
/// real trace context.
pub fn init_for_tests() {
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        let provider = test_tracer_provider();
        let tracer = provider.tracer("test");
        // The provider must outlive every span; tests never shut it down.
        std::mem::forget(provider);

        let fmt = std::env::var("TEST_LOG").ok().map(|value| {
            let directives = if value == "1" || value.is_empty() {
                "info"
            } else {
                value.as_str()
            };
            tracing_subscriber::fmt::layer()
                .with_test_writer()
                .with_filter(EnvFilter::new(directives))
        });
        let otel = tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_filter(EnvFilter::new("info"));
        let _ = tracing_subscriber::registry()
            .with(fmt)
            .with(otel)
            .try_init();
        metrics::install_recorder();
    });
}

#[cfg(feature = "testing")]
fn test_tracer_provider() -> SdkTracerProvider {
    SdkTracerProvider::builder()
        .with_simple_exporter(testing::exporter().clone())
        .build()
}

#[cfg(not(feature = "testing"))]
fn test_tracer_provider() -> SdkTracerProvider {
    SdkTracerProvider::builder().build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_services_telemetry_section_overrides_the_standard_variables() {
        let settings = platform_config::TelemetrySettings {
            filter: Some("debug".to_owned()),
            log_format: Some("json".to_owned()),
            otlp_endpoint: Some("http://collector:4317".to_owned()),
        };
        let config = TelemetryConfig {
            service_name: "order-service".to_owned(),
            log_format: LogFormat::Pretty,
            filter: "info".to_owned(),
            otlp_endpoint: None,
        }
        .overridden_by(&settings);
        assert_eq!(config.service_name, "order-service");
        assert_eq!(config.filter, "debug");
        assert_eq!(config.log_format, LogFormat::Json);
        assert_eq!(
            config.otlp_endpoint.as_deref(),
            Some("http://collector:4317")
        );

        let unset = config
            .clone()
            .overridden_by(&platform_config::TelemetrySettings::default());
        assert_eq!(
            unset.filter, "debug",
            "unset keys keep what the variables said"
        );
    }
}
