//! The Prometheus rules (`deploy/prometheus/alerts.yml`) held to their unit tests
//! (`deploy/prometheus/tests/alerts.test.yml`): `promtool check rules` accepts them,
//! `promtool test rules` passes, every alert carries what the person it wakes needs (a
//! severity, a summary, a description, a runbook), and every alert is tested both firing and
//! staying quiet, every recording rule queried.
//!
//! promtool comes from `PROMTOOL`, else `PATH`; `scripts/infra.sh promtool` provides it (`make
//! test` sets `PROMTOOL` from it). Without it these tests fail rather than skip: a rule nobody
//! ran is a page nobody gets.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use platform_deploy::{parse_yaml, text, workspace_root};
use serde_json::Value;

/// The rules, from the workspace root.
const RULES: &str = "deploy/prometheus/alerts.yml";

/// Their unit tests, from the workspace root.
const RULE_TESTS: &str = "deploy/prometheus/tests/alerts.test.yml";

/// The severities `alerts.yml` routes on (its header says what each means).
const SEVERITIES: [&str; 3] = ["page", "ticket", "warning"];

/// What to do without promtool.
const INSTALL: &str = "run with PROMTOOL=\"$(scripts/infra.sh promtool)\" (it unpacks Debian's \
                       `prometheus` package under .local/), as `make test` does";

#[test]
fn promtool_accepts_the_alerting_and_recording_rules() {
    let (ok, output) = promtool(&["check", "rules", RULES]);
    assert!(ok, "`promtool check rules {RULES}` failed:\n{output}");
}

#[test]
fn every_rule_behaves_as_its_promtool_unit_tests_expect() {
    let (ok, output) = promtool(&["test", "rules", RULE_TESTS]);
    assert!(ok, "`promtool test rules {RULE_TESTS}` failed:\n{output}");
}

#[test]
fn every_alert_has_a_severity_a_summary_a_description_and_a_runbook() {
    for rule in rules().iter().filter(|rule| rule.get("alert").is_some()) {
        let name = text(&rule["alert"]);
        let severity = text(&rule["labels"]["severity"]);
        assert!(
            SEVERITIES.contains(&severity),
            "{name}: severity `{severity}` is none of {SEVERITIES:?}"
        );
        for annotation in ["summary", "description", "runbook"] {
            assert!(
                !text(&rule["annotations"][annotation]).trim().is_empty(),
                "{name} has no `{annotation}` annotation"
            );
        }
    }
}

#[test]
fn every_alert_is_tested_firing_and_quiet_and_every_recording_rule_is_queried() {
    let tests = yaml(RULE_TESTS);
    let cases = tests["tests"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut firing = BTreeSet::new();
    let mut quiet = BTreeSet::new();
    let mut queried = BTreeSet::new();
    for case in cases {
        for check in case["alert_rule_test"].as_array().into_iter().flatten() {
            let fires = check["exp_alerts"]
                .as_array()
                .is_some_and(|alerts| !alerts.is_empty());
            let seen = if fires { &mut firing } else { &mut quiet };
            seen.insert(text(&check["alertname"]).to_owned());
        }
        for check in case["promql_expr_test"].as_array().into_iter().flatten() {
            queried.extend(names_in(text(&check["expr"])));
        }
    }

    let mut missing = Vec::new();
    for rule in rules() {
        if let Some(alert) = rule["alert"].as_str() {
            if !firing.contains(alert) {
                missing.push(format!("{alert} is never tested firing"));
            }
            if !quiet.contains(alert) {
                missing.push(format!("{alert} is never tested staying quiet"));
            }
        } else {
            let record = text(&rule["record"]);
            if !queried.contains(record) {
                missing.push(format!("the recording rule {record} is never queried"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "{RULE_TESTS} leaves rules of {RULES} untested:\n  {}",
        missing.join("\n  ")
    );
}

/// Runs promtool in the workspace root: whether it succeeded, and what it printed.
fn promtool(args: &[&str]) -> (bool, String) {
    let program = promtool_path();
    let output = Command::new(&program)
        .args(args)
        .current_dir(workspace_root())
        .output()
        .unwrap_or_else(|error| panic!("cannot run {}: {error}; {INSTALL}", program.display()));
    let mut printed = String::from_utf8_lossy(&output.stdout).into_owned();
    printed.push_str(&String::from_utf8_lossy(&output.stderr));
    (output.status.success(), printed)
}

/// `PROMTOOL` if set, else the first `promtool` on `PATH`; a failure saying how to get one if
/// neither.
fn promtool_path() -> PathBuf {
    if let Some(path) = std::env::var_os("PROMTOOL") {
        return PathBuf::from(path);
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("promtool"))
        .find(|path| path.is_file())
        .unwrap_or_else(|| panic!("promtool is not on PATH and PROMTOOL is not set: {INSTALL}"))
}

/// Every rule of every group of `alerts.yml`.
fn rules() -> Vec<Value> {
    let rules = yaml(RULES);
    rules["groups"]
        .as_array()
        .expect("alerts.yml has groups")
        .iter()
        .flat_map(|group| group["rules"].as_array().cloned().unwrap_or_default())
        .collect()
}

/// The one document of a YAML file under the workspace root.
fn yaml(path: &str) -> Value {
    let source = std::fs::read_to_string(workspace_root().join(path))
        .unwrap_or_else(|error| panic!("reading {path}: {error}"));
    let mut documents = parse_yaml(&source).unwrap_or_else(|error| panic!("{path}: {error:#}"));
    assert_eq!(documents.len(), 1, "{path} holds one YAML document");
    documents.remove(0)
}

/// The metric and rule names a PromQL expression mentions (and its other words: functions,
/// keywords, label names), whole.
fn names_in(expr: &str) -> impl Iterator<Item = String> + '_ {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|word| !word.is_empty())
        .map(str::to_owned)
}
