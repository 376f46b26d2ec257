//! The Kubernetes manifests as data, for the tests that hold them against the code.
//!
//! [`render`] runs `kubectl kustomize` on an overlay of `deploy/k8s` with any of its components
//! (every [`Variant`]) and parses the result; [`Rendered`] answers what the checks ask: the
//! objects of a kind, the pods each workload runs, and the environment a container starts with
//! (its ConfigMaps and Secrets resolved as the kubelet would).
//!
//! Tools, from the environment or the usual places: `kubectl` (`KUBECTL`, else on `PATH`;
//! kustomize v5, kubectl 1.27 or later) and `kubernetes-validate` (`KUBERNETES_VALIDATE`, else
//! the one `scripts/infra.sh up` installs in `.local/venv`, else on `PATH`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context as _, anyhow, bail, ensure};
use base64::Engine as _;
use serde_json::{Map, Value};
use yaml_rust2::{Yaml, YamlLoader};

/// The overlays of `deploy/k8s/overlays`.
pub const OVERLAYS: [&str; 2] = ["dev", "prod"];

/// The opt-in components of `deploy/k8s/components`; any subset applies to either overlay.
pub const COMPONENTS: [&str; 3] = ["network-policies", "istio", "observability"];

/// The Kubernetes versions every rendered object must validate against: an older release
/// still in providers' support, and a recent one.
pub const KUBERNETES_VERSIONS: [&str; 2] = ["1.31.0", "1.37.0"];

/// The namespace both overlays deploy to.
pub const NAMESPACE: &str = "platform";

/// The workspace's root directory.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("tools/deploy is two levels below the workspace root")
        .to_path_buf()
}

/// `deploy/k8s`.
pub fn k8s_dir() -> PathBuf {
    workspace_root().join("deploy/k8s")
}

/// One way to deploy: an overlay and the components added to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Variant {
    /// `dev` or `prod`.
    pub overlay: &'static str,
    /// Components, in the order they are applied.
    pub components: Vec<&'static str>,
}

impl Variant {
    /// The overlay alone.
    pub fn plain(overlay: &'static str) -> Self {
        Self {
            overlay,
            components: Vec::new(),
        }
    }

    /// The overlay with every component.
    pub fn full(overlay: &'static str) -> Self {
        Self {
            overlay,
            components: COMPONENTS.to_vec(),
        }
    }

    /// `prod+network-policies+istio`.
    pub fn name(&self) -> String {
        std::iter::once(self.overlay)
            .chain(self.components.iter().copied())
            .collect::<Vec<_>>()
            .join("+")
    }

    /// Whether `component` is part of it.
    pub fn has(&self, component: &str) -> bool {
        self.components.contains(&component)
    }
}

/// Every supported variant: each overlay with each subset of the components.
pub fn variants() -> Vec<Variant> {
    let mut all = Vec::new();
    for overlay in OVERLAYS {
        for mask in 0..(1_u32 << COMPONENTS.len()) {
            let components = COMPONENTS
                .iter()
                .enumerate()
                .filter(|(bit, _)| mask & (1 << bit) != 0)
                .map(|(_, name)| *name)
                .collect();
            all.push(Variant {
                overlay,
                components,
            });
        }
    }
    all
}

/// The program to run for `tool`: the variable `env` if set, else the first candidate that
/// exists, else the bare name (found on `PATH`).
fn tool(env: &str, name: &str, candidates: &[PathBuf]) -> PathBuf {
    if let Some(path) = std::env::var_os(env) {
        return PathBuf::from(path);
    }
    candidates
        .iter()
        .find(|path| path.is_file())
        .cloned()
        .unwrap_or_else(|| PathBuf::from(name))
}

fn run(program: &Path, args: &[&str], input: Option<&str>) -> anyhow::Result<(bool, String)> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| {
            format!(
                "cannot run {}: install it (see deploy/k8s/README.md, \"Checks\")",
                program.display()
            )
        })?;
    if let Some(input) = input {
        use std::io::Write as _;
        child
            .stdin
            .take()
            .expect("stdin is piped")
            .write_all(input.as_bytes())?;
    }
    let output = child.wait_with_output()?;
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    Ok((output.status.success(), text))
}

