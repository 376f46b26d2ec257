//! The edits a new service needs in the deployments: the image, compose, Kubernetes, and the
//! checks of `tools/deploy` that hold them against the code.
//!
//! Its new files (`deploy/k8s/base/<binary>.yaml` and its `config/<binary>.env`) are the
//! service template's own (`templates/service/deploy/`); this plans the lines the existing files
//! need. The new service goes after the last service, before the gateway, wherever the files
//! list them. What names the platform (image prefix, namespace, principals, variable values) is
//! taken from a sibling entry of the file edited, so a renamed platform gets its own names.

use std::ops::Range;

use anyhow::{Context as _, bail, ensure};
use platform_registry::Store;

use crate::{Edits, NewService};

const DOCKERFILE: &str = "Dockerfile";
const COMPOSE: &str = "docker-compose.yml";
const DOTENV: &str = ".env";
const COMPOSE_SCRIPT: &str = "scripts/compose.sh";
const POSTGRES_INIT: &str = "deploy/k8s/stores/postgres-init.sh";
const POSTGRES: &str = "deploy/k8s/stores/postgres.yaml";
const STORES: &str = "deploy/k8s/stores/kustomization.yaml";
const STORE_POLICIES: &str = "deploy/k8s/stores/network-policies.yaml";
const BASE: &str = "deploy/k8s/base/kustomization.yaml";
const GATEWAY_CONFIG: &str = "deploy/k8s/base/config/gateway.env";
const DEV: &str = "deploy/k8s/overlays/dev/kustomization.yaml";
const PROD: &str = "deploy/k8s/overlays/prod/kustomization.yaml";
const AUTOSCALING: &str = "deploy/k8s/overlays/prod/autoscaling.yaml";
const NETWORK_POLICIES: &str = "deploy/k8s/components/network-policies/platform.yaml";
const AUTHORIZATION: &str = "deploy/k8s/components/istio/authorization.yaml";
const DEPLOY_MANIFEST: &str = "tools/deploy/Cargo.toml";
const WIRING: &str = "tools/deploy/tests/manifests/wiring.rs";
const PROMETHEUS: &str = "deploy/observability/prometheus.yml";
const OBSERVABILITY: &str = "deploy/k8s/components/observability/kustomization.yaml";
const SCRAPER_POLICY: &str = "deploy/k8s/components/observability/network-policies.yaml";
const TELEMETRY_POLICY: &str = "deploy/k8s/components/network-policies/telemetry.yaml";

/// The gateway's binary, compose service and workload: the new service goes before it.
const GATEWAY: &str = "gateway";

/// The NATS client port every service's egress allows (the kit's event bus).
const NATS_PORT: u16 = 4222;

/// The Dockerfile's lines are wrapped at this width.
const DOCKERFILE_WIDTH: usize = 96;

/// The label every workload is selected by, in the network policies.
const POD_SELECTOR: &str = "- podSelector: {matchLabels: {app.kubernetes.io/name: ";

/// Plans the deployment edits for `service`.
pub fn plan(edits: &mut Edits, service: &NewService) -> anyhow::Result<()> {
    edits.edit(DOCKERFILE, |text| dockerfile(text, service))?;
    edits.edit(COMPOSE, |text| compose(text, service))?;
    edits.edit(COMPOSE_SCRIPT, |text| compose_script(text, service))?;
    if service.store == Store::Postgres {
        edits.edit(DOTENV, |text| dotenv(text, service))?;
        edits.edit(POSTGRES_INIT, |text| postgres_init(text, service))?;
        edits.edit(POSTGRES, |text| postgres_roles_env(text, service))?;
        edits.edit(STORES, |text| Ok(stores_comment(text, service)))?;
    }
    edits.edit(STORE_POLICIES, |text| store_policies(text, service))?;
    let jwks = Url::parse(
        &env_value(&edits.read(GATEWAY_CONFIG)?, "__JWT__JWKS_URL", '=').with_context(|| {
            format!("{GATEWAY_CONFIG}: no `__JWT__JWKS_URL=` to take the JWKS address from")
        })?,
    )
    .with_context(|| format!("{GATEWAY_CONFIG}: the JWKS URL"))?;
    edits.edit(GATEWAY_CONFIG, |text| gateway_config(text, service))?;
    edits.edit(BASE, |text| base(text, service))?;
    edits.edit(DEV, |text| dev(text, service))?;
    edits.edit(PROD, |text| prod(text, service))?;
    edits.edit(AUTOSCALING, |text| Ok(autoscaling(text, service)))?;
    edits.edit(NETWORK_POLICIES, |text| {
        network_policies(text, service, &jwks)
    })?;
    edits.edit(AUTHORIZATION, |text| authorization(text, service, &jwks))?;
    edits.edit(DEPLOY_MANIFEST, |text| {
        service_dev_dependency(text, service)
    })?;
    edits.edit(WIRING, |text| wiring(text, service))?;
    edits.edit(PROMETHEUS, |text| prometheus(text, service))?;
    edits.edit(OBSERVABILITY, |text| observability(text, service))?;
    edits.edit(SCRAPER_POLICY, |text| scraped_port(text, service))?;
    edits.edit(TELEMETRY_POLICY, |text| scraped_port(text, service))?;
    Ok(())
}

/// The service's HTTP port among those Prometheus may scrape the services on: the first list
/// that holds the sidecar's metrics port (the services' list, before the gateway's).
fn scraped_port(text: &str, service: &NewService) -> anyhow::Result<String> {
    let anchor = "{protocol: TCP, port: 15020}";
    let sidecar = line_containing(text, anchor)
        .with_context(|| format!("`{anchor}` is not there to insert the service's port before"))?;
    let i = " ".repeat(indentation(&text[sidecar.clone()]));
    Ok(insert_all(
        text,
        vec![(
            sidecar.start,
            format!("{i}- {{protocol: TCP, port: {}}}\n", service.http_port),
        )],
    ))
}

// ---------------------------------------------------------------------------------------------
// Observability: compose's Prometheus scrapes it; Kubernetes's finds its pods by annotation
// and gives it the collector's address.

/// A scrape job for the service, after the notification service's.
fn prometheus(text: &str, service: &NewService) -> anyhow::Result<String> {
    let anchor = "  - job_name: nats";
    let nats = line_containing(text, anchor)
        .with_context(|| format!("`{anchor}` is not there to insert the service's job before"))?;
    // Before the comment that introduces NATS's job, if there is one.
    let mut at = nats.start;
    while let Some(previous) = text[..at].strip_suffix('\n').map(|before| {
        let start = before.rfind('\n').map_or(0, |i| i + 1);
        start..at
    }) {
        if text[previous.clone()].trim_start().starts_with('#') {
            at = previous.start;
        } else {
            break;
        }
    }
    let job = format!(
        "  - job_name: {binary}\n    static_configs:\n      - targets: [\"{binary}:{port}\"]\n",
        binary = service.binary,
        port = service.http_port,
    );
    Ok(insert_all(text, vec![(at, job)]))
}

/// The collector's address in the service's ConfigMap and the scrape annotations on its pods,
/// each after the gateway's.
fn observability(text: &str, service: &NewService) -> anyhow::Result<String> {
    let binary = &service.binary;
    let literal = "  - name: gateway\n";
    let config = text
        .find(literal)
        .with_context(|| format!("`{}` is not there to insert after", literal.trim()))?;
    let config_end = text[config + literal.len()..]
        .find("  - name: ")
        .map_or(text.len(), |i| config + literal.len() + i);
    let patch = "  - target: {kind: Deployment, labelSelector: app.kubernetes.io/name=gateway}\n";
    let annotations = text
        .find(patch)
        .with_context(|| format!("`{}` is not there to insert after", patch.trim()))?;
    let annotations_end = text[annotations + patch.len()..]
        .find("  - target: ")
        .map_or(text.len(), |i| annotations + patch.len() + i);
    Ok(insert_all(
        text,
        vec![
            (
                config_end,
                format!(
                    "  - name: {binary}\n    behavior: merge\n    \
                     literals: [OTEL_EXPORTER_OTLP_ENDPOINT=http://otel-collector:4317]\n"
                ),
            ),
            (
                annotations_end,
                format!(
                    "  - target: {{kind: Deployment, labelSelector: app.kubernetes.io/name={binary}}}\n    \
                     patch: |-\n      - op: add\n        path: /spec/template/metadata/annotations\n        \
                     value: {{prometheus.io/scrape: \"true\", prometheus.io/port: \"{port}\", prometheus.io/path: /metrics}}\n",
                    port = service.http_port,
                ),
            ),
        ],
    ))
}

// ---------------------------------------------------------------------------------------------
// The image.

