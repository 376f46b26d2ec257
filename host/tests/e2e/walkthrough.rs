//! The README's walkthrough, run as written: the ```sh block under `## Walkthrough` is read
//! from README.md at test time, its commands run one by one with bash (`set -eo pipefail`)
//! against a platform of its own, and each command's output is held to the `#  ` lines that
//! follow it in the README.
//!
//! The only substitutions are the two addresses the block assigns at its top: `GW=` becomes
//! the platform's gateway and `MAIL=` the HTTP API of a mail catcher of the test's own
//! (`scripts/mailcatcher.py`, run with the Python of `scripts/infra.sh`'s virtualenv). The
//! shared mail catcher keeps every run's mail to `ada@example.com`; one of its own shows only
//! this run's, as a person's first run after `make run` does. The platform is the one
//! `make run` starts: the demo catalogue, the gateway's default rate limits. So this test
//! always starts a platform of its own, whatever `E2E_GATEWAY_URL` says.
//!
//! The answers are compared by shape ([`compare`]): the same number of lines; JSON with the
//! same keys at every level, the same value types, the same array lengths, and equal values,
//! except for strings (or words inside strings) that are ids: a UUID, a run of at least eight
//! hex digits with a digit among them (the order number in an e-mail's subject), an RFC 3339
//! timestamp, a JWT; such a value matches any other of its kind. Numbers are compared exactly.
//! Other lines: a header (`name: value`) must have the same name and, except for the counters
//! of [`VARIABLE_HEADERS`] (any whole number), the same value; any other line must be equal, ids
//! aside.
//!
//! A command that only reads (a `curl` without `-X` or `-d`) is asked again, for up to
//! [`SETTLE`], until its answer matches, as a person reading a moment later would see it (the
//! saga, the e-mails and the refund finish in the background); any other command runs once. An
//! assignment (`TOKEN=$(...)`) must exit with 0 and give its variable a value (not `null`).
//!
//! ```text
//! cargo nextest run --workspace -E 'test(walkthrough)'
//! ```

use std::fmt::Write as _;
use std::fs::File;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use platform_host::Service;
use platform_testkit::unique_name;
use serde_json::Value;

use crate::helpers::{free_port, own_platform};

/// The heading of the README's section whose ```sh block this test runs.
const SECTION: &str = "## Walkthrough";
/// What starts a line of expected output in the block: a hash and two spaces.
const ANSWER: &str = "#  ";
/// The longest one command may run.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a read is asked again until its answer matches.
const SETTLE: Duration = Duration::from_secs(20);
/// How often it is asked again.
const POLL: Duration = Duration::from_millis(250);
/// How long the mail catcher may take to answer.
const MAIL_READY: Duration = Duration::from_secs(20);
/// Headers whose values are counters that differ from run to run: any whole number matches.
const VARIABLE_HEADERS: &[&str] = &["ratelimit-remaining", "ratelimit-reset"];

/// The workspace's root (host/..).
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ is in the workspace")
        .to_path_buf()
}

/// A command of the block (with its continuation lines) and the answer the README shows for
/// it (the `#  ` lines after it, without the prefix; none for a command shown without one).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Step {
    command: String,
    expected: Vec<String>,
}

impl Step {
    /// The command on one line, for messages.
    fn one_line(&self) -> String {
        self.command
            .lines()
            .map(|line| line.trim().trim_end_matches('\\').trim())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The variable the command assigns (`TOKEN=$(...)`), if it is an assignment.
    fn assigns(&self) -> Option<&str> {
        let (name, _) = self.command.split_once('=')?;
        let mut chars = name.chars();
        let valid = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        valid.then_some(name)
    }

    /// Whether it only reads, so that asking again changes nothing: a `curl` that neither
    /// names a method (`-X`) nor sends a body (`-d`).
    fn only_reads(&self) -> bool {
        !self.command.split_whitespace().any(|word| {
            matches!(word, "-X" | "--request" | "-d" | "-F" | "-T")
                || word.starts_with("--data")
                || word.starts_with("-X")
        })
    }
}

/// The lines of the first ```sh block under `## Walkthrough`.
fn walkthrough_block(readme: &str) -> Vec<&str> {
    let mut lines = readme.lines().skip_while(|line| line.trim_end() != SECTION);
    assert!(
        lines.next().is_some(),
        "README.md has no `{SECTION}` section"
    );
    let mut lines = lines
        .take_while(|line| !line.starts_with("## "))
        .skip_while(|line| line.trim_end() != "```sh");
    assert!(
        lines.next().is_some(),
        "README.md's `{SECTION}` section has no ```sh block"
    );
    let block: Vec<&str> = lines.take_while(|line| line.trim_end() != "```").collect();
    assert!(!block.is_empty(), "README.md's `{SECTION}` block is empty");
    block
}

/// The block's commands with their expected answers. Other comments and blank lines are left
/// out; a line ending in `\` continues on the next.
fn steps(block: &[&str]) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    let mut continued = false;
    for line in block {
        if continued {
            let step = steps.last_mut().expect("a continued command");
            step.command.push('\n');
            step.command.push_str(line);
            continued = line.ends_with('\\');
        } else if let Some(answer) = line.strip_prefix(ANSWER) {
            let step = steps.last_mut().unwrap_or_else(|| {
                panic!("README.md's walkthrough shows an answer before any command: {line}")
            });
            step.expected.push(answer.to_owned());
        } else if !line.trim().is_empty() && !line.trim_start().starts_with('#') {
            // Not a blank line nor a comment for the reader: a command.
            steps.push(Step {
                command: (*line).to_owned(),
                expected: Vec::new(),
            });
            continued = line.ends_with('\\');
        }
    }
    steps
}

