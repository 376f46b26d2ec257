//! `docker-compose.yml` held against the code the same way: each service's settings load from
//! the environment compose gives it (with `.env` substituted, and with the test overlay CI
//! adds, and with the observability stack's), every variable is one a setting reads, and every
//! address names a compose service.

use std::collections::BTreeMap;

use anyhow::{Context as _, anyhow, bail};
use platform_deploy::{Variant, parse_yaml, text, workspace_root};
use serde_json::Value;

use crate::wiring::{host_and_port, load};
use crate::{STANDARD_VARIABLES, platform_binaries, platform_workloads, variant};

/// `.env`'s settings, as compose reads them (quotes around a value are not part of it).
pub fn dotenv() -> BTreeMap<String, String> {
    std::fs::read_to_string(workspace_root().join(".env"))
        .unwrap()
        .lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .map(|(name, value)| {
            let value = value.trim();
            let unquoted = value
                .strip_prefix('\'')
                .and_then(|rest| rest.strip_suffix('\''))
                .or_else(|| {
                    value
                        .strip_prefix('"')
                        .and_then(|rest| rest.strip_suffix('"'))
                })
                .unwrap_or(value);
            (name.trim().to_owned(), unquoted.to_owned())
        })
        .collect()
}

/// Compose's `${NAME}`, `${NAME:-default}`, `${NAME-default}`, `${NAME:?message}`,
/// `${NAME?message}` and `$$`.
pub fn interpolate(value: &str, vars: &BTreeMap<String, String>) -> anyhow::Result<String> {
    let mut out = String::new();
    let mut rest = value;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        rest = &rest[at + 1..];
        if let Some(after) = rest.strip_prefix('$') {
            out.push('$');
            rest = after;
        } else if let Some(after) = rest.strip_prefix('{') {
            let end = after
                .find('}')
                .ok_or_else(|| anyhow!("an unclosed ${{ in {value}"))?;
            let expression = &after[..end];
            rest = &after[end + 1..];
            let name_end = expression
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(expression.len());
            let (name, operator) = expression.split_at(name_end);
            let set = vars.get(name).filter(|value| !value.is_empty());
            let value = match operator {
                "" => vars.get(name).cloned().unwrap_or_default(),
                _ if operator.starts_with(":-") => {
                    set.cloned().unwrap_or_else(|| operator[2..].to_owned())
                }
                _ if operator.starts_with('-') => vars
                    .get(name)
                    .cloned()
                    .unwrap_or_else(|| operator[1..].to_owned()),
                _ if operator.starts_with(":?") || operator.starts_with('?') => {
                    set.cloned().ok_or_else(|| {
                        anyhow!(
                            "{name} is required: {}",
                            operator.trim_start_matches([':', '?'])
                        )
                    })?
                }
                other => bail!("an unsupported substitution {other} in {value}"),
            };
            out.push_str(&value);
        } else {
            bail!("a bare $ in {value}: compose wants ${{NAME}}");
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Each compose service's environment, from `files` (later ones override earlier ones, as
/// `docker compose -f a -f b` does), with `.env` substituted.
fn environments(files: &[&str]) -> anyhow::Result<BTreeMap<String, Vec<(String, String)>>> {
    let vars = dotenv();
    let mut services: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for file in files {
        let text = std::fs::read_to_string(workspace_root().join(file))?;
        let docs = parse_yaml(&text).with_context(|| format!("parsing {file}"))?;
        for (service, definition) in docs[0]["services"].as_object().into_iter().flatten() {
            let environment = services.entry(service.clone()).or_default();
            for (name, value) in definition["environment"].as_object().into_iter().flatten() {
                let value = match value {
                    Value::String(text) => text.clone(),
                    Value::Null => String::new(),
                    other => other.to_string(),
                };
                let value = interpolate(&value, &vars)
                    .with_context(|| format!("{file}: {service}: {name}"))?;
                environment.insert(name.clone(), value);
            }
        }
    }
    Ok(services
        .into_iter()
        .map(|(service, environment)| (service, environment.into_iter().collect()))
        .collect())
}

#[test]
fn each_service_loads_its_configuration_from_the_environment_compose_gives_it() {
    for files in [
        &["docker-compose.yml"][..],
        &["docker-compose.yml", "deploy/compose/test.yml"][..],
        &["docker-compose.yml", "docker-compose.observability.yml"][..],
    ] {
        let services = environments(files).unwrap();
        for (binary, prefix, _, _) in platform_binaries() {
            let env = services
                .get(&binary)
                .unwrap_or_else(|| panic!("{files:?}: no compose service {binary}"));
            for (name, _) in env {
                assert!(
                    name.starts_with(&format!("{prefix}__"))
                        || STANDARD_VARIABLES.contains(&name.as_str()),
                    "{files:?}: {binary} is given {name}, which it does not read"
                );
            }
            let loaded = load(&binary, env, true)
                .unwrap_or_else(|error| panic!("{files:?}: {binary}: {error:#}"));
            for url in loaded.connects {
                let (host, _) = host_and_port(&url)
                    .unwrap_or_else(|| panic!("{files:?}: {binary}: {url} is not an address"));
                assert!(
                    services.contains_key(&host),
                    "{files:?}: {binary} is sent to {host}, which is no compose service"
                );
            }
        }
    }
}

/// A compose file of the repository, parsed.
pub fn compose_file(name: &str) -> Value {
    let text = std::fs::read_to_string(workspace_root().join(name)).unwrap();
    parse_yaml(&text).unwrap().remove(0)
}

#[test]
fn compose_and_kubernetes_run_the_same_images() {
    let compose = compose_file("docker-compose.yml");
    let vars = dotenv();
    let dev = variant(&Variant::plain("dev"));
    for (workload, binary) in platform_workloads(dev) {
        let image = text(&workload.containers().next().unwrap()["image"]);
        let service = &compose["services"][&binary];
        let composed = interpolate(text(&service["image"]), &vars).unwrap();
        assert_eq!(composed, image, "{binary}");
        assert_eq!(
            service["build"]["target"], binary,
            "{binary}: compose builds the Dockerfile's target of that name"
        );
    }
    for store in ["postgres", "mongo", "redis", "nats", "mail"] {
        let workload = dev.workload(store).unwrap();
        let image = &workload.containers().next().unwrap()["image"];
        assert_eq!(
            *image, compose["services"][store]["image"],
            "{store}: Kubernetes and compose run the same version"
        );
    }
}

/// The storefront, like the gateway, is published on the host at its registry port, and starts
/// once what it calls answers: the gateway and Redis.
#[test]
fn the_storefront_is_published_and_waits_for_the_gateway_and_redis() {
    let compose = compose_file("docker-compose.yml");
    let vars = dotenv();
    for edge in [
        platform_registry::gateway(),
        platform_registry::storefront(),
    ] {
        let service = &compose["services"][&edge.binary];
        let published: Vec<String> = service["ports"]
            .as_array()
            .unwrap_or_else(|| panic!("{} is not published", edge.binary))
            .iter()
            .map(|port| interpolate(text(port), &vars).unwrap())
            .collect();
        assert!(
            published
                .iter()
                .any(|port| port.ends_with(&format!(":{}", edge.http_port))),
            "{}: {published:?} does not publish its port {}",
            edge.binary,
            edge.http_port
        );
    }
    let storefront = &compose["services"][&platform_registry::storefront().binary];
    for dependency in [platform_registry::gateway().binary.as_str(), "redis"] {
        assert_eq!(
            storefront["depends_on"][dependency]["condition"], "service_healthy",
            "the storefront waits for {dependency}"
        );
    }
}

#[test]
fn interpolation_follows_compose() {
    let vars: BTreeMap<String, String> = [("SET", "x"), ("EMPTY", "")]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .into();
    assert_eq!(interpolate("a${SET}b$$c", &vars).unwrap(), "axb$c");
    assert_eq!(
        interpolate("${EMPTY:-d}|${EMPTY-d}|${NONE-d}", &vars).unwrap(),
        "d||d"
    );
    assert!(interpolate("${EMPTY:?say so}", &vars).is_err());
    assert_eq!(interpolate("${SET:?say so}", &vars).unwrap(), "x");
}
