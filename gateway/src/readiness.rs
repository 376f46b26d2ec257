//! `/health/ready`: the gateway is ready when it holds the user service's signing keys (it
//! cannot authenticate anyone without them) and every upstream it routes to is ready, each
//! asked its own `/health/ready` concurrently under a short timeout. The report names each
//! upstream with its latency, and for one that is down, why (its own unready checks, when it
//! says).

use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, Request, StatusCode, Uri};
use http_body_util::BodyExt as _;
use platform_auth::JwksVerifier;
use platform_health::{Health, ReadinessReport, check_fn};

use crate::body::UpstreamBody;
use crate::proxy::{HttpClient, Upstream};

/// Readiness made of the signing keys' check and one check per upstream.
pub fn upstream_health(
    verifier: &JwksVerifier,
    upstreams: &[Arc<Upstream>],
    client: &HttpClient,
    timeout: Duration,
) -> Health {
    let verifier = verifier.clone();
    let mut health = Health::new()
        .with_timeout(timeout)
        .with_check(check_fn("signing-keys", move || {
            signing_keys(verifier.clone())
        }));
    for upstream in upstreams {
        let url = format!("{}/health/ready", upstream.base_url());
        let client = client.clone();
        health = health.with_check(check_fn(upstream.name(), move || {
            probe(client.clone(), url.clone())
        }));
    }
    health
}

/// Keys held: ready (also while the user service is down: cached keys keep verifying). None
/// yet: fetch them now, so that readiness waits for them rather than for the next refresh.
async fn signing_keys(verifier: JwksVerifier) -> Result<(), String> {
    if !verifier.cached_kids().is_empty() {
        return Ok(());
    }
    verifier
        .refresh()
        .await
        .map(|_| ())
        .map_err(|error| format!("no signing keys yet: {error}"))
}

async fn probe(client: HttpClient, url: String) -> Result<(), String> {
    let uri: Uri = url.parse().map_err(|error| format!("{url}: {error}"))?;
    let mut request = Request::new(UpstreamBody::Empty);
    *request.method_mut() = Method::GET;
    *request.uri_mut() = uri;
    let response =
        client
            .request(request)
            .await
            .map_err(|error| match std::error::Error::source(&error) {
                Some(cause) => format!("{error}: {cause}"),
                None => error.to_string(),
            })?;
    let status = response.status();
    let body = http_body_util::Limited::new(response.into_body(), 64 * 1024)
        .collect()
        .await
        .map(http_body_util::Collected::to_bytes)
        .unwrap_or_default();
    if status == StatusCode::OK {
        return Ok(());
    }
    let down: Vec<String> = serde_json::from_slice::<ReadinessReport>(&body)
        .map(|report| {
            report
                .checks
                .into_iter()
                .filter(|check| check.status != platform_health::CheckStatus::Up)
                .map(|check| match check.error {
                    Some(error) => format!("{} ({error})", check.name),
                    None => check.name,
                })
                .collect()
        })
        .unwrap_or_default();
    if down.is_empty() {
        Err(format!("its /health/ready answered {status}"))
    } else {
        Err(format!(
            "its /health/ready answered {status}; down: {}",
            down.join(", ")
        ))
    }
}