fn dockerfile(text: &str, service: &NewService) -> anyhow::Result<String> {
    let binary = &service.binary;
    let gateway_target = format!("FROM runtime AS {GATEWAY}\n");
    let ports = match service.grpc_port {
        Some(grpc) => format!("{} {grpc}", service.http_port),
        None => service.http_port.to_string(),
    };
    let target = format!(
        "FROM runtime AS {binary}\n\
         LABEL org.opencontainers.image.title=\"{binary}\" \\\n      \
         org.opencontainers.image.description=\"The {name} service: its {resource}, in {store}.\"\n\
         COPY --from=build /out/{binary} /usr/local/bin/{binary}\n\
         EXPOSE {ports}\n\
         HEALTHCHECK --interval=5s --timeout=3s --start-period=30s --retries=3 \\\n    \
         CMD [\"/usr/local/bin/{binary}\", \"healthcheck\"]\n\
         ENTRYPOINT [\"/usr/local/bin/{binary}\"]\n\n",
        name = service.name,
        resource = service.resource,
        store = store_title(service.store),
    );
    let text = insert_before_line(text, &gateway_target, &target)?;
    // Both `cargo build` lists: the dependencies stage and the build stage.
    let package = format!("-p {GATEWAY}");
    let lists = text.matches(&package).count();
    ensure!(
        lists == 2,
        "`{package}` is in {lists} places, not in both `cargo build` lists (the dependencies and \
         build stages)"
    );
    let text = add_to_word_list(&text, &package, &format!("-p {binary}"), true)?;
    add_to_word_list(
        &text,
        &format!("target/dist/{GATEWAY} /out/"),
        &format!("target/dist/{binary}"),
        false,
    )
}

