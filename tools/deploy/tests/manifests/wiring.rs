//! What connects the pods: each service's configuration, loaded by its own code from the
//! environment its Deployment gives it, the addresses in it, and the Services behind them.

use std::collections::{BTreeMap, BTreeSet};

use platform_config::Settings;
use platform_deploy::{Rendered, Variant, selects, string_map, text};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{
    Edges, Outside, STANDARD_VARIABLES, platform_binaries, platform_workloads, rendered,
    service_entry, variant,
};

/// The value a test gives a Secret the rendering does not hold (prod's, made by the operator).
fn operator_secret(secret: &str, key: &str) -> String {
    format!("{secret}.{key}.set-by-the-operator")
}

/// What a process reads from its environment, as far as the checks care.
#[derive(Debug)]
pub struct Loaded {
    /// Where HTTP and gRPC listen.
    pub listens: Vec<(String, u16)>,
    /// Every address it connects to.
    pub connects: Vec<String>,
}

fn settings<S: DeserializeOwned>(
    prefix: &str,
    env: &[(String, String)],
) -> anyhow::Result<Settings<S>> {
    let unread = Settings::<S>::unread_from(prefix, env.iter().cloned());
    anyhow::ensure!(
        unread.is_empty(),
        "set, but no setting reads them: {unread:?}"
    );
    Ok(Settings::<S>::load_from(prefix, env.iter().cloned())?)
}

/// What every service listens on and connects to: its ports, NATS, the JWKS, and the collector
/// its spans are exported to (if any).
fn common<S>(
    settings: &Settings<S>,
    http: u16,
    grpc: Option<u16>,
    env: &[(String, String)],
) -> Loaded {
    let common = &settings.common;
    let mut listens = vec![(common.http.host.clone(), common.http.port.unwrap_or(http))];
    if let Some(grpc) = grpc {
        listens.push((common.grpc.host.clone(), common.grpc.port.unwrap_or(grpc)));
    }
    let mut connects = vec![common.nats.url.clone(), common.jwt.jwks_url.clone()];
    connects.extend(otlp_endpoint(&common.telemetry, env));
    Loaded { listens, connects }
}

/// Where the process exports its spans, as `platform_telemetry` decides: the service's own
/// `TELEMETRY__OTLP_ENDPOINT`, else `OTEL_EXPORTER_OTLP_ENDPOINT`; none when neither is set.
fn otlp_endpoint(
    settings: &platform_config::TelemetrySettings,
    env: &[(String, String)],
) -> Option<String> {
    settings
        .otlp_endpoint
        .clone()
        .or_else(|| {
            env.iter()
                .find(|(name, _)| name == "OTEL_EXPORTER_OTLP_ENDPOINT")
                .map(|(_, value)| value.clone())
        })
        .filter(|endpoint| !endpoint.trim().is_empty())
}

