//! `/openapi.json`: one document for the whole public API, merged from every upstream's
//! `/openapi.json`; `/docs`: Swagger UI on it (assets compiled in, nothing downloaded).
//!
//! Documents are fetched at start and then periodically. An upstream that cannot be reached
//! keeps its last good document (or is left out until it first answers), so the gateway
//! always serves what it knows. Only operations the route table sends to the upstream that
//! documents them are kept: the merged document describes what clients can actually reach.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderValue, Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http_body_util::BodyExt as _;
use serde_json::{Map, Value, json};
use tokio::task::JoinHandle;

use crate::body::UpstreamBody;
use crate::proxy::{HttpClient, Upstream};
use crate::routes::RouteTable;

/// The path of the merged document.
pub const OPENAPI_PATH: &str = "/openapi.json";
/// The path of the interactive documentation.
pub const DOCS_PATH: &str = "/docs";

/// How soon a document that was never fetched is asked for again: at first after
/// [`FIRST_RETRY`], doubling up to this.
const MISSING_RETRY: Duration = Duration::from_secs(2);

/// The first wait before asking again for documents or keys the gateway started without (the
/// services start with it, in compose and Kubernetes): short, so that it is ready moments
/// after they are.
pub const FIRST_RETRY: Duration = Duration::from_millis(100);

/// The largest upstream document accepted.
const MAX_DOCUMENT_BYTES: usize = 8 * 1024 * 1024;

/// The Content-Security-Policy of the documentation pages: Swagger UI's own scripts and
/// styles (it sets inline styles) and images as data URIs; calls to the API on this origin.
pub const DOCS_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
     form-action 'self'";

/// The upstreams' documents and their merge.
pub struct ApiDocs {
    upstreams: Vec<Arc<Upstream>>,
    table: RouteTable,
    client: HttpClient,
    timeout: Duration,
    /// The last document each upstream served.
    documents: Mutex<BTreeMap<String, Value>>,
    merged: RwLock<Bytes>,
}

impl std::fmt::Debug for ApiDocs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiDocs").finish_non_exhaustive()
    }
}

impl ApiDocs {
    /// Docs for these upstreams; empty until the first [`ApiDocs::refresh`].
    pub fn new(
        upstreams: Vec<Arc<Upstream>>,
        table: RouteTable,
        client: HttpClient,
        timeout: Duration,
    ) -> Self {
        let docs = Self {
            upstreams,
            table,
            client,
            timeout,
            documents: Mutex::new(BTreeMap::new()),
            merged: RwLock::new(Bytes::new()),
        };
        docs.remerge();
        docs
    }

    /// Fetches every upstream's document concurrently and merges what is known.
    pub async fn refresh(&self) {
        let fetched = futures::future::join_all(self.upstreams.iter().map(|upstream| async {
            let outcome = tokio::time::timeout(self.timeout, self.fetch(upstream)).await;
            (upstream.name(), outcome)
        }))
        .await;
        {
            let mut documents = self
                .documents
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            for (name, outcome) in fetched {
                match outcome {
                    Ok(Ok(document)) => {
                        if documents.insert(name.to_owned(), document).is_none() {
                            tracing::info!(
                                upstream = name,
                                "fetched the upstream's OpenAPI document"
                            );
                        }
                    }
                    Ok(Err(error)) => {
                        tracing::warn!(upstream = name, %error,
                            "cannot fetch the upstream's OpenAPI document; keeping the last one");
                    }
                    Err(_) => {
                        tracing::warn!(upstream = name, timeout = ?self.timeout,
                            "the upstream's OpenAPI document did not arrive in time; keeping the last one");
                    }
                }
            }
        }
        self.remerge();
    }

