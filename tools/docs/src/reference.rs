//! The configuration reference: for each process, every variable it reads, its default as the
//! code computes it, and what it means.
//!
//! The variables come from the settings' types ([`crate::source`]); the defaults from loading
//! the process's settings with its own code, only the required variables set, and serialising
//! them. The two are held to each other: a setting the types name must be in what serde
//! writes, everything serde writes must be a named setting, every variable documented must be
//! read, and every one documented as required must be.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;

use platform_config::{DownstreamSettings, Settings};
use platform_registry::{EdgeEntry, ServiceEntry, Store};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::source::{Kind, MAP_KEY, Setting, Sources};

/// The files of the sections every process shares (`HttpSettings`, `Secret`, ...).
pub const SHARED_SOURCES: [&str; 2] = ["libs/config/src/sections.rs", "libs/config/src/lib.rs"];

/// A default the code computes outside the settings (a port from the registry, a deadline
/// constant), by its serde path (`http.port`).
pub type Resolved = Vec<(&'static str, Value)>;

type Variables = [(String, String)];
type Loader = Box<dyn Fn(&Variables) -> Result<Value, String>>;
type Unread = Box<dyn Fn(&Variables) -> BTreeSet<String>>;

/// A process whose configuration is documented.
pub struct Process {
    /// Its binary: the heading of its part of the reference.
    pub binary: String,
    /// The prefix of its variables.
    pub env_prefix: String,
    /// The files declaring its settings, relative to the workspace: its own first.
    pub sources: Vec<String>,
    /// The structs at the top of its settings, in the order they are documented.
    roots: Vec<&'static str>,
    load: Loader,
    unread: Unread,
}

impl Process {
    /// A service of the registry (`user-service`): the kit's common settings, then its own
    /// `C` from `services/<name>/src/config.rs`.
    pub fn service<C: DeserializeOwned + Serialize + 'static>(binary: &str) -> Self {
        Self::service_with::<C>(binary, |_| Vec::new())
    }

    /// A service, with defaults only its code knows:
    /// `|_| vec![("payment.timeout_ms", 3000.into())]`.
    pub fn service_with<C: DeserializeOwned + Serialize + 'static>(
        binary: &str,
        resolve: impl Fn(&Settings<C>) -> Resolved + 'static,
    ) -> Self {
        let entry: &'static ServiceEntry = platform_registry::find(binary)
            .unwrap_or_else(|| panic!("services.toml declares no service `{binary}`"));
        let prefix = entry.env_prefix.clone();
        let load: Loader = Box::new(move |vars| {
            let settings = Settings::<C>::load_from(&entry.env_prefix, vars.iter().cloned())
                .map_err(|error| error.to_string())?;
            let mut value = merged(&settings.common, &settings.own, &entry.env_prefix)?;
            let mut resolved = service_defaults(entry, &settings.common, &value);
            resolved.extend(
                resolve(&settings)
                    .into_iter()
                    .map(|(path, value)| (path.to_owned(), value)),
            );
            patch(&mut value, resolved)?;
            Ok(value)
        });
        let unread: Unread = {
            let prefix = prefix.clone();
            Box::new(move |vars| Settings::<C>::unread_from(&prefix, vars.iter().cloned()))
        };
        Self {
            binary: entry.binary.clone(),
            env_prefix: prefix,
            sources: own_and_shared(&format!("services/{}/src/config.rs", entry.name)),
            roots: vec!["CommonSettings", "Config"],
            load,
            unread,
        }
    }

    /// The gateway or the storefront: its `C` from `<binary>/src/config.rs`, with defaults
    /// only its code knows (its port, at least).
    pub fn edge<C: DeserializeOwned + Serialize + 'static>(
        entry: &'static EdgeEntry,
        resolve: impl Fn(&C) -> Resolved + 'static,
    ) -> Self {
        let file = format!("{}/src/config.rs", entry.binary);
        Self::of::<C>(&entry.binary, &entry.env_prefix, &file, resolve)
    }

    /// Any process whose settings are the struct `Config` of `file`.
    pub fn of<C: DeserializeOwned + Serialize + 'static>(
        binary: &str,
        env_prefix: &str,
        file: &str,
        resolve: impl Fn(&C) -> Resolved + 'static,
    ) -> Self {
        let prefix = env_prefix.to_owned();
        let load: Loader = {
            let prefix = prefix.clone();
            Box::new(move |vars| {
                let config: C = platform_config::load_from(&prefix, vars.iter().cloned())
                    .map_err(|error| error.to_string())?;
                let mut value = serde_json::to_value(&config).map_err(|e| e.to_string())?;
                patch(&mut value, resolve(&config))?;
                Ok(value)
            })
        };
        let unread: Unread = {
            let prefix = prefix.clone();
            Box::new(move |vars| platform_config::unread_from::<C>(&prefix, vars.iter().cloned()))
        };
        Self {
            binary: binary.to_owned(),
            env_prefix: prefix,
            sources: own_and_shared(file),
            roots: vec!["Config"],
            load,
            unread,
        }
    }

    /// Its part of the reference, reading its sources under `root` (the workspace).
    pub fn rows(&self, root: &Path) -> Result<Vec<Row>, String> {
        let sources = Sources::read(root, &self.sources)?;
        self.rows_from(&sources)
    }

    /// Its part of the reference, from parsed sources.
    pub fn rows_from(&self, sources: &Sources) -> Result<Vec<Row>, String> {
        let mut settings = Vec::new();
        for root in &self.roots {
            settings.extend(sources.settings(root)?);
        }
        let required: Vec<(String, String)> = settings
            .iter()
            .filter(|setting| setting.required)
            .map(|setting| (self.variable(&setting.path), placeholder(&setting.kind)))
            .collect();
        let loaded = (self.load)(&required)
            .map_err(|error| format!("loading with only the required variables set: {error}"))?;
        for (variable, _) in &required {
            let without: Vec<_> = required
                .iter()
                .filter(|(v, _)| v != variable)
                .cloned()
                .collect();
            if (self.load)(&without).is_ok() {
                return Err(format!(
                    "{variable} looks required (no default in its declaration), but loading \
                     succeeds without it"
                ));
            }
        }
        declared_are_written(&loaded, &settings)?;
        written_are_declared(&loaded, &settings, &[])?;
        let mut rows = Vec::new();
        for setting in &settings {
            rows.extend(self.setting_rows(setting, &loaded)?);
        }
        // Every variable documented is one the process reads.
        let mut every: Vec<(String, String)> = required.clone();
        for row in &rows {
            if !required
                .iter()
                .any(|(variable, _)| *variable == row.variable)
            {
                every.push((
                    row.variable.replace(MAP_KEY, "EXAMPLE"),
                    row.example.clone(),
                ));
            }
        }
        let unread = (self.unread)(&every);
        if !unread.is_empty() {
            return Err(format!(
                "documented, but no setting reads them: {}",
                unread.into_iter().collect::<Vec<_>>().join(", ")
            ));
        }
        Ok(rows)
    }

    fn variable(&self, path: &[String]) -> String {
        let keys: Vec<String> = path
            .iter()
            .map(|key| {
                if key == MAP_KEY {
                    key.clone()
                } else {
                    key.to_ascii_uppercase()
                }
            })
            .collect();
        format!("{}__{}", self.env_prefix, keys.join("__"))
    }

    fn setting_rows(&self, setting: &Setting, loaded: &Value) -> Result<Vec<Row>, String> {
        let variable = self.variable(&setting.path);
        let mut meaning = setting.doc.clone();
        if let Kind::OneOf(variants) = &setting.kind {
            let names: Vec<String> = variants.iter().map(|v| format!("`{v}`")).collect();
            let _ = write!(meaning, " One of {}.", names.join(", "));
        }
        if let Some((section, true)) = &setting.optional_section {
            let _ = write!(
                meaning,
                " Required once any `{}__*` is set.",
                self.variable(section)
            );
        }
        let Some(map_at) = setting.path.iter().position(|key| key == MAP_KEY) else {
            let (default, example) = if setting.required {
                ("required".to_owned(), placeholder(&setting.kind))
            } else {
                shown(&variable, lookup(loaded, &setting.path), &setting.kind)?
            };
            return Ok(vec![Row {
                variable,
                default,
                meaning,
                example,
            }]);
        };
        // A map: the pattern, then each key the code has a default for.
        let mut rows = vec![Row {
            variable: variable.clone(),
            default: "unset".to_owned(),
            meaning: meaning.clone(),
            example: placeholder(&setting.kind),
        }];
        if let Some(Value::Object(entries)) = lookup(loaded, &setting.path[..map_at]) {
            for key in entries.keys() {
                let mut path = setting.path.clone();
                path[map_at].clone_from(key);
                let variable = self.variable(&path);
                let (default, example) = shown(&variable, lookup(loaded, &path), &setting.kind)?;
                rows.push(Row {
                    variable,
                    default,
                    meaning: meaning.clone(),
                    example,
                });
            }
        }
        Ok(rows)
    }
}