/// Renders `variant`: the overlay directory itself, or a copy of it in `scratch` with the
/// components added to its `components:` list (as a team enables them), beside links to the
/// directories it refers to.
pub fn render(variant: &Variant, scratch: &Path) -> anyhow::Result<Rendered> {
    let k8s = k8s_dir();
    let overlay = k8s.join("overlays").join(variant.overlay);
    let copy = scratch
        .join(std::process::id().to_string())
        .join(variant.name());
    let dir = if variant.components.is_empty() {
        overlay
    } else {
        if copy.exists() {
            std::fs::remove_dir_all(&copy)?;
        }
        std::fs::create_dir_all(copy.join("overlays"))?;
        for shared in ["base", "stores", "components"] {
            std::os::unix::fs::symlink(k8s.join(shared), copy.join(shared))?;
        }
        let dir = copy.join("overlays").join(variant.overlay);
        copy_dir(&overlay, &dir)?;
        let kustomization = dir.join("kustomization.yaml");
        let mut text = std::fs::read_to_string(&kustomization)?;
        ensure!(
            !text.lines().any(|line| line.starts_with("components:")),
            "{} lists components already: variants add their own",
            overlay.display()
        );
        text.push_str("\ncomponents:\n");
        for name in &variant.components {
            text.push_str("  - ../../components/");
            text.push_str(name);
            text.push('\n');
        }
        std::fs::write(&kustomization, text)?;
        dir
    };
    let kubectl = tool("KUBECTL", "kubectl", &[]);
    let (ok, yaml) = run(
        &kubectl,
        &["kustomize", dir.to_str().expect("a UTF-8 path")],
        None,
    )?;
    if copy.exists() {
        std::fs::remove_dir_all(&copy)?;
    }
    ensure!(ok, "kubectl kustomize {} failed:\n{yaml}", dir.display());
    let objects = parse_yaml(&yaml).with_context(|| format!("parsing {}", variant.name()))?;
    Ok(Rendered {
        variant: variant.clone(),
        yaml,
        objects,
    })
}

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

/// Every YAML document of `text`, as JSON values.
pub fn parse_yaml(text: &str) -> anyhow::Result<Vec<Value>> {
    let docs = YamlLoader::load_from_str(text).map_err(|error| anyhow!("{error}"))?;
    docs.iter()
        .filter(|doc| !doc.is_null())
        .map(to_json)
        .collect()
}

fn to_json(yaml: &Yaml) -> anyhow::Result<Value> {
    Ok(match yaml {
        Yaml::Null => Value::Null,
        Yaml::Boolean(value) => Value::Bool(*value),
        Yaml::Integer(value) => Value::from(*value),
        Yaml::Real(text) => Value::from(text.parse::<f64>().context("a YAML float")?),
        Yaml::String(text) => Value::String(text.clone()),
        Yaml::Array(items) => Value::Array(items.iter().map(to_json).collect::<Result<_, _>>()?),
        Yaml::Hash(entries) => {
            let mut map = Map::new();
            let mut merged = Vec::new();
            for (key, value) in entries {
                let key = match key {
                    Yaml::String(text) | Yaml::Real(text) => text.clone(),
                    Yaml::Integer(number) => number.to_string(),
                    Yaml::Boolean(flag) => flag.to_string(),
                    other => bail!("an unsupported mapping key: {other:?}"),
                };
                // `<<: *anchor` (compose files use it): the anchored mapping's entries, under
                // the ones written here.
                if key == "<<" {
                    merged.push(to_json(value)?);
                } else {
                    map.insert(key, to_json(value)?);
                }
            }
            for source in merged {
                let sources = match source {
                    Value::Array(list) => list,
                    other => vec![other],
                };
                for source in sources {
                    let Value::Object(entries) = source else {
                        bail!("`<<` merges a mapping, not {source}");
                    };
                    for (key, value) in entries {
                        map.entry(key).or_insert(value);
                    }
                }
            }
            Value::Object(map)
        }
        other => bail!("an unsupported YAML node: {other:?}"),
    })
}

/// What `kubernetes-validate --strict` said of `yaml` for `version`: `Ok` with the kinds it
/// had no schema for, or the errors.
pub fn validate(yaml: &str, version: &str) -> anyhow::Result<Vec<String>> {
    let program = tool(
        "KUBERNETES_VALIDATE",
        "kubernetes-validate",
        &[workspace_root().join(".local/venv/bin/kubernetes-validate")],
    );
    let (ok, output) = run(
        &program,
        &["--strict", "--quiet", "-k", version, "-"],
        Some(yaml),
    )?;
    let errors: Vec<&str> = output
        .lines()
        .filter(|line| line.starts_with("ERROR") || line.contains("Traceback"))
        .collect();
    ensure!(
        ok && errors.is_empty(),
        "kubernetes-validate --strict -k {version}:\n{output}"
    );
    Ok(output
        .lines()
        .filter_map(|line| {
            line.split_once("Couldn't find schema for kind ")
                .map(|(_, rest)| rest.to_owned())
        })
        .collect())
}

