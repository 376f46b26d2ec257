//! What happens to a request for the API, in order: route, authenticate, rate limit (a request
//! that failed authentication too, by its address), check the body's size, forward.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, Request, Response, header};
use axum::response::IntoResponse;
use hyper::body::Incoming;
use platform_auth::AuthError;
use platform_http::ApiError;
use tracing::Instrument as _;
use tracing::field::Empty;

use crate::auth::{Authenticator, Identity};
use crate::body::EdgeBody;
use crate::metrics::RouteMetrics;
use crate::proxy::{Forward, Peer, Proxy, Upstream};
use crate::rate_limit::{Client, RateLimiter, Verdict};
use crate::routes::{Access, RateClass, Route, RouteTable};

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// A route with everything resolved that a request needs.
#[derive(Debug)]
pub struct ResolvedRoute {
    /// The route as configured.
    pub route: Route,
    /// Its upstream.
    pub upstream: Arc<Upstream>,
    /// Its deadline.
    pub timeout: Duration,
    /// Its body limit.
    pub body_limit: usize,
    /// Its metrics.
    pub metrics: RouteMetrics,
}

/// The gateway's request pipeline: shared by every request (behind an `Arc`).
#[derive(Debug)]
pub struct Pipeline {
    /// The route table, for matching.
    pub table: RouteTable,
    /// The same routes, resolved, by index.
    pub routes: Vec<ResolvedRoute>,
    /// Token verification.
    pub auth: Authenticator,
    /// Rate limiting.
    pub limiter: RateLimiter,
    /// Forwarding.
    pub proxy: Proxy,
    /// Whether `X-Forwarded-For` names the client.
    pub trust_forwarded_for: bool,
    /// Metrics of requests matching no route.
    pub unmatched: RouteMetrics,
}

impl Pipeline {
    /// Resolves routes against upstreams (by name) with the default deadline and body limit.
    pub fn resolve(
        table: &RouteTable,
        upstreams: &[Arc<Upstream>],
        default_timeout: Duration,
        default_body_limit: usize,
    ) -> anyhow::Result<Vec<ResolvedRoute>> {
        table
            .routes()
            .iter()
            .map(|route| {
                let upstream = upstreams
                    .iter()
                    .find(|upstream| upstream.name() == route.upstream)
                    .cloned()
                    .ok_or_else(|| {
                        anyhow::anyhow!(
                            "route `{}` names the upstream `{}`, which has no URL",
                            route.name,
                            route.upstream
                        )
                    })?;
                Ok(ResolvedRoute {
                    metrics: RouteMetrics::new(&route.name, &route.upstream),
                    timeout: route.timeout.unwrap_or(default_timeout),
                    body_limit: route.body_limit.unwrap_or(default_body_limit),
                    route: route.clone(),
                    upstream,
                })
            })
            .collect()
    }
}

impl Pipeline {
    /// Serves a request for the API (anything that is not one of the gateway's own
    /// endpoints), in an `http.request` span that is a child of the caller's `traceparent`,
    /// with one log line per response: the same span and line as every service's (see
    /// `platform_http::layers::trace_request`), built here without axum's middleware.
    pub async fn handle(
        &self,
        request: Request<Incoming>,
        peer: &Peer,
        request_id: &str,
    ) -> Response<EdgeBody> {
        let found = self
            .table
            .find(request.method(), request.uri().path())
            .map(|(index, _)| index);
        let span = tracing::info_span!(
            "http.request",
            otel.name = %request.method(),
            otel.kind = "server",
            otel.status_code = Empty,
            http.request.method = %request.method(),
            http.route = Empty,
            url.path = %request.uri().path(),
            request_id = %request_id,
            user_id = Empty,
            http.response.status_code = Empty,
        );
        if span.is_disabled() {
            return self.route(request, peer, found).await;
        }
        // Named before the parent is set: a span's name cannot change once its context exists.
        if let Some(index) = found {
            let path = self.routes[index].route.path.as_str();
            span.record("http.route", path);
            span.record("otel.name", format!("{} {path}", request.method()));
        }
        platform_telemetry::propagation::set_parent(
            &span,
            platform_telemetry::propagation::extract_http_headers(request.headers()),
        );
        let started = Instant::now();
        let mut response = self
            .route(request, peer, found)
            .instrument(span.clone())
            .await;
        platform_http::record_response(&span, started, &mut response);
        response
    }

    /// Serves a request on the route `found` for it (the index in `routes`), or answers 404.
    async fn route(
        &self,
        request: Request<Incoming>,
        peer: &Peer,
        found: Option<usize>,
    ) -> Response<EdgeBody> {
        let (parts, body) = request.into_parts();
        let Some(index) = found else {
            let response = ApiError::NotFound(format!(
                "no route matches {} {}",
                parts.method,
                parts.uri.path()
            ))
            .into_response();
            self.unmatched.count(response.status());
            return response.map(EdgeBody::Local);
        };
        let route = &self.routes[index];
        let response = self.serve(route, &parts, body, peer).await;
        route.metrics.count(response.status());
        response
    }

