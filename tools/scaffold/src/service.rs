//! A new service: what the generator is asked, what follows from it (its binary, variables,
//! ports, resource), and the checks that refuse a bad answer before anything is written.

use std::fmt::{self, Write as _};

use anyhow::{Context as _, bail, ensure};
use platform_registry::{Registry, Store};

/// The first default HTTP port of a service (the gateway has 8080); gRPC ports are 1000 higher.
const FIRST_HTTP_PORT: u16 = 8081;
const GRPC_OFFSET: u16 = 1000;

/// What the generator asks.
#[derive(Clone, Debug, Default)]
pub struct Answers {
    /// The service's short name (`shipping`).
    pub name: String,
    /// `postgres` or `mongo`.
    pub store: String,
    /// Whether it serves an internal gRPC API.
    pub grpc: bool,
    /// The event types it emits, comma-separated (`shipments.created`), all in one domain.
    pub emits: String,
    /// The event types it consumes, comma-separated (`orders.confirmed`).
    pub consumes: String,
    /// Its HTTP port, or empty (or `auto`) for the next free one.
    pub http_port: String,
    /// Its gRPC port, or empty (or `auto`) for the next free one.
    pub grpc_port: String,
}

/// An event type, `domain.name`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventType {
    /// The domain (and stream): `orders`.
    pub domain: String,
    /// The event within it: `confirmed`.
    pub name: String,
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.domain, self.name)
    }
}

impl EventType {
    /// The Rust type of its payload: `shipments.created` is `ShipmentCreated`.
    pub fn type_name(&self) -> String {
        format!("{}{}", pascal(&singular(&self.domain)), pascal(&self.name))
    }
}

/// Everything the templates and the edits need, derived from the answers once.
#[derive(Clone, Debug)]
pub struct NewService {
    /// Short name: `shipping`.
    pub name: String,
    /// Crate and binary: `shipping-service`.
    pub binary: String,
    /// The crate as a Rust path: `shipping_service`.
    pub crate_ident: String,
    /// Variable prefix: `SHIPPING_SERVICE`.
    pub env_prefix: String,
    /// Default HTTP port.
    pub http_port: u16,
    /// Default gRPC port, if it serves gRPC.
    pub grpc_port: Option<u16>,
    /// Its store.
    pub store: Store,
    /// Its database's name (the resource: `shipments`).
    pub database: String,
    /// What it keeps, plural: `shipments` (`/api/v1/shipments`, its table or collection).
    pub resource: String,
    /// One of them: `shipment`.
    pub record: String,
    /// The event types it emits, all in one domain.
    pub emits: Vec<EventType>,
    /// The event types it consumes.
    pub consumes: Vec<EventType>,
}

