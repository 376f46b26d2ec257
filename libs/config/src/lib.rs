//! Configuration the twelve-factor way: defaults in code, overridden by environment variables.
//!
//! One scheme everywhere: `{PREFIX}__{SECTION}__{KEY}`, e.g. `USER_SERVICE__DATABASE__URL`
//! sets `database.url` of the user service. A service describes its configuration as a serde
//! struct with `#[serde(default)]` sections, and [`load`] fills it from the environment;
//! anything missing or malformed is an error that names the variable, so a service refuses to
//! start with a message saying what to fix.
//!
//! [`Secret`] holds passwords, keys and URLs with credentials: it deserialises like a string
//! and never prints its value.

use std::collections::{BTreeSet, HashMap};
use std::fmt;

mod sections;

pub use sections::{
    CommonSettings, DatabaseSettings, DownstreamSettings, GrpcSettings, HttpSettings, JwtSettings,
    MongoSettings, NatsSettings, RedisSettings, ServiceAuthSettings, TelemetrySettings,
};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(String);

/// Reads `T` from the process environment, variables `{prefix}__...` (see the crate docs).
/// A variable `{prefix}__...` that no field of `T` reads is named in a warning on stderr (a
/// typo, or a setting renamed since the deployment was written), and otherwise ignored.
pub fn load<T: DeserializeOwned>(prefix: &str) -> Result<T, ConfigError> {
    let vars: Vec<(String, String)> = std::env::vars().collect();
    warn_unread(unread_from::<T>(prefix, vars.iter().cloned()));
    load_from(prefix, vars)
}

