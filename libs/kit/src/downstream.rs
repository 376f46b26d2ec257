//! Calling another service over gRPC, one way for every caller: a deadline on each call, this
//! service's credential and the trace context on the wire, a circuit breaker per downstream,
//! and the answer sorted into what a caller acts on ([`CallError`]).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use platform_auth::{ServiceCredentials, ServiceTokenInterceptor};
use platform_config::DownstreamSettings;
use platform_registry::ServiceEntry;
use platform_resilience::{BreakerConfig, CircuitBreaker};
use platform_telemetry::grpc::{GrpcClient, GrpcClientLayer};
use tonic::codegen::InterceptedService;
use tonic::transport::Channel;
use tonic::{Code, Status};

/// The channel a generated client is built on: traced, carrying the service credential.
pub type GrpcChannel = InterceptedService<GrpcClient<Channel>, ServiceTokenInterceptor>;

/// Why a call did not produce an answer the caller can act on.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The downstream is unreachable, overloaded or failing: retry later.
    #[error("{0}")]
    Unavailable(String),
    /// No answer within the deadline: the call may or may not have taken effect.
    #[error("no answer within {0:?}")]
    TimedOut(Duration),
    /// The breaker is open: no call was made; retry after the delay.
    #[error("circuit open; retry in {0:?}")]
    BreakerOpen(Duration),
    /// The downstream answered with a refusal the caller must act on (not found, failed
    /// precondition, invalid argument...).
    #[error("{}: {}", .0.code(), .0.message())]
    Refused(Status),
}

impl CallError {
    /// The refusal's code, if the downstream refused.
    pub fn refused(&self) -> Option<Code> {
        match self {
            Self::Refused(status) => Some(status.code()),
            _ => None,
        }
    }
}

/// A downstream service: its generated client `C`, its deadline, its breaker. Cheap to clone.
pub struct Downstream<C> {
    inner: Arc<Inner<C>>,
}

struct Inner<C> {
    client: C,
    url: String,
    timeout: Duration,
    breaker: CircuitBreaker,
}

impl<C> Clone for Downstream<C> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<C> std::fmt::Debug for Downstream<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Downstream")
            .field("url", &self.inner.url)
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

impl<C> Downstream<C> {
    /// A client of `callee`, connecting lazily (this service starts whether or not the callee
    /// is up): the address from `settings.url`, else `http://127.0.0.1:{grpc_port}` of the
    /// registry; the deadline from `settings.timeout_ms`, else `timeout`.
    pub fn connect(
        callee: &ServiceEntry,
        settings: &DownstreamSettings,
        timeout: Duration,
        credentials: &ServiceCredentials,
        client: impl FnOnce(GrpcChannel) -> C,
    ) -> anyhow::Result<Self> {
        let url = match &settings.url {
            Some(url) => url.clone(),
            None => {
                let port = callee
                    .grpc_port
                    .ok_or_else(|| anyhow::anyhow!("{} has no gRPC API to call", callee.binary))?;
                DownstreamSettings::local_url(port)
            }
        };
        let timeout = settings.timeout_ms.map_or(timeout, Duration::from_millis);
        let channel = Channel::from_shared(url.clone())
            .map_err(|error| anyhow::anyhow!("`{url}` is not a valid URL: {error}"))?
            .connect_timeout(timeout)
            .connect_lazy();
        let channel = tower::ServiceBuilder::new()
            .layer(GrpcClientLayer)
            .service(channel);
        let breaker = BreakerConfig {
            failure_threshold: settings
                .breaker_threshold
                .unwrap_or(DownstreamSettings::DEFAULT_BREAKER_THRESHOLD),
            cool_down: Duration::from_millis(
                settings
                    .breaker_cool_down_ms
                    .unwrap_or(DownstreamSettings::DEFAULT_BREAKER_COOL_DOWN_MS),
            ),
        };
        Ok(Self {
            inner: Arc::new(Inner {
                client: client(InterceptedService::new(
                    channel,
                    ServiceTokenInterceptor::new(credentials.clone(), callee.binary.clone()),
                )),
                url,
                timeout,
                breaker: CircuitBreaker::new(&callee.binary, breaker),
            }),
        })
    }

    /// The deadline of each call.
    pub fn timeout(&self) -> Duration {
        self.inner.timeout
    }

    /// The address it calls.
    pub fn url(&self) -> &str {
        &self.inner.url
    }
}

impl<C: Clone> Downstream<C> {
    /// Calls `method` with `message` and the deadline, through the breaker, and sorts the
    /// outcome: `|mut client, request| async move { client.get_user(request).await }`.
    pub async fn call<M, T, F, Fut>(&self, message: M, method: F) -> Result<T, CallError>
    where
        F: FnOnce(C, tonic::Request<M>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let inner = &self.inner;
        inner
            .breaker
            .acquire()
            .map_err(|rejected| CallError::BreakerOpen(rejected.retry_after))?;
        let mut request = tonic::Request::new(message);
        request.set_timeout(inner.timeout);
        match method(inner.client.clone(), request).await {
            Ok(response) => {
                inner.breaker.record_success();
                Ok(response.into_inner())
            }
            Err(status) => Err(self.classify(status)),
        }
    }

    fn classify(&self, status: Status) -> CallError {
        let breaker = &self.inner.breaker;
        match status.code() {
            // Our own deadline passed (tonic reports it as cancelled) or theirs did.
            Code::Cancelled | Code::DeadlineExceeded => {
                breaker.record_failure();
                CallError::TimedOut(self.inner.timeout)
            }
            Code::Unavailable | Code::Unknown | Code::Internal | Code::ResourceExhausted => {
                breaker.record_failure();
                CallError::Unavailable(format!("{}: {}", status.code(), status.message()))
            }
            // "In progress, retry": the downstream is healthy.
            Code::Aborted => {
                breaker.record_success();
                CallError::Unavailable(status.message().to_owned())
            }
            _ => {
                breaker.record_success();
                CallError::Refused(status)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connect(callee: &str, settings: &DownstreamSettings) -> anyhow::Result<Downstream<()>> {
        let credentials = ServiceCredentials::dev_only_insecure("order-service");
        let callee = platform_registry::service(callee);
        Downstream::connect(
            callee,
            settings,
            Duration::from_secs(2),
            &credentials,
            |_| (),
        )
    }

    #[tokio::test]
    async fn a_downstream_set_in_part_keeps_the_other_defaults() {
        let defaults = connect("inventory", &DownstreamSettings::default()).unwrap();
        assert_eq!(
            defaults.url(),
            "http://127.0.0.1:9084",
            "the registry's gRPC port"
        );
        assert_eq!(
            defaults.timeout(),
            Duration::from_secs(2),
            "the caller's default"
        );

        let set = DownstreamSettings {
            url: Some("http://inventory:9084".to_owned()),
            timeout_ms: Some(500),
            ..DownstreamSettings::default()
        };
        let configured = connect("inventory", &set).unwrap();
        assert_eq!(configured.url(), "http://inventory:9084");
        assert_eq!(configured.timeout(), Duration::from_millis(500));
    }

    #[tokio::test]
    async fn a_service_without_grpc_or_a_bad_url_is_refused() {
        let error = connect("order", &DownstreamSettings::default()).unwrap_err();
        assert_eq!(error.to_string(), "order-service has no gRPC API to call");
        let bad = DownstreamSettings {
            url: Some("not a url".to_owned()),
            ..DownstreamSettings::default()
        };
        let error = connect("inventory", &bad).unwrap_err().to_string();
        assert!(
            error.starts_with("`not a url` is not a valid URL"),
            "{error}"
        );
    }
}