    async fn fetch(&self, upstream: &Upstream) -> Result<Value, String> {
        let uri = format!("{}{OPENAPI_PATH}", upstream.base_url());
        let mut request = Request::new(UpstreamBody::Empty);
        *request.method_mut() = Method::GET;
        *request.uri_mut() = uri.parse().map_err(|error| format!("{uri}: {error}"))?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|error| format!("GET {uri}: {error}"))?;
        if response.status() != StatusCode::OK {
            return Err(format!("GET {uri} answered {}", response.status()));
        }
        let body = http_body_util::Limited::new(response.into_body(), MAX_DOCUMENT_BYTES)
            .collect()
            .await
            .map_err(|error| format!("reading {uri}: {error}"))?
            .to_bytes();
        let document: Value =
            serde_json::from_slice(&body).map_err(|error| format!("{uri} is not JSON: {error}"))?;
        if !document.get("paths").is_some_and(Value::is_object) {
            return Err(format!("{uri} is not an OpenAPI document (no `paths`)"));
        }
        Ok(document)
    }

    fn remerge(&self) {
        let merged = {
            let documents = self
                .documents
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            merge(&documents, &self.table)
        };
        let bytes = serde_json::to_vec(&merged).map_or_else(|_| Bytes::new(), Bytes::from);
        *self.merged.write().unwrap_or_else(PoisonError::into_inner) = bytes;
    }

    /// The merged document, serialised.
    pub fn document(&self) -> Bytes {
        self.merged
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The upstreams that have never served their document (down since the start).
    pub fn missing(&self) -> Vec<&str> {
        let documents = self
            .documents
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        self.upstreams
            .iter()
            .map(|upstream| upstream.name())
            .filter(|name| !documents.contains_key(*name))
            .collect()
    }

    /// Whether some upstream has never served its document (it was down at start).
    fn incomplete(&self) -> bool {
        !self.missing().is_empty()
    }

    /// Refreshes every `period` in the background, until the task is aborted; while an
    /// upstream has never answered, after [`FIRST_RETRY`] instead, doubling up to
    /// [`MISSING_RETRY`], so that services started together with the gateway are documented
    /// moments after they are up.
    pub fn spawn_refresh(self: &Arc<Self>, period: Duration) -> JoinHandle<()> {
        let docs = Arc::downgrade(self);
        let period = period.max(Duration::from_secs(1));
        tokio::spawn(async move {
            let mut retry = FIRST_RETRY;
            loop {
                let wait = match docs.upgrade() {
                    Some(docs) if docs.incomplete() => {
                        let wait = retry.min(period);
                        retry = (retry * 2).min(MISSING_RETRY);
                        wait
                    }
                    Some(_) => period,
                    None => break,
                };
                tokio::time::sleep(wait).await;
                let Some(docs) = docs.upgrade() else { break };
                docs.refresh().await;
            }
        })
    }

    /// `GET /openapi.json` and the Swagger UI under `/docs`.
    pub fn router(self: &Arc<Self>) -> Router {
        let docs = self.clone();
        let swagger: Router = utoipa_swagger_ui::SwaggerUi::new(DOCS_PATH)
            .config(utoipa_swagger_ui::Config::from(OPENAPI_PATH))
            .into();
        Router::new()
            .route(
                OPENAPI_PATH,
                get(move || {
                    let document = docs.document();
                    async move {
                        (
                            [(
                                header::CONTENT_TYPE,
                                HeaderValue::from_static("application/json"),
                            )],
                            document,
                        )
                            .into_response()
                    }
                }),
            )
            .merge(swagger.layer(axum::middleware::map_response(docs_csp)))
    }
}

async fn docs_csp(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(DOCS_CSP),
    );
    response
}

const METHODS: [(&str, Method); 8] = [
    ("get", Method::GET),
    ("put", Method::PUT),
    ("post", Method::POST),
    ("delete", Method::DELETE),
    ("options", Method::OPTIONS),
    ("head", Method::HEAD),
    ("patch", Method::PATCH),
    ("trace", Method::TRACE),
];

/// Merges upstream documents (by upstream name) into one, keeping only the operations the
/// route table sends to the upstream that documents them. Paths, components and tags are
/// unions; when two upstreams define a component differently, the first (by upstream name)
/// wins and the conflict is logged.
pub fn merge(documents: &BTreeMap<String, Value>, table: &RouteTable) -> Value {
    let mut version = None;
    let mut paths = Map::new();
    let mut components: Map<String, Value> = Map::new();
    let mut tags: Vec<Value> = Vec::new();
    for (upstream, document) in documents {
        if version.is_none() {
            version = document.get("openapi").and_then(Value::as_str);
        }
        merge_paths(&mut paths, upstream, document, table);
        merge_components(&mut components, upstream, document);
        for tag in document
            .get("tags")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = tag.get("name");
            if name.is_some() && !tags.iter().any(|known| known.get("name") == name) {
                tags.push(tag.clone());
            }
        }
    }

    let mut merged = json!({
        "openapi": version.unwrap_or("3.1.0"),
        "info": {
            "title": "Platform API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The public API of the platform, as served by the gateway. \
                Protected operations need `Authorization: Bearer <access token>` (from \
                `POST /api/v1/auth/login`). Every error is `application/problem+json`. \
                Requests are rate limited per user (or per address when anonymous): responses \
                carry `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset`, and a \
                refused request gets 429 with `Retry-After`. The gateway answers 502, 503 or \
                504 when a service is unreachable, failing, or too slow.",
        },
        "paths": paths,
    });
    if !components.is_empty() {
        merged["components"] = Value::Object(components);
    }
    if !tags.is_empty() {
        merged["tags"] = Value::Array(tags);
    }
    merged
}