/// `text` with `item` added before every occurrence of `before` (an item of a space-separated
/// list), on the same line while it stays within the Dockerfile's width, else on a continued
/// line: the item ends its line when it fits there, or starts the next one (the first
/// occurrence only, unless `everywhere`).
fn add_to_word_list(
    text: &str,
    before: &str,
    item: &str,
    everywhere: bool,
) -> anyhow::Result<String> {
    ensure!(
        text.contains(before),
        "`{before}` is not there to add `{item}` before"
    );
    let mut out = String::with_capacity(text.len() + 64);
    let mut rest = text;
    while let Some(at) = rest.find(before) {
        let line_start = rest[..at].rfind('\n').map_or(0, |n| n + 1);
        let line_end = rest[at..].find('\n').map_or(rest.len(), |n| at + n);
        let line = &rest[line_start..line_end];
        let wrap = format!(" \\\n{}", " ".repeat(indentation(line)));
        if line.len() + item.len() < DOCKERFILE_WIDTH {
            out.push_str(&rest[..at]);
            out.push_str(item);
            out.push(' ');
        } else if at - line_start + item.len() + 2 <= DOCKERFILE_WIDTH {
            out.push_str(&rest[..at]);
            out.push_str(item);
            out.push_str(&wrap);
        } else {
            out.push_str(rest[..at].trim_end_matches(' '));
            out.push_str(&wrap);
            out.push_str(item);
            out.push(' ');
        }
        out.push_str(before);
        rest = &rest[at + before.len()..];
        if !everywhere {
            break;
        }
    }
    out.push_str(rest);
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Compose.

fn compose(text: &str, service: &NewService) -> anyhow::Result<String> {
    for anchor in ["&service", "&service-env", "&build", "&healthcheck"] {
        ensure!(
            text.contains(&format!("{anchor}\n")),
            "the YAML anchor `{anchor}` is not there (the settings every service shares)"
        );
    }
    let binary = &service.binary;
    let prefix = &service.env_prefix;
    let whole = 0..text.len();
    let gateway = block(text, &whole, &format!("  {GATEWAY}:"))
        .with_context(|| format!("the service `{GATEWAY}:` is not there to insert before"))?;
    let image = yaml_value(text, &gateway, "image").with_context(|| {
        format!("the service `{GATEWAY}` has no `image:` to name the image after")
    })?;
    ensure!(
        image.contains(&format!("/{GATEWAY}:")),
        "the image `{image}` of the service `{GATEWAY}` is not `<prefix>/{GATEWAY}:<tag>`"
    );
    let image = image.replacen(&format!("/{GATEWAY}:"), &format!("/{binary}:"), 1);
    let jwks = env_value(text, "__JWT__JWKS_URL", ':')
        .context("no `*__JWT__JWKS_URL:` to take the JWKS address from")?;
    let nats = env_value(text, "__NATS__URL", ':')
        .context("no `*__NATS__URL:` to take the NATS address from")?;
    let secret = required_to_plain(
        &env_value(text, "__SERVICE_AUTH__SECRET", ':')
            .context("no `*__SERVICE_AUTH__SECRET:` to take the service credential from")?,
    );
    let (store, store_environment) = match service.store {
        Store::Postgres => {
            let sibling = Url::parse(
                &env_value(text, "__DATABASE__URL", ':')
                    .context("no `*__DATABASE__URL:` to take the PostgreSQL address from")?,
            )?;
            let url = format!(
                "      {prefix}__DATABASE__URL: postgres://{}:${{{}}}@{}/{}\n",
                service.crate_ident,
                db_password_variable(service),
                sibling.authority(),
                service.database
            );
            (sibling.host, url)
        }
        Store::Mongo => {
            let url = env_value(text, "__MONGO__URL", ':')
                .context("no `*__MONGO__URL:` to take the MongoDB address from")?;
            let settings = format!(
                "      {prefix}__MONGO__URL: {url}\n      {prefix}__MONGO__DATABASE: {}\n",
                service.database
            );
            (Url::parse(&url)?.host, settings)
        }
    };
    let environment = format!(
        "      {prefix}__JWT__JWKS_URL: {jwks}\n{store_environment}      {prefix}__NATS__URL: \
         {nats}\n      {prefix}__SERVICE_AUTH__SECRET: {secret}\n"
    );
    let depends_on = [store, Url::parse(&nats)?.host, Url::parse(&jwks)?.host]
        .iter()
        .map(|host| format!("      {host}: {{condition: service_healthy}}\n"))
        .collect::<Vec<_>>()
        .concat();
    let definition = format!(
        "  {binary}:\n    <<: *service\n    image: {image}\n    build:\n      <<: *build\n      \
         target: {binary}\n    environment:\n      <<: *service-env\n{environment}    \
         depends_on:\n{depends_on}    healthcheck:\n      test: [\"CMD\", \
         \"/usr/local/bin/{binary}\", \"healthcheck\"]\n      <<: *healthcheck\n    deploy:\n      \
         resources:\n        limits:\n          memory: 64M\n\n"
    );
    let depends = block(text, &gateway, "    depends_on:")
        .with_context(|| format!("the service `{GATEWAY}` has no `depends_on:`"))?;
    let mut insertions = vec![
        (gateway.start, definition),
        upstream(text, &gateway, service, ": ")?,
        (
            depends.end,
            format!("      {binary}: {{condition: service_healthy}}\n"),
        ),
    ];
    if service.store == Store::Postgres {
        let postgres =
            block(text, &whole, "  postgres:").context("the service `postgres:` is not there")?;
        let sibling = last_line(text, &postgres, |line| line.contains("_DB_PASSWORD: ${"))
            .context("the service `postgres` has no `*_DB_PASSWORD: ${...}` to add after")?;
        let variable = db_password_variable(service);
        insertions.push((
            sibling.end,
            format!(
                "{}{variable}: ${{{variable}:?set {variable} in .env}}\n",
                " ".repeat(indentation(&text[sibling]))
            ),
        ));
    }
    Ok(insert_all(text, insertions))
}

/// The gateway's upstream for `service`, after the last one in `within`:
/// `PREFIX__UPSTREAMS__NAME<separator>URL`.
fn upstream(
    text: &str,
    within: &Range<usize>,
    service: &NewService,
    separator: &str,
) -> anyhow::Result<(usize, String)> {
    let sibling =
        last_line(text, within, |line| line.contains("__UPSTREAMS__")).with_context(|| {
            format!("no upstream of the {GATEWAY} (`*__UPSTREAMS__*`) to add after")
        })?;
    let line = &text[sibling.clone()];
    let prefix = &line[..line.find("__UPSTREAMS__").unwrap_or_default()];
    Ok((
        sibling.end,
        format!(
            "{prefix}__UPSTREAMS__{}{separator}http://{}:{}\n",
            service.name.to_ascii_uppercase(),
            service.binary,
            service.http_port
        ),
    ))
}

/// The role's password variable in `.env` and the PostgreSQL container: `SHIPPING_DB_PASSWORD`.
fn db_password_variable(service: &NewService) -> String {
    format!("{}_DB_PASSWORD", service.name.to_ascii_uppercase())
}

/// The development password of the service's role, like its siblings'.
fn dev_db_password(service: &NewService) -> String {
    format!("development-only-{}", service.binary)
}

/// `${NAME:?message}` (compose stops without it) as `${NAME}`: its first user says why.
fn required_to_plain(value: &str) -> String {
    match value
        .strip_prefix("${")
        .and_then(|rest| rest.split_once(":?"))
    {
        Some((name, _)) => format!("${{{name}}}"),
        None => value.to_owned(),
    }
}

fn compose_script(text: &str, service: &NewService) -> anyhow::Result<String> {
    let list = line_starting(text, &(0..text.len()), "SERVICES=(")
        .context("no `SERVICES=(...)` list of the images to build")?;
    let at = text[list.clone()]
        .find(&format!(" {GATEWAY})"))
        .with_context(|| format!("`SERVICES=(...)` does not end with `{GATEWAY})`"))?;
    Ok(insert_all(
        text,
        vec![(list.start + at + 1, format!("{} ", service.binary))],
    ))
}

fn dotenv(text: &str, service: &NewService) -> anyhow::Result<String> {
    let sibling = last_line(text, &(0..text.len()), |line| {
        line.split_once('=')
            .is_some_and(|(name, _)| name.ends_with("_DB_PASSWORD"))
    })
    .context("no `*_DB_PASSWORD=` to add the role's password after")?;
    Ok(insert_all(
        text,
        vec![(
            sibling.end,
            format!(
                "{}={}\n",
                db_password_variable(service),
                dev_db_password(service)
            ),
        )],
    ))
}

fn postgres_init(text: &str, service: &NewService) -> anyhow::Result<String> {
    let sibling = last_line(text, &(0..text.len()), |line| line.starts_with("create "))
        .context("no `create <role> <database> <password>` to add the role after")?;
    Ok(insert_all(
        text,
        vec![(
            sibling.end,
            format!(
                "create {} {} \"${{{}:-}}\"\n",
                service.crate_ident,
                service.database,
                db_password_variable(service)
            ),
        )],
    ))
}

// ---------------------------------------------------------------------------------------------
// Kubernetes: the stores.

/// The PostgreSQL container's variable for the role's password, from `postgres-roles`.
fn postgres_roles_env(text: &str, service: &NewService) -> anyhow::Result<String> {
    let marker = "{secretKeyRef: {name: postgres-roles, key: ";
    let sibling = last_line(text, &(0..text.len()), |line| line.contains(marker))
        .with_context(|| format!("no `{marker}...}}}}` to add the role's password after"))?;
    let indent = indentation(&text[sibling.clone()]);
    Ok(insert_all(
        text,
        vec![(
            sibling.end,
            format!(
                "{}- name: {}\n{}valueFrom: {marker}{}}}}}\n",
                " ".repeat(indent.saturating_sub(2)),
                db_password_variable(service),
                " ".repeat(indent),
                service.name,
            ),
        )],
    ))
}

/// The documented keys of `postgres-roles` (a comment: left alone if it reads otherwise).
fn stores_comment(text: &str, service: &NewService) -> String {
    let documented = "#   postgres-roles ";
    let Some(line) = line_starting(text, &(0..text.len()), documented) else {
        return text.to_owned();
    };
    let content = &text[line.clone()];
    let keys = documented.len()
        + content[documented.len()..]
            .find(|c: char| c != ' ')
            .unwrap_or_default();
    match content[keys..].find("  ") {
        Some(end) => insert_all(
            text,
            vec![(line.start + keys + end, format!(", {}", service.name))],
        ),
        None => text.to_owned(),
    }
}

/// Its store and NATS admit it (overlays/dev's in-cluster stores).
fn store_policies(text: &str, service: &NewService) -> anyhow::Result<String> {
    let store = match service.store {
        Store::Postgres => "postgres",
        Store::Mongo => "mongo",
    };
    let mut insertions = Vec::new();
    for policy in [store, "nats"] {
        let document = document(text, "NetworkPolicy", policy)
            .with_context(|| format!("no NetworkPolicy `{policy}` to admit the service"))?;
        let run = peer_runs(text, &document, is_pod_peer)
            .into_iter()
            .next()
            .with_context(|| {
                format!("the NetworkPolicy `{policy}` has no `{POD_SELECTOR}...` to add after")
            })?;
        insertions.push((run.end, pod_peer(&text[run], &service.binary)));
    }
    Ok(insert_all(text, insertions))
}

// ---------------------------------------------------------------------------------------------
// Kubernetes: the base and the overlays.

fn gateway_config(text: &str, service: &NewService) -> anyhow::Result<String> {
    Ok(insert_all(
        text,
        vec![upstream(text, &(0..text.len()), service, "=")?],
    ))
}

fn base(text: &str, service: &NewService) -> anyhow::Result<String> {
    let binary = &service.binary;
    let whole = 0..text.len();
    let resource = line_starting(text, &whole, &format!("  - {GATEWAY}.yaml"))
        .with_context(|| format!("`  - {GATEWAY}.yaml` is not there to insert before"))?;
    let generator = block(text, &whole, &format!("  - name: {GATEWAY}"))
        .with_context(|| format!("`  - name: {GATEWAY}` is not there to insert before"))?;
    Ok(insert_all(
        text,
        vec![
            secrets_comment(text, service)?,
            (resource.start, format!("  - {binary}.yaml\n")),
            (
                generator.start,
                format!("  - name: {binary}\n    envs: [config/{binary}.env]\n"),
            ),
        ],
    ))
}

/// The line documenting the service's Secret in the base's list (for prod), aligned with its
/// sibling's columns, and where it goes.
fn secrets_comment(text: &str, service: &NewService) -> anyhow::Result<(usize, String)> {
    let (suffix, value) = match service.store {
        Store::Postgres => (
            "-database",
            format!(
                "postgres://{}:...@<host>:5432/{}",
                service.crate_ident, service.database
            ),
        ),
        Store::Mongo => (
            "-mongo",
            "mongodb://<host>:27017/?replicaSet=<name>".to_owned(),
        ),
    };
    let sibling = last_line(text, &(0..text.len()), |line| {
        line.starts_with("#   ")
            && line
                .split_whitespace()
                .nth(1)
                .is_some_and(|word| word.ends_with(suffix))
    })
    .with_context(|| {
        format!("the list of Secrets has no `#   <service>{suffix}  url  ...` to add after")
    })?;
    let line = &text[sibling.clone()];
    let columns = word_starts(line);
    ensure!(
        columns.len() >= 4,
        "the Secret `{}` is not documented as `#   <name>  <keys>  <value>`",
        line.trim_end()
    );
    let pad = |word: &str, width: usize| {
        if word.len() + 2 <= width {
            format!("{word:<width$}")
        } else {
            format!("{word}  ")
        }
    };
    Ok((
        sibling.end,
        format!(
            "{}{}{}{value}\n",
            &line[..columns[1]],
            pad(
                &format!("{}{suffix}", service.binary),
                columns[2] - columns[1]
            ),
            pad("url", columns[3] - columns[2])
        ),
    ))
}

fn dev(text: &str, service: &NewService) -> anyhow::Result<String> {
    let binary = &service.binary;
    let mut insertions = Vec::new();
    match service.store {
        Store::Postgres => {
            let sibling = last_generator(text, "-database")?;
            let url = yaml_literal(text, &sibling, "url=")
                .context("the last `*-database` Secret has no `url=` literal")?;
            let password = dev_db_password(service);
            insertions.push((
                sibling.end,
                format!(
                    "  - name: {binary}-database\n    literals:\n      - url=postgres://{}:{password}@{}/{}\n",
                    service.crate_ident,
                    Url::parse(&url)?.authority(),
                    service.database
                ),
            ));
            let roles = block(text, &(0..text.len()), "  - name: postgres-roles")
                .context("no Secret `  - name: postgres-roles` to add the role's password to")?;
            let last = last_line(text, &roles, |line| line.trim_start().starts_with("- "))
                .context("the Secret `postgres-roles` has no literal to add after")?;
            insertions.push((
                last.end,
                format!(
                    "{}- {}={password}\n",
                    " ".repeat(indentation(&text[last])),
                    service.name
                ),
            ));
        }
        Store::Mongo => {
            let sibling = last_generator(text, "-mongo")?;
            let url = yaml_literal(text, &sibling, "url=")
                .context("the last `*-mongo` Secret has no `url=` literal")?;
            insertions.push((
                sibling.end,
                format!("  - name: {binary}-mongo\n    literals:\n      - url={url}\n"),
            ));
        }
    }
    Ok(insert_all(text, insertions))
}

/// The last generated Secret `  - name: <something><suffix>`, with its lines.
fn last_generator(text: &str, suffix: &str) -> anyhow::Result<Range<usize>> {
    let whole = 0..text.len();
    let header = last_line(text, &whole, |line| {
        line.starts_with("  - name: ") && line.ends_with(suffix)
    })
    .with_context(|| format!("no generated Secret `  - name: <service>{suffix}` to add after"))?;
    let header = text[header].trim_end().to_owned();
    block(text, &whole, &header).with_context(|| format!("`{header}`"))
}

fn prod(text: &str, service: &NewService) -> anyhow::Result<String> {
    let mut insertions = Vec::new();
    for (what, marker) in [("replicas", "count: "), ("images", "newName: ")] {
        let sibling = last_line(text, &(0..text.len()), |line| {
            line.starts_with("  - {name: ") && line.contains(marker)
        })
        .with_context(|| {
            format!("no `  - {{name: ..., {marker}...}}` in `{what}:` to add after")
        })?;
        let line = &text[sibling.clone()];
        let name = line["  - {name: ".len()..]
            .split(',')
            .next()
            .unwrap_or_default();
        // `platform/order-service` or `order-service`: the sibling's binary is the last part.
        let sibling_binary = name.rsplit('/').next().unwrap_or(name);
        insertions.push((
            sibling.end,
            line.replace(
                &format!("{sibling_binary},"),
                &format!("{},", service.binary),
            ),
        ));
    }
    Ok(insert_all(text, insertions))
}

fn autoscaling(text: &str, service: &NewService) -> String {
    let binary = &service.binary;
    append_document(
        text,
        &format!(
            "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: {binary}\n  \
             labels: {{app.kubernetes.io/name: {binary}}}\nspec:\n  scaleTargetRef: {{apiVersion: \
             apps/v1, kind: Deployment, name: {binary}}}\n  minReplicas: 2\n  maxReplicas: 4\n  \
             metrics:\n    - type: Resource\n      resource: {{name: cpu, target: {{type: \
             Utilization, averageUtilization: 70}}}}\n"
        ),
    )
}

// ---------------------------------------------------------------------------------------------
// Kubernetes: the components' policies.

fn network_policies(text: &str, service: &NewService, jwks: &Url) -> anyhow::Result<String> {
    let binary = &service.binary;
    let http = service.http_port;
    // The gateway calls its HTTP API: a rule after the gateway's last one to a pod.
    let gateway = document(text, "NetworkPolicy", GATEWAY)
        .with_context(|| format!("no NetworkPolicy `{GATEWAY}` to let it call the service"))?;
    let last_peer = last_line(text, &gateway, is_pod_peer)
        .with_context(|| format!("the NetworkPolicy `{GATEWAY}` has no egress rule to a pod"))?;
    let rule = last_line(text, &(gateway.start..last_peer.start), |line| {
        line.trim_start().starts_with("- to:")
    })
    .with_context(|| format!("the NetworkPolicy `{GATEWAY}`'s last peer is in no `- to:` rule"))?;
    let rule_indent = indentation(&text[rule]);
    let mut rule_end = last_peer.end;
    for (start, line) in lines_in(text, &(last_peer.end..gateway.end)) {
        if !line.trim().is_empty() && indentation(line) <= rule_indent {
            break;
        }
        rule_end = start + line.len();
    }
    let i = " ".repeat(rule_indent);
    let gateway_rule = format!(
        "{i}- to:\n{i}    {POD_SELECTOR}{binary}}}}}\n{i}  ports:\n{i}    - {{protocol: TCP, port: {http}}}\n"
    );
    // Everybody fetches the JWKS.
    let jwks_policy = document(text, "NetworkPolicy", &jwks.host).with_context(|| {
        format!(
            "no NetworkPolicy `{}` (the JWKS) to admit the service",
            jwks.host
        )
    })?;
    let jwks_peers = rule_peers(
        text,
        &jwks_policy,
        is_pod_peer,
        &format!("port: {}}}", jwks.port),
    )
    .with_context(|| {
        format!(
            "the NetworkPolicy `{}` admits nobody on the JWKS port {} to add the service to",
            jwks.host, jwks.port
        )
    })?;
    let (store, store_port) = match service.store {
        Store::Postgres => ("PostgreSQL", 5432),
        Store::Mongo => ("MongoDB", 27017),
    };
    let policy = format!(
        "# The {resource} API behind the gateway{consumer}.\n\
         apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: {binary}\nspec:\n  \
         podSelector:\n    matchLabels: {{app.kubernetes.io/name: {binary}}}\n  \
         policyTypes: [Ingress, Egress]\n  ingress:\n    - from:\n        \
         {POD_SELECTOR}{GATEWAY}}}}}\n      ports:\n        - {{protocol: TCP, port: {http}}}\n  \
         egress:\n    - to:\n        {POD_SELECTOR}{jwks_host}}}}}\n      ports:\n        \
         - {{protocol: TCP, port: {jwks_port}}}\n    \
         # {store} and NATS, in the cluster (dev) or outside it (prod).\n    - ports:\n        \
         - {{protocol: TCP, port: {store_port}}}\n        - {{protocol: TCP, port: {NATS_PORT}}}\n",
        resource = service.resource,
        consumer = consumer_note(service),
        jwks_host = jwks.host,
        jwks_port = jwks.port,
    );
    let text = insert_all(
        text,
        vec![
            (rule_end, gateway_rule),
            (jwks_peers.end, pod_peer(&text[jwks_peers.clone()], binary)),
        ],
    );
    Ok(append_document(&text, &policy))
}

/// `; it consumes orders events` for a consumer, else nothing.
fn consumer_note(service: &NewService) -> String {
    let domains = service.consumed_domains();
    if domains.is_empty() {
        String::new()
    } else {
        format!("; it consumes {} events", domains.join(", "))
    }
}

fn authorization(text: &str, service: &NewService, jwks: &Url) -> anyhow::Result<String> {
    let binary = &service.binary;
    let is_principal = |line: &str| {
        let line = line.trim_start();
        line.starts_with("- ") && line.contains("/sa/")
    };
    let jwks_policy = document(text, "AuthorizationPolicy", &jwks.host).with_context(|| {
        format!(
            "no AuthorizationPolicy `{}` (the JWKS) to admit the service",
            jwks.host
        )
    })?;
    let peers = rule_peers(
        text,
        &jwks_policy,
        is_principal,
        &format!("ports: [\"{}\"]", jwks.port),
    )
    .with_context(|| {
        format!(
            "the AuthorizationPolicy `{}` admits no principal (`- .../sa/<account>`) on the JWKS \
             port {}",
            jwks.host, jwks.port
        )
    })?;
    // `              - cluster.local/ns/platform/sa/order-service`: the namespace's accounts.
    let last = text[peers.clone()].lines().last().unwrap_or_default();
    let accounts = &last[..last.find("/sa/").unwrap_or_default() + "/sa/".len()];
    let policy = format!(
        "# The {resource} API, to the gateway.\n\
         apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: {binary}\n\
         spec:\n  selector:\n    matchLabels: {{app.kubernetes.io/name: {binary}}}\n  action: ALLOW\n  \
         rules:\n    - from:\n        - source:\n            principals:\n              \
         - {namespace_accounts}{GATEWAY}\n      to:\n        - operation: {{ports: [\"{http}\"]}}\n",
        resource = service.resource,
        namespace_accounts = accounts.trim_start().trim_start_matches("- "),
        http = service.http_port,
    );
    let text = insert_all(text, vec![(peers.end, format!("{accounts}{binary}\n"))]);
    Ok(append_document(&text, &policy))
}

// ---------------------------------------------------------------------------------------------
// The checks of tools/deploy.

/// A manifest two levels below the root (`tools/deploy/Cargo.toml`) with the service's crate
/// among its dev-dependencies.
pub(crate) fn service_dev_dependency(text: &str, service: &NewService) -> anyhow::Result<String> {
    let binary = &service.binary;
    let header = "[dev-dependencies]\n";
    let start = text
        .find(header)
        .map(|at| at + header.len())
        .context("no `[dev-dependencies]` table to add the service's crate to")?;
    // A table ends at the next header.
    let end = text[start..]
        .find("\n[")
        .map_or(text.len(), |at| start + at + 1);
    // In order, as `cargo add` keeps them.
    let mut at = None;
    let mut after_last = start;
    for (line_start, line) in lines_in(text, &(start..end)) {
        let Some((key, _)) = line.split_once('=') else {
            continue;
        };
        if key.trim() > binary.as_str() {
            at = Some(line_start);
            break;
        }
        after_last = line_start + line.len();
    }
    Ok(insert_all(
        text,
        vec![(
            at.unwrap_or(after_last),
            format!(
                "{binary} = {{ path = \"../../services/{}\" }}\n",
                service.name
            ),
        )],
    ))
}

fn wiring(text: &str, service: &NewService) -> anyhow::Result<String> {
    let anchor = format!("\"{GATEWAY}\" => {{");
    let gateway = line_containing(text, &anchor).with_context(|| {
        format!("`{anchor}` (the gateway's arm of `load`) is not there to insert before")
    })?;
    let i = " ".repeat(indentation(&text[gateway.clone()]));
    let store_url = match service.store {
        Store::Postgres => "s.own.database.url",
        Store::Mongo => "s.own.mongo.url",
    };
    let arm = format!(
        "{i}\"{binary}\" => {{\n\
         {i}    let s = settings::<{krate}::Config>(prefix, env)?;\n\
         {i}    let mut loaded = common(&s, http, grpc, env);\n\
         {i}    loaded.connects.push({store_url}.expose().to_owned());\n\
         {i}    loaded\n\
         {i}}}\n",
        binary = service.binary,
        krate = service.crate_ident,
    );
    Ok(insert_all(text, vec![(gateway.start, arm)]))
}

// ---------------------------------------------------------------------------------------------
// Reading the files: lines, blocks by indentation, YAML documents, URLs.

/// `PostgreSQL` or `MongoDB`.
fn store_title(store: Store) -> &'static str {
    match store {
        Store::Postgres => "PostgreSQL",
        Store::Mongo => "MongoDB",
    }
}