impl NewService {
    /// Checks the answers against the workspace's registry (`services.toml`'s text) and derives
    /// the rest; every refusal names what to change.
    pub fn plan(answers: &Answers, registry_source: &str) -> anyhow::Result<Self> {
        let registry = Registry::parse(registry_source)
            .map_err(|error| anyhow::anyhow!("services.toml: {error}"))?;
        let name = answers.name.trim();
        ensure!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase()) && name.len() <= 30,
            "`{name}` is not a valid service name: use lower-case ASCII letters only (at most 30), \
             such as `shipping`; it becomes the crate `{{name}}-service`, the variables \
             `{{NAME}}_SERVICE__*` and the gateway upstream"
        );
        ensure!(
            !RESERVED.contains(&name),
            "`{name}` is reserved (a Rust keyword or the gateway's name): choose another service name"
        );
        if registry.services.iter().any(|s| s.name == name) {
            bail!("a service named `{name}` already exists in services.toml: choose another name");
        }
        let binary = format!("{name}-service");
        if registry
            .services
            .iter()
            .any(|s| s.binary == binary || s.env_prefix == shouty(&binary))
        {
            bail!("the binary `{binary}` already exists in services.toml: choose another name");
        }
        let store = match answers.store.trim() {
            "postgres" | "" => Store::Postgres,
            "mongo" => bail!(
                "store `mongo`: this template generates PostgreSQL services; for MongoDB, generate \
                 one and move its store to the kit's `mongo` (the inventory service shows how)"
            ),
            other => bail!("store `{other}` is not one of `postgres` or `mongo`"),
        };
        ensure!(
            !answers.grpc,
            "gRPC: this template generates services with an HTTP API and events; answer no, and \
             add a gRPC API by hand (docs/adding-a-service.md, the payment service shows how)"
        );
        let (emits, consumes, domain) = events(answers, &registry)?;
        let taken: Vec<u16> = [registry.gateway.http_port, registry.storefront.http_port]
            .into_iter()
            .chain(
                registry
                    .services
                    .iter()
                    .flat_map(|s| std::iter::once(s.http_port).chain(s.grpc_port)),
            )
            .collect();
        let http_port = port(&answers.http_port, "HTTP", &taken, FIRST_HTTP_PORT)?;
        let grpc_port = if answers.grpc {
            let mut taken = taken.clone();
            taken.push(http_port);
            Some(port(
                &answers.grpc_port,
                "gRPC",
                &taken,
                http_port + GRPC_OFFSET,
            )?)
        } else {
            ensure!(
                matches!(answers.grpc_port.trim(), "" | "auto"),
                "a gRPC port was given, but the service has no gRPC API"
            );
            None
        };
        let resource = domain.clone().unwrap_or_else(|| plural(name));
        let record = singular(&resource);
        let planned = Self {
            name: name.to_owned(),
            env_prefix: shouty(&binary),
            crate_ident: binary.replace('-', "_"),
            binary,
            http_port,
            grpc_port,
            store,
            database: resource.clone(),
            resource,
            record,
            emits,
            consumes,
        };
        // The registry's own checks, on the registry as it will be.
        let with = format!(
            "{}\n{}",
            registry_source.trim_end(),
            planned.registry_entry()
        );
        Registry::parse(&with).map_err(|error| anyhow::anyhow!("services.toml: {error}"))?;
        Ok(planned)
    }

    /// The domain it publishes, if it emits anything.
    pub fn events_domain(&self) -> Option<&str> {
        self.emits.first().map(|e| e.domain.as_str())
    }

    /// The domains it consumes, each once, in order.
    pub fn consumed_domains(&self) -> Vec<&str> {
        let mut domains: Vec<&str> = Vec::new();
        for event in &self.consumes {
            if !domains.contains(&event.domain.as_str()) {
                domains.push(&event.domain);
            }
        }
        domains
    }

    /// Its entry in `services.toml`.
    pub fn registry_entry(&self) -> String {
        let mut entry = format!(
            "\n[[service]]\nname = \"{}\"\nbinary = \"{}\"\nenv_prefix = \"{}\"\nhttp_port = {}\n",
            self.name, self.binary, self.env_prefix, self.http_port
        );
        if let Some(grpc) = self.grpc_port {
            let _ = writeln!(entry, "grpc_port = {grpc}");
        }
        let _ = writeln!(
            entry,
            "store = \"{}\"\ndatabase = \"{}\"",
            self.store_name(),
            self.database
        );
        if let Some(domain) = self.events_domain() {
            let _ = writeln!(entry, "events = \"{domain}\"");
        }
        let consumed = self.consumed_domains();
        if !consumed.is_empty() {
            let quoted: Vec<String> = consumed.iter().map(|d| format!("\"{d}\"")).collect();
            let _ = writeln!(entry, "consumes = [{}]", quoted.join(", "));
        }
        entry + "upstream = true\n"
    }

    /// `postgres` or `mongo`.
    pub fn store_name(&self) -> &'static str {
        match self.store {
            Store::Postgres => "postgres",
            Store::Mongo => "mongo",
        }
    }

    /// The values the template's files are rendered with (`{{ binary }}` and the like), as
    /// `name=value` lines the hook sets as template variables.
    pub fn variables(&self) -> Vec<(&'static str, String)> {
        let join = |events: &[EventType]| {
            events
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        };
        vec![
            ("service", self.name.clone()),
            ("Service", pascal(&self.name)),
            ("binary", self.binary.clone()),
            ("crate_ident", self.crate_ident.clone()),
            ("env_prefix", self.env_prefix.clone()),
            ("http_port", self.http_port.to_string()),
            (
                "grpc_port",
                self.grpc_port.map(|p| p.to_string()).unwrap_or_default(),
            ),
            ("has_grpc", self.grpc_port.is_some().to_string()),
            ("store", self.store_name().to_owned()),
            ("database", self.database.clone()),
            ("resource", self.resource.clone()),
            ("record", self.record.clone()),
            ("Record", pascal(&self.record)),
            ("emits", join(&self.emits)),
            (
                "emitted_event",
                self.emits
                    .first()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
            ),
            (
                "EmittedEvent",
                self.emits
                    .first()
                    .map(EventType::type_name)
                    .unwrap_or_default(),
            ),
            (
                "events_domain",
                self.events_domain().unwrap_or_default().to_owned(),
            ),
            ("consumes", join(&self.consumes)),
            ("consumes_domains", self.consumed_domains().join(",")),
        ]
    }
}

