//! Renames a generated platform: the platform template's post-hook runs this over the copy
//! `cargo generate` made, so the repository itself keeps real names and builds as it is.
//!
//! The rules are narrow on purpose. The crates' prefix is renamed wherever it is a prefix
//! (`platform-kit`, `platform_kit::`), the rest only in the places that name the project:
//! the compose project, the image namespace and registry, the Kubernetes namespace and
//! `part-of` label, the launcher binary, the example e-mail domain, the README's title. The word
//! in prose ("the platform") and Rust identifiers (`let platform = ...`) stay.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, ensure};

/// The name being replaced.
pub const ORIGINAL: &str = "platform";
/// The example registry of the prod overlay.
pub const ORIGINAL_REGISTRY: &str = "registry.example.com";

/// The team's names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Names {
    /// The project (`acme-shop`): compose project, `part-of` label, README title, e-mail domain.
    pub project: String,
    /// The crates' prefix (`acme`: `acme-kit`, `acme_kit::`) and the launcher binary.
    pub prefix: String,
    /// The images' namespace (`acme`: `acme/order-service:0.1.0`).
    pub images: String,
    /// The registry the prod overlay pulls from (`registry.acme.example`).
    pub registry: String,
    /// The Kubernetes namespace.
    pub namespace: String,
}

impl Names {
    /// From the template's answers: `project-name`, and `crate_prefix`, `image_namespace`,
    /// `image_registry`, `k8s_namespace`, each defaulting (when empty) to what comes before it.
    pub fn from_answers(
        answers: &std::collections::BTreeMap<String, String>,
    ) -> anyhow::Result<Self> {
        let get = |key: &str| {
            answers
                .get(key)
                .map(|v| v.trim().to_owned())
                .unwrap_or_default()
        };
        let project = get("project-name");
        let or = |value: String, default: &str| {
            if value.is_empty() {
                default.to_owned()
            } else {
                value
            }
        };
        let prefix = or(get("crate_prefix"), &project);
        let names = Self {
            images: or(get("image_namespace"), &prefix),
            registry: or(get("image_registry"), ORIGINAL_REGISTRY),
            namespace: or(get("k8s_namespace"), &project),
            prefix,
            project,
        };
        names.check()?;
        Ok(names)
    }

    fn check(&self) -> anyhow::Result<()> {
        let kebab = |s: &str| {
            !s.is_empty()
                && s.starts_with(|c: char| c.is_ascii_lowercase())
                && !s.ends_with('-')
                && !s.contains("--")
                && s.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        };
        ensure!(
            kebab(&self.project),
            "project name `{}`: use lower-case letters, digits and single dashes, starting with a letter (such as `acme-shop`)",
            self.project
        );
        ensure!(
            kebab(&self.prefix) && self.prefix.len() <= 30,
            "crate prefix `{}`: use lower-case letters, digits and single dashes, starting with a letter (such as `acme`)",
            self.prefix
        );
        ensure!(
            kebab(&self.images),
            "image namespace `{}`: use lower-case letters, digits and single dashes (such as `acme`)",
            self.images
        );
        ensure!(
            kebab(&self.namespace) && self.namespace.len() <= 63,
            "Kubernetes namespace `{}`: a DNS label (lower-case letters, digits and dashes, at most 63)",
            self.namespace
        );
        ensure!(
            !self.registry.is_empty()
                && self.registry.chars().all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || ".-:/".contains(c)
                })
                && !self.registry.ends_with('/'),
            "image registry `{}`: a host (and port or path), such as `registry.acme.example`",
            self.registry
        );
        Ok(())
    }

    fn snake(&self) -> String {
        self.prefix.replace('-', "_")
    }
}

/// Renames every text file under `root` (not `.git`, `target`, `.local`); returns how many
/// changed.
pub fn rename_tree(root: &Path, names: &Names) -> anyhow::Result<usize> {
    let mut changed = 0;
    for path in files(root)? {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue; // not text
        };
        let relative = path.strip_prefix(root).unwrap_or(&path);
        let renamed = rename_text(&relative.to_string_lossy(), &text, names);
        if renamed != text {
            std::fs::write(&path, renamed)
                .with_context(|| format!("writing {}", path.display()))?;
            changed += 1;
        }
    }
    Ok(changed)
}