/// Reads `T` from the given variables instead of the process environment (for tests).
pub fn load_from<T: DeserializeOwned>(
    prefix: &str,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<T, ConfigError> {
    sourced(prefix, vars)
        .and_then(config::Config::try_deserialize)
        .map_err(|error| ConfigError(explain(prefix, &error)))
}

/// The variables `{prefix}__...` among `vars` that `T` does not read: a misspelt or renamed
/// setting, which [`load_from`] passes over in silence (its default applies instead).
pub fn unread_from<T: DeserializeOwned>(
    prefix: &str,
    vars: impl IntoIterator<Item = (String, String)>,
) -> BTreeSet<String> {
    let vars: Vec<(String, String)> = vars.into_iter().collect();
    let mut ignored = Vec::new();
    // A missing required value fails only after every key was seen, so the variable misspelt
    // in its place is still named; a malformed value stops the reading where it is (the load
    // reports it).
    if let Ok(config) = sourced(prefix, vars.iter().cloned()) {
        let _ = serde_ignored::deserialize::<_, _, T>(config, |path| {
            ignored.push(variable_name(prefix, &path.to_string()));
        });
    }
    // A section nobody reads is reported once, as a whole: name each variable under it.
    vars.into_iter()
        .map(|(name, _)| name)
        .filter(|name| {
            ignored.iter().any(|path| {
                name.eq_ignore_ascii_case(path)
                    || name
                        .get(..path.len())
                        .zip(name.get(path.len()..))
                        .is_some_and(|(head, rest)| {
                            head.eq_ignore_ascii_case(path) && rest.starts_with("__")
                        })
            })
        })
        .collect()
}

/// Names the unread variables on stderr: configuration is read before logging is set up.
fn warn_unread(unread: BTreeSet<String>) {
    for name in unread {
        eprintln!("warning: {name} is set, but no setting has that name: ignored");
    }
}

/// The variables `{prefix}__...` of `vars`, as the `config` crate's source.
fn sourced(
    prefix: &str,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<config::Config, config::ConfigError> {
    let wanted = format!("{prefix}__");
    let vars: HashMap<String, String> = vars
        .into_iter()
        .filter(|(name, _)| name.starts_with(&wanted))
        .collect();
    let source = config::Environment::with_prefix(prefix)
        .prefix_separator("__")
        .separator("__")
        .try_parsing(true)
        .source(Some(vars.into_iter().collect()));
    config::Config::builder().add_source(source).build()
}

/// `http.port` of `ORDER_SERVICE` is `ORDER_SERVICE__HTTP__PORT`.
fn variable_name(prefix: &str, key: &str) -> String {
    let path: Vec<String> = key.split('.').map(str::to_ascii_uppercase).collect();
    format!("{prefix}__{}", path.join("__"))
}

/// A service's whole configuration: the [`CommonSettings`] every service has, and its own
/// sections `S` (its store, its downstreams, its policies), both read from the same variables:
/// `ORDER_SERVICE__HTTP__PORT` is `common.http.port`, `ORDER_SERVICE__SAGA__LEASE_SECS` is
/// `own.saga.lease_secs`.
#[derive(Clone, Debug)]
pub struct Settings<S> {
    /// The sections every service has.
    pub common: CommonSettings,
    /// The service's own sections.
    pub own: S,
}

impl<S> Settings<S> {
    /// The service's own sections with every common one at its default.
    pub fn new(own: S) -> Self {
        Self {
            common: CommonSettings::default(),
            own,
        }
    }
}

impl<S: DeserializeOwned> Settings<S> {
    /// Reads both parts from the process environment, variables `{prefix}__...`.
    /// Unread variables are named in a warning, as by [`load`].
    pub fn load(prefix: &str) -> Result<Self, ConfigError> {
        let vars: Vec<(String, String)> = std::env::vars().collect();
        warn_unread(Self::unread_from(prefix, vars.iter().cloned()));
        Self::load_from(prefix, vars)
    }

    /// Reads both parts from the given variables (for tests).
    pub fn load_from(
        prefix: &str,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let vars: Vec<(String, String)> = vars.into_iter().collect();
        Ok(Self {
            common: load_from(prefix, vars.iter().cloned())?,
            own: load_from(prefix, vars)?,
        })
    }

    /// The variables `{prefix}__...` of `vars` that neither part reads (see [`unread_from`]).
    pub fn unread_from(
        prefix: &str,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> BTreeSet<String> {
        let vars: Vec<(String, String)> = vars.into_iter().collect();
        let common = unread_from::<CommonSettings>(prefix, vars.iter().cloned());
        let own = unread_from::<S>(prefix, vars);
        common.intersection(&own).cloned().collect()
    }
}

/// Turns the `config` crate's key paths (`http.port`) back into variable names.
fn explain(prefix: &str, error: &config::ConfigError) -> String {
    let variable = |key: &str| variable_name(prefix, key);
    let message = error.to_string();
    if let Some((what, rest)) = message.split_once(" for key `")
        && let Some((key, _)) = rest.split_once('`')
    {
        return format!("{}: {what}", variable(key));
    }
    if let Some(rest) = message.strip_prefix("missing configuration field \"") {
        let key = rest.trim_end_matches('"');
        // A top-level key is a section: name the variables that would fill it.
        if key.contains('.') {
            return format!("{} is required but not set", variable(key));
        }
        return format!(
            "{}__* settings are required, but none is set",
            variable(key)
        );
    }
    message
}

/// A configuration value that must not leak: `Debug` and `Display` print `[REDACTED]`, and so
/// does `Serialize` for a value read from the environment. Only a default compiled into the
/// binary ([`Secret::compiled_in`], such as a local server's URL) serialises as itself, so that
/// the configuration reference can show it.
#[derive(Clone)]
pub struct Secret(SecretValue);

#[derive(Clone)]
enum SecretValue {
    /// Read at run time (from the environment, or given by a caller): never shown.
    Given(String),
    /// A default written in the code, public by nature.
    CompiledIn(&'static str),
}

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(SecretValue::Given(value.into()))
    }

    /// A default written in the code (`Secret::compiled_in("redis://127.0.0.1:6379")`): as
    /// secret as any other in `Debug` and `Display`, but shown by `Serialize`.
    pub const fn compiled_in(value: &'static str) -> Self {
        Self(SecretValue::CompiledIn(value))
    }

    /// The value, for the one place that needs it.
    pub fn expose(&self) -> &str {
        match &self.0 {
            SecretValue::Given(value) => value,
            SecretValue::CompiledIn(value) => value,
        }
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.expose() == other.expose()
    }
}

impl Eq for Secret {}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// What a secret prints as.
pub const REDACTED: &str = "[REDACTED]";

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::new)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            SecretValue::Given(_) => serializer.serialize_str(REDACTED),
            SecretValue::CompiledIn(value) => serializer.serialize_str(value),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    struct Settings {
        database: Database,
        #[serde(default)]
        http: Http,
    }

    #[derive(Debug, Deserialize)]
    struct Database {
        url: Secret,
        #[serde(default = "ten")]
        max_connections: u32,
    }

    fn ten() -> u32 {
        10
    }

    #[derive(Debug, Deserialize)]
    #[serde(default)]
    struct Http {
        port: u16,
        host: String,
    }

    impl Default for Http {
        fn default() -> Self {
            Self {
                port: 8081,
                host: "0.0.0.0".to_owned(),
            }
        }
    }

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn variables_override_defaults_section_by_section() {
        let settings: Settings = load_from(
            "USER_SERVICE",
            vars(&[
                ("USER_SERVICE__DATABASE__URL", "postgres://u:pw@db/users"),
                ("USER_SERVICE__DATABASE__MAX_CONNECTIONS", "25"),
                ("USER_SERVICE__HTTP__PORT", "9000"),
                ("ORDER_SERVICE__HTTP__PORT", "1"),
            ]),
        )
        .unwrap();
        assert_eq!(settings.database.url.expose(), "postgres://u:pw@db/users");
        assert_eq!(settings.database.max_connections, 25);
        assert_eq!(settings.http.port, 9000);
        assert_eq!(
            settings.http.host, "0.0.0.0",
            "unset keys keep their default"
        );
    }

    #[test]
    fn a_numeric_looking_secret_stays_a_string() {
        let settings: Settings = load_from("S", vars(&[("S__DATABASE__URL", "12345")])).unwrap();
        assert_eq!(settings.database.url.expose(), "12345");
    }

    #[test]
    fn a_malformed_value_names_its_variable() {
        let error = load_from::<Settings>(
            "USER_SERVICE",
            vars(&[
                ("USER_SERVICE__DATABASE__URL", "postgres://db"),
                ("USER_SERVICE__HTTP__PORT", "eighty"),
            ]),
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            error,
            "configuration: USER_SERVICE__HTTP__PORT: invalid type: string \"eighty\", expected an integer"
        );
    }

    #[test]
    fn a_missing_required_value_says_which() {
        let error = load_from::<Settings>(
            "USER_SERVICE",
            vars(&[("USER_SERVICE__DATABASE__MAX_CONNECTIONS", "3")]),
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            error,
            "configuration: USER_SERVICE__DATABASE__URL is required but not set"
        );
    }

    #[test]
    fn a_missing_required_section_names_its_variables() {
        let error = load_from::<Settings>("USER_SERVICE", Vec::new())
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "configuration: USER_SERVICE__DATABASE__* settings are required, but none is set"
        );
    }

    #[derive(Debug, Deserialize)]
    struct Own {
        database: Database,
    }

    #[test]
    fn common_and_own_sections_come_from_the_same_variables() {
        let settings = crate::Settings::<Own>::load_from(
            "ORDER_SERVICE",
            vars(&[
                ("ORDER_SERVICE__DATABASE__URL", "postgres://db/orders"),
                ("ORDER_SERVICE__HTTP__PORT", "9000"),
                ("ORDER_SERVICE__NATS__SUBJECT_PREFIX", "t1"),
            ]),
        )
        .unwrap();
        assert_eq!(settings.own.database.url.expose(), "postgres://db/orders");
        assert_eq!(settings.common.http.port, Some(9000));
        assert_eq!(settings.common.nats.subject_prefix.as_deref(), Some("t1"));
        assert_eq!(settings.common.grpc.port, None);

        let error = crate::Settings::<Own>::load_from("ORDER_SERVICE", Vec::new())
            .unwrap_err()
            .to_string();
        assert!(error.contains("ORDER_SERVICE__DATABASE__*"), "{error}");
    }

    #[test]
    fn secrets_never_print() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?} {secret}"), "[REDACTED] [REDACTED]");
    }

    #[derive(Debug, Deserialize, Serialize)]
    struct Cache {
        #[serde(default = "local_cache")]
        url: Secret,
    }

    fn local_cache() -> Secret {
        Secret::compiled_in("redis://127.0.0.1:6379")
    }

    #[test]
    fn a_loaded_secret_serialises_redacted_and_only_a_compiled_in_default_as_itself() {
        let loaded: Cache = load_from("S", vars(&[("S__URL", "redis://:hunter2@cache")])).unwrap();
        let json = serde_json::to_string(&loaded).unwrap();
        assert_eq!(json, r#"{"url":"[REDACTED]"}"#);
        let default: Cache = load_from("S", Vec::new()).unwrap();
        assert_eq!(
            serde_json::to_string(&default).unwrap(),
            r#"{"url":"redis://127.0.0.1:6379"}"#
        );
        assert_eq!(format!("{:?}", default.url), "[REDACTED]");
        assert_eq!(default.url, Secret::new("redis://127.0.0.1:6379"));
    }

    #[test]
    fn a_variable_no_setting_reads_is_reported_by_name() {
        let unread = unread_from::<Settings>(
            "USER_SERVICE",
            vars(&[
                ("USER_SERVICE__DATABASE__URL", "postgres://db"),
                ("USER_SERVICE__DATABASE__MAX_CONNECTION", "3"),
                ("USER_SERVICE__HTTP__PORT", "9000"),
                ("USER_SERVICE__HTPP__HOST", "127.0.0.1"),
                ("ORDER_SERVICE__HTTP__NOT_MINE", "1"),
            ]),
        );
        assert_eq!(
            unread.into_iter().collect::<Vec<_>>(),
            [
                "USER_SERVICE__DATABASE__MAX_CONNECTION",
                "USER_SERVICE__HTPP__HOST"
            ]
        );
    }

    #[test]
    fn a_variable_misspelt_in_place_of_a_required_one_is_still_named() {
        let vars = vars(&[("USER_SERVICE__DATABSE__URL", "postgres://db")]);
        assert!(load_from::<Settings>("USER_SERVICE", vars.clone()).is_err());
        assert_eq!(
            unread_from::<Settings>("USER_SERVICE", vars)
                .into_iter()
                .collect::<Vec<_>>(),
            ["USER_SERVICE__DATABSE__URL"]
        );
    }

    #[test]
    fn a_variable_read_by_either_part_of_a_service_s_settings_is_read() {
        let unread = crate::Settings::<Settings>::unread_from(
            "USER_SERVICE",
            vars(&[
                ("USER_SERVICE__DATABASE__URL", "postgres://db"),
                ("USER_SERVICE__HTTP__PORT", "9000"),
                ("USER_SERVICE__NATS__URL", "nats://bus"),
                ("USER_SERVICE__NATS__URI", "nats://bus"),
            ]),
        );
        assert_eq!(
            unread.into_iter().collect::<Vec<_>>(),
            ["USER_SERVICE__NATS__URI"]
        );
    }
}
