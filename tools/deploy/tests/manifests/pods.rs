//! What every pod runs: probes, limits, hardening, images, and the shutdown budget.

use std::time::Duration;

use platform_deploy::{Variant, Workload, container_ports, text, workspace_root};
use platform_health::probe::Probe;
use serde_json::Value;

use crate::{platform_workloads, rendered, service_entry, variant};

/// The port a probe (or a Service) names, resolved against the container's declared ports.
fn resolve_port(container: &Value, port: &Value) -> Option<i64> {
    let declared = container_ports(container);
    match port {
        Value::String(name) => declared.get(name).copied(),
        Value::Number(number) => number
            .as_i64()
            .filter(|number| declared.values().any(|port| port == number)),
        _ => None,
    }
}

fn seconds(value: &Value, default: i64) -> i64 {
    value.as_i64().unwrap_or(default)
}

#[test]
fn every_container_has_probes_limits_and_runs_non_root_on_a_read_only_root() {
    for rendered in rendered() {
        let name = rendered.variant.name();
        for workload in rendered.workloads() {
            let pod = workload.pod;
            let pod_security = &pod["securityContext"];
            assert_eq!(
                pod_security["seccompProfile"]["type"], "RuntimeDefault",
                "{name}: {} has no RuntimeDefault seccomp profile",
                workload.name
            );
            // Only a pod whose account a RoleBinding grants something talks to the API server
            // (Prometheus, which discovers the pods it scrapes).
            let account = &pod["serviceAccountName"];
            let granted = rendered.of_kind("RoleBinding").any(|binding| {
                binding["subjects"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|subject| {
                        subject["kind"] == "ServiceAccount" && subject["name"] == *account
                    })
            });
            assert!(
                pod["automountServiceAccountToken"] == false
                    || (granted && pod["automountServiceAccountToken"] == true),
                "{name}: {} mounts an API token it never uses",
                workload.name
            );
            for container in workload.containers() {
                let what = format!("{name}: {}/{}", workload.name, container["name"]);
                let security = &container["securityContext"];
                assert!(
                    security["runAsNonRoot"] == true || pod_security["runAsNonRoot"] == true,
                    "{what} may run as root"
                );
                let user = security["runAsUser"]
                    .as_i64()
                    .or(pod_security["runAsUser"].as_i64());
                assert!(user.is_some_and(|uid| uid > 0), "{what}: user {user:?}");
                assert_eq!(security["readOnlyRootFilesystem"], true, "{what}");
                assert_eq!(security["allowPrivilegeEscalation"], false, "{what}");
                assert_eq!(
                    security["capabilities"]["drop"],
                    serde_json::json!(["ALL"]),
                    "{what} keeps capabilities"
                );
                assert!(
                    security["capabilities"]["add"].is_null(),
                    "{what} adds capabilities"
                );
                for probe in ["livenessProbe", "readinessProbe"] {
                    assert!(container[probe].is_object(), "{what} has no {probe}");
                }
                let resources = &container["resources"];
                for (section, key) in [
                    ("requests", "cpu"),
                    ("requests", "memory"),
                    ("limits", "cpu"),
                    ("limits", "memory"),
                ] {
                    assert!(
                        resources[section][key].is_string(),
                        "{what} has no {section}.{key}"
                    );
                }
                for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
                    let probe = &container[probe];
                    for action in ["httpGet", "grpc", "tcpSocket"] {
                        if probe[action].is_object() {
                            assert!(
                                resolve_port(container, &probe[action]["port"]).is_some(),
                                "{what}: a probe on an undeclared port {}",
                                probe[action]["port"]
                            );
                        }
                    }
                }
            }
        }
    }
}