/// One line of a process's table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// The full variable name.
    pub variable: String,
    /// Its default, as shown (`` `60` ``, `required`, `unset`).
    pub default: String,
    /// What it means.
    pub meaning: String,
    /// A value it can be set to (its default, or one of its type).
    example: String,
}

/// The process's own file, then the shared sections.
fn own_and_shared(file: &str) -> Vec<String> {
    std::iter::once(file)
        .chain(SHARED_SOURCES)
        .map(str::to_owned)
        .collect()
}

/// The common and the own settings, read from the same variables, as one object.
fn merged(common: &impl Serialize, own: &impl Serialize, prefix: &str) -> Result<Value, String> {
    let object = |value: &dyn erased::Serializable| match value.json() {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(format!(
            "{prefix}: settings serialise as {other}, not an object"
        )),
        Err(error) => Err(error),
    };
    let mut all = object(&common)?;
    for (key, value) in object(&own)? {
        if all.insert(key.clone(), value).is_some() {
            return Err(format!(
                "{prefix}__{}: both a common section and one of the service's own",
                key.to_ascii_uppercase()
            ));
        }
    }
    Ok(Value::Object(all))
}

mod erased {
    /// Serialising to JSON through a trait object.
    pub trait Serializable {
        fn json(&self) -> Result<serde_json::Value, String>;
    }