/// Loads `binary`'s configuration with its own types from `env`, refusing variables it does
/// not read. Signing keys are parsed where the rendering holds them.
pub fn load(binary: &str, env: &[(String, String)], keys_held: bool) -> anyhow::Result<Loaded> {
    let (_, prefix, http, grpc) = platform_binaries()
        .into_iter()
        .find(|entry| entry.0 == binary)
        .expect("a platform binary");
    let prefix = prefix.as_str();
    let downstream = |settings: &platform_config::DownstreamSettings, what: &str| {
        settings
            .url
            .clone()
            .ok_or_else(|| anyhow::anyhow!("{prefix}__{what}__URL is not set"))
    };
    let loaded = match binary {
        "user-service" => {
            let s = settings::<user_service::Config>(prefix, env)?;
            if keys_held {
                s.own
                    .tokens
                    .signer(&format!("{prefix}__TOKENS__SIGNING_KEY_PEM"))?;
                anyhow::ensure!(
                    s.own.tokens.signing_key_pem.is_some(),
                    "replicas must share a signing key"
                );
            }
            anyhow::ensure!(s.own.bootstrap_admin.is_some(), "no first administrator");
            let mut loaded = common(&s, http, grpc, env);
            loaded.connects.push(s.own.database.url.expose().to_owned());
            loaded
        }
        "order-service" => {
            let s = settings::<order_service::Config>(prefix, env)?;
            let mut loaded = common(&s, http, grpc, env);
            loaded.connects.extend([
                s.own.database.url.expose().to_owned(),
                downstream(&s.own.inventory, "INVENTORY")?,
                downstream(&s.own.payment, "PAYMENT")?,
            ]);
            loaded
        }
        "payment-service" => {
            let s = settings::<payment_service::Config>(prefix, env)?;
            let mut loaded = common(&s, http, grpc, env);
            loaded.connects.push(s.own.database.url.expose().to_owned());
            loaded
        }
        "inventory-service" => {
            let s = settings::<inventory_service::Config>(prefix, env)?;
            let mut loaded = common(&s, http, grpc, env);
            loaded.connects.extend([
                s.own.mongo.url.expose().to_owned(),
                s.own.redis.url.expose().to_owned(),
            ]);
            loaded
        }
        "notification-service" => {
            let s = settings::<notification_service::Config>(prefix, env)?;
            let mut loaded = common(&s, http, grpc, env);
            loaded.connects.extend([
                s.own.database.url.expose().to_owned(),
                downstream(&s.own.user, "USER")?,
                s.own.smtp.url.expose().to_owned(),
            ]);
            loaded
        }
        "gateway" => {
            let unread =
                platform_config::unread_from::<gateway::Config>(prefix, env.iter().cloned());
            anyhow::ensure!(
                unread.is_empty(),
                "set, but no setting reads them: {unread:?}"
            );
            let config: gateway::Config = platform_config::load_from(prefix, env.iter().cloned())?;
            let mut connects = vec![
                config.jwt.jwks_url.clone(),
                config.redis.url.expose().to_owned(),
            ];
            connects.extend(config.upstream_urls().into_values());
            connects.extend(otlp_endpoint(&config.telemetry, env));
            Loaded {
                listens: vec![(config.http.host.clone(), config.http.port.unwrap_or(http))],
                connects,
            }
        }
        "storefront" => storefront(prefix, env)?,
        other => anyhow::bail!("no loader for {other}"),
    };
    Ok(loaded)
}

/// The storefront's configuration, with its own types: the gateway's public API and its
/// sessions' Redis are all it connects to, besides the collector.
fn storefront(prefix: &str, env: &[(String, String)]) -> anyhow::Result<Loaded> {
    let unread = platform_config::unread_from::<storefront::Config>(prefix, env.iter().cloned());
    anyhow::ensure!(
        unread.is_empty(),
        "set, but no setting reads them: {unread:?}"
    );
    let config: storefront::Config = platform_config::load_from(prefix, env.iter().cloned())?;
    let mut connects = vec![
        config.gateway.url.clone(),
        config.redis.url.expose().to_owned(),
    ];
    connects.extend(otlp_endpoint(&config.telemetry, env));
    Ok(Loaded {
        listens: vec![(config.http.host.clone(), config.port())],
        connects,
    })
}

/// Each platform workload of `rendered`: its binary and what it loads from its environment.
pub fn loaded(rendered: &Rendered) -> Vec<(String, String, anyhow::Result<Loaded>)> {
    let keys_held = rendered.variant.overlay == "dev";
    platform_workloads(rendered)
        .into_iter()
        .map(|(workload, binary)| {
            let container = workload.containers().next().expect("a container");
            let loaded = rendered
                .environment(container, operator_secret)
                .and_then(|env| {
                    // The standard variables the telemetry reads; everything else is the
                    // service's own.
                    let (_, prefix, _, _) = platform_binaries()
                        .into_iter()
                        .find(|entry| entry.0 == binary)
                        .unwrap();
                    for (name, _) in &env {
                        anyhow::ensure!(
                            name.starts_with(&format!("{prefix}__"))
                                || STANDARD_VARIABLES.contains(&name.as_str()),
                            "{name} is read by nobody"
                        );
                    }
                    load(&binary, &env, keys_held)
                });
            (workload.name.to_owned(), binary, loaded)
        })
        .collect()
}

