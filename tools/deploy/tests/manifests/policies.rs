//! The network policies and the mesh's authorization policies allow the calls the services'
//! configuration makes, and no other.

use std::collections::{BTreeMap, BTreeSet};

use platform_deploy::{NAMESPACE, Rendered, Workload, selects, string_map, text};
use serde_json::Value;

use crate::wiring::calls;
use crate::{Edges, rendered};

/// The calls the code makes inside the namespace, those the observability stack's configuration
/// makes (scrapes included), and the one the stores make themselves: a MongoDB replica-set member
/// reaches its own advertised address.
fn expected(rendered: &Rendered) -> Edges {
    let (mut edges, _) = calls(rendered);
    edges.extend(crate::observability::calls(rendered).0);
    if rendered.get("StatefulSet", "mongo").is_some() {
        edges.insert(("mongo".to_owned(), "mongo".to_owned(), 27017));
    }
    edges
}

/// Whether a NetworkPolicy peer list (`from`/`to`) admits `peer`, a pod of this namespace.
/// Absent means anyone; a peer with a `namespaceSelector` is another namespace's pods.
fn peers_admit(peers: &Value, peer: &BTreeMap<String, String>) -> bool {
    match peers.as_array() {
        None => true,
        Some(list) if list.is_empty() => true,
        Some(list) => list.iter().any(|entry| {
            entry["namespaceSelector"].is_null()
                && entry["ipBlock"].is_null()
                && selects(&string_map(&entry["podSelector"]["matchLabels"]), peer)
        }),
    }
}

fn ports_admit(ports: &Value, port: i64) -> bool {
    match ports.as_array() {
        None => true,
        Some(list) if list.is_empty() => true,
        Some(list) => list
            .iter()
            .any(|entry| entry["port"] == port && entry["protocol"] != "UDP"),
    }
}

/// Whether the policies let `from` open a connection to `to` on `port` (both this
/// namespace's pods): `from`'s egress and `to`'s ingress must both allow it, where any
/// policy isolates them in that direction.
fn allowed(
    rendered: &Rendered,
    from: &BTreeMap<String, String>,
    to: &BTreeMap<String, String>,
    port: i64,
) -> bool {
    let direction = |pod: &BTreeMap<String, String>,
                     kind: &str,
                     rules: &str,
                     peers: &str,
                     peer: &BTreeMap<String, String>| {
        let policies: Vec<&Value> = rendered
            .of_kind("NetworkPolicy")
            .filter(|policy| {
                selects(
                    &string_map(&policy["spec"]["podSelector"]["matchLabels"]),
                    pod,
                ) && policy["spec"]["policyTypes"]
                    .as_array()
                    .is_some_and(|types| types.iter().any(|t| t == kind))
            })
            .collect();
        policies.is_empty()
            || policies.iter().any(|policy| {
                policy["spec"][rules]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|rule| {
                        peers_admit(&rule[peers], peer) && ports_admit(&rule["ports"], port)
                    })
            })
    };
    direction(from, "Egress", "egress", "to", to)
        && direction(to, "Ingress", "ingress", "from", from)
}

/// Each app's pod labels (one per app: the canary's differ only in its track).
fn apps(rendered: &Rendered) -> BTreeMap<String, (BTreeMap<String, String>, Vec<i64>)> {
    rendered
        .workloads()
        .iter()
        .map(|workload: &Workload<'_>| {
            let ports = workload
                .containers()
                .flat_map(|container| container["ports"].as_array().cloned().unwrap_or_default())
                .filter_map(|port| port["containerPort"].as_i64())
                .collect();
            (workload.app().to_owned(), (workload.labels.clone(), ports))
        })
        .collect()
}

/// Every connection the network policies let through between the namespace's pods.
fn allowed_edges(rendered: &Rendered) -> Edges {
    let apps = apps(rendered);
    let mut edges = Edges::new();
    for (caller, (from, _)) in &apps {
        for (callee, (to, ports)) in &apps {
            for port in ports {
                if allowed(rendered, from, to, *port) {
                    edges.insert((caller.clone(), callee.clone(), *port));
                }
            }
        }
    }
    edges
}

#[test]
fn no_variant_blocks_a_call_the_code_makes() {
    for rendered in rendered() {
        let allowed = allowed_edges(rendered);
        let missing: Vec<_> = expected(rendered).difference(&allowed).cloned().collect();
        assert!(
            missing.is_empty(),
            "{}: the policies block {missing:?}",
            rendered.variant.name()
        );
    }
}

#[test]
fn the_network_policies_allow_exactly_the_calls_the_code_makes() {
    for rendered in rendered()
        .iter()
        .filter(|r| r.variant.has("network-policies"))
    {
        let name = rendered.variant.name();
        let allowed = allowed_edges(rendered);
        let expected = expected(rendered);
        let extra: Vec<_> = allowed.difference(&expected).cloned().collect();
        assert!(
            extra.is_empty(),
            "{name}: allowed, but no code makes it: {extra:?}"
        );
        let deny = rendered
            .get("NetworkPolicy", "default-deny")
            .expect("a default deny");
        assert_eq!(deny["spec"]["podSelector"], serde_json::json!({}));
        assert_eq!(
            deny["spec"]["policyTypes"],
            serde_json::json!(["Ingress", "Egress"])
        );
    }
}

