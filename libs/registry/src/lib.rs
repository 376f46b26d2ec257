//! The platform's services, declared once.
//!
//! `services.toml` at the root of the workspace lists every process: its names, the prefix of
//! its configuration variables, its default ports, its store, the events it publishes and
//! consumes, the services it calls, and whether the gateway routes to it. It is compiled into
//! every binary that reads it, so a service, the launcher and the gateway always agree.
//!
//! ```
//! let order = platform_registry::service("order");
//! assert_eq!(order.binary, "order-service");
//! assert_eq!(order.variable("DATABASE__URL"), "ORDER_SERVICE__DATABASE__URL");
//! assert_eq!(order.calls, ["inventory", "payment"]);
//! ```

use std::sync::LazyLock;

use serde::Deserialize;

/// The registry's source, as compiled in.
pub const SOURCE: &str = include_str!("../../../services.toml");

/// The store a service owns.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Store {
    /// A PostgreSQL database (`DATABASE__URL`).
    Postgres,
    /// A MongoDB database (`MONGO__URL`, `MONGO__DATABASE`).
    Mongo,
}

/// One service.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceEntry {
    /// Short name: the gateway upstream, the launcher's argument, the log file.
    pub name: String,
    /// Its crate and binary, and its name in logs, traces and service credentials.
    pub binary: String,
    /// The prefix of its configuration variables.
    pub env_prefix: String,
    /// Default HTTP port.
    pub http_port: u16,
    /// Default gRPC port, if it has an internal gRPC API.
    #[serde(default)]
    pub grpc_port: Option<u16>,
    /// The file under `proto/` that defines its gRPC API, e.g. `user/v1/user.proto`.
    #[serde(default)]
    pub proto: Option<String>,
    /// The store it owns.
    pub store: Store,
    /// The name of its database.
    pub database: String,
    /// Whether it uses Redis.
    #[serde(default)]
    pub redis: bool,
    /// The event domain it publishes, if any.
    #[serde(default)]
    pub events: Option<String>,
    /// The event domains it consumes.
    #[serde(default)]
    pub consumes: Vec<String>,
    /// The services whose gRPC API it calls.
    #[serde(default)]
    pub calls: Vec<String>,
    /// Whether the gateway routes to it.
    #[serde(default)]
    pub upstream: bool,
}

impl ServiceEntry {
    /// The full name of one of its variables: `variable("HTTP__PORT")` is
    /// `ORDER_SERVICE__HTTP__PORT`.
    pub fn variable(&self, key: &str) -> String {
        format!("{}__{key}", self.env_prefix)
    }
}

/// A process at the edge, in front of the services: the gateway (the public API) or the
/// storefront (the web shop, a client of the gateway).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeEntry {
    /// Its crate and binary.
    pub binary: String,
    /// The prefix of its configuration variables.
    pub env_prefix: String,
    /// Default HTTP port (public).
    pub http_port: u16,
    /// Whether it uses Redis.
    #[serde(default)]
    pub redis: bool,
}

/// The gateway's entry.
pub type GatewayEntry = EdgeEntry;

/// The whole registry.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registry {
    /// The gateway.
    pub gateway: EdgeEntry,
    /// The storefront: the web shop, which calls the platform only through the gateway.
    pub storefront: EdgeEntry,
    /// The services, in start order (a service's callees come before it where it matters
    /// only for readiness: every service waits for its dependencies on its own).
    #[serde(rename = "service")]
    pub services: Vec<ServiceEntry>,
}

impl Registry {
    /// Parses and checks a registry.
    pub fn parse(source: &str) -> Result<Self, String> {
        let registry: Self = toml::from_str(source).map_err(|error| error.to_string())?;
        registry.check()?;
        Ok(registry)
    }

    fn check(&self) -> Result<(), String> {
        let mut ports = vec![self.gateway.http_port, self.storefront.http_port];
        let mut names: Vec<&str> = Vec::new();
        for service in &self.services {
            let name = service.name.as_str();
            if names.contains(&name) {
                return Err(format!("service `{name}` is declared twice"));
            }
            names.push(name);
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_lowercase()) {
                return Err(format!(
                    "service name `{name}` must be lower-case ASCII letters"
                ));
            }
            ports.push(service.http_port);
            ports.extend(service.grpc_port);
            if service.proto.is_some() && service.grpc_port.is_none() {
                return Err(format!("`{name}` declares a proto file but no gRPC port"));
            }
        }
        let mut sorted = ports.clone();
        sorted.sort_unstable();
        if let Some([port, ..]) = sorted.windows(2).find(|pair| pair[0] == pair[1]) {
            return Err(format!("port {port} is declared twice"));
        }
        for service in &self.services {
            for callee in &service.calls {
                let Some(callee) = self.services.iter().find(|s| &s.name == callee) else {
                    return Err(format!(
                        "`{}` calls unknown service `{callee}`",
                        service.name
                    ));
                };
                if callee.grpc_port.is_none() {
                    return Err(format!(
                        "`{}` calls `{}`, which has no gRPC port",
                        service.name, callee.name
                    ));
                }
            }
            for domain in &service.consumes {
                if !self.event_domains().any(|published| published == domain) {
                    return Err(format!(
                        "`{}` consumes `{domain}`, which no service publishes",
                        service.name
                    ));
                }
            }
        }
        Ok(())
    }

    /// The event domains, one per publishing service, in registry order.
    pub fn event_domains(&self) -> impl Iterator<Item = &str> {
        self.services.iter().filter_map(|s| s.events.as_deref())
    }
}

