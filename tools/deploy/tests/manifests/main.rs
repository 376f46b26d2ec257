//! The deployments held against the code, without a cluster: every Kubernetes overlay
//! (`deploy/k8s`) with every combination of components is rendered by `kubectl kustomize`,
//! validated by `kubernetes-validate --strict` for two Kubernetes versions, and read back;
//! `docker-compose.yml` (alone and with its overrides) is read the same way. A renamed setting, a
//! moved port, a new call between services or an image the build does not produce fails here,
//! not in production.

mod compose;
mod observability;
mod pods;
mod policies;
mod rendering;
mod wiring;

use std::collections::BTreeSet;
use std::sync::OnceLock;

use platform_deploy::{Rendered, Variant, Workload, render, variants};
use platform_registry::ServiceEntry;

/// Connections between the namespace's pods: `(caller, callee, container port)`, by
/// `app.kubernetes.io/name`.
type Edges = BTreeSet<(String, String, i64)>;

/// Addresses outside the namespace: `(caller, URL)`.
type Outside = BTreeSet<(String, String)>;

/// The standard variables `platform_telemetry` reads besides a service's own `PREFIX__...`
/// settings (logs, and where spans are exported).
const STANDARD_VARIABLES: [&str; 3] = ["RUST_LOG", "LOG_FORMAT", "OTEL_EXPORTER_OTLP_ENDPOINT"];

/// Every variant, rendered once for the whole test binary.
fn rendered() -> &'static [Rendered] {
    static RENDERED: OnceLock<Vec<Rendered>> = OnceLock::new();
    RENDERED.get_or_init(|| {
        let scratch = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("k8s");
        variants()
            .iter()
            .map(|variant| {
                render(variant, &scratch)
                    .unwrap_or_else(|error| panic!("rendering {}: {error:#}", variant.name()))
            })
            .collect()
    })
}

/// The rendering of one variant.
fn variant(variant: &Variant) -> &'static Rendered {
    rendered()
        .iter()
        .find(|rendered| rendered.variant == *variant)
        .expect("every variant is rendered")
}

/// The platform's own processes: `(binary, env_prefix, http_port, grpc_port)`, the gateway and
/// the storefront (the edge) included.
fn platform_binaries() -> Vec<(String, String, u16, Option<u16>)> {
    [
        platform_registry::gateway(),
        platform_registry::storefront(),
    ]
    .into_iter()
    .map(|edge| {
        (
            edge.binary.clone(),
            edge.env_prefix.clone(),
            edge.http_port,
            None,
        )
    })
    .chain(platform_registry::services().iter().map(|service| {
        (
            service.binary.clone(),
            service.env_prefix.clone(),
            service.http_port,
            service.grpc_port,
        )
    }))
    .collect()
}

/// The workloads running one of the platform's binaries (its services, the gateway, the
/// storefront, the order service's canary), with that binary.
fn platform_workloads(rendered: &Rendered) -> Vec<(Workload<'_>, String)> {
    let binaries: BTreeSet<String> = platform_binaries().into_iter().map(|b| b.0).collect();
    rendered
        .workloads()
        .into_iter()
        .filter_map(|workload| {
            let app = workload.app().to_owned();
            binaries.contains(&app).then_some((workload, app))
        })
        .collect()
}

/// The registry's entry for a service binary, if it is a service (not the gateway or the
/// storefront).
fn service_entry(binary: &str) -> Option<&'static ServiceEntry> {
    platform_registry::services()
        .iter()
        .find(|service| service.binary == binary)
}
