//! A process's settings for the tests of the reference: compiled as a module, and read as
//! source by the same tests.

use std::collections::BTreeMap;

use platform_config::Secret;
use serde::{Deserialize, Serialize};

/// The sample's settings.
#[derive(Debug, Deserialize, Serialize)]
pub struct Config {
    /// The store (required).
    pub store: Store,
    /// Its cache.
    #[serde(default)]
    pub cache: Cache,
    /// Who administers it, if anyone.
    #[serde(default)]
    pub admin: Option<Admin>,
    /// Extra upstreams by name.
    #[serde(default)]
    pub upstreams: BTreeMap<String, String>,
    #[serde(flatten)]
    pub tuning: Tuning,
}

/// The store.
#[derive(Debug, Deserialize, Serialize)]
pub struct Store {
    /// Its URL, with | a password.
    pub url: Secret,
    /// Pool size.
    #[serde(default = "four")]
    pub pool: u32,
}

fn four() -> u32 {
    4
}

/// The cache.
#[derive(Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct Cache {
    /// Its URL.
    pub url: Secret,
    /// How it is used.
    pub mode: Mode,
    /// Lifetime of an entry,
    /// in seconds.
    pub ttl_secs: Option<u64>,
    /// Start of every key.
    #[serde(rename = "prefix")]
    pub key_prefix: String,
}

impl Default for Cache {
    fn default() -> Self {
        Self {
            url: Secret::compiled_in("redis://127.0.0.1:6379"),
            mode: Mode::ReadThrough,
            ttl_secs: None,
            key_prefix: String::new(),
        }
    }
}

/// How the cache is used.
#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Reads fill it.
    ReadThrough,
    /// Not at all.
    Off,
}

/// An administrator.
#[derive(Debug, Deserialize, Serialize)]
pub struct Admin {
    /// Their email.
    pub email: String,
}

/// Settings at the top level.
#[derive(Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct Tuning {
    /// Worker threads.
    pub workers: usize,
}

impl Default for Tuning {
    fn default() -> Self {
        Self { workers: 2 }
    }
}