static REGISTRY: LazyLock<Registry> = LazyLock::new(|| {
    Registry::parse(SOURCE).unwrap_or_else(|error| panic!("services.toml: {error}"))
});

/// The compiled-in registry.
pub fn registry() -> &'static Registry {
    &REGISTRY
}

/// Every service, in registry order.
pub fn services() -> &'static [ServiceEntry] {
    &REGISTRY.services
}

/// The gateway's entry.
pub fn gateway() -> &'static GatewayEntry {
    &REGISTRY.gateway
}

/// The storefront's entry.
pub fn storefront() -> &'static EdgeEntry {
    &REGISTRY.storefront
}

/// The service named `name` (its short name or its binary).
///
/// # Panics
/// When no such service is declared: a service asking for its own entry under a wrong name is
/// a build mistake, not a runtime condition.
pub fn service(name: &str) -> &'static ServiceEntry {
    find(name).unwrap_or_else(|| panic!("services.toml declares no service `{name}`"))
}

/// The service named `name` (its short name or its binary), if declared.
pub fn find(name: &str) -> Option<&'static ServiceEntry> {
    REGISTRY
        .services
        .iter()
        .find(|service| service.name == name || service.binary == name)
}

/// The event domains, each with its own stream.
pub fn event_domains() -> Vec<&'static str> {
    REGISTRY.event_domains().collect()
}

/// The documents holding the services table generated from the registry, between
/// `<!-- services:begin -->` and `<!-- services:end -->`.
pub const SERVICES_DOCUMENTS: [&str; 1] = ["README.md"];

/// Where a document's generated services table stands (the byte range between its markers),
/// or what is missing.
pub fn services_table_in(document: &str) -> Result<std::ops::Range<usize>, String> {
    let (begin, end) = ("<!-- services:begin -->\n", "<!-- services:end -->");
    let start = document
        .find(begin)
        .ok_or("no `<!-- services:begin -->` marker")?
        + begin.len();
    let stop = document[start..]
        .find(end)
        .ok_or("no `<!-- services:end -->` marker after `<!-- services:begin -->`")?
        + start;
    Ok(start..stop)
}

/// The services table of the README, generated from the registry: each process with its
/// ports, store, event domains and calls, its name linking to its own README.
pub fn services_table() -> String {
    REGISTRY.services_table()
}