/// One variant, rendered.
#[derive(Debug)]
pub struct Rendered {
    /// What was rendered.
    pub variant: Variant,
    /// `kubectl kustomize`'s output.
    pub yaml: String,
    /// Its objects.
    pub objects: Vec<Value>,
}

/// A workload's pod template: a Deployment's or a StatefulSet's.
#[derive(Debug)]
pub struct Workload<'a> {
    /// `Deployment` or `StatefulSet`.
    pub kind: &'a str,
    /// The workload's name.
    pub name: &'a str,
    /// The whole object.
    pub object: &'a Value,
    /// `spec.template.metadata.labels`.
    pub labels: BTreeMap<String, String>,
    /// `spec.template.spec`.
    pub pod: &'a Value,
}

impl Workload<'_> {
    /// The pod's containers.
    pub fn containers(&self) -> impl Iterator<Item = &Value> {
        self.pod["containers"].as_array().into_iter().flatten()
    }

    /// `app.kubernetes.io/name`.
    pub fn app(&self) -> &str {
        self.labels
            .get("app.kubernetes.io/name")
            .map_or("", String::as_str)
    }
}

/// A string's text, or "".
pub fn text(value: &Value) -> &str {
    value.as_str().unwrap_or_default()
}

/// A mapping of strings (labels, selectors), as a map.
pub fn string_map(value: &Value) -> BTreeMap<String, String> {
    value
        .as_object()
        .into_iter()
        .flatten()
        .map(|(key, value)| (key.clone(), text(value).to_owned()))
        .collect()
}

/// A container's declared ports, by name.
pub fn container_ports(container: &Value) -> BTreeMap<String, i64> {
    container["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|port| {
            (
                text(&port["name"]).to_owned(),
                port["containerPort"].as_i64().unwrap_or_default(),
            )
        })
        .collect()
}

/// Whether every pair of `selector` is among `labels` (an empty selector selects everything).
pub fn selects(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    selector
        .iter()
        .all(|(key, value)| labels.get(key) == Some(value))
}

