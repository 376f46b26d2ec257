//! The route table: which upstream serves a request, whether it needs a token, which rate
//! limit it counts against and how long the upstream has to answer. Data, not code: the
//! built-in table is `gateway/routes.default.toml`, and `GATEWAY__ROUTES__FILE` replaces it.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::Duration;

use axum::http::Method;
use serde::Deserialize;

/// The built-in table.
const DEFAULT_TABLE: &str = include_str!("../routes.default.toml");

/// Who may call a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// No token needed (a token sent anyway is passed on, unverified by the gateway).
    Public,
    /// A valid access token is required: 401 otherwise.
    User,
    /// A token is verified when present (401 if it does not verify); anonymous otherwise.
    Optional,
}

/// The rate-limit class a route counts against; each has its own limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RateClass {
    /// Login, registration, token refresh: strict, and always per client address.
    Auth,
    /// Reads.
    Read,
    /// Writes.
    Write,
}

impl RateClass {
    /// The class's name, in keys, metrics and problem details.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auth => "auth",
            Self::Read => "read",
            Self::Write => "write",
        }
    }
}

/// One route of the table, validated.
#[derive(Clone, Debug)]
pub struct Route {
    /// Unique name: the `route` label of metrics.
    pub name: String,
    /// Path prefix, matched on segment boundaries.
    pub path: String,
    /// The methods it serves; `None` means all.
    pub methods: Option<Vec<Method>>,
    /// The upstream's name.
    pub upstream: String,
    /// Who may call it.
    pub access: Access,
    /// The rate-limit class, or `None` for no limit.
    pub rate_limit: Option<RateClass>,
    /// How long the upstream may take to answer; `None`: the configured default.
    pub timeout: Option<Duration>,
    /// The largest request body; `None`: the configured default.
    pub body_limit: Option<usize>,
}

impl Route {
    /// Whether this route serves `method` on `path`.
    pub fn matches(&self, method: &Method, path: &str) -> bool {
        path_has_prefix(path, &self.path)
            && self
                .methods
                .as_ref()
                .is_none_or(|methods| methods.contains(method))
    }
}