    impl<T: serde::Serialize> Serializable for T {
        fn json(&self) -> Result<serde_json::Value, String> {
            serde_json::to_value(self).map_err(|error| error.to_string())
        }
    }
}

/// What every service's code fills in when a setting is unset: its ports from the registry,
/// its MongoDB database's name, and its callees' addresses and breakers.
fn service_defaults(
    entry: &ServiceEntry,
    common: &platform_config::CommonSettings,
    value: &Value,
) -> Vec<(String, Value)> {
    let mut resolved = vec![(
        "http.port".to_owned(),
        common.http.port_or(entry.http_port).into(),
    )];
    if let Some(port) = common.grpc.port.or(entry.grpc_port) {
        resolved.push(("grpc.port".to_owned(), port.into()));
    }
    if entry.store == Store::Mongo && lookup(value, &["mongo".into(), "database".into()]).is_some()
    {
        resolved.push(("mongo.database".to_owned(), entry.database.clone().into()));
    }
    for callee in &entry.calls {
        let unset = |key: &str| {
            lookup(value, &[callee.clone(), key.to_owned()]).is_some_and(Value::is_null)
        };
        let port = platform_registry::find(callee).and_then(|callee| callee.grpc_port);
        if let Some(port) = port.filter(|_| unset("url")) {
            resolved.push((
                format!("{callee}.url"),
                DownstreamSettings::local_url(port).into(),
            ));
        }
        if unset("breaker_threshold") {
            resolved.push((
                format!("{callee}.breaker_threshold"),
                DownstreamSettings::DEFAULT_BREAKER_THRESHOLD.into(),
            ));
        }
        if unset("breaker_cool_down_ms") {
            resolved.push((
                format!("{callee}.breaker_cool_down_ms"),
                DownstreamSettings::DEFAULT_BREAKER_COOL_DOWN_MS.into(),
            ));
        }
    }
    resolved
}

