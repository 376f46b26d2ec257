//! Every variant renders, validates for two Kubernetes versions, and holds what its overlay
//! promises.

use std::collections::BTreeSet;

use platform_deploy::{KUBERNETES_VERSIONS, NAMESPACE, Variant, text, validate};

use crate::{platform_binaries, platform_workloads, rendered, variant};

#[test]
fn every_overlay_with_every_combination_of_components_validates_strictly_for_two_versions() {
    let mut failures = Vec::new();
    std::thread::scope(|scope| {
        let runs: Vec<_> = rendered()
            .iter()
            .flat_map(|rendered| KUBERNETES_VERSIONS.map(|version| (rendered, version)))
            .map(|(rendered, version)| {
                scope.spawn(move || {
                    (
                        rendered.variant.name(),
                        version,
                        validate(&rendered.yaml, version),
                    )
                })
            })
            .collect();
        for run in runs {
            let (name, version, outcome) = run.join().expect("a validation thread");
            match outcome {
                // Only Istio's kinds are outside Kubernetes' own schemas.
                Ok(unknown) => {
                    for kind in unknown {
                        if !kind.contains(".istio.io/") {
                            failures.push(format!("{name} on {version}: no schema for {kind}"));
                        }
                    }
                }
                Err(error) => failures.push(format!("{name} on {version}: {error:#}")),
            }
        }
    });
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn every_variant_runs_every_service_and_the_gateway_in_the_platform_namespace() {
    let wanted: BTreeSet<String> = platform_binaries().into_iter().map(|b| b.0).collect();
    for rendered in rendered() {
        let name = rendered.variant.name();
        let running: BTreeSet<String> = platform_workloads(rendered)
            .into_iter()
            .map(|(_, binary)| binary)
            .collect();
        assert_eq!(running, wanted, "{name}: the workloads");
        for object in &rendered.objects {
            let kind = text(&object["kind"]);
            let namespace = &object["metadata"]["namespace"];
            if kind == "Namespace" {
                assert_eq!(object["metadata"]["name"], NAMESPACE, "{name}");
            } else {
                assert_eq!(
                    namespace, NAMESPACE,
                    "{name}: {kind} {} is outside the namespace",
                    object["metadata"]["name"]
                );
            }
        }
        let namespace = rendered
            .get("Namespace", NAMESPACE)
            .unwrap_or_else(|| panic!("{name}: the overlay creates its namespace"));
        assert_eq!(
            namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"], "restricted",
            "{name}: every pod meets the restricted Pod Security Standard"
        );
    }
}

#[test]
fn dev_runs_the_stores_in_the_cluster_with_one_replica_of_everything() {
    let dev = variant(&Variant::plain("dev"));
    for store in ["postgres", "mongo", "redis", "nats"] {
        let workload = dev.workload(store).unwrap();
        assert_eq!(workload.kind, "StatefulSet", "{store}");
        assert!(
            workload.object["spec"]["volumeClaimTemplates"]
                .as_array()
                .is_some_and(|claims| !claims.is_empty()),
            "{store} keeps its data on a volume"
        );
    }
    for workload in dev.workloads() {
        assert_eq!(
            workload.object["spec"]["replicas"], 1,
            "{}: one replica in dev",
            workload.name
        );
    }
    assert_eq!(dev.of_kind("HorizontalPodAutoscaler").count(), 0);
}

#[test]
fn prod_runs_two_or_more_of_each_workload_autoscaled_and_no_store() {
    for overlay in [Variant::plain("prod"), Variant::full("prod")] {
        let prod = variant(&overlay);
        let name = overlay.name();
        assert_eq!(
            dev_stores(prod),
            Vec::<String>::new(),
            "{name}: the stores are outside the cluster"
        );
        for (workload, _) in platform_workloads(prod) {
            if workload.labels.get("track").map(String::as_str) == Some("canary") {
                continue;
            }
            let replicas = workload.object["spec"]["replicas"].as_i64().unwrap_or(1);
            assert!(replicas >= 2, "{name}: {} has {replicas}", workload.name);
            let autoscaler = prod
                .of_kind("HorizontalPodAutoscaler")
                .find(|hpa| hpa["spec"]["scaleTargetRef"]["name"] == workload.name)
                .unwrap_or_else(|| panic!("{name}: no autoscaler for {}", workload.name));
            assert_eq!(autoscaler["spec"]["scaleTargetRef"]["kind"], "Deployment");
            assert!(
                autoscaler["spec"]["minReplicas"].as_i64() >= Some(2),
                "{name}: {}'s autoscaler may go below two",
                workload.name
            );
            assert!(
                autoscaler["spec"]["maxReplicas"].as_i64()
                    > autoscaler["spec"]["minReplicas"].as_i64()
            );
        }
    }
}

fn dev_stores(rendered: &platform_deploy::Rendered) -> Vec<String> {
    rendered
        .workloads()
        .iter()
        .filter(|workload| {
            workload
                .labels
                .get("app.kubernetes.io/component")
                .map(String::as_str)
                == Some("store")
        })
        .map(|workload| workload.name.to_owned())
        .collect()
}

#[test]
fn prod_documents_every_secret_it_needs_in_the_base() {
    let documented =
        std::fs::read_to_string(platform_deploy::k8s_dir().join("base/kustomization.yaml"))
            .unwrap();
    let prod = variant(&Variant::full("prod"));
    let mut needed = BTreeSet::new();
    for workload in prod.workloads() {
        for container in workload.containers() {
            for env in container["env"].as_array().into_iter().flatten() {
                let reference = &env["valueFrom"]["secretKeyRef"];
                if reference.is_object() {
                    needed.insert((
                        text(&reference["name"]).to_owned(),
                        text(&reference["key"]).to_owned(),
                    ));
                }
            }
        }
    }
    assert!(!needed.is_empty());
    for (secret, key) in needed {
        assert!(
            prod.get("Secret", &secret).is_none(),
            "prod holds no secret value ({secret})"
        );
        let line = documented
            .lines()
            .find(|line| line.split_whitespace().nth(1) == Some(secret.as_str()))
            .unwrap_or_else(|| {
                panic!("base/kustomization.yaml does not list the Secret {secret} prod needs")
            });
        assert!(
            line.split_whitespace()
                .any(|word| word.trim_end_matches(',') == key),
            "base/kustomization.yaml lists {secret} without its key {key}: {line}"
        );
    }
}

#[test]
fn the_replica_set_member_resolves_before_it_is_ready() {
    let dev = variant(&Variant::plain("dev"));
    let mongo = dev.workload("mongo").unwrap();
    let probe = mongo.containers().next().unwrap()["readinessProbe"]["exec"]["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|part| text(part).to_owned())
        .collect::<Vec<_>>()
        .join(" ");
    // The probe initiates the set with the member's own address: `<pod>.<headless service>`.
    let member = format!(
        "{}-0.{}:27017",
        mongo.name,
        text(&mongo.object["spec"]["serviceName"])
    );
    assert!(
        probe.contains(&member),
        "the set is initiated as {member}: {probe}"
    );
    let service = dev
        .get("Service", text(&mongo.object["spec"]["serviceName"]))
        .unwrap();
    assert_eq!(service["spec"]["clusterIP"], "None");
    assert_eq!(
        service["spec"]["publishNotReadyAddresses"], true,
        "{member} must resolve while the pod is not ready yet, or the set never initiates"
    );
}