    async fn serve(
        &self,
        route: &ResolvedRoute,
        parts: &Parts,
        body: Incoming,
        peer: &Peer,
    ) -> Response<EdgeBody> {
        if has_dot_segments(parts.uri.path()) {
            return local(ApiError::BadRequest(
                "the path must not contain `.` or `..` segments".to_owned(),
            ));
        }

        // Authentication first, to know whose quota a request counts against; a request whose
        // token is missing or does not verify still counts, against its client address, so
        // that a flood of bad tokens is limited like any other.
        let identity = authenticate(&self.auth, route.route.access, &parts.headers).await;
        if let Ok(Some(identity)) = &identity {
            tracing::Span::current().record("user_id", tracing::field::display(identity.user_id));
        }

        let quota = match route.route.rate_limit {
            None => None,
            Some(class) => {
                let client = match (&identity, class) {
                    (Ok(Some(identity)), RateClass::Read | RateClass::Write) => {
                        Client::User(identity.user_id_header.to_str().unwrap_or_default())
                    }
                    _ => Client::Address(client_address(
                        &parts.headers,
                        peer,
                        self.trust_forwarded_for,
                    )),
                };
                match self.limiter.check(class, client).await {
                    Verdict::Allowed(quota) => Some(quota),
                    Verdict::Limited(quota) => {
                        let mut response = ApiError::TooManyRequests {
                            detail: format!(
                                "too many `{}` requests; retry in {} s",
                                quota.class().as_str(),
                                quota.reset_secs
                            ),
                            retry_after_secs: quota.reset_secs,
                        }
                        .into_response();
                        quota.write_headers(response.headers_mut());
                        return response.map(EdgeBody::Local);
                    }
                    Verdict::Unlimited => None,
                }
            }
        };
        let identity = match identity {
            Ok(identity) => identity,
            Err(error) => {
                let mut response = local(error);
                if let Some(quota) = &quota {
                    quota.write_headers(response.headers_mut());
                }
                return response;
            }
        };

        let declared = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
        if let Some(length) = declared.filter(|&length| length > route.body_limit as u64) {
            let mut response = local(ApiError::PayloadTooLarge(format!(
                "the request body is {length} bytes, larger than the limit of {} bytes",
                route.body_limit
            )));
            if let Some(quota) = &quota {
                quota.write_headers(response.headers_mut());
            }
            return response;
        }

        let forward = Forward {
            upstream: &route.upstream,
            timeout: route.timeout,
            metrics: &route.metrics,
            identity: identity.as_deref(),
            peer,
            trust_forwarded: self.trust_forwarded_for,
            // A declared length is enforced by the connection itself; only a chunked body must
            // be counted as it streams.
            cap_body: declared.is_none().then_some(route.body_limit),
        };
        let mut response = self.proxy.forward(parts, body, &forward).await;
        if let Some(quota) = &quota {
            quota.write_headers(response.headers_mut());
        }
        response
    }
}

fn local(response: impl IntoResponse) -> Response<EdgeBody> {
    response.into_response().map(EdgeBody::Local)
}

async fn authenticate(
    auth: &Authenticator,
    access: Access,
    headers: &HeaderMap,
) -> Result<Option<Arc<Identity>>, ApiError> {
    match access {
        Access::Public => Ok(None),
        Access::Optional => Ok(auth.authenticate(headers).await?),
        Access::User => match auth.authenticate(headers).await? {
            Some(identity) => Ok(Some(identity)),
            None => Err(AuthError::Missing.into()),
        },
    }
}

/// The client's address: the last `X-Forwarded-For` entry when a trusted proxy appends it,
/// else the socket's peer.
fn client_address(headers: &HeaderMap, peer: &Peer, trust_forwarded: bool) -> IpAddr {
    if trust_forwarded
        && let Some(address) = headers
            .get_all(X_FORWARDED_FOR)
            .iter()
            .next_back()
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.rsplit(',').next())
            .and_then(|last| last.trim().parse::<IpAddr>().ok())
    {
        return address;
    }
    peer.addr.ip()
}

/// `.` and `..` segments (also percent-encoded) would mean one thing to the route table and
/// maybe another to the upstream: refused.
fn has_dot_segments(path: &str) -> bool {
    if !path.contains('.') && !path.contains("%2") {
        return false;
    }
    path.split('/').any(|segment| {
        let decoded = segment.replace("%2e", ".").replace("%2E", ".");
        decoded == "." || decoded == ".."
    })
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn dot_segments_are_found_even_encoded() {
        assert!(!has_dot_segments("/api/v1/products/a.b"));
        assert!(!has_dot_segments("/.well-known/jwks.json"));
        assert!(has_dot_segments("/api/v1/products/../users/me"));
        assert!(has_dot_segments("/api/v1/products/./1"));
        assert!(has_dot_segments("/api/v1/products/%2e%2E/users"));
        assert!(has_dot_segments("/api/v1/products/.%2e"));
    }

    #[test]
    fn the_client_address_comes_from_the_peer_unless_a_proxy_is_trusted() {
        let mut headers = HeaderMap::new();
        headers.append(
            X_FORWARDED_FOR,
            HeaderValue::from_static("6.6.6.6, 10.1.1.1"),
        );
        headers.append(X_FORWARDED_FOR, HeaderValue::from_static("203.0.113.9"));
        let peer = &Peer::new("192.0.2.1:4000".parse().unwrap());
        assert_eq!(
            client_address(&headers, peer, false),
            "192.0.2.1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            client_address(&headers, peer, true),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            client_address(&HeaderMap::new(), peer, true),
            "192.0.2.1".parse::<IpAddr>().unwrap()
        );
    }
}