impl Rendered {
    /// The objects of `kind`.
    pub fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.objects
            .iter()
            .filter(move |object| object["kind"] == kind)
    }

    /// The object of `kind` named `name`.
    pub fn get(&self, kind: &str, name: &str) -> Option<&Value> {
        self.objects
            .iter()
            .find(|object| object["kind"] == kind && object["metadata"]["name"] == name)
    }

    /// Every Deployment and StatefulSet.
    pub fn workloads(&self) -> Vec<Workload<'_>> {
        self.objects
            .iter()
            .filter(|object| object["kind"] == "Deployment" || object["kind"] == "StatefulSet")
            .map(|object| Workload {
                kind: text(&object["kind"]),
                name: text(&object["metadata"]["name"]),
                object,
                labels: string_map(&object["spec"]["template"]["metadata"]["labels"]),
                pod: &object["spec"]["template"]["spec"],
            })
            .collect()
    }

    /// The workload named `name`.
    pub fn workload(&self, name: &str) -> anyhow::Result<Workload<'_>> {
        self.workloads()
            .into_iter()
            .find(|workload| workload.name == name)
            .ok_or_else(|| anyhow!("{}: no workload {name}", self.variant.name()))
    }

    /// The environment `container` starts with, in order: each `envFrom` source, then `env`,
    /// with `$(NAME)` references expanded as the kubelet does. A Secret that is not part of
    /// the rendering (one the operator creates, in prod) gives `absent(secret, key)`.
    pub fn environment(
        &self,
        container: &Value,
        absent: impl Fn(&str, &str) -> String,
    ) -> anyhow::Result<Vec<(String, String)>> {
        let mut vars: Vec<(String, String)> = Vec::new();
        let set = |vars: &mut Vec<(String, String)>, name: String, value: String| {
            vars.retain(|(existing, _)| *existing != name);
            vars.push((name, value));
        };
        for source in container["envFrom"].as_array().into_iter().flatten() {
            if let Some(name) = source["configMapRef"]["name"].as_str() {
                let map = self
                    .get("ConfigMap", name)
                    .ok_or_else(|| anyhow!("envFrom names a ConfigMap {name} that is not there"))?;
                for (key, value) in string_map(&map["data"]) {
                    set(&mut vars, key, value);
                }
            } else if let Some(name) = source["secretRef"]["name"].as_str() {
                let secret = self
                    .get("Secret", name)
                    .ok_or_else(|| anyhow!("envFrom names a Secret {name} that is not there"))?;
                for key in string_map(&secret["data"]).keys() {
                    let value = self.secret_value(name, key, &absent)?;
                    set(&mut vars, key.clone(), value);
                }
            } else {
                bail!("an envFrom source of neither kind: {source}");
            }
        }
        for entry in container["env"].as_array().into_iter().flatten() {
            let name = text(&entry["name"]).to_owned();
            let from = &entry["valueFrom"];
            let value = if let Some(value) = entry["value"].as_str() {
                expand(value, &vars)
            } else if from["secretKeyRef"].is_object() {
                let reference = &from["secretKeyRef"];
                self.secret_value(text(&reference["name"]), text(&reference["key"]), &absent)?
            } else if from["configMapKeyRef"].is_object() {
                let reference = &from["configMapKeyRef"];
                let map = self
                    .get("ConfigMap", text(&reference["name"]))
                    .ok_or_else(|| anyhow!("{name} names a ConfigMap that is not there"))?;
                text(&map["data"][text(&reference["key"])]).to_owned()
            } else {
                bail!("{name}: a value of an unsupported kind: {entry}");
            };
            set(&mut vars, name, value);
        }
        Ok(vars)
    }

    /// The decoded value of `key` in the Secret `name`, or `absent(name, key)` when the
    /// rendering does not hold that Secret; an error when it does, without the key.
    pub fn secret_value(
        &self,
        name: &str,
        key: &str,
        absent: impl Fn(&str, &str) -> String,
    ) -> anyhow::Result<String> {
        let Some(secret) = self.get("Secret", name) else {
            return Ok(absent(name, key));
        };
        if let Some(value) = secret["stringData"][key].as_str() {
            return Ok(value.to_owned());
        }
        let encoded = secret["data"][key]
            .as_str()
            .ok_or_else(|| anyhow!("the Secret {name} has no key {key}"))?;
        // kustomize wraps long values; the API server's decoder skips line breaks too.
        let encoded: String = encoded.split_whitespace().collect();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .with_context(|| format!("the Secret {name}, key {key}: not base64"))?;
        String::from_utf8(bytes).with_context(|| format!("the Secret {name}, key {key}: not UTF-8"))
    }
}

/// `$(NAME)` replaced by an earlier variable's value; unknown references stay as written, as
/// the kubelet leaves them.
fn expand(value: &str, vars: &[(String, String)]) -> String {
    let mut out = value.to_owned();
    for (name, replacement) in vars {
        out = out.replace(&format!("$({name})"), replacement);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_becomes_json_with_every_scalar_kind() {
        let docs =
            parse_yaml("a: 1\nb: [x, true, 1.5, null]\n\"8080\": {mode: P}\n---\n---\nc: d\n")
                .unwrap();
        assert_eq!(
            docs,
            [
                serde_json::json!({"a": 1, "b": ["x", true, 1.5, null], "8080": {"mode": "P"}}),
                serde_json::json!({"c": "d"})
            ]
        );
    }

    #[test]
    fn merge_keys_bring_in_the_anchored_entries_under_the_written_ones() {
        let docs = parse_yaml(
            "base: &base {a: 1, b: 2}\nother: &other {c: 3}\none: {<<: *base, b: 9}\n\
             two: {<<: [*base, *other]}\n",
        )
        .unwrap();
        assert_eq!(docs[0]["one"], serde_json::json!({"a": 1, "b": 9}));
        assert_eq!(docs[0]["two"], serde_json::json!({"a": 1, "b": 2, "c": 3}));
    }

    #[test]
    fn there_are_sixteen_variants() {
        let names: Vec<String> = variants().iter().map(Variant::name).collect();
        assert_eq!(names.len(), 16);
        assert!(names.contains(&"prod+network-policies+istio+observability".to_owned()));
        assert!(names.contains(&"dev+observability".to_owned()));
        assert!(names.contains(&"dev".to_owned()));
    }
}