/// Adds the operations of `upstream`'s document that the route table sends to it.
fn merge_paths(
    paths: &mut Map<String, Value>,
    upstream: &str,
    document: &Value,
    table: &RouteTable,
) {
    for (path, item) in document
        .get("paths")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let Some(item) = item.as_object() else {
            continue;
        };
        let mut kept = Map::new();
        let mut operations = 0;
        for (key, value) in item {
            match METHODS.iter().find(|(name, _)| name == key) {
                Some((_, method)) => {
                    let routed_here = table
                        .find(method, path)
                        .is_some_and(|(_, route)| route.upstream == upstream);
                    if routed_here {
                        kept.insert(key.clone(), value.clone());
                        operations += 1;
                    }
                }
                // Path-level `parameters`, `summary`, `servers`...
                None => {
                    kept.insert(key.clone(), value.clone());
                }
            }
        }
        if operations == 0 {
            continue;
        }
        match paths.get_mut(path).and_then(Value::as_object_mut) {
            Some(existing) => {
                for (key, value) in kept {
                    existing.entry(key).or_insert(value);
                }
            }
            None => {
                paths.insert(path.clone(), Value::Object(kept));
            }
        }
    }
}

/// Adds `upstream`'s components (schemas, security schemes...) that are not known yet.
fn merge_components(components: &mut Map<String, Value>, upstream: &str, document: &Value) {
    for (kind, entries) in document
        .get("components")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let Some(entries) = entries.as_object() else {
            continue;
        };
        let merged = components
            .entry(kind.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        let Some(merged) = merged.as_object_mut() else {
            continue;
        };
        for (name, definition) in entries {
            match merged.get(name) {
                None => {
                    merged.insert(name.clone(), definition.clone());
                }
                Some(existing) if existing != definition => {
                    tracing::warn!(%upstream, component = %format!("{kind}/{name}"),
                        "two upstreams define this component differently; keeping the first");
                }
                Some(_) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> RouteTable {
        RouteTable::parse_toml(
            r#"
            [[route]]
            name = "orders"
            path = "/api/v1/orders"
            upstream = "order"
            auth = "user"
            rate_limit = "read"

            [[route]]
            name = "products-read"
            path = "/api/v1/products"
            methods = ["GET"]
            upstream = "inventory"
            auth = "public"
            rate_limit = "read"
            "#,
            "test",
        )
        .unwrap()
    }

    #[test]
    fn paths_components_and_tags_are_merged_and_unrouted_operations_dropped() {
        let problem = json!({"type": "object", "title": "Problem"});
        let documents = BTreeMap::from([
            (
                "inventory".to_owned(),
                json!({
                    "openapi": "3.1.0",
                    "paths": {
                        "/api/v1/products": {"get": {"operationId": "list"}, "post": {"operationId": "create"}},
                        "/internal/reindex": {"post": {}},
                    },
                    "components": {"schemas": {"Problem": problem, "Product": {"type": "object"}}},
                    "tags": [{"name": "products"}],
                }),
            ),
            (
                "order".to_owned(),
                json!({
                    "openapi": "3.1.0",
                    "paths": {
                        "/api/v1/orders/{id}": {"parameters": [], "get": {"operationId": "get"}},
                        "/api/v1/products": {"get": {"operationId": "not-routed-here"}},
                        "/api/v1/products/{id}": {"get": {"operationId": "not-routed-here-either"}},
                    },
                    "components": {
                        "schemas": {"Problem": problem, "Order": {"type": "object"}},
                        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
                    },
                    "tags": [{"name": "orders"}, {"name": "products"}],
                }),
            ),
        ]);
        let merged = merge(&documents, &table());

        assert_eq!(merged["info"]["title"], "Platform API");
        assert_eq!(
            merged["paths"]["/api/v1/products"],
            json!({"get": {"operationId": "list"}}),
            "POST is not routed, and the order service's GET is not where the route goes"
        );
        assert_eq!(
            merged["paths"]["/api/v1/orders/{id}"],
            json!({"parameters": [], "get": {"operationId": "get"}})
        );
        assert!(merged["paths"].get("/internal/reindex").is_none());
        assert!(
            merged["paths"].get("/api/v1/products/{id}").is_none(),
            "the route table sends it to the inventory, which does not document it"
        );
        let mut schemas: Vec<_> = merged["components"]["schemas"]
            .as_object()
            .unwrap()
            .keys()
            .collect();
        schemas.sort();
        assert_eq!(schemas, ["Order", "Problem", "Product"]);
        assert_eq!(
            merged["components"]["securitySchemes"]["bearer"]["scheme"],
            "bearer"
        );
        assert_eq!(
            merged["tags"],
            json!([{"name": "products"}, {"name": "orders"}])
        );
    }
}