impl Registry {
    /// The services table of the README (see [`services_table`]) for this registry: the
    /// edge first, then the services in registry order.
    pub fn services_table(&self) -> String {
        let list = |items: &[String]| {
            if items.is_empty() {
                "—".to_owned()
            } else {
                items.join(", ")
            }
        };
        let redis = |uses: bool| if uses { "Redis" } else { "—" };
        let upstreams: Vec<String> = self
            .services
            .iter()
            .filter(|service| service.upstream)
            .map(|service| service.name.clone())
            .collect();
        let mut rows = vec![
            "| process | HTTP | gRPC | store | publishes | consumes | calls |".to_owned(),
            "|---|---|---|---|---|---|---|".to_owned(),
            format!(
                "| [gateway](gateway/README.md) | {} | — | {} | — | — | {} (HTTP) |",
                self.gateway.http_port,
                redis(self.gateway.redis),
                list(&upstreams)
            ),
            format!(
                "| [storefront](storefront/README.md) | {} | — | {} | — | — | gateway (HTTP) |",
                self.storefront.http_port,
                redis(self.storefront.redis)
            ),
        ];
        for service in &self.services {
            let grpc = match (service.grpc_port, &service.proto) {
                (Some(port), Some(proto)) => {
                    let file = proto.rsplit('/').next().unwrap_or(proto);
                    format!("{port}, [{file}](proto/{proto})")
                }
                (Some(port), None) => port.to_string(),
                (None, _) => "—".to_owned(),
            };
            let mut store = match service.store {
                Store::Postgres => format!("PostgreSQL `{}`", service.database),
                Store::Mongo => format!("MongoDB `{}`", service.database),
            };
            if service.redis {
                store.push_str(", Redis");
            }
            let publishes = service
                .events
                .as_deref()
                .map_or_else(|| "—".to_owned(), |domain| format!("`{domain}.*`"));
            let consumes: Vec<String> = service
                .consumes
                .iter()
                .map(|domain| format!("`{domain}.*`"))
                .collect();
            let calls = if service.calls.is_empty() {
                "—".to_owned()
            } else {
                format!("{} (gRPC)", service.calls.join(", "))
            };
            rows.push(format!(
                "| [{name}](services/{name}/README.md) | {http} | {grpc} | {store} | {publishes} | {consumes} | {calls} |",
                name = service.name,
                http = service.http_port,
                consumes = list(&consumes),
            ));
        }
        rows.join("\n") + "\n"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_compiled_in_registry_is_valid() {
        let registry = Registry::parse(SOURCE).unwrap();
        assert_eq!(registry.gateway.http_port, 8080);
        // A platform generated from this one may add domains after these.
        assert_eq!(
            event_domains()[..4],
            ["users", "orders", "payments", "inventory"]
        );
        assert_eq!(service("order-service").name, "order");
    }

    #[test]
    fn a_port_declared_twice_is_refused() {
        let source = SOURCE.replace("http_port = 8082", "http_port = 8081");
        let error = Registry::parse(&source).unwrap_err();
        assert_eq!(error, "port 8081 is declared twice");
    }

    #[test]
    fn a_call_to_an_unknown_service_is_refused() {
        let source = SOURCE.replace(
            "calls = [\"inventory\", \"payment\"]",
            "calls = [\"nowhere\"]",
        );
        let error = Registry::parse(&source).unwrap_err();
        assert_eq!(error, "`order` calls unknown service `nowhere`");
    }

    #[test]
    fn a_call_to_a_service_without_grpc_is_refused() {
        let source = SOURCE.replace("calls = [\"user\"]", "calls = [\"order\"]");
        let error = Registry::parse(&source).unwrap_err();
        assert_eq!(
            error,
            "`notification` calls `order`, which has no gRPC port"
        );
    }

    #[test]
    fn consuming_a_domain_nobody_publishes_is_refused() {
        let source = SOURCE.replace("consumes = [\"users\",", "consumes = [\"nowhere\",");
        let error = Registry::parse(&source).unwrap_err();
        assert_eq!(
            error,
            "`notification` consumes `nowhere`, which no service publishes"
        );
    }

    /// The README's services table is generated: `UPDATE_DOCS=1 cargo test -p
    /// platform-registry` (or `make docs`) writes it; otherwise a stale table fails here.
    #[test]
    fn the_readmes_services_table_is_the_registrys() {
        for document in SERVICES_DOCUMENTS {
            let path = format!("{}/../../{document}", env!("CARGO_MANIFEST_DIR"));
            let mut text = std::fs::read_to_string(&path).unwrap();
            let table = services_table_in(&text).unwrap();
            let generated = services_table();
            if std::env::var_os("UPDATE_DOCS").is_some() {
                text.replace_range(table, &generated);
                std::fs::write(&path, text).unwrap();
            } else {
                assert_eq!(
                    &text[table], generated,
                    "{document}'s services table is stale: run `make docs`"
                );
            }
        }
    }

    #[test]
    fn a_document_without_both_services_markers_is_named_as_such() {
        assert_eq!(
            services_table_in("text").unwrap_err(),
            "no `<!-- services:begin -->` marker"
        );
        assert_eq!(
            services_table_in("<!-- services:begin -->\n| a |").unwrap_err(),
            "no `<!-- services:end -->` marker after `<!-- services:begin -->`"
        );
        assert_eq!(
            services_table_in("x\n<!-- services:begin -->\nT\n<!-- services:end -->\n").unwrap(),
            26..28
        );
    }

    #[test]
    fn the_services_table_lists_the_edge_then_every_service() {
        let table = services_table();
        let lines: Vec<&str> = table.lines().collect();
        // A platform generated from this one may add upstreams after these.
        assert!(
            lines[2].starts_with(
                "| [gateway](gateway/README.md) | 8080 | — | Redis | — | — | user, order, payment, inventory, notification"
            ),
            "{}",
            lines[2]
        );
        assert!(lines[2].ends_with(" (HTTP) |"), "{}", lines[2]);
        assert_eq!(
            lines[3],
            "| [storefront](storefront/README.md) | 8000 | — | Redis | — | — | gateway (HTTP) |"
        );
        assert_eq!(
            lines[4],
            "| [user](services/user/README.md) | 8081 | 9081, [user.proto](proto/user/v1/user.proto) | PostgreSQL `users` | `users.*` | — | — |"
        );
        assert_eq!(
            lines[5],
            "| [order](services/order/README.md) | 8082 | — | PostgreSQL `orders` | `orders.*` | — | inventory, payment (gRPC) |"
        );
        assert_eq!(lines.len(), 2 + 2 + services().len());
    }

    #[test]
    fn a_proto_file_without_a_grpc_port_is_refused() {
        let source = SOURCE.replace(
            "http_port = 8082\n",
            "http_port = 8082\nproto = \"order.proto\"\n",
        );
        let error = Registry::parse(&source).unwrap_err();
        assert_eq!(error, "`order` declares a proto file but no gRPC port");
    }

    #[test]
    fn every_declared_proto_file_exists() {
        for service in services() {
            if let Some(proto) = &service.proto {
                let path = format!("{}/../../proto/{proto}", env!("CARGO_MANIFEST_DIR"));
                assert!(
                    std::path::Path::new(&path).is_file(),
                    "`{}` declares proto/{proto}, which does not exist",
                    service.name
                );
            }
        }
    }
}
