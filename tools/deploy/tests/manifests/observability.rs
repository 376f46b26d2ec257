//! The observability stack (`docker-compose.observability.yml`, `components/observability`) held
//! against the platform and against itself: compose and Kubernetes run the same images and the
//! same configuration files; Prometheus scrapes every process of the platform where it serves
//! `/metrics`, under the job names the alerts and dashboards group by; every address in the
//! collector's, Grafana's, Prometheus's and the NATS exporter's configuration names a compose
//! service, or in Kubernetes a Service and the pods behind it. [`calls`] gives those connections
//! to the network-policy tests, which hold the policies to them as to the services' own.

use std::collections::{BTreeMap, BTreeSet};

use platform_deploy::{Rendered, Variant, Workload, parse_yaml, text, workspace_root};
use serde_json::Value;

use crate::compose::{compose_file, dotenv, interpolate};
use crate::wiring::{host_and_port, resolve};
use crate::{Edges, Outside, platform_binaries, platform_workloads, rendered, variant};

/// The compose services of the observability stack, each a Kubernetes workload of the same name.
const STACK: [&str; 5] = [
    "otel-collector",
    "jaeger",
    "prometheus",
    "nats-exporter",
    "grafana",
];

/// The platform's processes: `(binary, HTTP port)`, where each serves `/metrics`.
fn metrics_ports() -> Vec<(String, u16)> {
    platform_binaries()
        .into_iter()
        .map(|(binary, _, http, _)| (binary, http))
        .collect()
}