/// The steps with the assignments `GW=...` and `MAIL=...` pointing at `gateway` and `mail`
/// (each must be in the block exactly once).
fn with_addresses(mut steps: Vec<Step>, gateway: &str, mail: &str) -> Vec<Step> {
    for (name, url) in [("GW", gateway), ("MAIL", mail)] {
        let assignments: Vec<&mut Step> = steps
            .iter_mut()
            .filter(|step| step.assigns() == Some(name))
            .collect();
        assert_eq!(
            assignments.len(),
            1,
            "README.md's walkthrough must assign {name}=... exactly once (at its top), so that \
             this test can point it at its own platform"
        );
        for step in assignments {
            step.command = format!("{name}={url}");
        }
    }
    steps
}

// ---------------------------------------------------------------------------- comparing ---

/// Whether `actual` (a command's output) has the shape of `expected` (the README's answer):
/// see the module's documentation for the rule. The error says where they differ.
fn compare(expected: &[String], actual: &str) -> Result<(), String> {
    let actual: Vec<&str> = actual.lines().collect();
    if actual.iter().all(|line| line.trim().is_empty()) {
        return Err("it printed nothing".to_owned());
    }
    if actual.len() != expected.len() {
        return Err(format!(
            "it printed {} line(s) where the README shows {}",
            actual.len(),
            expected.len()
        ));
    }
    for (number, (expected, actual)) in expected.iter().zip(&actual).enumerate() {
        compare_line(expected, actual).map_err(|why| format!("line {}: {why}", number + 1))?;
    }
    Ok(())
}

fn compare_line(expected: &str, actual: &str) -> Result<(), String> {
    if let Ok(expected) = serde_json::from_str::<Value>(expected) {
        let actual = serde_json::from_str::<Value>(actual)
            .map_err(|_| "not JSON, where the README shows JSON".to_owned())?;
        return compare_json("", &expected, &actual);
    }
    if let Some((name, value)) = header(expected) {
        let (actual_name, actual_value) =
            header(actual).ok_or_else(|| format!("not a header, where the README shows {name}"))?;
        if !name.eq_ignore_ascii_case(actual_name) {
            return Err(format!(
                "the header {actual_name}, where the README shows {name}"
            ));
        }
        let counter = VARIABLE_HEADERS
            .iter()
            .any(|variable| name.eq_ignore_ascii_case(variable));
        let matches = if counter {
            value.parse::<u64>().is_ok() && actual_value.parse::<u64>().is_ok()
        } else {
            masked(value) == masked(actual_value)
        };
        return if matches {
            Ok(())
        } else {
            Err(format!(
                "{name} is `{actual_value}`, where the README shows `{value}`"
            ))
        };
    }
    if masked(expected) == masked(actual) {
        Ok(())
    } else {
        Err("the text differs".to_owned())
    }
}

/// A header line's name and value (`ratelimit-limit: 600`).
fn header(line: &str) -> Option<(&str, &str)> {
    let (name, value) = line.split_once(':')?;
    let is_name = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    is_name.then(|| (name, value.trim()))
}