/// `value` with the resolved defaults in place; each must be a setting.
fn patch<K: AsRef<str>>(value: &mut Value, resolved: Vec<(K, Value)>) -> Result<(), String> {
    for (path, default) in resolved {
        let path = path.as_ref();
        let mut at = &mut *value;
        for key in path.split('.') {
            at = at
                .get_mut(key)
                .ok_or_else(|| format!("a default is given for `{path}`, which is no setting"))?;
        }
        *at = default;
    }
    Ok(())
}

/// The value at `path`: `None` where the path leaves the tree, or passes an unset section.
fn lookup<'a>(value: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(value, |at, key| match at {
        Value::Object(map) => map.get(key),
        _ => None,
    })
}

/// Checks that every setting the types declare is in what serde wrote (or under a section
/// left unset).
fn declared_are_written(value: &Value, settings: &[Setting]) -> Result<(), String> {
    for setting in settings {
        let mut at = value;
        for key in setting.path.iter().take_while(|key| *key != MAP_KEY) {
            match at {
                Value::Object(map) => {
                    at = map.get(key).ok_or_else(|| {
                        format!(
                            "`{}` is declared, but the loaded settings have no `{key}` there: \
                             a serde attribute tools/docs misread?",
                            setting.path.join(".")
                        )
                    })?;
                }
                _ => break, // an unset section
            }
        }
    }
    Ok(())
}

/// Checks that everything serde wrote at `path` is a setting the types declare.
fn written_are_declared(
    value: &Value,
    settings: &[Setting],
    path: &[String],
) -> Result<(), String> {
    let same = |declared: &String, written: &String| declared == MAP_KEY || declared == written;
    let exact = |setting: &Setting| {
        setting.path.len() == path.len() && setting.path.iter().zip(path).all(|(d, w)| same(d, w))
    };
    let within = |setting: &Setting| {
        setting.path.len() > path.len() && setting.path.iter().zip(path).all(|(d, w)| same(d, w))
    };
    if settings.iter().any(exact) {
        return Ok(());
    }
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, inner) in map {
                let mut inner_path = path.to_vec();
                inner_path.push(key.clone());
                written_are_declared(inner, settings, &inner_path)?;
            }
            Ok(())
        }
        Value::Object(_) | Value::Null if settings.iter().any(within) => Ok(()),
        _ => Err(format!(
            "the loaded settings have `{}`, which no declared setting names: a serde attribute \
             tools/docs misread?",
            path.join(".")
        )),
    }
}

/// A default as the reference shows it, and the value that sets it.
fn shown(variable: &str, value: Option<&Value>, kind: &Kind) -> Result<(String, String), String> {
    Ok(match value {
        None | Some(Value::Null) => ("unset".to_owned(), placeholder(kind)),
        Some(Value::String(text)) if text == platform_config::REDACTED => {
            return Err(format!(
                "{variable}: its default is a Secret built with `Secret::new`; build it with \
                 `Secret::compiled_in` so that the reference can show it"
            ));
        }
        Some(Value::String(text)) if text.is_empty() => ("empty".to_owned(), String::new()),
        Some(Value::String(text)) => (code(text), text.clone()),
        Some(scalar @ (Value::Bool(_) | Value::Number(_))) => {
            (code(&scalar.to_string()), scalar.to_string())
        }
        Some(other) => {
            return Err(format!(
                "{variable}: its default `{other}` is not one value (a Duration, a list?): \
                 no variable can set it"
            ));
        }
    })
}