/// The data of the ConfigMap that `workload` mounts as the volume `volume`.
fn mounted<'a>(rendered: &'a Rendered, workload: &Workload<'_>, volume: &str) -> &'a Value {
    let name = workload.pod["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|candidate| candidate["name"] == volume)
        .map_or_else(
            || panic!("{} mounts no ConfigMap as {volume}", workload.name),
            |candidate| text(&candidate["configMap"]["name"]),
        );
    &rendered
        .get("ConfigMap", name)
        .unwrap_or_else(|| panic!("{}: the ConfigMap {name} is not there", workload.name))["data"]
}

/// One YAML document held in a ConfigMap (or a file), parsed.
fn yaml(source: &str) -> Value {
    parse_yaml(source).unwrap().remove(0)
}

fn file(path: &str) -> String {
    std::fs::read_to_string(workspace_root().join(path))
        .unwrap_or_else(|error| panic!("{path}: {error}"))
}

/// Every address a Prometheus configuration scrapes statically (`host:port`), by job.
fn static_targets(config: &Value) -> Vec<(String, String)> {
    config["scrape_configs"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|job| {
            job["static_configs"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|group| group["targets"].as_array().cloned().unwrap_or_default())
                .map(|target| (text(&job["job_name"]).to_owned(), text(&target).to_owned()))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The endpoints of the exporters the collector's pipelines use, as URLs.
fn collector_destinations(config: &Value) -> Vec<String> {
    let used: BTreeSet<&str> = config["service"]["pipelines"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|pipeline| pipeline["exporters"].as_array().unwrap())
        .map(text)
        .collect();
    assert!(!used.is_empty(), "the collector exports nothing");
    used.into_iter()
        .filter_map(|exporter| {
            let definition = &config["exporters"][exporter];
            assert!(
                definition.is_object() || (definition.is_null() && exporter == "debug"),
                "the pipelines use an exporter that is not defined: {exporter}"
            );
            definition["endpoint"].as_str().map(|endpoint| {
                if endpoint.contains("://") {
                    endpoint.to_owned()
                } else {
                    format!("http://{endpoint}")
                }
            })
        })
        .collect()
}

/// The URLs of Grafana's provisioned data sources.
fn datasource_urls(provisioning: &Value) -> Vec<String> {
    provisioning["datasources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|source| text(&source["url"]).to_owned())
        .collect()
}

/// `$(NAME)` in a container argument, from the container's environment.
fn expand(argument: &str, env: &[(String, String)]) -> String {
    env.iter().fold(argument.to_owned(), |out, (name, value)| {
        out.replace(&format!("$({name})"), value)
    })
}

/// The connections the observability stack makes inside the namespace, from its configuration:
/// `(caller, callee, container port)`; and the addresses outside it. Empty without the component.
/// Prometheus's scrapes are the pods' annotations (`prometheus.io/port`): with Istio, the
/// injector moves them to the sidecar's merged metrics (:15020) at admission.
pub fn calls(rendered: &Rendered) -> (Edges, Outside) {
    let mut inside = Edges::new();
    let mut outside = Outside::new();
    let Ok(prometheus) = rendered.workload("prometheus") else {
        return (inside, outside);
    };
    for workload in rendered.workloads() {
        let annotations = &workload.object["spec"]["template"]["metadata"]["annotations"];
        if annotations["prometheus.io/scrape"] == "true" {
            let port: i64 = text(&annotations["prometheus.io/port"])
                .parse()
                .unwrap_or_else(|_| panic!("{}: prometheus.io/port", workload.name));
            inside.insert(("prometheus".to_owned(), workload.app().to_owned(), port));
        }
    }
    let mut reach = |caller: &str, url: &str| match resolve(rendered, url) {
        Some((callee, port)) => {
            inside.insert((caller.to_owned(), callee, port));
        }
        None => {
            outside.insert((caller.to_owned(), url.to_owned()));
        }
    };
    let config = yaml(text(
        &mounted(rendered, &prometheus, "config")["prometheus.yml"],
    ));
    for (_, target) in static_targets(&config) {
        if !target.starts_with("localhost:") {
            reach("prometheus", &format!("http://{target}"));
        }
    }
    let collector = rendered.workload("otel-collector").unwrap();
    let config = yaml(text(
        &mounted(rendered, &collector, "config")["config.yaml"],
    ));
    for url in collector_destinations(&config) {
        reach("otel-collector", &url);
    }
    let grafana = rendered.workload("grafana").unwrap();
    for source in string_values(mounted(rendered, &grafana, "datasources")) {
        for url in datasource_urls(&yaml(&source)) {
            reach("grafana", &url);
        }
    }
    let exporter = rendered.workload("nats-exporter").unwrap();
    let container = exporter.containers().next().unwrap();
    let env = rendered
        .environment(container, |_, _| String::new())
        .unwrap();
    let url = expand(
        text(container["args"].as_array().unwrap().last().unwrap()),
        &env,
    );
    reach("nats-exporter", &url);
    (inside, outside)
}

fn string_values(data: &Value) -> Vec<String> {
    data.as_object()
        .into_iter()
        .flatten()
        .map(|(_, value)| text(value).to_owned())
        .collect()
}

fn with_observability() -> impl Iterator<Item = &'static Rendered> {
    rendered()
        .iter()
        .filter(|rendered| rendered.variant.has("observability"))
}

#[test]
fn the_observability_stack_reaches_what_its_configuration_names() {
    for rendered in with_observability() {
        let name = rendered.variant.name();
        let (inside, outside) = calls(rendered);
        for edge in [
            ("otel-collector", "jaeger", 4317),
            ("grafana", "prometheus", 9090),
            ("grafana", "jaeger", 16686),
            ("prometheus", "nats-exporter", 7777),
        ] {
            let edge = (edge.0.to_owned(), edge.1.to_owned(), edge.2);
            assert!(inside.contains(&edge), "{name}: no {edge:?} in {inside:?}");
        }
        // Only the NATS exporter may be sent outside the namespace: where NATS is (prod's is
        // the operator's, merged into the ConfigMap nats-exporter).
        let elsewhere: Vec<_> = outside
            .iter()
            .filter(|(caller, _)| rendered.variant.overlay == "dev" || caller != "nats-exporter")
            .collect();
        assert!(
            elsewhere.is_empty(),
            "{name}: addresses that reach nothing in the namespace: {elsewhere:?}"
        );
        if rendered.variant.overlay == "dev" {
            let edge = ("nats-exporter".to_owned(), "nats".to_owned(), 8222);
            assert!(inside.contains(&edge), "{name}: the exporter reads NATS");
        }
        // Every platform process sends its spans to the collector.
        let (platform, _) = crate::wiring::calls(rendered);
        for (binary, _) in metrics_ports() {
            let edge = (binary.clone(), "otel-collector".to_owned(), 4317);
            assert!(
                platform.contains(&edge),
                "{name}: {binary} does not export its spans to the collector"
            );
        }
    }
}

/// Kubernetes: every platform pod (both tracks of the order service) is annotated with its HTTP
/// port, and the pods job keeps those, one target per pod, `job` = the app's name.
#[test]
fn prometheus_in_kubernetes_scrapes_every_platform_pod_at_its_http_port_under_its_app_name() {
    let ports: BTreeMap<String, u16> = metrics_ports().into_iter().collect();
    for rendered in with_observability() {
        let name = rendered.variant.name();
        for (workload, binary) in platform_workloads(rendered) {
            let annotations = &workload.object["spec"]["template"]["metadata"]["annotations"];
            assert_eq!(
                annotations["prometheus.io/scrape"], "true",
                "{name}: {binary}"
            );
            assert_eq!(
                annotations["prometheus.io/port"],
                ports[&binary].to_string(),
                "{name}: {} is scraped on its HTTP port",
                workload.name
            );
            assert_eq!(annotations["prometheus.io/path"], "/metrics");
        }
        let prometheus = rendered.workload("prometheus").unwrap();
        let config = yaml(text(
            &mounted(rendered, &prometheus, "config")["prometheus.yml"],
        ));
        let pods = config["scrape_configs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|job| job["kubernetes_sd_configs"].is_array())
            .expect("a job that discovers the pods");
        let discovery = &pods["kubernetes_sd_configs"][0];
        assert_eq!(discovery["role"], "pod");
        assert_eq!(discovery["namespaces"]["own_namespace"], true);
        let relabels = pods["relabel_configs"].as_array().unwrap();
        let relabel = |source: &str, target: &str| {
            relabels.iter().any(|rule| {
                rule["source_labels"] == serde_json::json!([source])
                    && (rule["target_label"] == target || rule["action"] == target)
            })
        };
        assert!(relabel(
            "__meta_kubernetes_pod_annotation_prometheus_io_scrape",
            "keep"
        ));
        assert!(relabel(
            "__meta_kubernetes_pod_annotation_prometheus_io_path",
            "__metrics_path__"
        ));
        assert!(
            relabel("__meta_kubernetes_pod_label_app_kubernetes_io_name", "job"),
            "{name}: the job label is the app's name, as in compose and the alerts"
        );
        // The pods it discovers: a token, and a Role that can read them, and nothing else.
        assert_eq!(prometheus.pod["automountServiceAccountToken"], true);
        let binding = rendered
            .of_kind("RoleBinding")
            .find(|binding| {
                binding["subjects"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|subject| subject["name"] == prometheus.pod["serviceAccountName"])
            })
            .expect("a RoleBinding for Prometheus's account");
        let role = rendered
            .get("Role", text(&binding["roleRef"]["name"]))
            .unwrap();
        assert_eq!(
            role["rules"],
            serde_json::json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]),
            "{name}: Prometheus may read pods, nothing more"
        );
        // The rules: the alert file itself, where rule_files looks.
        let rules_mount = prometheus.containers().next().unwrap()["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|mount| mount["name"] == "rules")
            .map(|mount| text(&mount["mountPath"]).to_owned())
            .unwrap();
        assert_eq!(
            config["rule_files"],
            serde_json::json!([format!("{rules_mount}/alerts.yml")])
        );
        assert_eq!(
            text(&mounted(rendered, &prometheus, "rules")["alerts.yml"]),
            file("deploy/prometheus/alerts.yml")
        );
    }
}

/// Compose: a job per process, named after its compose service, at its HTTP port; the rules
/// where the override mounts them.
#[test]
fn prometheus_in_compose_scrapes_every_process_at_its_http_port_under_its_service_name() {
    let ports: BTreeMap<String, u16> = metrics_ports().into_iter().collect();
    let config = yaml(&file("deploy/observability/prometheus.yml"));
    assert_eq!(config["global"]["scrape_interval"], "10s");
    let targets: BTreeMap<String, Vec<String>> =
        static_targets(&config)
            .into_iter()
            .fold(BTreeMap::new(), |mut jobs, (job, target)| {
                jobs.entry(job).or_default().push(target);
                jobs
            });
    for (binary, port) in &ports {
        assert_eq!(
            targets.get(binary),
            Some(&vec![format!("{binary}:{port}")]),
            "compose: the job {binary}"
        );
    }
    let override_file = compose_file("docker-compose.observability.yml");
    let mounts: Vec<&str> = override_file["services"]["prometheus"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(text)
        .collect();
    for rules in config["rule_files"].as_array().unwrap() {
        assert!(
            mounts
                .iter()
                .any(|mount| mount.starts_with("./deploy/prometheus/alerts.yml:")
                    && mount.contains(&format!(":{}:", text(rules)))),
            "compose mounts the alert rules at {rules}: {mounts:?}"
        );
    }
}

#[test]
fn every_address_of_the_compose_observability_stack_names_a_compose_service() {
    let base = compose_file("docker-compose.yml");
    let stack = compose_file("docker-compose.observability.yml");
    let services: BTreeSet<&String> = base["services"]
        .as_object()
        .unwrap()
        .keys()
        .chain(stack["services"].as_object().unwrap().keys())
        .collect();
    let mut addresses = Vec::new();
    for (_, target) in static_targets(&yaml(&file("deploy/observability/prometheus.yml"))) {
        if !target.starts_with("localhost:") {
            addresses.push(("prometheus", format!("http://{target}")));
        }
    }
    for url in collector_destinations(&yaml(&file("deploy/observability/otel-collector.yaml"))) {
        addresses.push(("otel-collector", url));
    }
    for url in datasource_urls(&yaml(&file(
        "deploy/observability/grafana/provisioning/datasources/datasources.yaml",
    ))) {
        addresses.push(("grafana", url));
    }
    let command = stack["services"]["nats-exporter"]["command"]
        .as_array()
        .unwrap();
    addresses.push(("nats-exporter", text(command.last().unwrap()).to_owned()));
    for (caller, url) in addresses {
        let (host, _) = host_and_port(&url).unwrap_or_else(|| panic!("{caller}: {url}"));
        assert!(
            services.contains(&host),
            "{caller} is sent to {host}, which is no compose service"
        );
    }
    // Everything the stack waits for is in the two files.
    for (service, definition) in stack["services"].as_object().unwrap() {
        for dependency in definition["depends_on"].as_object().into_iter().flatten() {
            assert!(
                services.contains(dependency.0),
                "{service} waits for {}",
                dependency.0
            );
        }
    }
}

#[test]
fn compose_and_kubernetes_run_the_same_observability_images_and_files() {
    let stack = compose_file("docker-compose.observability.yml");
    let vars = dotenv();
    let dev = variant(&Variant {
        overlay: "dev",
        components: vec!["observability"],
    });
    for service in STACK {
        let composed = interpolate(text(&stack["services"][service]["image"]), &vars).unwrap();
        let workload = dev.workload(service).unwrap();
        let container = workload.containers().next().unwrap();
        assert_eq!(
            text(&container["image"]),
            composed,
            "{service}: Kubernetes and compose run the same version"
        );
        assert!(
            !composed.ends_with(":latest") && composed.contains(':'),
            "{service}: {composed} is pinned"
        );
    }
    // The same configuration files.
    let collector = dev.workload("otel-collector").unwrap();
    assert_eq!(
        text(&mounted(dev, &collector, "config")["config.yaml"]),
        file("deploy/observability/otel-collector.yaml")
    );
    let grafana = dev.workload("grafana").unwrap();
    for (volume, directory) in [
        ("datasources", "provisioning/datasources"),
        ("dashboard-providers", "provisioning/dashboards"),
        ("dashboards", "dashboards"),
    ] {
        let dir = workspace_root()
            .join("deploy/observability/grafana")
            .join(directory);
        let files: BTreeMap<String, String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.is_file())
            .map(|path| {
                (
                    path.file_name().unwrap().to_string_lossy().into_owned(),
                    std::fs::read_to_string(&path).unwrap(),
                )
            })
            .collect();
        let data: BTreeMap<String, String> = mounted(dev, &grafana, volume)
            .as_object()
            .unwrap()
            .iter()
            .map(|(key, value)| (key.clone(), text(value).to_owned()))
            .collect();
        assert_eq!(
            data.keys().collect::<Vec<_>>(),
            files.keys().collect::<Vec<_>>(),
            "every file of {} is in Grafana's {volume} (deploy/observability/kustomization.yaml)",
            dir.display()
        );
        assert_eq!(data, files, "{volume}");
    }
    // The provider loads the dashboards from where both mount them.
    let providers = yaml(&file(
        "deploy/observability/grafana/provisioning/dashboards/dashboards.yaml",
    ));
    let path = text(&providers["providers"][0]["options"]["path"]);
    let mounts = grafana.containers().next().unwrap()["volumeMounts"].clone();
    assert!(
        mounts
            .as_array()
            .unwrap()
            .iter()
            .any(|mount| mount["name"] == "dashboards" && mount["mountPath"] == path),
        "Kubernetes mounts the dashboards at {path}"
    );
    assert!(
        stack["services"]["grafana"]["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|volume| text(volume).ends_with(&format!(":{path}:ro"))),
        "compose mounts the dashboards at {path}"
    );
    // The NATS exporter asks for the same metrics.
    let exporter = dev.workload("nats-exporter").unwrap();
    let args = exporter.containers().next().unwrap()["args"]
        .as_array()
        .unwrap()
        .clone();
    let command = stack["services"]["nats-exporter"]["command"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(args[..args.len() - 1], command[..command.len() - 1]);
}