#[test]
fn each_service_loads_its_configuration_from_the_environment_its_deployment_gives_it() {
    for rendered in rendered() {
        let name = rendered.variant.name();
        for (workload, binary, loaded) in loaded(rendered) {
            let loaded =
                loaded.unwrap_or_else(|error| panic!("{name}: {workload} ({binary}): {error:#}"));
            let container = rendered
                .workload(&workload)
                .unwrap()
                .containers()
                .next()
                .unwrap()
                .clone();
            let declared: BTreeSet<(String, i64)> = platform_deploy::container_ports(&container)
                .into_iter()
                .collect();
            let listening: BTreeSet<(String, i64)> = loaded
                .listens
                .iter()
                .zip(["http", "grpc"])
                .map(|((host, port), kind)| {
                    assert_eq!(host, "0.0.0.0", "{name}: {workload} listens on {host} only");
                    (kind.to_owned(), i64::from(*port))
                })
                .collect();
            assert_eq!(
                declared, listening,
                "{name}: {workload} declares other ports than it listens on"
            );
        }
    }
}

/// A URL's host and port (the scheme's default port when it has none).
pub fn host_and_port(url: &str) -> Option<(String, u16)> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?']).next()?;
    let host_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, after)| after);
    let (host, port) = match host_port.rsplit_once(':') {
        Some((host, port)) => (host, port.parse().ok()?),
        None => (
            host_port,
            match scheme {
                "postgres" | "postgresql" => 5432,
                "mongodb" => 27017,
                "redis" => 6379,
                "nats" => 4222,
                "smtp" => 25,
                "smtps" => 465,
                "https" => 443,
                _ => 80,
            },
        ),
    };
    Some((host.to_owned(), port))
}

/// The workload (by `app.kubernetes.io/name`) and container port a URL reaches inside the
/// namespace, through a Service: `None` for an address outside it.
pub fn resolve(rendered: &Rendered, url: &str) -> Option<(String, i64)> {
    let (host, port) = host_and_port(url)?;
    let labels: Vec<&str> = host.split('.').collect();
    // `name`, `name.namespace[.svc...]`, or a headless Service's pod: `pod.name`.
    let service = rendered.get("Service", labels[0]).or_else(|| {
        labels
            .get(1)
            .and_then(|name| rendered.get("Service", name))
            .filter(|service| service["spec"]["clusterIP"] == "None")
    })?;
    let service_port = service["spec"]["ports"]
        .as_array()?
        .iter()
        .find(|candidate| candidate["port"] == i64::from(port))?;
    let selector = string_map(&service["spec"]["selector"]);
    let workload = rendered
        .workloads()
        .into_iter()
        .find(|workload| selects(&selector, &workload.labels))?;
    let container = workload.containers().next()?;
    let target = &service_port["targetPort"];
    let container_port = container["ports"]
        .as_array()?
        .iter()
        .find(|candidate| match target {
            Value::String(name) => candidate["name"] == *name,
            other => candidate["containerPort"] == *other,
        })?;
    Some((
        workload.app().to_owned(),
        container_port["containerPort"].as_i64()?,
    ))
}

/// The calls each workload makes inside the namespace, from its configuration:
/// `(caller, callee, container port)`; and the addresses outside it.
pub fn calls(rendered: &Rendered) -> (Edges, Outside) {
    let mut inside = Edges::new();
    let mut outside = Outside::new();
    for (_, binary, loaded) in loaded(rendered) {
        let loaded = loaded.expect("loads (checked on its own)");
        for url in loaded.connects {
            match resolve(rendered, &url) {
                Some((callee, port)) => {
                    inside.insert((binary.clone(), callee, port));
                }
                None => {
                    outside.insert((binary.clone(), url));
                }
            }
        }
    }
    (inside, outside)
}

