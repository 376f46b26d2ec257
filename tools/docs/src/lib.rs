//! The documentation, held to the code by this crate's tests.
//!
//! [`configuration_reference`] writes `docs/configuration.md` from the code: for each process
//! of `services.toml`, every variable its settings' types read ([`source`]), its default as its
//! own code computes it, and the doc comment of its field ([`reference`]). The test
//! `tests/configuration.rs` lists the processes with their settings types, fails while the file
//! differs from what the code gives, and rewrites it under `UPDATE_DOCS=1` (`make docs`).

use std::path::Path;

pub mod reference;
#[cfg(test)]
mod sample;
pub mod source;

pub use reference::{Process, Resolved, Row};

/// Where the configuration reference is, in the workspace.
pub const CONFIGURATION_DOCUMENT: &str = "docs/configuration.md";

/// What regenerates the generated documents.
pub const REGENERATE: &str = "make docs";

/// The binaries of every process of the registry, in its order: the gateway, the storefront,
/// then each service.
pub fn registry_binaries() -> Vec<String> {
    let registry = platform_registry::registry();
    [&registry.gateway.binary, &registry.storefront.binary]
        .into_iter()
        .cloned()
        .chain(
            registry
                .services
                .iter()
                .map(|service| service.binary.clone()),
        )
        .collect()
}

/// Checks that `listed` holds each of `expected` once, and nothing else.
pub fn check_listed(expected: &[String], listed: &[&str]) -> Result<(), String> {
    let missing: Vec<&str> = expected
        .iter()
        .map(String::as_str)
        .filter(|binary| !listed.contains(binary))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "services.toml declares {}, which the configuration reference does not list: add \
             each to `processes()` in tools/docs/tests/configuration.rs (`Process::service::<{}::Config>(\"{}\")`) \
             and its crate to tools/docs/Cargo.toml's dev-dependencies",
            missing.join(", "),
            missing[0].replace('-', "_"),
            missing[0],
        ));
    }
    for (at, binary) in listed.iter().enumerate() {
        if !expected.iter().any(|e| e == binary) {
            return Err(format!(
                "the configuration reference lists `{binary}`, which services.toml does not \
                 declare"
            ));
        }
        if listed[..at].contains(binary) {
            return Err(format!(
                "the configuration reference lists `{binary}` twice"
            ));
        }
    }
    Ok(())
}

/// The configuration reference of `processes` (every one of the registry), reading their
/// sources under `root` (the workspace).
pub fn configuration_reference(root: &Path, processes: &[Process]) -> Result<String, String> {
    let expected = registry_binaries();
    let listed: Vec<&str> = processes.iter().map(|p| p.binary.as_str()).collect();
    check_listed(&expected, &listed)?;
    let mut out = String::from(INTRODUCTION);
    let mut errors = Vec::new();
    for binary in &expected {
        let Some(process) = processes.iter().find(|p| &p.binary == binary) else {
            continue;
        };
        match process.rows(root) {
            Ok(rows) => out.push_str(&section(process, &rows)),
            Err(error) => errors.push(format!("{binary}: {error}")),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors.join("\n"))
    }
}

const INTRODUCTION: &str = "\
# Configuration reference

<!-- Generated from the code by tools/docs: edit the settings' types and doc comments, then run `make docs`. -->

Every process reads its configuration from environment variables named
`{PREFIX}__{SECTION}__{KEY}`: `ORDER_SERVICE__SAGA__LEASE_SECS` sets `lease_secs` in the
`saga` section of the order service. Each default is in the code, and a variable overrides one
setting. A required setting that is missing, or a value that does not parse, stops the process
at start-up with a message naming the variable. A variable carrying the process's prefix that no
setting reads (a typo, or a setting renamed since) is named in a warning on stderr, and
otherwise ignored. `{NAME}` stands for a key of your choosing.

Secrets (database URLs, signing keys, passwords) never print: logs, errors and debug output show
`[REDACTED]`. The only secret values shown here are defaults written in the code.

This file is generated from each process's settings: their types (the names), their doc
comments (the meanings) and the defaults the process's own code computes when only the required
variables are set. A test fails while it differs from the code; `make docs` regenerates it.
";

/// A process's part of the reference.
fn section(process: &Process, rows: &[Row]) -> String {
    let files: Vec<String> = process
        .sources
        .iter()
        .map(|file| format!("[`{file}`](../{file})"))
        .collect();
    format!(
        "\n## {}\n\nVariables `{}__*`, declared in {}.\n\n{}",
        process.binary,
        process.env_prefix,
        files.join(", "),
        reference::table(rows)
    )
}

/// Checks that the document `name` reads `generated`, saying where it differs and how to
/// regenerate it.
pub fn compare(name: &str, current: &str, generated: &str) -> Result<(), String> {
    if current == generated {
        return Ok(());
    }
    let line = current
        .lines()
        .zip(generated.lines())
        .position(|(a, b)| a != b)
        .unwrap_or_else(|| current.lines().count().min(generated.lines().count()));
    Err(format!(
        "{name} is stale: run `{REGENERATE}` (UPDATE_DOCS=1 rewrites it). First difference at \
         line {}:\n  in the file: {}\n  from the code: {}",
        line + 1,
        current.lines().nth(line).unwrap_or("(end of file)"),
        generated.lines().nth(line).unwrap_or("(end of file)"),
    ))
}

/// Rewrites the document at `root`/`name` when `update`, else compares it with `generated`.
pub fn check_or_update(
    root: &Path,
    name: &str,
    generated: &str,
    update: bool,
) -> Result<(), String> {
    let path = root.join(name);
    if update {
        return std::fs::write(&path, generated).map_err(|e| format!("writing {name}: {e}"));
    }
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    compare(name, &current, generated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stale_document_is_refused_with_the_first_difference_and_the_fix() {
        assert_eq!(compare("d.md", "a\nb\n", "a\nb\n"), Ok(()));
        let error = compare("d.md", "a\nb\nc\n", "a\nB\nc\n").unwrap_err();
        assert!(
            error.starts_with("d.md is stale: run `make docs`"),
            "{error}"
        );
        assert!(
            error.contains("line 2:\n  in the file: b\n  from the code: B"),
            "{error}"
        );
        let error = compare("d.md", "a\n", "a\nb\n").unwrap_err();
        assert!(error.contains("in the file: (end of file)"), "{error}");
    }

    #[test]
    fn a_process_of_the_registry_left_out_is_named_with_what_to_add() {
        let expected: Vec<String> = ["gateway", "user-service", "shipping-service"]
            .map(str::to_owned)
            .to_vec();
        assert_eq!(
            check_listed(&expected, &["user-service", "gateway", "shipping-service"]),
            Ok(())
        );
        let error = check_listed(&expected, &["gateway", "user-service"]).unwrap_err();
        assert!(
            error.starts_with("services.toml declares shipping-service, which"),
            "{error}"
        );
        assert!(
            error.contains("Process::service::<shipping_service::Config>(\"shipping-service\")"),
            "{error}"
        );
        let error = check_listed(
            &expected,
            &["gateway", "user-service", "shipping-service", "x"],
        )
        .unwrap_err();
        assert!(error.contains("lists `x`"), "{error}");
    }

    #[test]
    fn the_registry_s_processes_start_with_the_edge() {
        let binaries = registry_binaries();
        assert_eq!(binaries[..3], ["gateway", "storefront", "user-service"]);
    }
}