/// The events the answers name, checked against the registry: what it emits (one type, in a
/// domain of its own), what it consumes (published by someone), and its domain.
fn events(
    answers: &Answers,
    registry: &Registry,
) -> anyhow::Result<(Vec<EventType>, Vec<EventType>, Option<String>)> {
    let emits = event_types(&answers.emits, "emits")?;
    let consumes = event_types(&answers.consumes, "consumes")?;
    ensure!(
        emits.len() <= 1,
        "emits: give one event type (the one announcing a new record); add more by hand"
    );
    let domain = emits.first().map(|e| e.domain.clone());
    if let Some(domain) = &domain {
        if let Some(owner) = registry
            .services
            .iter()
            .find(|s| s.events.as_deref() == Some(domain))
        {
            bail!(
                "emits: the domain `{domain}` is already published by `{}`; choose a domain of \
                 the new service's own",
                owner.name
            );
        }
        if consumes.iter().any(|c| &c.domain == domain) {
            bail!("a service cannot consume its own domain `{domain}`");
        }
    }
    for consumed in &consumes {
        ensure!(
            registry.event_domains().any(|d| d == consumed.domain),
            "consumes: no service publishes `{}` (the published domains are: {})",
            consumed.domain,
            registry.event_domains().collect::<Vec<_>>().join(", ")
        );
    }
    Ok((emits, consumes, domain))
}

/// Names a service may not take: Rust keywords (its crate's module paths) and the gateway's.
const RESERVED: &[&str] = &[
    "gateway", "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else",
    "enum", "extern", "false", "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod",
    "move", "mut", "pub", "ref", "return", "self", "static", "struct", "super", "trait", "true",
    "type", "unsafe", "use", "where", "while", "abstract", "become", "box", "do", "final", "macro",
    "override", "priv", "typeof", "unsized", "virtual", "yield", "try", "gen",
];

fn event_types(list: &str, what: &str) -> anyhow::Result<Vec<EventType>> {
    let mut events: Vec<EventType> = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (domain, name) = item.split_once('.').with_context(|| {
            format!(
                "{what}: `{item}` is not an event type `domain.name` (such as `orders.confirmed`)"
            )
        })?;
        let word = |s: &str| {
            !s.is_empty()
                && s.starts_with(|c: char| c.is_ascii_lowercase())
                && s.chars().all(|c| c.is_ascii_lowercase() || c == '_')
        };
        ensure!(
            word(domain) && word(name) && !name.contains('.'),
            "{what}: `{item}` is not an event type `domain.name` of lower-case letters (and `_`), \
             such as `orders.confirmed`"
        );
        let event = EventType {
            domain: domain.to_owned(),
            name: name.to_owned(),
        };
        if !events.contains(&event) {
            events.push(event);
        }
    }
    Ok(events)
}

fn port(answer: &str, what: &str, taken: &[u16], from: u16) -> anyhow::Result<u16> {
    match answer.trim() {
        "" | "auto" => (from..u16::MAX)
            .find(|p| !taken.contains(p) && !taken.contains(&(p + GRPC_OFFSET)))
            .with_context(|| format!("no free {what} port from {from}")),
        given => {
            let port: u16 = given.parse().ok().filter(|p| *p >= 1024).with_context(|| {
                format!("{what} port `{given}` is not a port number from 1024 to 65535")
            })?;
            ensure!(
                !taken.contains(&port),
                "{what} port {port} is already taken in services.toml (taken: {}); choose another, or leave it empty for the next free one",
                {
                    let mut sorted = taken.to_vec();
                    sorted.sort_unstable();
                    sorted
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            );
            Ok(port)
        }
    }
}

/// `SHIPPING_SERVICE` from `shipping-service`.
pub fn shouty(kebab: &str) -> String {
    kebab.replace('-', "_").to_ascii_uppercase()
}

/// `ShipmentCreated` from `shipment_created`.
pub fn pascal(word: &str) -> String {
    word.split(['_', '-'])
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect()
}

/// A plural good enough for a generated resource name (`shipping` is `shippings`; pick the
/// emitted domain to name it yourself).
pub fn plural(word: &str) -> String {
    if word.ends_with('s') {
        word.to_owned()
    } else if let Some(stem) = word.strip_suffix('y') {
        format!("{stem}ies")
    } else {
        format!("{word}s")
    }
}

/// The singular of a domain name: `shipments` is `shipment`, `inventory` stays.
pub fn singular(word: &str) -> String {
    if let Some(stem) = word.strip_suffix("ies") {
        format!("{stem}y")
    } else if let Some(stem) = word.strip_suffix('s').filter(|s| !s.ends_with('s')) {
        stem.to_owned()
    } else {
        word.to_owned()
    }
}