#[test]
fn every_address_a_service_is_given_reaches_a_service_it_is_meant_to_call() {
    for rendered in rendered() {
        let name = rendered.variant.name();
        let (inside, outside) = calls(rendered);
        let in_cluster_stores = rendered.variant.overlay == "dev";
        if in_cluster_stores {
            assert!(
                outside.is_empty(),
                "{name}: addresses that reach nothing in the cluster: {outside:?}"
            );
        } else {
            for (caller, url) in &outside {
                assert!(
                    url.contains("set-by-the-operator"),
                    "{name}: {caller} is sent to {url}, outside the cluster, but not by a Secret"
                );
            }
        }
        // The registry's call graph is among them; the storefront calls the gateway.
        let gateway = platform_registry::gateway();
        let storefront = platform_registry::storefront();
        let public_api = (
            storefront.binary.clone(),
            gateway.binary.clone(),
            i64::from(gateway.http_port),
        );
        assert!(
            inside.contains(&public_api),
            "{name}: the storefront is not sent to the gateway's public API"
        );
        for service in platform_registry::services() {
            let http = i64::from(service.http_port);
            assert!(
                inside.contains(&(gateway.binary.clone(), service.binary.clone(), http)),
                "{name}: the gateway is not sent to {}",
                service.binary
            );
            for callee in &service.calls {
                let callee = platform_registry::service(&format!("{callee}-service"));
                let port = i64::from(callee.grpc_port.expect("a callee serves gRPC"));
                assert!(
                    inside.contains(&(service.binary.clone(), callee.binary.clone(), port)),
                    "{name}: {} is not sent to {}'s gRPC API",
                    service.binary,
                    callee.binary
                );
            }
        }
        // Nothing the registry does not know of between the platform's own processes.
        let platform: BTreeSet<String> = platform_binaries().into_iter().map(|b| b.0).collect();
        let jwks = platform_registry::service("user-service");
        for (caller, callee, port) in &inside {
            if !platform.contains(callee) {
                continue;
            }
            // The storefront is a client of the gateway, and of nothing else of the platform's.
            if caller == &storefront.binary {
                assert_eq!(
                    (caller, callee, *port),
                    (&public_api.0, &public_api.1, public_api.2),
                    "{name}: the storefront calls {callee}:{port}, not only the gateway"
                );
                continue;
            }
            let known = (caller == &gateway.binary
                && service_entry(callee).is_some_and(|s| s.upstream))
                || (callee == &jwks.binary && *port == i64::from(jwks.http_port))
                || service_entry(caller).is_some_and(|entry| {
                    entry
                        .calls
                        .iter()
                        .any(|short| format!("{short}-service") == *callee)
                });
            assert!(
                known,
                "{name}: {caller} calls {callee}:{port}, which services.toml does not say"
            );
        }
    }
}