/// Every file under `root`, sorted, but those under `.git`, `target` or `.local`.
pub fn files(root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?
        {
            let entry = entry?;
            let path = entry.path();
            let name = entry.file_name();
            if entry.file_type()?.is_dir() {
                if ![".git", "target", ".local"].contains(&name.to_string_lossy().as_ref()) {
                    pending.push(path);
                }
            } else if entry.file_type()?.is_file() {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

/// One file's text, renamed; `path` (relative, `/`-separated) selects the rules that apply to
/// one file only.
pub fn rename_text(path: &str, text: &str, names: &Names) -> String {
    let project = names.project.as_str();
    let prefix = names.prefix.as_str();
    let snake = names.snake();
    let ns = names.namespace.as_str();
    // Every pattern is written with `{P}` for the original name, so that renaming this file
    // (it is part of the template) leaves its rules as they are.
    let p = |pattern: &str| pattern.replace("{P}", ORIGINAL);
    let mut out = text.to_owned();
    if path == "host/Cargo.toml" {
        out = out.replace(&p("name = \"{P}\""), &format!("name = \"{prefix}\""));
    }
    if path.ends_with("namespace.yaml") {
        out = replace_word(&out, &p("name: {P}"), &format!("name: {ns}"));
    }
    if path == "README.md" && out.starts_with("# ") {
        let end = out.find('\n').unwrap_or(out.len());
        out = format!("# {project}{}", &out[end..]);
    }
    let images = &names.images;
    let exact: Vec<(&str, String)> = vec![
        (
            "COMPOSE_PROJECT_NAME={P}",
            format!("COMPOSE_PROJECT_NAME={project}"),
        ),
        ("IMAGE_PREFIX={P}", format!("IMAGE_PREFIX={images}")),
        ("IMAGE_PREFIX:-{P}}", format!("IMAGE_PREFIX:-{images}}}")),
        ("cluster.local/ns/{P}/", format!("cluster.local/ns/{ns}/")),
        ("namespace: {P}", format!("namespace: {ns}")),
        (
            "kind: Namespace, name: {P}}",
            format!("kind: Namespace, name: {ns}}}"),
        ),
        ("part-of: {P}", format!("part-of: {project}")),
        ("@{P}.local", format!("@{project}.local")),
        ("org.{P}.", format!("org.{snake}.")),
        ("target/debug/{P}", format!("target/debug/{prefix}")),
        ("target/release/{P}", format!("target/release/{prefix}")),
        ("target/dist/{P}", format!("target/dist/{prefix}")),
        ("CARGO_BIN_EXE_{P}", format!("CARGO_BIN_EXE_{prefix}")),
        ("`{P} run", format!("`{prefix} run")),
        ("`{P} bench", format!("`{prefix} bench")),
        (
            "NAMESPACE: &str = \"{P}\"",
            format!("NAMESPACE: &str = \"{ns}\""),
        ),
        (
            "registry.example.com/{P}/",
            format!("{}/{images}/", names.registry),
        ),
    ];
    for (from, to) in &exact {
        out = replace_word(&out, &p(from), to);
    }
    // Prefixes: the image namespace, the crates (kebab and snake).
    out = replace_prefix(&out, "platform/", &format!("{}/", names.images), |c| {
        c.is_ascii_lowercase() || c == '<' || c == '{'
    });
    out = replace_prefix(&out, "platform-", &format!("{prefix}-"), |c| {
        c.is_ascii_lowercase()
    });
    replace_prefix(&out, "platform_", &format!("{snake}_"), |c| {
        c.is_ascii_lowercase()
    })
}

/// Replaces `from`; where it ends in a letter, only where it is not followed by a letter,
/// digit, `_` or `-` (so that `namespace: platform` does not match `namespace: platforms`).
fn replace_word(text: &str, from: &str, to: &str) -> String {
    let open = from.ends_with(|c: char| c.is_ascii_alphanumeric());
    replace_where(text, from, to, |_, next| {
        !open || !next.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    })
}

/// Replaces `from` where it starts a word (not after a letter, digit, `_`, `-` or `.`: so
/// `rustls-platform-verifier` stays) and the next character passes `next`.
fn replace_prefix(text: &str, from: &str, to: &str, next: impl Fn(char) -> bool) -> String {
    replace_where(text, from, to, |before, after| {
        !before.is_some_and(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
            && after.is_some_and(&next)
    })
}

fn replace_where(
    text: &str,
    from: &str,
    to: &str,
    keep: impl Fn(Option<char>, Option<char>) -> bool,
) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut before: Option<char> = None;
    while let Some(at) = rest.find(from) {
        let preceding = rest[..at]
            .chars()
            .next_back()
            .or(if at == 0 { before } else { None });
        let following = rest[at + from.len()..].chars().next();
        out.push_str(&rest[..at]);
        if keep(preceding, following) {
            out.push_str(to);
        } else {
            out.push_str(from);
        }
        before = from.chars().next_back();
        rest = &rest[at + from.len()..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acme() -> Names {
        Names {
            project: "acme-shop".into(),
            prefix: "acme".into(),
            images: "acmeimg".into(),
            registry: "registry.acme.example".into(),
            namespace: "shop".into(),
        }
    }

    #[test]
    fn crates_images_and_the_namespace_are_renamed_and_prose_is_not() {
        // `{P}` stands for the original name, so that renaming this file leaves the test as it is.
        let text = "use {P}_kit::Kit;\n{P}-kit.workspace = true\n\
                    image: {P}/order-service:0.1.0\n\
                    - {name: {P}/gateway, newName: registry.example.com/{P}/gateway}\n\
                    namespace: {P}\n- cluster.local/ns/{P}/sa/gateway\n\
                    image: {P}/{{binary}}:0.1.0\n\
                    the {P}'s gateway; let {P} = Platform::start();\n\
                    \"rustls-{P}-verifier\", \"jiff-tzdb-{P}\",\n\
                    target/debug/{P} run\nenv!(\"CARGO_BIN_EXE_{P}\")\n"
            .replace("{P}", ORIGINAL);
        assert_eq!(
            rename_text("x", &text, &acme()),
            "use acme_kit::Kit;\nacme-kit.workspace = true\n\
             image: acmeimg/order-service:0.1.0\n\
             - {name: acmeimg/gateway, newName: registry.acme.example/acmeimg/gateway}\n\
             namespace: shop\n- cluster.local/ns/shop/sa/gateway\n\
             image: acmeimg/{{binary}}:0.1.0\n\
             the {P}'s gateway; let {P} = Platform::start();\n\
             \"rustls-{P}-verifier\", \"jiff-tzdb-{P}\",\n\
             target/debug/acme run\nenv!(\"CARGO_BIN_EXE_acme\")\n"
                .replace("{P}", ORIGINAL)
        );
    }

    #[test]
    fn defaults_follow_the_project_name_and_bad_names_are_refused() {
        let answers = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let names = Names::from_answers(&answers(&[("project-name", "acme-shop")])).unwrap();
        assert_eq!(names.prefix, "acme-shop");
        assert_eq!(names.images, "acme-shop");
        assert_eq!(names.namespace, "acme-shop");
        assert_eq!(names.registry, ORIGINAL_REGISTRY);
        let error = Names::from_answers(&answers(&[
            ("project-name", "acme-shop"),
            ("crate_prefix", "Acme"),
        ]))
        .unwrap_err();
        assert!(
            error.to_string().starts_with("crate prefix `Acme`"),
            "{error}"
        );
    }

    /// The whole repository, renamed in memory: no crate prefix is left, and every project
    /// name the rules know of is gone.
    #[test]
    fn nothing_of_the_original_names_is_left_in_the_repository() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut leftovers = Vec::new();
        for path in files(&root).unwrap() {
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let relative = path
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let renamed = rename_text(&relative, &text, &acme());
            for (number, line) in renamed.lines().enumerate() {
                let hit = [
                    "platform-",
                    "platform_",
                    "platform/",
                    "ns/platform",
                    ": platform",
                ]
                .iter()
                .any(|token| {
                    line.match_indices(token).any(|(at, _)| {
                        let before = line[..at].chars().next_back();
                        let after = line[at + token.len()..].chars().next();
                        !before.is_some_and(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
                            && after.is_none_or(|c| c.is_ascii_lowercase() || c == '<' || c == '\n')
                    })
                });
                if hit {
                    leftovers.push(format!("{relative}:{}: {line}", number + 1));
                }
            }
        }
        assert!(
            leftovers.is_empty(),
            "left after renaming:\n{}",
            leftovers.join("\n")
        );
    }
}
