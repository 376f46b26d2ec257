//! `scaffold`: what the `cargo generate` hooks of this repository run (see `templates/`).
//!
//! ```text
//! scaffold rename <answers> [<root>]          rename a generated platform (post-hook)
//! scaffold service plan <answers> [<root>]    check a new service's answers, print its variables
//! scaffold service apply <answers> [<root>]   make its edits in the workspace's existing files
//! ```
//!
//! `<answers>` is a file of `name=value` lines the hook writes (values never pass through a
//! shell); `<root>` is the workspace (default: the current directory). A refusal is one line on
//! stderr, exit status 1, and nothing written.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use platform_scaffold::{Answers, NewService, rename, service_edits};

fn main() -> ExitCode {
    match run(&std::env::args().skip(1).collect::<Vec<_>>()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> anyhow::Result<()> {
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    let (command, rest) = match words.as_slice() {
        ["rename", rest @ ..] => ("rename", rest),
        ["service", "plan", rest @ ..] => ("plan", rest),
        ["service", "apply", rest @ ..] => ("apply", rest),
        _ => bail!(
            "usage: scaffold rename <answers> [<root>] | scaffold service plan|apply <answers> [<root>]"
        ),
    };
    let (answers, root) = match rest {
        [answers] => (*answers, "."),
        [answers, root] => (*answers, *root),
        _ => bail!("expected <answers> [<root>]"),
    };
    let answers = read_answers(Path::new(answers))?;
    let root = PathBuf::from(root);
    match command {
        "rename" => {
            let names = rename::Names::from_answers(&answers)?;
            let renamed = rename::rename_tree(&root, &names)?;
            // New crate names sort elsewhere: in Cargo.lock (which cargo rewrites on its next
            // run, so do it now) and among the imports (rustfmt).
            for args in [
                &["metadata", "--quiet", "--format-version", "1"][..],
                &["fmt", "--all"][..],
            ] {
                let done = std::process::Command::new("cargo")
                    .args(args)
                    .current_dir(&root)
                    .stdout(std::process::Stdio::null())
                    .status();
                if !done.is_ok_and(|status| status.success()) {
                    eprintln!(
                        "warning: `cargo {}` failed: run it in the new project",
                        args.join(" ")
                    );
                }
            }
            println!(
                "renamed the platform to `{}` ({renamed} files)",
                names.project
            );
        }
        "plan" => {
            let service = plan(&answers, &root)?;
            // The edits are planned too, so a missing anchor is found before anything is
            // generated.
            service_edits(&root, &service)?;
            for (name, value) in service.variables() {
                println!("{name}={value}");
            }
        }
        _ => {
            let service = plan(&answers, &root)?;
            let written = service_edits(&root, &service)?.apply()?;
            // The new files, rendered in the current directory (cargo-generate's copy of the
            // template), are formatted before they are copied in: names of any length come
            // out as rustfmt would have them.
            format_rust_files(Path::new("."));
            println!(
                "wired `{}` into {} files: {}",
                service.name,
                written.len(),
                written
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            // The configuration reference is generated from the compiled code, which holds the
            // new service only once it builds.
            println!("then run `make docs` to add it to docs/configuration.md");
        }
    }
    Ok(())
}

fn plan(answers: &BTreeMap<String, String>, root: &Path) -> anyhow::Result<NewService> {
    let get = |key: &str| answers.get(key).cloned().unwrap_or_default();
    let registry = std::fs::read_to_string(root.join("services.toml")).with_context(|| {
        format!(
            "{} has no services.toml: run the service template at the root of a generated platform",
            root.display()
        )
    })?;
    NewService::plan(
        &Answers {
            name: get("service"),
            store: get("store"),
            grpc: matches!(get("grpc").as_str(), "true" | "yes"),
            emits: get("emits"),
            consumes: get("consumes"),
            http_port: get("http_port"),
            grpc_port: get("grpc_port"),
        },
        &registry,
    )
}

/// Runs rustfmt over the `.rs` files under `dir`; a missing rustfmt is only a warning.
fn format_rust_files(dir: &Path) {
    let files: Vec<PathBuf> = rename::files(dir)
        .unwrap_or_default()
        .into_iter()
        .filter(|path| path.extension().is_some_and(|ext| ext == "rs"))
        .collect();
    if files.is_empty() {
        return;
    }
    match std::process::Command::new("rustfmt")
        .args(["--edition", "2024"])
        .args(&files)
        .status()
    {
        Ok(status) if status.success() => {}
        Ok(status) => eprintln!("warning: rustfmt exited with {status}"),
        Err(error) => eprintln!("warning: rustfmt could not run ({error}): run `cargo fmt`"),
    }
}

fn read_answers(path: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(text
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| (key.trim().to_owned(), value.trim().to_owned()))
        .collect())
}