/// `path` is `prefix` or lies below it (`/a/b` is below `/a`, `/ab` is not).
fn path_has_prefix(path: &str, prefix: &str) -> bool {
    if prefix == "/" {
        return true;
    }
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

/// The routes, in the order they are tried.
#[derive(Clone, Debug)]
pub struct RouteTable {
    routes: Vec<Route>,
}

/// Why a route table was refused.
#[derive(Debug, thiserror::Error)]
pub enum RouteTableError {
    /// The file could not be read.
    #[error("reading the route table {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a route table.
    #[error("the route table {origin} does not parse: {message}")]
    Parse {
        /// Which table.
        origin: String,
        /// The parser's message.
        message: String,
    },
    /// A route is invalid.
    #[error("the route table {origin}: {message}")]
    Invalid {
        /// Which table.
        origin: String,
        /// What is wrong.
        message: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TableFile {
    route: Vec<RouteSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteSpec {
    name: String,
    path: String,
    #[serde(default)]
    methods: Option<Vec<String>>,
    upstream: String,
    auth: Access,
    rate_limit: RateLimitSpec,
    #[serde(default)]
    timeout_ms: Option<u64>,
    #[serde(default)]
    body_limit_bytes: Option<usize>,
}

#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum RateLimitSpec {
    Auth,
    Read,
    Write,
    None,
}

impl RouteTable {
    /// The built-in table (`gateway/routes.default.toml`).
    pub fn builtin() -> Self {
        Self::parse_toml(DEFAULT_TABLE, "built-in")
            .expect("the built-in route table is valid (a unit test checks it)")
    }

    /// Reads a table from a file: JSON if its name ends in `.json`, TOML otherwise.
    pub fn from_file(path: &Path) -> Result<Self, RouteTableError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| RouteTableError::Read {
            path: origin.clone(),
            source,
        })?;
        if path
            .extension()
            .is_some_and(|extension| extension == "json")
        {
            Self::parse_json(&text, &origin)
        } else {
            Self::parse_toml(&text, &origin)
        }
    }

    /// Parses a TOML table (`[[route]]` entries); `origin` names it in errors.
    pub fn parse_toml(text: &str, origin: &str) -> Result<Self, RouteTableError> {
        let file: TableFile = toml::from_str(text).map_err(|error| RouteTableError::Parse {
            origin: origin.to_owned(),
            message: error.to_string(),
        })?;
        Self::validate(file, origin)
    }

    /// Parses a JSON table (`{"route": [...]}`); `origin` names it in errors.
    pub fn parse_json(text: &str, origin: &str) -> Result<Self, RouteTableError> {
        let file: TableFile =
            serde_json::from_str(text).map_err(|error| RouteTableError::Parse {
                origin: origin.to_owned(),
                message: error.to_string(),
            })?;
        Self::validate(file, origin)
    }

    fn validate(file: TableFile, origin: &str) -> Result<Self, RouteTableError> {
        let invalid = |message: String| RouteTableError::Invalid {
            origin: origin.to_owned(),
            message,
        };
        if file.route.is_empty() {
            return Err(invalid("it has no route".to_owned()));
        }
        let mut names = HashSet::new();
        let mut routes = Vec::with_capacity(file.route.len());
        for spec in file.route {
            let name = spec.name.trim().to_owned();
            if name.is_empty() {
                return Err(invalid("a route has an empty name".to_owned()));
            }
            if !names.insert(name.clone()) {
                return Err(invalid(format!("two routes are named `{name}`")));
            }
            let path = spec.path.trim().to_owned();
            if !path.starts_with('/') || (path.len() > 1 && path.ends_with('/')) {
                return Err(invalid(format!(
                    "route `{name}`: the path `{path}` must start with `/` and not end with one"
                )));
            }
            let methods = match spec.methods {
                None => None,
                Some(methods) if methods.is_empty() => {
                    return Err(invalid(format!(
                        "route `{name}`: `methods` is empty (leave it out to allow every method)"
                    )));
                }
                Some(methods) => Some(
                    methods
                        .iter()
                        .map(|method| {
                            Method::from_bytes(method.trim().to_ascii_uppercase().as_bytes())
                                .map_err(|_| {
                                    invalid(format!(
                                        "route `{name}`: `{method}` is not an HTTP method"
                                    ))
                                })
                        })
                        .collect::<Result<Vec<_>, _>>()?,
                ),
            };
            if spec.timeout_ms == Some(0) {
                return Err(invalid(format!(
                    "route `{name}`: timeout_ms must be above 0"
                )));
            }
            routes.push(Route {
                name,
                path,
                methods,
                upstream: spec.upstream.trim().to_ascii_lowercase(),
                access: spec.auth,
                rate_limit: match spec.rate_limit {
                    RateLimitSpec::Auth => Some(RateClass::Auth),
                    RateLimitSpec::Read => Some(RateClass::Read),
                    RateLimitSpec::Write => Some(RateClass::Write),
                    RateLimitSpec::None => None,
                },
                timeout: spec.timeout_ms.map(Duration::from_millis),
                body_limit: spec.body_limit_bytes,
            });
        }
        Ok(Self { routes })
    }

    /// Refuses a table that names an upstream without a URL.
    pub fn check_upstreams(
        &self,
        upstreams: &BTreeMap<String, String>,
    ) -> Result<(), RouteTableError> {
        for route in &self.routes {
            if !upstreams.contains_key(&route.upstream) {
                return Err(RouteTableError::Invalid {
                    origin: "in use".to_owned(),
                    message: format!(
                        "route `{}` names the upstream `{}`, which has no URL (set \
                         GATEWAY__UPSTREAMS__{})",
                        route.name,
                        route.upstream,
                        route.upstream.to_ascii_uppercase()
                    ),
                });
            }
        }
        Ok(())
    }

    /// The first route serving `method` on `path`, with its index.
    pub fn find(&self, method: &Method, path: &str) -> Option<(usize, &Route)> {
        self.routes
            .iter()
            .enumerate()
            .find(|(_, route)| route.matches(method, path))
    }

    /// Every route, in order.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_table_is_valid_and_routes_every_service() {
        let table = RouteTable::parse_toml(DEFAULT_TABLE, "built-in").unwrap();
        let upstreams = crate::config::default_upstreams();
        table.check_upstreams(&upstreams).unwrap();

        let route = |method: Method, path: &str| {
            let (_, route) = table.find(&method, path).unwrap();
            (route.upstream.as_str(), route.access, route.rate_limit)
        };
        assert_eq!(
            route(Method::POST, "/api/v1/auth/login"),
            ("user", Access::Public, Some(RateClass::Auth))
        );
        assert_eq!(
            route(Method::PATCH, "/api/v1/users/me"),
            ("user", Access::User, Some(RateClass::Write))
        );
        assert_eq!(
            route(Method::GET, "/api/v1/products/42"),
            ("inventory", Access::Public, Some(RateClass::Read))
        );
        assert_eq!(
            route(Method::POST, "/api/v1/products"),
            ("inventory", Access::User, Some(RateClass::Write))
        );
        assert_eq!(
            route(Method::GET, "/api/v1/orders"),
            ("order", Access::User, Some(RateClass::Read))
        );
        assert_eq!(
            route(Method::DELETE, "/api/v1/payment-methods/7").0,
            "payment"
        );
        assert_eq!(route(Method::GET, "/api/v1/payments/7").0, "payment");
        assert_eq!(
            route(Method::GET, "/api/v1/notifications").0,
            "notification"
        );
        let named = |method: Method, path: &str| {
            let (_, route) = table.find(&method, path).unwrap();
            (route.name.as_str(), route.access, route.rate_limit)
        };
        assert_eq!(
            named(Method::GET, "/api/v1/notifications/admin/dead-letters"),
            (
                "notification-dead-letters-read",
                Access::User,
                Some(RateClass::Read)
            )
        );
        for (method, path) in [
            (
                Method::POST,
                "/api/v1/notifications/admin/dead-letters/7/replay",
            ),
            (Method::DELETE, "/api/v1/notifications/admin/dead-letters/7"),
        ] {
            assert_eq!(
                named(method, path),
                (
                    "notification-dead-letters-write",
                    Access::User,
                    Some(RateClass::Write)
                )
            );
        }
        assert!(table.find(&Method::GET, "/health/ready").is_none());
        assert!(table.find(&Method::GET, "/metrics").is_none());
        assert!(table.find(&Method::GET, "/openapi.json").is_none());
        assert!(table.find(&Method::GET, "/api/v1/ordersx").is_none());
    }

    #[test]
    fn prefixes_match_on_segment_boundaries() {
        assert!(path_has_prefix("/api/v1/orders", "/api/v1/orders"));
        assert!(path_has_prefix("/api/v1/orders/1/cancel", "/api/v1/orders"));
        assert!(!path_has_prefix("/api/v1/ordersx", "/api/v1/orders"));
        assert!(!path_has_prefix("/api/v1", "/api/v1/orders"));
        assert!(path_has_prefix("/anything", "/"));
    }

    #[test]
    fn a_json_table_works_too() {
        let table = RouteTable::parse_json(
            r#"{"route": [{"name": "a", "path": "/a", "methods": ["get"], "upstream": "User",
                "auth": "optional", "rate_limit": "none", "timeout_ms": 250}]}"#,
            "test",
        )
        .unwrap();
        let (index, route) = table.find(&Method::GET, "/a/b").unwrap();
        assert_eq!(index, 0);
        assert_eq!(route.upstream, "user");
        assert_eq!(route.access, Access::Optional);
        assert_eq!(route.rate_limit, None);
        assert_eq!(route.timeout, Some(Duration::from_millis(250)));
        assert!(table.find(&Method::POST, "/a").is_none());
    }

    #[test]
    fn invalid_tables_are_refused_with_a_reason() {
        let error = |text: &str| RouteTable::parse_toml(text, "t").unwrap_err().to_string();
        let route = |extra: &str| {
            format!(
                "[[route]]\nname = \"a\"\npath = \"/a\"\nupstream = \"user\"\nauth = \"user\"\nrate_limit = \"read\"\n{extra}"
            )
        };
        assert!(error(&route("methods = [\"G ET\"]")).contains("not an HTTP method"));
        assert!(error(&route("timeout_ms = 0")).contains("timeout_ms"));
        assert!(error(&route("colour = \"red\"")).contains("unknown field"));
        assert!(
            error(&format!("{}\n{}", route(""), route(""))).contains("two routes are named `a`")
        );
        assert!(error(&route("").replace("/a", "/a/")).contains("must start with"));
        assert!(error(&route("").replace("\"user\"\nrate", "\"admin\"\nrate")).contains("admin"));

        let table = RouteTable::parse_toml(&route(""), "t").unwrap();
        let error = table.check_upstreams(&BTreeMap::new()).unwrap_err();
        assert!(
            error.to_string().contains("GATEWAY__UPSTREAMS__USER"),
            "{error}"
        );
    }
}