#[test]
fn every_service_selects_pods_and_targets_ports_they_declare() {
    for rendered in rendered() {
        let name = rendered.variant.name();
        for service in rendered.of_kind("Service") {
            let service_name = text(&service["metadata"]["name"]);
            let selector = string_map(&service["spec"]["selector"]);
            assert!(
                !selector.is_empty(),
                "{name}: {service_name} selects every pod"
            );
            let selected: Vec<_> = rendered
                .workloads()
                .into_iter()
                .filter(|workload| selects(&selector, &workload.labels))
                .collect();
            assert!(
                !selected.is_empty(),
                "{name}: {service_name} selects no pod"
            );
            for port in service["spec"]["ports"].as_array().unwrap() {
                for workload in &selected {
                    let declared = workload.containers().any(|container| {
                        container["ports"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .any(|declared| match &port["targetPort"] {
                                Value::String(target) => declared["name"] == *target,
                                other => declared["containerPort"] == *other,
                            })
                    });
                    assert!(
                        declared,
                        "{name}: {service_name}'s port {} targets {} that {} does not declare",
                        port["name"], port["targetPort"], workload.name
                    );
                }
            }
        }
        // Two Ingresses, each reaching its own Service only: the gateway's and the
        // storefront's. No host and path is claimed twice (the storefront has a host of its own;
        // the gateway's rule may have none: every other host).
        let edge: BTreeSet<String> = [
            platform_registry::gateway(),
            platform_registry::storefront(),
        ]
        .iter()
        .map(|entry| entry.binary.clone())
        .collect();
        let ingresses: BTreeSet<String> = rendered
            .of_kind("Ingress")
            .map(|ingress| text(&ingress["metadata"]["name"]).to_owned())
            .collect();
        assert_eq!(ingresses, edge, "{name}: the Ingresses");
        let mut claimed = BTreeSet::new();
        for ingress in rendered.of_kind("Ingress") {
            let ingress_name = text(&ingress["metadata"]["name"]);
            for rule in ingress["spec"]["rules"].as_array().unwrap() {
                let host = text(&rule["host"]).to_owned();
                for path in rule["http"]["paths"].as_array().unwrap() {
                    let backend = &path["backend"]["service"];
                    assert_eq!(backend["name"], ingress_name, "{name}: {ingress_name}");
                    assert_eq!(backend["port"]["name"], "http", "{name}: {ingress_name}");
                    assert!(
                        claimed.insert((host.clone(), text(&path["path"]).to_owned())),
                        "{name}: {ingress_name} claims {host}{} again",
                        path["path"]
                    );
                }
            }
        }
        let hosts = |ingress: &str| -> BTreeSet<String> {
            rendered.get("Ingress", ingress).unwrap()["spec"]["rules"]
                .as_array()
                .unwrap()
                .iter()
                .map(|rule| text(&rule["host"]).to_owned())
                .collect()
        };
        let shop = hosts(&platform_registry::storefront().binary);
        assert!(
            !shop.contains(""),
            "{name}: the storefront's Ingress takes every host from the gateway's"
        );
        assert!(
            shop.is_disjoint(&hosts(&platform_registry::gateway().binary)),
            "{name}: the storefront's and the gateway's Ingresses share a host"
        );
    }
}

#[test]
fn every_workload_has_its_service_account_and_a_disruption_budget() {
    for rendered in rendered() {
        let name = rendered.variant.name();
        for workload in rendered.workloads() {
            let account = text(&workload.pod["serviceAccountName"]);
            assert!(
                rendered.get("ServiceAccount", account).is_some(),
                "{name}: {} runs as {account:?}, which is not there",
                workload.name
            );
        }
        for (workload, _) in platform_workloads(rendered) {
            let budget = rendered.of_kind("PodDisruptionBudget").find(|budget| {
                selects(
                    &string_map(&budget["spec"]["selector"]["matchLabels"]),
                    &workload.labels,
                )
            });
            assert!(
                budget.is_some(),
                "{name}: {} has no disruption budget",
                workload.name
            );
        }
    }
}

#[test]
fn dev_gives_each_service_the_credentials_of_its_own_role_and_database() {
    let dev = variant(&Variant::plain("dev"));
    let roles_secret = secret_name(dev, "postgres-roles");
    let roles = |key: &str| {
        dev.secret_value(&roles_secret, key, |_, _| String::new())
            .unwrap()
    };
    let mut checked = BTreeMap::new();
    for (workload, binary, loaded) in loaded(dev) {
        let Some(entry) = service_entry(&binary) else {
            continue;
        };
        let loaded = loaded.unwrap();
        if entry.store == platform_registry::Store::Postgres {
            let url = loaded
                .connects
                .iter()
                .find(|url| url.starts_with("postgres"))
                .unwrap();
            let wanted = format!(
                "postgres://{}_service:{}@postgres:5432/{}",
                entry.name,
                roles(&entry.name),
                entry.database
            );
            assert_eq!(
                *url, wanted,
                "{workload}: its own role, password and database"
            );
            checked.insert(binary, url.clone());
        }
    }
    let postgres = platform_registry::services()
        .iter()
        .filter(|entry| entry.store == platform_registry::Store::Postgres)
        .count();
    assert_eq!(checked.len(), postgres, "every PostgreSQL service");
    let redis = dev
        .secret_value(&secret_name(dev, "redis"), "password", |_, _| String::new())
        .unwrap();
    let url = dev
        .secret_value(&secret_name(dev, "platform-redis"), "url", |_, _| {
            String::new()
        })
        .unwrap();
    assert_eq!(
        url,
        format!("redis://:{redis}@redis:6379"),
        "Redis's own password"
    );
}

/// The generated name (`name-<hash>`) of the Secret generated as `name`.
fn secret_name(rendered: &Rendered, name: &str) -> String {
    rendered
        .of_kind("Secret")
        .map(|secret| text(&secret["metadata"]["name"]).to_owned())
        .find(|generated| {
            generated
                .strip_prefix(name)
                .and_then(|rest| rest.strip_prefix('-'))
                .is_some_and(|hash| !hash.contains('-'))
        })
        .unwrap_or_else(|| panic!("no Secret {name}"))
}