/// The host and port of a URL (`scheme://[user@]host:port/...`); the port is required.
#[derive(Debug)]
struct Url {
    host: String,
    port: u16,
}

impl Url {
    fn parse(url: &str) -> anyhow::Result<Self> {
        let (_, rest) = url
            .split_once("://")
            .with_context(|| format!("`{url}` is not a URL"))?;
        let authority = rest.split(['/', '?']).next().unwrap_or_default();
        let host_port = authority
            .rsplit_once('@')
            .map_or(authority, |(_, after)| after);
        let (host, port) = host_port
            .rsplit_once(':')
            .with_context(|| format!("`{url}` names no port"))?;
        Ok(Self {
            host: host.to_owned(),
            port: port
                .parse()
                .with_context(|| format!("`{url}`: the port `{port}`"))?,
        })
    }

    /// `host:port`.
    fn authority(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// Each line of `range` with the offset it starts at (lines keep their `\n`).
fn lines_in<'a>(text: &'a str, range: &Range<usize>) -> impl Iterator<Item = (usize, &'a str)> {
    let mut at = range.start;
    text[range.clone()].split_inclusive('\n').map(move |line| {
        let start = at;
        at += line.len();
        (start, line)
    })
}

fn indentation(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

/// The last line of `range` (with its `\n`) whose text satisfies `matches`.
fn last_line(
    text: &str,
    range: &Range<usize>,
    matches: impl Fn(&str) -> bool,
) -> Option<Range<usize>> {
    lines_in(text, range)
        .filter(|(_, line)| matches(line.trim_end_matches('\n')))
        .last()
        .map(|(start, line)| start..start + line.len())
}

fn line_starting(text: &str, range: &Range<usize>, prefix: &str) -> Option<Range<usize>> {
    lines_in(text, range)
        .find(|(_, line)| line.starts_with(prefix))
        .map(|(start, line)| start..start + line.len())
}

fn line_containing(text: &str, needle: &str) -> Option<Range<usize>> {
    lines_in(text, &(0..text.len()))
        .find(|(_, line)| line.contains(needle))
        .map(|(start, line)| start..start + line.len())
}

/// The line `header` (exactly, in `within`) and the lines under it: up to the next line, not
/// blank nor a comment, indented no deeper than it.
fn block(text: &str, within: &Range<usize>, header: &str) -> Option<Range<usize>> {
    let mut lines = lines_in(text, within);
    let (start, first) = lines.find(|(_, line)| line.trim_end_matches('\n') == header)?;
    let depth = indentation(first);
    let end = lines
        .find(|(_, line)| {
            let content = line.trim();
            !content.is_empty() && !content.starts_with('#') && indentation(line) <= depth
        })
        .map_or(within.end, |(start, _)| start);
    Some(start..end)
}

/// The value of the first `<key>: value` at the block's next level.
fn yaml_value(text: &str, within: &Range<usize>, key: &str) -> Option<String> {
    lines_in(text, within).find_map(|(_, line)| {
        line.trim()
            .strip_prefix(&format!("{key}: "))
            .map(|value| value.trim().to_owned())
    })
}

/// The value of the first list item `- <prefix>value` in the block.
fn yaml_literal(text: &str, within: &Range<usize>, prefix: &str) -> Option<String> {
    lines_in(text, within).find_map(|(_, line)| {
        line.trim()
            .strip_prefix("- ")
            .and_then(|item| item.strip_prefix(prefix))
            .map(str::to_owned)
    })
}

/// The value of the first variable whose name ends with `suffix` (`NAME<separator>value`,
/// compose's `NAME: value` or an env file's `NAME=value`).
fn env_value(text: &str, suffix: &str, separator: char) -> Option<String> {
    text.lines().find_map(|line| {
        let (name, value) = line.trim().split_once(separator)?;
        (name.ends_with(suffix) && !name.starts_with('#')).then(|| value.trim().to_owned())
    })
}

/// The byte offset each whitespace-separated word of `line` starts at.
fn word_starts(line: &str) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut previous_space = true;
    for (at, c) in line.char_indices() {
        if !c.is_whitespace() && previous_space {
            starts.push(at);
        }
        previous_space = c.is_whitespace();
    }
    starts
}

/// The YAML document (between `---` lines) of `kind` named `name` (its `metadata.name`).
fn document(text: &str, kind: &str, name: &str) -> Option<Range<usize>> {
    let mut start = 0;
    let mut documents = Vec::new();
    for (at, line) in lines_in(text, &(0..text.len())) {
        if line.trim_end() == "---" {
            documents.push(start..at);
            start = at + line.len();
        }
    }
    documents.push(start..text.len());
    let kind = format!("kind: {kind}");
    let name = format!("  name: {name}");
    documents.into_iter().find(|document| {
        let lines: Vec<&str> = text[document.clone()].lines().collect();
        lines.contains(&kind.as_str())
            && lines
                .iter()
                .skip_while(|line| **line != "metadata:")
                .find(|line| line.starts_with("  name: "))
                .is_some_and(|line| line.trim_end() == name)
    })
}

/// The runs of consecutive peer lines (`is_peer`) in a document.
fn peer_runs(
    text: &str,
    document: &Range<usize>,
    is_peer: impl Fn(&str) -> bool,
) -> Vec<Range<usize>> {
    let mut runs: Vec<Range<usize>> = Vec::new();
    for (start, line) in lines_in(text, document) {
        if is_peer(line.trim_end_matches('\n')) {
            match runs.last_mut() {
                Some(run) if run.end == start => run.end = start + line.len(),
                _ => runs.push(start..start + line.len()),
            }
        }
    }
    runs
}

/// The first run of peers in `document` whose rule (up to the next `- from:`/`- to:`) holds
/// `port`: who may connect to that port.
fn rule_peers(
    text: &str,
    document: &Range<usize>,
    is_peer: impl Fn(&str) -> bool,
    port: &str,
) -> Option<Range<usize>> {
    peer_runs(text, document, is_peer).into_iter().find(|run| {
        let rest = &text[run.end..document.end];
        let rule_end = ["- from:", "- to:"]
            .iter()
            .filter_map(|next| rest.find(next))
            .min()
            .unwrap_or(rest.len());
        rest[..rule_end].contains(port)
    })
}

/// Whether a line is a NetworkPolicy peer `- podSelector: {matchLabels: {app...: <name>}}`.
fn is_pod_peer(line: &str) -> bool {
    line.trim_start().starts_with(POD_SELECTOR)
}

/// A peer like the run's last one, for the pods of `binary`.
fn pod_peer(run: &str, binary: &str) -> String {
    let last = run.lines().last().unwrap_or_default();
    format!(
        "{}{POD_SELECTOR}{binary}}}}}\n",
        " ".repeat(indentation(last))
    )
}

/// `text` with one more YAML document at its end.
fn append_document(text: &str, document: &str) -> String {
    let mut out = text.to_owned();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str("---\n");
    out.push_str(document);
    out
}

/// `text` with each `(offset, insertion)` made, the offsets being `text`'s; insertions at one
/// offset keep their order.
fn insert_all(text: &str, mut insertions: Vec<(usize, String)>) -> String {
    let mut order: Vec<usize> = (0..insertions.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse((insertions[i].0, i)));
    let mut out = text.to_owned();
    for i in order {
        let insertion = std::mem::take(&mut insertions[i].1);
        out.insert_str(insertions[i].0, &insertion);
    }
    out
}

/// `text` with `insertion` right before the line `anchor` (a whole line, with its `\n`).
fn insert_before_line(text: &str, anchor: &str, insertion: &str) -> anyhow::Result<String> {
    let at = lines_in(text, &(0..text.len()))
        .find(|(_, line)| *line == anchor)
        .map(|(start, _)| start);
    match at {
        Some(at) => {
            let mut out = text.to_owned();
            out.insert_str(at, insertion);
            Ok(out)
        }
        None => bail!("`{}` is not there to insert before", anchor.trim_end()),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::{Path, PathBuf};

    use yaml_rust2::{Yaml, YamlLoader};

    use super::*;
    use crate::Answers;

    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    fn registry() -> String {
        std::fs::read_to_string(root().join("services.toml")).unwrap()
    }

    /// A consumer in PostgreSQL, without gRPC.
    fn courier() -> NewService {
        NewService::plan(
            &Answers {
                name: "courier".to_owned(),
                store: "postgres".to_owned(),
                grpc: false,
                emits: "deliveries.made".to_owned(),
                consumes: "orders.confirmed".to_owned(),
                // Not the next free port: a platform that added services keeps passing.
                http_port: "8186".to_owned(),
                ..Answers::default()
            },
            &registry(),
        )
        .unwrap()
    }

    /// A MongoDB service with a gRPC API (which the service template does not generate yet, so
    /// it is built by hand: the deployments already know how to run one).
    fn tracking() -> NewService {
        NewService {
            name: "tracking".to_owned(),
            binary: "tracking-service".to_owned(),
            crate_ident: "tracking_service".to_owned(),
            env_prefix: "TRACKING_SERVICE".to_owned(),
            http_port: 8186,
            grpc_port: Some(9186),
            store: platform_registry::Store::Mongo,
            database: "parcels".to_owned(),
            resource: "parcels".to_owned(),
            record: "parcel".to_owned(),
            emits: vec![crate::EventType {
                domain: "parcels".to_owned(),
                name: "tracked".to_owned(),
            }],
            consumes: vec![crate::EventType {
                domain: "orders".to_owned(),
                name: "confirmed".to_owned(),
            }],
        }
    }

    fn planned(service: &NewService) -> Edits {
        let mut edits = Edits::new(root());
        plan(&mut edits, service).unwrap();
        edits
    }

    fn original(path: &str) -> String {
        std::fs::read_to_string(root().join(path)).unwrap()
    }

    fn yaml(text: &str) -> Vec<Yaml> {
        YamlLoader::load_from_str(text).unwrap_or_else(|error| panic!("{error}\n{text}"))
    }

    /// The document of `kind` named `name`.
    fn object<'a>(docs: &'a [Yaml], kind: &str, name: &str) -> &'a Yaml {
        docs.iter()
            .find(|doc| {
                doc["kind"].as_str() == Some(kind) && doc["metadata"]["name"].as_str() == Some(name)
            })
            .unwrap_or_else(|| panic!("no {kind} {name}"))
    }