#[test]
fn the_stores_admit_only_their_own_services_even_without_the_component() {
    let dev = rendered()
        .iter()
        .find(|r| r.variant.overlay == "dev" && r.variant.components.is_empty())
        .unwrap();
    let allowed = allowed_edges(dev);
    let expected = expected(dev);
    for store in ["postgres", "mongo", "redis", "nats", "mail"] {
        let into: BTreeSet<_> = allowed.iter().filter(|edge| edge.1 == store).collect();
        let wanted: BTreeSet<_> = expected.iter().filter(|edge| edge.1 == store).collect();
        let extra: Vec<_> = into.difference(&wanted).collect();
        assert!(extra.is_empty(), "{store} admits {extra:?}");
    }
}

#[test]
fn every_network_policy_selects_pods_that_exist() {
    for rendered in rendered() {
        let name = rendered.variant.name();
        let labels: Vec<BTreeMap<String, String>> = rendered
            .workloads()
            .iter()
            .map(|w| w.labels.clone())
            .collect();
        let exists =
            |selector: &BTreeMap<String, String>| labels.iter().any(|l| selects(selector, l));
        // A peer may name pods another component brings (components/network-policies admits the
        // Prometheus of components/observability): they exist with every component on.
        let everything: Vec<BTreeMap<String, String>> =
            crate::variant(&platform_deploy::Variant::full(rendered.variant.overlay))
                .workloads()
                .iter()
                .map(|w| w.labels.clone())
                .collect();
        let exists_somewhere = |selector: &BTreeMap<String, String>| {
            exists(selector) || everything.iter().any(|l| selects(selector, l))
        };
        for policy in rendered.of_kind("NetworkPolicy") {
            let policy_name = text(&policy["metadata"]["name"]);
            let selector = string_map(&policy["spec"]["podSelector"]["matchLabels"]);
            assert!(exists(&selector), "{name}: {policy_name} selects no pod");
            for (rules, peers) in [("ingress", "from"), ("egress", "to")] {
                for rule in policy["spec"][rules].as_array().into_iter().flatten() {
                    for peer in rule[peers].as_array().into_iter().flatten() {
                        if peer["namespaceSelector"].is_null() && peer["ipBlock"].is_null() {
                            let selector = string_map(&peer["podSelector"]["matchLabels"]);
                            assert!(
                                exists_somewhere(&selector),
                                "{name}: {policy_name} names pods that do not exist: {peer}"
                            );
                        }
                    }
                }
            }
        }
    }
}