fn compare_json(path: &str, expected: &Value, actual: &Value) -> Result<(), String> {
    let at = if path.is_empty() { "." } else { path };
    match (expected, actual) {
        (Value::Object(expected), Value::Object(actual)) => {
            if let Some(key) = expected.keys().find(|key| !actual.contains_key(*key)) {
                return Err(format!("`{path}.{key}` is missing"));
            }
            if let Some(key) = actual.keys().find(|key| !expected.contains_key(*key)) {
                return Err(format!("`{path}.{key}` is not in the README"));
            }
            expected.iter().try_for_each(|(key, value)| {
                compare_json(&format!("{path}.{key}"), value, &actual[key])
            })
        }
        (Value::Array(expected), Value::Array(actual)) => {
            if expected.len() != actual.len() {
                return Err(format!(
                    "`{at}` has {} item(s), where the README shows {}",
                    actual.len(),
                    expected.len()
                ));
            }
            expected
                .iter()
                .zip(actual)
                .enumerate()
                .try_for_each(|(index, (expected, actual))| {
                    compare_json(&format!("{path}[{index}]"), expected, actual)
                })
        }
        (Value::String(expected_text), Value::String(actual_text)) => {
            if masked(expected_text) == masked(actual_text) {
                Ok(())
            } else {
                Err(format!(
                    "`{at}` is {actual}, where the README shows {expected}"
                ))
            }
        }
        (Value::Number(_), Value::Number(_))
        | (Value::Bool(_), Value::Bool(_))
        | (Value::Null, Value::Null) => {
            if expected == actual {
                Ok(())
            } else {
                Err(format!(
                    "`{at}` is {actual}, where the README shows {expected}"
                ))
            }
        }
        _ => Err(format!(
            "`{at}` is {} ({actual}), where the README shows {} ({expected})",
            kind(actual),
            kind(expected)
        )),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The text with what differs from run to run replaced by its kind: a whole timestamp or JWT,
/// and each word (letters, digits, `-`) that is a UUID or an id of at least eight hex digits.
fn masked(text: &str) -> String {
    if chrono::DateTime::parse_from_rfc3339(text).is_ok() {
        return "<timestamp>".to_owned();
    }
    if is_jwt(text) {
        return "<token>".to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if is_id(word) {
            out.push_str("<id>");
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || c == '-' {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// A UUID, or at least eight hex digits with a digit among them (`5280A2C3`, not `deadbeef`
/// nor `CANCELLED`).
fn is_id(word: &str) -> bool {
    let is_uuid = word.len() == 36 && uuid::Uuid::try_parse(word).is_ok();
    let is_hex = word.len() >= 8
        && word.chars().all(|c| c.is_ascii_hexdigit())
        && word.chars().any(|c| c.is_ascii_digit());
    is_uuid || is_hex
}

/// Three dot-separated base64url segments, as a JWT is.
fn is_jwt(text: &str) -> bool {
    let segments: Vec<&str> = text.split('.').collect();
    segments.len() == 3
        && segments.iter().all(|segment| {
            segment.len() >= 4
                && segment
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

// ----------------------------------------------------------------------------- running ---

/// What a command did.
struct Outcome {
    /// `None`: it was killed after [`COMMAND_TIMEOUT`].
    status: Option<std::process::ExitStatus>,
    stdout: String,
    stderr: String,
}

impl Outcome {
    fn succeeded(&self) -> bool {
        self.status.is_some_and(|status| status.success())
    }

    fn failure(&self) -> String {
        match self.status {
            None => format!("it did not finish within {COMMAND_TIMEOUT:?} and was killed"),
            Some(status) => format!("it exited with {status}"),
        }
    }
}

/// A value as a single-quoted shell word.
fn shell_quoted(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// Runs `script` with bash (`set -eo pipefail`), after assigning `variables`, in its own
/// process group, killed with everything it started after [`COMMAND_TIMEOUT`].
fn bash(variables: &[(String, String)], script: &str, dir: &Path) -> Outcome {
    let mut text = String::from("set -eo pipefail\n");
    for (name, value) in variables {
        let _ = writeln!(text, "{name}={}", shell_quoted(value));
    }
    text.push_str(script);
    text.push('\n');
    let stdout_path = dir.join("stdout");
    let stderr_path = dir.join("stderr");
    let mut child = Command::new("bash")
        .arg("-c")
        .arg(&text)
        .current_dir(dir)
        // Nothing of the caller's shell set-up, and no proxy between curl and 127.0.0.1.
        .env_remove("BASH_ENV")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .stdin(Stdio::null())
        .stdout(File::create(&stdout_path).expect("a file for a command's output"))
        .stderr(File::create(&stderr_path).expect("a file for a command's errors"))
        .process_group(0)
        .spawn()
        .unwrap_or_else(|error| panic!("running bash: {error}; is it installed?"));
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for bash") {
            break Some(status);
        }
        if Instant::now() >= deadline {
            // The whole group: bash, and the curl it waits for.
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let read = |path: &Path| {
        String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned()
    };
    Outcome {
        status,
        stdout: read(&stdout_path),
        stderr: read(&stderr_path),
    }
}

/// Runs one step, off the async runtime.
async fn run(variables: &[(String, String)], script: String, dir: &Path) -> Outcome {
    let variables = variables.to_vec();
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || bash(&variables, &script, &dir))
        .await
        .expect("running a command")
}

/// Indented lines, for a failure message.
fn indented(text: &str) -> String {
    if text.trim().is_empty() {
        return "    (nothing)".to_owned();
    }
    text.lines()
        .map(|line| format!("    {line}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Runs a step and holds its output to the README's answer; an assignment's value is added to
/// `variables`.
async fn run_step(step: &Step, variables: &mut Vec<(String, String)>, dir: &Path) {
    let command = step.one_line();
    if let Some(name) = step.assigns() {
        assert!(
            step.expected.is_empty(),
            "README.md's walkthrough shows an answer under an assignment, which prints nothing: \
             {command}"
        );
        let outcome = run(
            variables,
            format!("{}\nprintf '%s' \"${name}\"", step.command),
            dir,
        )
        .await;
        let value = outcome.stdout.trim().to_owned();
        assert!(
            outcome.succeeded() && !value.is_empty() && value != "null",
            "the walkthrough's command\n    {command}\ngave {name} {value:?} ({}); its errors:\n{}",
            outcome.failure(),
            indented(&outcome.stderr)
        );
        eprintln!("$ {command}\n  ({name} set)");
        variables.retain(|(known, _)| known != name);
        variables.push((name.to_owned(), value));
        return;
    }
    if step.expected.is_empty() {
        let outcome = run(variables, step.command.clone(), dir).await;
        assert!(
            outcome.succeeded(),
            "the walkthrough's command\n    {command}\nfailed: {}; it printed\n{}\nand its errors:\n{}",
            outcome.failure(),
            indented(&outcome.stdout),
            indented(&outcome.stderr)
        );
        eprintln!("$ {command}\n{}", indented(&outcome.stdout));
        return;
    }
    let deadline = Instant::now()
        + if step.only_reads() {
            SETTLE
        } else {
            Duration::ZERO
        };
    let mut attempts = 0;
    loop {
        attempts += 1;
        let outcome = run(variables, step.command.clone(), dir).await;
        let verdict = if outcome.succeeded() {
            compare(&step.expected, &outcome.stdout)
        } else {
            Err(outcome.failure())
        };
        match verdict {
            Ok(()) => {
                eprintln!(
                    "$ {command}\n{}\n  (as the README shows, at attempt {attempts})",
                    indented(&outcome.stdout)
                );
                return;
            }
            Err(_) if Instant::now() < deadline => tokio::time::sleep(POLL).await,
            Err(why) => panic!(
                "the walkthrough's command\n    {command}\nanswered\n{}\nwhere README.md \
                 shows\n{}\n{why} (asked {attempts} time(s)); its errors:\n{}",
                indented(&outcome.stdout),
                indented(&step.expected.join("\n")),
                indented(&outcome.stderr)
            ),
        }
    }
}

/// The Python of `scripts/infra.sh`'s virtualenv (`INFRA_PYTHON` of `scripts/infra.sh env`),
/// which has the mail catcher's `aiosmtpd`.
fn infra_python() -> PathBuf {
    std::env::var_os("INFRA_PYTHON")
        .map(PathBuf::from)
        .filter(|python| python.is_file())
        .unwrap_or_else(|| {
            panic!(
                "no INFRA_PYTHON (scripts/infra.sh's virtualenv) to run the mail catcher with: \
                 run `scripts/infra.sh up` and `eval \"$(scripts/infra.sh env)\"`"
            )
        })
}

/// A mail catcher of the test's own (`scripts/mailcatcher.py`), killed on drop.
struct MailCatcher {
    child: Child,
    smtp_port: u16,
    api_port: u16,
    log: PathBuf,
}

impl MailCatcher {
    async fn start(dir: &Path) -> Self {
        let (smtp_port, api_port) = (free_port(), free_port());
        let log = dir.join("mailcatcher.log");
        let file = File::create(&log).expect("the mail catcher's log file");
        let child = Command::new(infra_python())
            .arg(workspace_root().join("scripts/mailcatcher.py"))
            .args(["--smtp-port", &smtp_port.to_string()])
            .args(["--http-port", &api_port.to_string()])
            .arg("--dir")
            .arg(dir.join("mail"))
            .stdin(Stdio::null())
            .stdout(
                file.try_clone()
                    .expect("the mail catcher's log file, twice"),
            )
            .stderr(file)
            .spawn()
            .unwrap_or_else(|error| panic!("starting the mail catcher: {error}"));
        let mut catcher = Self {
            child,
            smtp_port,
            api_port,
            log,
        };
        catcher.wait_ready().await;
        catcher
    }

    async fn wait_ready(&mut self) {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + MAIL_READY;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "the mail catcher exited ({status}); its log:\n{}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            let health = http
                .get(format!("{}/health", self.api_url()))
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            if health.is_ok_and(|response| response.status().is_success()) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the mail catcher did not answer within {MAIL_READY:?}; its log:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn smtp_url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.smtp_port)
    }

    fn api_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.api_port)
    }
}

impl Drop for MailCatcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Fails, saying how to get them, if the programs the walkthrough runs are missing.
fn require_programs() {
    for program in ["bash", "curl", "jq"] {
        let found = Command::new(program)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        assert!(
            found,
            "the README's walkthrough needs {program}: `scripts/infra.sh up` installs it \
             (apt-get install {program})"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_walkthrough_answers_as_the_readme_shows() {
    platform_http::install_crypto_provider();
    require_programs();
    let readme = std::fs::read_to_string(workspace_root().join("README.md"))
        .expect("README.md at the workspace's root");
    let steps = steps(&walkthrough_block(&readme));

    let dir = std::env::temp_dir().join(unique_name("walkthrough"));
    std::fs::create_dir_all(&dir).expect("a directory for the walkthrough");
    let mail = MailCatcher::start(&dir).await;
    let (platform, _client) = own_platform(|config| {
        config.infra.smtp = mail.smtp_url();
        // The README shows the gateway's default limits, which `make run` has.
        if let Some(gateway) = config.extra_env.get_mut(&Service::GATEWAY) {
            gateway.retain(|(key, _)| !key.contains("__RATE_LIMIT__"));
        }
    })
    .await;

    let steps = with_addresses(steps, &platform.gateway_url(), &mail.api_url());
    let mut variables = Vec::new();
    for step in &steps {
        run_step(step, &mut variables, &dir).await;
    }

    platform.shutdown().await.unwrap();
    drop(mail);
    let _ = std::fs::remove_dir_all(&dir);
}

// ------------------------------------------------------------------ the comparer, alone ---

fn lines(text: &str) -> Vec<String> {
    text.lines().map(str::to_owned).collect()
}

const ORDER: &str = r#"{"id":"0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b","status":"CONFIRMED","total":{"minor":2500,"currency":"EUR"},"history":["PENDING","CONFIRMED"],"created_at":"2026-12-02T10:00:00.123Z"}"#;

#[test]
fn the_walkthrough_comparer_lets_ids_timestamps_order_numbers_and_counters_differ() {
    let other = ORDER
        .replace(
            "0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b",
            "7f0e1d2c-3b4a-4958-8776-655443322110",
        )
        .replace("2026-12-02T10:00:00.123Z", "2027-01-15T08:30:59Z");
    assert_eq!(compare(&lines(ORDER), &other), Ok(()));
    assert_eq!(
        compare(
            &lines(r#"["Welcome to the shop, Ada","Your order 5280A2C3 is confirmed: €25.00"]"#),
            r#"["Welcome to the shop, Ada","Your order 00B7E91F is confirmed: €25.00"]"#
        ),
        Ok(())
    );
    let headers = "ratelimit-limit: 600\nratelimit-remaining: 597\nratelimit-reset: 53";
    assert_eq!(
        compare(
            &lines(headers),
            "RateLimit-Limit: 600\r\nratelimit-remaining: 12\r\nratelimit-reset: 7\r\n"
        ),
        Ok(())
    );
}

#[test]
fn the_walkthrough_comparer_catches_a_renamed_key() {
    let renamed = ORDER.replace("\"currency\"", "\"ccy\"");
    let why = compare(&lines(ORDER), &renamed).unwrap_err();
    assert!(why.contains("`.total.currency` is missing"), "{why}");
    let added = ORDER.replace("\"status\"", "\"state\":1,\"status\"");
    let why = compare(&lines(ORDER), &added).unwrap_err();
    assert!(why.contains("`.state` is not in the README"), "{why}");
}

#[test]
fn the_walkthrough_comparer_catches_a_changed_status_amount_or_type() {
    for (from, to, said) in [
        (
            "\"CONFIRMED\"",
            "\"CANCELLED\"",
            "`.status` is \"CANCELLED\"",
        ),
        ("2500", "2499", "`.total.minor` is 2499"),
        ("2500", "\"2500\"", "`.total.minor` is a string"),
        ("\"EUR\"", "\"USD\"", "`.total.currency` is \"USD\""),
        ("\"PENDING\",", "", "`.history` has 1 item(s)"),
    ] {
        let why = compare(&lines(ORDER), &ORDER.replacen(from, to, 1)).unwrap_err();
        assert!(why.contains(said), "{from} -> {to}: {why}");
    }
    let why = compare(&lines("202"), "409\n").unwrap_err();
    assert!(why.contains("is 409"), "{why}");
    let why = compare(&lines("ratelimit-limit: 600"), "ratelimit-limit: 100000").unwrap_err();
    assert!(why.contains("ratelimit-limit is `100000`"), "{why}");
    let why = compare(
        &lines("ratelimit-remaining: 597"),
        "ratelimit-remaining: many",
    )
    .unwrap_err();
    assert!(why.contains("ratelimit-remaining"), "{why}");
    // An id where the README shows a word that is not one.
    let why = compare(&lines(r#"["KIT-ENAMEL-MUG"]"#), r#"["5280A2C3"]"#).unwrap_err();
    assert!(why.contains("`[0]`"), "{why}");
}

#[test]
fn the_walkthrough_comparer_catches_a_missing_line_or_no_output() {
    let headers = "ratelimit-limit: 600\nratelimit-remaining: 597";
    let why = compare(&lines(headers), "ratelimit-limit: 600\n").unwrap_err();
    assert!(why.contains("1 line(s) where the README shows 2"), "{why}");
    assert_eq!(
        compare(&lines(ORDER), "\n").unwrap_err(),
        "it printed nothing"
    );
    let why = compare(&lines(ORDER), "<html>busy</html>").unwrap_err();
    assert!(why.contains("not JSON"), "{why}");
}

#[test]
fn the_walkthrough_block_is_read_as_commands_and_their_answers() {
    let readme = "# Shop\n\n## Walkthrough\n\nText.\n\n```sh\nGW=http://127.0.0.1:8080\n\
                  MAIL=http://127.0.0.1:58025\n\n# Prose.\nTOKEN=$(curl -s $GW/login \\\n  \
                  -d '{}' | jq -r .token)\ncurl -s $GW/a | jq -c .\n#  {\"a\":1}\n#  [2]\n\
                  curl -s $MAIL/b\n```\n\n## Commands\n\n```sh\nmake run\n```\n";
    let steps = with_addresses(
        steps(&walkthrough_block(readme)),
        "http://127.0.0.1:1",
        "http://127.0.0.1:2",
    );
    let commands: Vec<(&str, usize)> = steps
        .iter()
        .map(|step| (step.command.as_str(), step.expected.len()))
        .collect();
    assert_eq!(
        commands,
        [
            ("GW=http://127.0.0.1:1", 0),
            ("MAIL=http://127.0.0.1:2", 0),
            ("TOKEN=$(curl -s $GW/login \\\n  -d '{}' | jq -r .token)", 0),
            ("curl -s $GW/a | jq -c .", 2),
            ("curl -s $MAIL/b", 0),
        ]
    );
    assert_eq!(steps[2].assigns(), Some("TOKEN"));
    assert!(!steps[2].only_reads());
    assert!(steps[3].only_reads());
    assert_eq!(steps[3].expected, ["{\"a\":1}", "[2]"]);
}

#[test]
fn the_readme_walkthrough_assigns_its_addresses_and_shows_answers() {
    let readme = std::fs::read_to_string(workspace_root().join("README.md"))
        .expect("README.md at the workspace's root");
    let steps = with_addresses(steps(&walkthrough_block(&readme)), "gw", "mail");
    assert_eq!(steps[0].command, "GW=gw", "GW=... first");
    assert!(
        steps
            .iter()
            .filter(|step| !step.expected.is_empty())
            .count()
            >= 5,
        "{steps:#?}"
    );
}