    fn strings(list: &Yaml) -> Vec<String> {
        list.as_vec()
            .unwrap()
            .iter()
            .map(|item| item.as_str().unwrap().to_owned())
            .collect()
    }

    fn pod_peers(peers: &Yaml) -> Vec<String> {
        peers
            .as_vec()
            .unwrap()
            .iter()
            .map(|peer| {
                peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    }

    /// The lines of `edited` that `original` does not have (as many times as it has them).
    fn added(original: &str, edited: &str) -> Vec<String> {
        let mut old: BTreeMap<&str, usize> = BTreeMap::new();
        for line in original.lines() {
            *old.entry(line).or_default() += 1;
        }
        edited
            .lines()
            .filter(|line| match old.get_mut(line) {
                Some(count) if *count > 0 => {
                    *count -= 1;
                    false
                }
                _ => true,
            })
            .map(str::to_owned)
            .collect()
    }

    /// The lines of `original` that are not, in order, in `edited`: changed or removed.
    fn lost(original: &str, edited: &str) -> Vec<String> {
        let edited: Vec<&str> = edited.lines().collect();
        let mut at = 0;
        let mut lost = Vec::new();
        for line in original.lines() {
            match edited[at..].iter().position(|candidate| *candidate == line) {
                Some(found) => at += found + 1,
                None => lost.push(line.to_owned()),
            }
        }
        lost
    }

    const EDITED: [&str; 21] = [
        ".env",
        "Dockerfile",
        "deploy/k8s/base/config/gateway.env",
        "deploy/k8s/base/kustomization.yaml",
        "deploy/k8s/components/istio/authorization.yaml",
        "deploy/k8s/components/network-policies/platform.yaml",
        "deploy/k8s/overlays/dev/kustomization.yaml",
        "deploy/k8s/overlays/prod/autoscaling.yaml",
        "deploy/k8s/overlays/prod/kustomization.yaml",
        "deploy/k8s/stores/kustomization.yaml",
        "deploy/k8s/stores/network-policies.yaml",
        "deploy/k8s/stores/postgres-init.sh",
        "deploy/k8s/stores/postgres.yaml",
        "docker-compose.yml",
        "scripts/compose.sh",
        "tools/deploy/Cargo.toml",
        "tools/deploy/tests/manifests/wiring.rs",
        "deploy/observability/prometheus.yml",
        "deploy/k8s/components/observability/kustomization.yaml",
        "deploy/k8s/components/observability/network-policies.yaml",
        "deploy/k8s/components/network-policies/telemetry.yaml",
    ];

    #[test]
    #[allow(clippy::too_many_lines)] // one walk through every deployment file
    fn a_postgres_service_is_added_to_every_deployment_and_check() {
        let service = courier();
        assert_eq!(service.http_port, 8186);
        let edits = planned(&service);
        let mut wanted: Vec<&str> = EDITED.to_vec();
        wanted.sort_unstable();
        let paths: Vec<String> = edits.paths().map(|p| p.display().to_string()).collect();
        assert_eq!(paths, wanted);

        // Compose: the service like its siblings, the gateway routes to it and waits for it.
        let compose = &yaml(edits.pending(COMPOSE).unwrap())[0];
        let courier = &compose["services"]["courier-service"];
        assert_eq!(
            courier["image"].as_str(),
            Some("${IMAGE_PREFIX:-platform}/courier-service:${IMAGE_TAG:-0.1.0}")
        );
        assert_eq!(courier["build"]["target"].as_str(), Some("courier-service"));
        let environment = &courier["environment"];
        let variable = |name: &str| environment[name].as_str().map(str::to_owned);
        assert_eq!(
            variable("COURIER_SERVICE__DATABASE__URL").as_deref(),
            Some("postgres://courier_service:${COURIER_DB_PASSWORD}@postgres:5432/deliveries")
        );
        assert_eq!(
            variable("COURIER_SERVICE__JWT__JWKS_URL").as_deref(),
            Some("http://user-service:8081/.well-known/jwks.json")
        );
        assert_eq!(
            variable("COURIER_SERVICE__NATS__URL").as_deref(),
            Some("nats://nats:4222")
        );
        assert_eq!(
            variable("COURIER_SERVICE__SERVICE_AUTH__SECRET").as_deref(),
            Some("${SERVICE_SECRET}")
        );
        let own: Vec<&str> = environment
            .as_hash()
            .unwrap()
            .keys()
            .filter_map(Yaml::as_str)
            .filter(|name| *name != "<<")
            .collect();
        assert_eq!(own.len(), 4, "{own:?}");
        let depends: Vec<&str> = courier["depends_on"]
            .as_hash()
            .unwrap()
            .keys()
            .filter_map(Yaml::as_str)
            .collect();
        assert_eq!(depends, ["postgres", "nats", "user-service"]);
        assert_eq!(
            strings(&courier["healthcheck"]["test"]),
            ["CMD", "/usr/local/bin/courier-service", "healthcheck"]
        );
        assert_eq!(
            courier["deploy"]["resources"]["limits"]["memory"].as_str(),
            Some("64M")
        );
        let gateway = &compose["services"]["gateway"];
        assert_eq!(
            gateway["environment"]["GATEWAY__UPSTREAMS__COURIER"].as_str(),
            Some("http://courier-service:8186")
        );
        assert!(gateway["depends_on"]["courier-service"].as_hash().is_some());
        assert_eq!(
            compose["services"]["postgres"]["environment"]["COURIER_DB_PASSWORD"].as_str(),
            Some("${COURIER_DB_PASSWORD:?set COURIER_DB_PASSWORD in .env}")
        );
        assert!(
            edits
                .pending(DOTENV)
                .unwrap()
                .contains("\nCOURIER_DB_PASSWORD=development-only-courier-service\n")
        );
        assert!(
            edits
                .pending(POSTGRES_INIT)
                .unwrap()
                .ends_with("\ncreate courier_service deliveries \"${COURIER_DB_PASSWORD:-}\"\n")
        );
        assert!(
            edits
                .pending(COMPOSE_SCRIPT)
                .unwrap()
                .contains(" courier-service gateway)\n")
        );

        // The image: its target, both build lists, the copy.
        let dockerfile = edits.pending(DOCKERFILE).unwrap();
        assert!(dockerfile.contains(
            "FROM runtime AS courier-service\n\
             LABEL org.opencontainers.image.title=\"courier-service\" \\\n"
        ));
        assert!(dockerfile.contains(
            "COPY --from=build /out/courier-service /usr/local/bin/courier-service\n\
             EXPOSE 8186\n\
             HEALTHCHECK --interval=5s --timeout=3s --start-period=30s --retries=3 \\\n    \
             CMD [\"/usr/local/bin/courier-service\", \"healthcheck\"]\n\
             ENTRYPOINT [\"/usr/local/bin/courier-service\"]\n\nFROM runtime AS gateway\n"
        ));
        // In both build lists (a long list wraps before `-p gateway`).
        assert_eq!(dockerfile.matches("-p courier-service").count(), 2);
        // Copied to /out with the others, last before the gateway.
        let copy = dockerfile.find("target/dist/courier-service").unwrap();
        let gateway = dockerfile.find("target/dist/gateway /out/").unwrap();
        assert!(
            copy < gateway
                && dockerfile[copy..gateway]
                    .trim_start_matches("target/dist/courier-service")
                    .chars()
                    .all(|c| c == ' ' || c == '\\' || c == '\n')
        );
        for line in added(&original(DOCKERFILE), dockerfile) {
            assert!(
                line.len() <= DOCKERFILE_WIDTH || line.contains("image.description"),
                "{line}"
            );
        }

        // Kubernetes: the base, the overlays, the stores.
        let base = edits.pending(BASE).unwrap();
        let kustomization = &yaml(base)[0];
        assert!(strings(&kustomization["resources"]).contains(&"courier-service.yaml".to_owned()));
        assert!(
            kustomization["configMapGenerator"]
                .as_vec()
                .unwrap()
                .iter()
                .any(|g| {
                    g["name"].as_str() == Some("courier-service")
                        && strings(&g["envs"]) == ["config/courier-service.env"]
                })
        );
        assert!(base.contains(
            "\n#   courier-service-database        url      postgres://courier_service:...@<host>:5432/deliveries\n"
        ));
        assert!(
            edits
                .pending(GATEWAY_CONFIG)
                .unwrap()
                .contains("\nGATEWAY__UPSTREAMS__COURIER=http://courier-service:8186\n")
        );
        let dev = &yaml(edits.pending(DEV).unwrap())[0];
        let secret = |name: &str| {
            dev["secretGenerator"]
                .as_vec()
                .unwrap()
                .iter()
                .find(|g| g["name"].as_str() == Some(name))
                .map_or_else(|| panic!("no Secret {name}"), |g| strings(&g["literals"]))
        };
        assert_eq!(
            secret("courier-service-database"),
            [
                "url=postgres://courier_service:development-only-courier-service@postgres:5432/deliveries"
            ]
        );
        assert_eq!(
            secret("postgres-roles").last().unwrap(),
            "courier=development-only-courier-service"
        );
        let prod = edits.pending(PROD).unwrap();
        assert!(prod.contains("\n  - {name: courier-service, count: 2}\n\n"));
        assert!(prod.contains(
            "\n  - {name: platform/courier-service, newName: registry.example.com/platform/courier-service, newTag: 0.1.0}\n\n"
        ));
        let autoscaler = yaml(edits.pending(AUTOSCALING).unwrap());
        let autoscaler = object(&autoscaler, "HorizontalPodAutoscaler", "courier-service");
        assert_eq!(
            autoscaler["spec"]["scaleTargetRef"]["name"].as_str(),
            Some("courier-service")
        );
        assert_eq!(autoscaler["spec"]["minReplicas"].as_i64(), Some(2));
        let postgres = yaml(edits.pending(POSTGRES).unwrap());
        let env = &object(&postgres, "StatefulSet", "postgres")["spec"]["template"]["spec"]["containers"]
            [0]["env"];
        let last = env.as_vec().unwrap().last().unwrap();
        assert_eq!(last["name"].as_str(), Some("COURIER_DB_PASSWORD"));
        assert_eq!(
            last["valueFrom"]["secretKeyRef"]["key"].as_str(),
            Some("courier")
        );
        assert!(
            edits
                .pending(STORES)
                .unwrap()
                .lines()
                .any(|line| line.starts_with("#   postgres-roles") && line.contains(", courier "))
        );
        let stores = yaml(edits.pending(STORE_POLICIES).unwrap());
        for store in ["postgres", "nats"] {
            let peers =
                pod_peers(&object(&stores, "NetworkPolicy", store)["spec"]["ingress"][0]["from"]);
            assert_eq!(
                peers.last().map(String::as_str),
                Some("courier-service"),
                "{store}"
            );
        }
        let mongo =
            pod_peers(&object(&stores, "NetworkPolicy", "mongo")["spec"]["ingress"][0]["from"]);
        assert!(!mongo.contains(&"courier-service".to_owned()));

        // The policies: the gateway calls it, it fetches the JWKS, its own admit the gateway.
        let policies = yaml(edits.pending(NETWORK_POLICIES).unwrap());
        let gateway = object(&policies, "NetworkPolicy", "gateway");
        let egress = gateway["spec"]["egress"].as_vec().unwrap();
        let rule = egress
            .iter()
            .find(|rule| !rule["to"].is_badvalue() && pod_peers(&rule["to"]) == ["courier-service"])
            .unwrap();
        assert_eq!(rule["ports"][0]["port"].as_i64(), Some(8186));
        assert!(
            egress.last().unwrap()["to"].is_badvalue(),
            "Redis stays last"
        );
        let user = object(&policies, "NetworkPolicy", "user-service");
        assert_eq!(
            pod_peers(&user["spec"]["ingress"][0]["from"])
                .last()
                .map(String::as_str),
            Some("courier-service")
        );
        assert_eq!(
            pod_peers(&user["spec"]["ingress"][1]["from"]),
            ["notification-service"]
        );
        let own = object(&policies, "NetworkPolicy", "courier-service");
        assert_eq!(pod_peers(&own["spec"]["ingress"][0]["from"]), ["gateway"]);
        assert_eq!(
            own["spec"]["ingress"][0]["ports"][0]["port"].as_i64(),
            Some(8186)
        );
        assert_eq!(pod_peers(&own["spec"]["egress"][0]["to"]), ["user-service"]);
        assert_eq!(
            own["spec"]["egress"][0]["ports"][0]["port"].as_i64(),
            Some(8081)
        );
        let ports: Vec<i64> = own["spec"]["egress"][1]["ports"]
            .as_vec()
            .unwrap()
            .iter()
            .map(|p| p["port"].as_i64().unwrap())
            .collect();
        assert_eq!(ports, [5432, 4222]);
        let mesh = yaml(edits.pending(AUTHORIZATION).unwrap());
        let user = object(&mesh, "AuthorizationPolicy", "user-service");
        let jwks = strings(&user["spec"]["rules"][0]["from"][0]["source"]["principals"]);
        assert_eq!(
            jwks.last().unwrap(),
            "cluster.local/ns/platform/sa/courier-service"
        );
        let grpc = strings(&user["spec"]["rules"][1]["from"][0]["source"]["principals"]);
        assert_eq!(grpc, ["cluster.local/ns/platform/sa/notification-service"]);
        let own = object(&mesh, "AuthorizationPolicy", "courier-service");
        assert_eq!(
            own["spec"]["rules"].as_vec().unwrap().len(),
            1,
            "nobody calls its gRPC"
        );
        assert_eq!(
            strings(&own["spec"]["rules"][0]["from"][0]["source"]["principals"]),
            ["cluster.local/ns/platform/sa/gateway"]
        );
        assert_eq!(
            strings(&own["spec"]["rules"][0]["to"][0]["operation"]["ports"]),
            ["8186"]
        );

        // The checks: its crate and its loader.
        let manifest = edits.pending(DEPLOY_MANIFEST).unwrap();
        assert!(manifest.contains(
            "async-nats.workspace = true\ncourier-service = { path = \"../../services/courier\" }\nfutures.workspace = true\n"
        ));
        let wiring = edits.pending(WIRING).unwrap();
        assert!(wiring.contains(
            "        \"courier-service\" => {\n            \
             let s = settings::<courier_service::Config>(prefix, env)?;\n            \
             let mut loaded = common(&s, http, grpc, env);\n            \
             loaded.connects.push(s.own.database.url.expose().to_owned());\n            \
             loaded\n        }\n        \"gateway\" => {\n"
        ));

        // Observability: compose's Prometheus scrapes it, Kubernetes's finds its pods.
        let prometheus = &yaml(edits.pending(PROMETHEUS).unwrap())[0];
        let jobs: Vec<(&str, &str)> = prometheus["scrape_configs"]
            .as_vec()
            .unwrap()
            .iter()
            .map(|job| {
                (
                    job["job_name"].as_str().unwrap(),
                    job["static_configs"][0]["targets"][0].as_str().unwrap(),
                )
            })
            .collect();
        assert!(
            jobs.contains(&("courier-service", "courier-service:8186")),
            "{jobs:?}"
        );
        assert_eq!(jobs.last().map(|job| job.0), Some("prometheus"));
        let component = &yaml(edits.pending(OBSERVABILITY).unwrap())[0];
        assert!(
            component["configMapGenerator"]
                .as_vec()
                .unwrap()
                .iter()
                .any(|config| config["name"].as_str() == Some("courier-service")
                    && config["literals"][0].as_str()
                        == Some("OTEL_EXPORTER_OTLP_ENDPOINT=http://otel-collector:4317"))
        );
        let patches = component["patches"].as_vec().unwrap();
        let patch = patches
            .iter()
            .find(|patch| {
                patch["target"]["labelSelector"].as_str()
                    == Some("app.kubernetes.io/name=courier-service")
            })
            .expect("a scrape patch for the service");
        assert!(
            patch["patch"]
                .as_str()
                .unwrap()
                .contains("prometheus.io/port: \"8186\"")
        );
        for policy in [SCRAPER_POLICY, TELEMETRY_POLICY] {
            assert!(
                edits.pending(policy).unwrap().contains(
                    "        - {protocol: TCP, port: 8186}\n        - {protocol: TCP, port: 15020}\n"
                ),
                "{policy}"
            );
        }
    }

    #[test]
    fn a_mongo_service_with_grpc_gets_its_database_and_both_ports() {
        let service = tracking();
        let (http, grpc) = (service.http_port, service.grpc_port.unwrap());
        let edits = planned(&service);
        for untouched in [DOTENV, POSTGRES_INIT, POSTGRES, STORES] {
            assert!(edits.pending(untouched).is_none(), "{untouched}");
        }
        let compose = &yaml(edits.pending(COMPOSE).unwrap())[0];
        let tracking = &compose["services"]["tracking-service"];
        let environment = &tracking["environment"];
        assert_eq!(
            environment["TRACKING_SERVICE__MONGO__URL"].as_str(),
            Some("mongodb://mongo:27017/?replicaSet=rs0")
        );
        assert_eq!(
            environment["TRACKING_SERVICE__MONGO__DATABASE"].as_str(),
            Some("parcels")
        );
        assert!(environment["TRACKING_SERVICE__DATABASE__URL"].is_badvalue());
        assert!(tracking["depends_on"]["mongo"].as_hash().is_some());
        assert!(tracking["depends_on"]["postgres"].is_badvalue());

        let dockerfile = edits.pending(DOCKERFILE).unwrap();
        assert!(dockerfile.contains(&format!("EXPOSE {http} {grpc}\n")));
        assert!(dockerfile.contains("in MongoDB."));

        let dev = &yaml(edits.pending(DEV).unwrap())[0];
        let generator = dev["secretGenerator"]
            .as_vec()
            .unwrap()
            .iter()
            .find(|g| g["name"].as_str() == Some("tracking-service-mongo"))
            .unwrap();
        assert_eq!(
            strings(&generator["literals"]),
            ["url=mongodb://mongo-0.mongo:27017/?replicaSet=rs0"]
        );
        assert!(!edits.pending(DEV).unwrap().contains("tracking="));
        assert!(edits.pending(BASE).unwrap().contains(
            "\n#   tracking-service-mongo          url      mongodb://<host>:27017/?replicaSet=<name>\n"
        ));
        let stores = yaml(edits.pending(STORE_POLICIES).unwrap());
        for store in ["mongo", "nats"] {
            let peers =
                pod_peers(&object(&stores, "NetworkPolicy", store)["spec"]["ingress"][0]["from"]);
            assert!(peers.contains(&"tracking-service".to_owned()), "{store}");
        }
        let postgres =
            pod_peers(&object(&stores, "NetworkPolicy", "postgres")["spec"]["ingress"][0]["from"]);
        assert!(!postgres.contains(&"tracking-service".to_owned()));
        let policies = yaml(edits.pending(NETWORK_POLICIES).unwrap());
        let own = object(&policies, "NetworkPolicy", "tracking-service");
        let ports: Vec<i64> = own["spec"]["egress"][1]["ports"]
            .as_vec()
            .unwrap()
            .iter()
            .map(|p| p["port"].as_i64().unwrap())
            .collect();
        assert_eq!(ports, [27017, 4222]);
        assert_eq!(
            own["spec"]["ingress"].as_vec().unwrap().len(),
            1,
            "nobody calls its gRPC"
        );

        let wiring = edits.pending(WIRING).unwrap();
        assert!(wiring.contains("let s = settings::<tracking_service::Config>(prefix, env)?;"));
        assert!(wiring.contains("loaded.connects.push(s.own.mongo.url.expose().to_owned());"));
    }

    #[test]
    fn a_list_item_that_does_not_fit_its_line_ends_it_or_starts_the_next() {
        let copy = |list: &str| format!("RUN cp \\\n        {list} target/dist/gateway /out/\n");
        let short = "target/dist/a-service";
        let fits = add_to_word_list(
            &copy(short),
            "target/dist/gateway /out/",
            "target/dist/b-service",
            false,
        )
        .unwrap();
        assert_eq!(fits, copy("target/dist/a-service target/dist/b-service"));

        // Room for the item, not for what follows it: the item ends the line.
        let long = "target/dist/notification-service target/dist/shipping-service";
        let ends = add_to_word_list(
            &copy("target/dist/notification-service"),
            "target/dist/gateway /out/",
            "target/dist/shipping-service-long",
            false,
        )
        .unwrap();
        assert!(
            ends.contains(
                "target/dist/shipping-service-long \\\n        target/dist/gateway /out/"
            ),
            "{ends}"
        );
        // No room for the item either: it starts the next line.
        let starts = add_to_word_list(
            &copy(long),
            "target/dist/gateway /out/",
            "target/dist/courier-service",
            false,
        )
        .unwrap();
        assert!(
            starts.contains("target/dist/shipping-service \\\n        target/dist/courier-service target/dist/gateway /out/"),
            "{starts}"
        );
        for text in [fits, ends, starts] {
            assert!(
                text.lines().all(|line| line.len() <= DOCKERFILE_WIDTH),
                "{text}"
            );
        }
    }

    #[test]
    fn the_edits_add_lines_and_change_only_the_lists_written_on_one_line() {
        for service in [courier(), tracking()] {
            let edits = planned(&service);
            for path in edits.paths() {
                let path = path.to_str().unwrap();
                let lost = lost(&original(path), edits.pending(path).unwrap());
                let changed_lists = match path {
                    "Dockerfile" => 3,
                    "scripts/compose.sh" | "deploy/k8s/stores/kustomization.yaml" => 1,
                    _ => 0,
                };
                assert_eq!(lost.len(), changed_lists, "{path}: {lost:#?}");
                for line in added(&original(path), edits.pending(path).unwrap()) {
                    assert!(!line.contains('\t'), "{path}: {line}");
                }
            }
            // Every YAML file still parses.
            for path in edits
                .paths()
                .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
            {
                yaml(edits.pending(path.to_str().unwrap()).unwrap());
            }
        }
    }

    #[test]
    fn a_renamed_platform_gets_its_own_names_in_what_is_added() {
        let service = courier();
        let mut renamed = Edits::new(root());
        for path in EDITED {
            renamed.write(path, original(path).replace("platform", "acme"));
        }
        plan(&mut renamed, &service).unwrap();
        let mut acme = 0;
        for path in EDITED {
            let before = original(path).replace("platform", "acme");
            for line in added(&before, renamed.pending(path).unwrap()) {
                assert!(!line.contains("platform"), "{path}: {line}");
                acme += usize::from(line.contains("acme"));
            }
        }
        // The image (compose, prod), the namespace's principals (two): where the names are the
        // original ones (a generated platform's are its own already, and stay).
        if original(COMPOSE).contains(&format!("{}/", crate::rename::ORIGINAL)) {
            assert!(acme >= 4, "{acme}");
        }
    }

    #[test]
    fn a_missing_anchor_is_named_with_its_file() {
        let service = courier();
        for (path, anchor, named) in [
            (
                DOCKERFILE,
                "FROM runtime AS gateway\n",
                "FROM runtime AS gateway",
            ),
            (COMPOSE, "\n  gateway:\n", "gateway:"),
            (BASE, "  - gateway.yaml\n", "- gateway.yaml"),
            (NETWORK_POLICIES, "  name: user-service\n", "user-service"),
            (WIRING, "\"gateway\" => {", "\"gateway\" => {"),
        ] {
            let mut edits = Edits::new(root());
            edits.write(path, original(path).replacen(anchor, "\n", 1));
            let error = format!("{:#}", plan(&mut edits, &service).unwrap_err());
            assert!(error.contains(path), "{error}");
            assert!(error.contains(named), "{error}");
        }
    }
}