/// The real endpoints: the health router's paths, and `grpc.health.v1` on the gRPC port.
#[test]
fn every_platform_container_probes_its_health_endpoints_and_its_grpc_health_service() {
    for rendered in rendered() {
        let name = rendered.variant.name();
        for (workload, binary) in platform_workloads(rendered) {
            let container = workload.containers().next().unwrap();
            let what = format!("{name}: {}", workload.name);
            let grpc_port = service_entry(&binary).and_then(|entry| entry.grpc_port);
            for probe in ["startupProbe", "livenessProbe"] {
                assert_eq!(
                    container[probe]["httpGet"]["path"],
                    Probe::Live.path(),
                    "{what}: {probe}"
                );
            }
            let readiness = &container["readinessProbe"];
            match grpc_port {
                // The gRPC health service reports the same checks as /health/ready: probing it
                // covers the gRPC listener too.
                Some(port) => assert_eq!(
                    readiness["grpc"]["port"],
                    i64::from(port),
                    "{what}: readiness asks grpc.health.v1"
                ),
                None => assert_eq!(
                    readiness["httpGet"]["path"],
                    Probe::Ready.path(),
                    "{what}: readiness"
                ),
            }
            // A starting service waits for its store: the startup probe gives it that long.
            let startup = &container["startupProbe"];
            let budget = seconds(&startup["periodSeconds"], 10)
                * seconds(&startup["failureThreshold"], 3)
                + seconds(&startup["initialDelaySeconds"], 0);
            assert!(
                u64::try_from(budget).unwrap() >= platform_kit::STORE_WAIT.as_secs(),
                "{what}: the startup probe gives up after {budget} s, before the service stops \
                 waiting for its store ({:?})",
                platform_kit::STORE_WAIT
            );
        }
    }
}

#[test]
fn the_grace_period_holds_the_pre_stop_pause_and_the_drain() {
    for rendered in rendered() {
        let name = rendered.variant.name();
        for (workload, binary) in platform_workloads(rendered) {
            let container = workload.containers().next().unwrap();
            let pause = container["lifecycle"]["preStop"]["sleep"]["seconds"]
                .as_i64()
                .unwrap_or_else(|| {
                    panic!(
                        "{name}: {} has no preStop pause (endpoints drop the pod while it still \
                         serves)",
                        workload.name
                    )
                });
            assert!(pause >= 1);
            // The storefront drains for 10 s (a private constant of storefront::app): the
            // services' default bounds it.
            let drain: Duration = if binary == gateway::SERVICE_NAME {
                gateway::DRAIN_TIMEOUT
            } else {
                platform_kit::DEFAULT_DRAIN_TIMEOUT
            };
            let grace = seconds(&workload.pod["terminationGracePeriodSeconds"], 30);
            assert!(
                grace >= pause + i64::try_from(drain.as_secs()).unwrap(),
                "{name}: {} is killed after {grace} s, before its {pause} s pause and {drain:?} \
                 drain end",
                workload.name
            );
        }
    }
}

#[test]
fn every_platform_image_is_one_the_build_produces() {
    let dockerfile = std::fs::read_to_string(workspace_root().join("Dockerfile")).unwrap();
    let version = env!("CARGO_PKG_VERSION");
    for rendered in rendered() {
        let name = rendered.variant.name();
        for (workload, binary) in platform_workloads(rendered) {
            let container = workload.containers().next().unwrap();
            assert_eq!(container["name"], binary.as_str(), "{name}");
            let image = text(&container["image"]);
            let wanted = format!("platform/{binary}:{version}");
            if rendered.variant.overlay == "dev" {
                assert_eq!(image, wanted, "{name}: the image `make images` builds");
            } else {
                assert!(
                    image.ends_with(&format!("/{wanted}")),
                    "{name}: {image} is not the build's image ({wanted}) in a registry"
                );
            }
            assert!(
                dockerfile
                    .lines()
                    .any(|line| line.starts_with("FROM ")
                        && line.ends_with(&format!(" AS {binary}"))),
                "the Dockerfile has no target {binary}"
            );
        }
    }
}

#[test]
fn the_canary_is_the_stable_order_service_but_for_its_track() {
    for variant_ in [Variant::full("dev"), Variant::full("prod")] {
        let rendered = variant(&variant_);
        let strip = |workload: &Workload<'_>| {
            let mut pod = workload.pod.clone();
            pod["containers"][0]["image"] = Value::Null;
            pod
        };
        let stable = rendered.workload("order-service").unwrap();
        let canary = rendered.workload("order-service-canary").unwrap();
        assert_eq!(stable.labels["track"], "stable");
        assert_eq!(canary.labels["track"], "canary");
        let mut labels = canary.labels.clone();
        labels.insert("track".to_owned(), "stable".to_owned());
        assert_eq!(labels, stable.labels, "the same labels but the track");
        let annotations = |workload: &Workload<'_>| {
            workload.object["spec"]["template"]["metadata"]["annotations"].clone()
        };
        assert_eq!(
            annotations(&canary),
            annotations(&stable),
            "{}: the canary is scraped as the stable one",
            variant_.name()
        );
        assert_eq!(
            strip(&canary),
            strip(&stable),
            "{}: the canary's pod differs from the stable one's",
            variant_.name()
        );
    }
}