/// `(caller service account, callee app, port)` the mesh allows; a rule without a source is
/// `"*"` (anyone, as at the gateway's public port).
fn mesh_allowed(rendered: &Rendered) -> BTreeSet<(String, String, i64)> {
    let name = rendered.variant.name();
    let mut allowed = BTreeSet::new();
    for policy in rendered.of_kind("AuthorizationPolicy") {
        assert_eq!(
            policy["spec"]["action"], "ALLOW",
            "{name}: only ALLOW policies"
        );
        let selector = string_map(&policy["spec"]["selector"]["matchLabels"]);
        let apps: Vec<String> = rendered
            .workloads()
            .iter()
            .filter(|workload| selects(&selector, &workload.labels))
            .map(|workload| workload.app().to_owned())
            .collect();
        assert!(
            !apps.is_empty(),
            "{name}: {} selects no pod",
            policy["metadata"]["name"]
        );
        for rule in policy["spec"]["rules"].as_array().unwrap() {
            let ports: Vec<i64> = rule["to"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|to| {
                    to["operation"]["ports"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                })
                .map(|port| text(&port).parse().expect("a port number"))
                .collect();
            let mut sources = Vec::new();
            match rule["from"].as_array() {
                None => sources.push("*".to_owned()),
                Some(from) => {
                    for source in from {
                        for principal in source["source"]["principals"].as_array().unwrap() {
                            let principal = text(principal);
                            let account = principal
                                .strip_prefix(&format!("cluster.local/ns/{NAMESPACE}/sa/"))
                                .unwrap_or_else(|| {
                                    panic!(
                                        "{name}: {principal} is not of the namespace {NAMESPACE}"
                                    )
                                });
                            assert!(
                                rendered.get("ServiceAccount", account).is_some(),
                                "{name}: {principal} names no service account"
                            );
                            sources.push(account.to_owned());
                        }
                    }
                }
            }
            for app in &apps {
                for port in &ports {
                    for source in &sources {
                        allowed.insert((source.clone(), app.clone(), *port));
                    }
                }
            }
        }
    }
    allowed
}

#[test]
fn the_mesh_admits_each_caller_by_its_identity_to_exactly_what_it_calls() {
    for rendered in rendered().iter().filter(|r| r.variant.has("istio")) {
        let name = rendered.variant.name();
        let accounts: BTreeMap<String, String> = rendered
            .workloads()
            .iter()
            .map(|workload| {
                (
                    workload.app().to_owned(),
                    text(&workload.pod["serviceAccountName"]).to_owned(),
                )
            })
            .collect();
        let guarded: BTreeSet<String> = crate::platform_workloads(rendered)
            .into_iter()
            .map(|(_, binary)| binary)
            .collect();
        // The edge's public ports admit anyone (the ingress controller is outside the mesh):
        // the storefront reaches the gateway's through that rule, not one naming it.
        let public: BTreeSet<(String, i64)> = [
            platform_registry::gateway(),
            platform_registry::storefront(),
        ]
        .iter()
        .map(|edge| (edge.binary.clone(), i64::from(edge.http_port)))
        .collect();
        // Prometheus scrapes the sidecar's merged metrics (:15020, the injector rewrites the
        // prometheus.io annotations), which no AuthorizationPolicy governs: not the app's port.
        let wanted: BTreeSet<(String, String, i64)> = expected(rendered)
            .into_iter()
            .filter(|(caller, callee, port)| {
                guarded.contains(callee)
                    && caller != "prometheus"
                    && !public.contains(&(callee.clone(), *port))
            })
            .map(|(caller, callee, port)| (accounts[&caller].clone(), callee, port))
            .chain(
                public
                    .iter()
                    .map(|(app, port)| ("*".to_owned(), app.clone(), *port)),
            )
            .collect();
        assert_eq!(mesh_allowed(rendered), wanted, "{name}");

        let strict = rendered.get("PeerAuthentication", "default").expect("mTLS");
        assert_eq!(strict["spec"]["mtls"]["mode"], "STRICT", "{name}");
        assert!(
            strict["spec"]["selector"].is_null(),
            "{name}: namespace-wide"
        );
        let namespace = rendered.get("Namespace", NAMESPACE).unwrap();
        assert_eq!(
            namespace["metadata"]["labels"]["istio-injection"], "enabled",
            "{name}"
        );
    }
}

#[test]
fn the_canary_split_routes_between_two_tracks_of_the_order_service() {
    for rendered in rendered().iter().filter(|r| r.variant.has("istio")) {
        let name = rendered.variant.name();
        let rule = rendered.get("DestinationRule", "order-service").unwrap();
        let service = rendered
            .get("Service", text(&rule["spec"]["host"]))
            .unwrap();
        let selector = string_map(&service["spec"]["selector"]);
        let subsets: BTreeMap<String, BTreeMap<String, String>> = rule["spec"]["subsets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|subset| {
                (
                    text(&subset["name"]).to_owned(),
                    string_map(&subset["labels"]),
                )
            })
            .collect();
        for (subset, labels) in &subsets {
            let pods: Vec<String> = rendered
                .workloads()
                .iter()
                .filter(|workload| {
                    selects(&selector, &workload.labels) && selects(labels, &workload.labels)
                })
                .map(|workload| workload.name.to_owned())
                .collect();
            assert_eq!(
                pods.len(),
                1,
                "{name}: subset {subset} is one Deployment: {pods:?}"
            );
        }
        let route = rendered.get("VirtualService", "order-service").unwrap();
        assert_eq!(route["spec"]["hosts"], serde_json::json!(["order-service"]));
        let destinations = route["spec"]["http"][0]["route"].as_array().unwrap();
        let total: i64 = destinations
            .iter()
            .map(|d| d["weight"].as_i64().unwrap())
            .sum();
        assert_eq!(total, 100, "{name}: the weights");
        let ports: BTreeSet<i64> = service["spec"]["ports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|port| port["port"].as_i64().unwrap())
            .collect();
        for destination in destinations {
            let destination = &destination["destination"];
            assert!(subsets.contains_key(text(&destination["subset"])), "{name}");
            assert!(
                ports.contains(&destination["port"]["number"].as_i64().unwrap()),
                "{name}"
            );
        }
    }
}

#[test]
fn with_istio_prometheus_may_reach_the_merged_metrics_of_every_pod_it_scrapes() {
    for rendered in rendered().iter().filter(|r| {
        r.variant.has("istio")
            && r.variant.has("network-policies")
            && r.variant.has("observability")
    }) {
        let name = rendered.variant.name();
        let prometheus = rendered.workload("prometheus").unwrap().labels;
        for workload in rendered.workloads() {
            let annotations = &workload.object["spec"]["template"]["metadata"]["annotations"];
            if annotations["prometheus.io/scrape"] == "true" {
                assert!(
                    allowed(rendered, &prometheus, &workload.labels, 15020),
                    "{name}: Prometheus cannot reach {}'s sidecar metrics (:15020)",
                    workload.name
                );
            }
        }
    }
}