/// A value of the kind, to set a required variable or check that one is read.
fn placeholder(kind: &Kind) -> String {
    match kind {
        Kind::OneOf(variants) => variants.first().cloned().unwrap_or_default(),
        Kind::Value(ty) => match ty.as_str() {
            "bool" => "true".to_owned(),
            "u8" | "u16" | "u32" | "u64" | "u128" | "usize" | "i8" | "i16" | "i32" | "i64"
            | "i128" | "isize" | "f32" | "f64" => "1".to_owned(),
            _ => "value".to_owned(),
        },
    }
}

/// `text` as a Markdown code span in a table cell.
fn code(text: &str) -> String {
    let ticks = if text.contains('`') { "``" } else { "`" };
    let pad = if text.starts_with('`') || text.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{ticks}{pad}{}{pad}{ticks}", text.replace('|', "\\|"))
}

/// A process's table.
pub fn table(rows: &[Row]) -> String {
    let mut out = String::from("| variable | default | meaning |\n|---|---|---|\n");
    for row in rows {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} |",
            row.variable,
            row.default,
            row.meaning.replace('|', "\\|")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample;

    const SAMPLE: &str = include_str!("sample.rs");

    fn process() -> Process {
        Process::of::<sample::Config>("sample", "SAMPLE", "sample.rs", |config| {
            vec![("cache.ttl_secs", config.cache.ttl_secs.unwrap_or(60).into())]
        })
    }

    #[test]
    fn each_variable_has_its_full_name_its_computed_default_and_its_meaning() {
        let sources = Sources::parse([("sample.rs", SAMPLE)]).unwrap();
        let rows = process().rows_from(&sources).unwrap();
        assert_eq!(
            table(&rows),
            "| variable | default | meaning |\n|---|---|---|\n\
             | `SAMPLE__STORE__URL` | required | Its URL, with \\| a password. |\n\
             | `SAMPLE__STORE__POOL` | `4` | Pool size. |\n\
             | `SAMPLE__CACHE__URL` | `redis://127.0.0.1:6379` | Its URL. |\n\
             | `SAMPLE__CACHE__MODE` | `read_through` | How it is used. One of `read_through`, `off`. |\n\
             | `SAMPLE__CACHE__TTL_SECS` | `60` | Lifetime of an entry, in seconds. |\n\
             | `SAMPLE__CACHE__PREFIX` | empty | Start of every key. |\n\
             | `SAMPLE__ADMIN__EMAIL` | unset | Their email. Required once any `SAMPLE__ADMIN__*` is set. |\n\
             | `SAMPLE__UPSTREAMS__{NAME}` | unset | Extra upstreams by name. |\n\
             | `SAMPLE__WORKERS` | `2` | Worker threads. |\n"
        );
    }

    #[test]
    fn a_name_the_source_reader_gets_wrong_is_caught_by_what_serde_writes() {
        let misread = SAMPLE.replace("#[serde(rename = \"prefix\")]\n", "");
        let sources = Sources::parse([("sample.rs", misread.as_str())]).unwrap();
        let error = process().rows_from(&sources).unwrap_err();
        assert!(
            error.contains(
                "`cache.key_prefix` is declared, but the loaded settings have no `key_prefix`"
            ),
            "{error}"
        );
    }

    #[test]
    fn a_setting_documented_as_required_must_be() {
        let misread = SAMPLE.replace("#[serde(default = \"four\")]\n", "");
        let sources = Sources::parse([("sample.rs", misread.as_str())]).unwrap();
        let error = process().rows_from(&sources).unwrap_err();
        assert!(
            error.contains("SAMPLE__STORE__POOL looks required"),
            "{error}"
        );
    }

    #[test]
    fn a_default_for_no_setting_is_refused() {
        let process = Process::of::<sample::Config>("sample", "SAMPLE", "sample.rs", |_| {
            vec![("cache.ttl", 1.into())]
        });
        let sources = Sources::parse([("sample.rs", SAMPLE)]).unwrap();
        let error = process.rows_from(&sources).unwrap_err();
        assert!(
            error.contains("`cache.ttl`, which is no setting"),
            "{error}"
        );
    }
}
