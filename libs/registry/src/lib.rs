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

/// The documents holding a ports table generated from the registry, between
/// `<!-- ports:begin -->` and `<!-- ports:end -->`.
pub const PORTS_DOCUMENTS: [&str; 2] = ["README.md", "docs/design.md"];

/// Where a document's generated ports table stands (the byte range between its markers), or
/// what is missing.
pub fn ports_table_in(document: &str) -> Result<std::ops::Range<usize>, String> {
    let (begin, end) = ("<!-- ports:begin -->\n", "<!-- ports:end -->");
    let start = document
        .find(begin)
        .ok_or("no `<!-- ports:begin -->` marker")?
        + begin.len();
    let stop = document[start..]
        .find(end)
        .ok_or("no `<!-- ports:end -->` marker after `<!-- ports:begin -->`")?
        + start;
    Ok(start..stop)
}

/// The ports table of the docs (`| service | HTTP | gRPC |`), generated from the registry.
pub fn ports_table() -> String {
    REGISTRY.ports_table()
}

impl Registry {
    /// The ports table of the docs (`| service | HTTP | gRPC |`) for this registry.
    pub fn ports_table(&self) -> String {
        let mut rows = vec![
            "| service | HTTP | gRPC |".to_owned(),
            "|---|---|---|".to_owned(),
            format!("| gateway | {} | — |", self.gateway.http_port),
            format!("| storefront | {} | — |", self.storefront.http_port),
        ];
        for service in &self.services {
            let grpc = service
                .grpc_port
                .map_or_else(|| "—".to_owned(), |port| port.to_string());
            rows.push(format!(
                "| {} | {} | {grpc} |",
                service.name, service.http_port
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

    /// The ports tables of the README and docs/design.md are generated: `UPDATE_DOCS=1 cargo
    /// test -p platform-registry` writes them; otherwise a stale table fails here.
    #[test]
    fn the_documents_ports_tables_are_the_registrys() {
        for document in PORTS_DOCUMENTS {
            let path = format!("{}/../../{document}", env!("CARGO_MANIFEST_DIR"));
            let mut text = std::fs::read_to_string(&path).unwrap();
            let table = ports_table_in(&text).unwrap();
            let generated = ports_table();
            if std::env::var_os("UPDATE_DOCS").is_some() {
                text.replace_range(table, &generated);
                std::fs::write(&path, text).unwrap();
            } else {
                assert_eq!(
                    &text[table], generated,
                    "{document}'s ports table is stale: run `UPDATE_DOCS=1 cargo test -p platform-registry`"
                );
            }
        }
    }

    #[test]
    fn a_document_without_both_ports_markers_is_named_as_such() {
        assert_eq!(
            ports_table_in("text").unwrap_err(),
            "no `<!-- ports:begin -->` marker"
        );
        assert_eq!(
            ports_table_in("<!-- ports:begin -->\n| a |").unwrap_err(),
            "no `<!-- ports:end -->` marker after `<!-- ports:begin -->`"
        );
        assert_eq!(
            ports_table_in("x\n<!-- ports:begin -->\nT\n<!-- ports:end -->\n").unwrap(),
            23..25
        );
    }

    #[test]
    fn the_ports_table_lists_the_edge_then_every_service() {
        let table = ports_table();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines[2], "| gateway | 8080 | — |");
        assert_eq!(lines[3], "| storefront | 8000 | — |");
        assert_eq!(lines[4], "| user | 8081 | 9081 |");
        assert_eq!(lines[5], "| order | 8082 | — |");
        assert_eq!(lines.len(), 2 + 2 + services().len());
    }
}
