//! `/health/ready`: the gateway is ready when every one of its workers holds the user
//! service's signing keys (it cannot authenticate anyone without them) and, unless upstreams
//! are left to their own probes, has every upstream's OpenAPI document (`/openapi.json` is
//! whole), and every upstream it routes to is ready, each asked its own `/health/ready`
//! concurrently under a short timeout. The report names each upstream with its latency, and
//! for one that is down, why (its own unready checks, when it says).
//!
//! The probe's connection lands on one worker (the kernel spreads them), which answers for all:
//! for itself it fetches what it lacks at once; the others fetch theirs in the background
//! within seconds (keys every second while none is held, documents every two).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::http::{Method, Request, StatusCode, Uri};
use http_body_util::BodyExt as _;
use platform_auth::JwksVerifier;
use platform_health::{Health, ReadinessReport, check_fn};

use crate::body::UpstreamBody;
use crate::openapi::ApiDocs;
use crate::proxy::{HttpClient, Upstream};

/// The workers of one gateway process, as each joins: what readiness speaks for.
#[derive(Debug)]
pub struct Workers {
    expected: usize,
    joined: Mutex<Vec<Worker>>,
}

#[derive(Clone, Debug)]
struct Worker {
    verifier: JwksVerifier,
    docs: Arc<ApiDocs>,
}

impl Workers {
    /// A gateway of `expected` workers, none joined yet.
    pub fn new(expected: usize) -> Arc<Self> {
        Arc::new(Self {
            expected: expected.max(1),
            joined: Mutex::new(Vec::new()),
        })
    }

    /// Adds a worker; returns its number.
    pub fn join(&self, verifier: JwksVerifier, docs: Arc<ApiDocs>) -> usize {
        let mut joined = self.joined.lock().unwrap_or_else(PoisonError::into_inner);
        joined.push(Worker { verifier, docs });
        joined.len() - 1
    }

    fn all(&self) -> Vec<Worker> {
        self.joined
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn started(&self) -> Result<Vec<Worker>, String> {
        let all = self.all();
        if all.len() < self.expected {
            return Err(format!(
                "{} of {} workers started",
                all.len(),
                self.expected
            ));
        }
        Ok(all)
    }
}

/// Readiness made of the signing keys' check, the OpenAPI documents' (with upstreams) and one
/// check per upstream, answered by worker `me` of `workers`.
pub fn upstream_health(
    workers: &Arc<Workers>,
    me: usize,
    upstreams: &[Arc<Upstream>],
    client: &HttpClient,
    timeout: Duration,
) -> Health {
    let keys = (workers.clone(), me);
    let mut health = Health::new()
        .with_timeout(timeout)
        .with_check(check_fn("signing-keys", move || {
            signing_keys(keys.0.clone(), keys.1)
        }));
    if !upstreams.is_empty() {
        let docs = (workers.clone(), me);
        health = health.with_check(check_fn("openapi", move || {
            documents(docs.0.clone(), docs.1)
        }));
    }
    for upstream in upstreams {
        let url = format!("{}/health/ready", upstream.base_url());
        let client = client.clone();
        health = health.with_check(check_fn(upstream.name(), move || {
            probe(client.clone(), url.clone())
        }));
    }
    health
}

/// Keys held by every worker: ready (also while the user service is down: cached keys keep
/// verifying). None yet in this worker: fetch them now, so that readiness waits for them
/// rather than for the next refresh.
async fn signing_keys(workers: Arc<Workers>, me: usize) -> Result<(), String> {
    let all = workers.started()?;
    let own = &all[me].verifier;
    if own.cached_kids().is_empty() {
        own.refresh()
            .await
            .map_err(|error| format!("no signing keys yet: {error}"))?;
    }
    match all
        .iter()
        .position(|worker| worker.verifier.cached_kids().is_empty())
    {
        Some(worker) => Err(format!("no signing keys yet in worker {worker}")),
        None => Ok(()),
    }
}

/// Every upstream's OpenAPI document held by every worker, so that `/openapi.json` is whole
/// whichever worker serves it. Missing in this worker: ask for them now.
async fn documents(workers: Arc<Workers>, me: usize) -> Result<(), String> {
    let all = workers.started()?;
    if !all[me].docs.missing().is_empty() {
        all[me].docs.refresh().await;
    }
    for (index, worker) in all.iter().enumerate() {
        let missing = worker.docs.missing();
        if !missing.is_empty() {
            return Err(format!(
                "no OpenAPI document yet from {} (worker {index})",
                missing.join(", ")
            ));
        }
    }
    Ok(())
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
