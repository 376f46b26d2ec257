//! What the stores did during a phase, from their own counters, and how long one round trip
//! to each takes when idle.
//!
//! - MongoDB (`serverStatus`): `opcounters` and `network.numRequests` (round trips), for the
//!   whole server; and, where the server has `top`, the operations and server time spent in
//!   the bench's own inventory database.
//! - PostgreSQL: statements (`pg_stat_statements`, when the server preloads it) and
//!   transactions (`pg_stat_database`), both counted in the bench's own databases only.
//! - Redis: `total_commands_processed` (`INFO stats`), for the whole server.
//!
//! The whole-server figures include whatever else uses the same servers at the time.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use mongodb::bson::{Bson, Document, doc};
use sqlx::{Connection as _, PgConnection};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use super::stats;

/// MongoDB's operation counters, in the order `serverStatus` lists them.
pub const OPCOUNTERS: [&str; 6] = ["insert", "query", "update", "delete", "getmore", "command"];

/// How many sequential round trips measure a store's idle latency.
const RTT_SAMPLES: usize = 200;

/// Connections to the stores, for reading their counters.
pub struct Stores {
    mongo: mongodb::Client,
    mongo_database: String,
    postgres: PgConnection,
    pg_databases: Vec<String>,
    redis: String,
}

/// The stores' counters at one moment (`None`: not readable).
#[derive(Clone, Debug)]
pub struct Counters {
    /// `serverStatus.opcounters`.
    pub mongo_ops: BTreeMap<&'static str, f64>,
    /// `serverStatus.network.numRequests`.
    pub mongo_requests: Option<f64>,
    /// Operations in the bench's inventory database, and the server's time on them (`top`).
    pub mongo_own: Option<(f64, Duration)>,
    /// Statements run in the bench's databases, or why they cannot be counted.
    pub pg_statements: Result<f64, String>,
    /// Transactions committed or rolled back in the bench's databases.
    pub pg_transactions: Option<f64>,
    /// Commands Redis processed.
    pub redis_commands: Option<f64>,
}

impl Default for Counters {
    fn default() -> Self {
        Self {
            mongo_ops: BTreeMap::new(),
            mongo_requests: None,
            mongo_own: None,
            pg_statements: Err("not read".to_owned()),
            pg_transactions: None,
            redis_commands: None,
        }
    }
}

/// One idle round trip to each store (the median of [`RTT_SAMPLES`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct RoundTrip {
    /// MongoDB `ping`.
    pub mongo: Option<Duration>,
    /// PostgreSQL `SELECT 1`.
    pub postgres: Option<Duration>,
    /// Redis `PING`.
    pub redis: Option<Duration>,
}

impl Stores {
    /// Connects to MongoDB at `mongo_url`, PostgreSQL at `postgres_url` (any database: the
    /// statistics views are server-wide) and Redis at `redis_url`. The bench's own databases
    /// are `mongo_database` and `pg_databases`. Creates the `pg_stat_statements` extension if
    /// the server has it and it is missing.
    pub async fn connect(
        mongo_url: &str,
        mongo_database: String,
        postgres_url: &str,
        pg_databases: Vec<String>,
        redis_url: &str,
    ) -> anyhow::Result<Self> {
        let mongo = mongodb::Client::with_uri_str(mongo_url)
            .await
            .with_context(|| format!("connecting to MongoDB at {mongo_url}"))?;
        let mut postgres = PgConnection::connect(postgres_url)
            .await
            .context("connecting to PostgreSQL")?;
        // Without `shared_preload_libraries = 'pg_stat_statements'` this succeeds but the view
        // cannot be read; the counters then say why.
        let _ = sqlx::raw_sql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            .execute(&mut postgres)
            .await;
        Ok(Self {
            mongo,
            mongo_database,
            postgres,
            pg_databases,
            redis: redis_address(redis_url)?,
        })
    }

    /// Reads every counter (those that fail are left unknown).
    pub async fn counters(&mut self) -> Counters {
        let mut counters = Counters::default();
        if let Ok(status) = self
            .mongo
            .database("admin")
            .run_command(doc! {"serverStatus": 1})
            .await
        {
            if let Ok(ops) = status.get_document("opcounters") {
                for name in OPCOUNTERS {
                    if let Some(value) = ops.get(name).and_then(number) {
                        counters.mongo_ops.insert(name, value);
                    }
                }
            }
            counters.mongo_requests = status
                .get_document("network")
                .ok()
                .and_then(|network| network.get("numRequests"))
                .and_then(number);
        }
        if let Ok(top) = self
            .mongo
            .database("admin")
            .run_command(doc! {"top": 1})
            .await
        {
            counters.mongo_own = own_top(&top, &self.mongo_database);
        }
        counters.pg_statements = sqlx::query_scalar::<_, Option<i64>>(
            "SELECT sum(calls)::bigint FROM pg_stat_statements \
             WHERE dbid IN (SELECT oid FROM pg_database WHERE datname = ANY($1))",
        )
        .bind(&self.pg_databases)
        .fetch_one(&mut self.postgres)
        .await
        .map(|calls| calls.unwrap_or(0) as f64)
        .map_err(|error| match error {
            sqlx::Error::Database(error) => error.message().to_owned(),
            other => other.to_string(),
        });
        counters.pg_transactions = sqlx::query_scalar::<_, Option<i64>>(
            "SELECT sum(xact_commit + xact_rollback)::bigint FROM pg_stat_database \
             WHERE datname = ANY($1)",
        )
        .bind(&self.pg_databases)
        .fetch_one(&mut self.postgres)
        .await
        .ok()
        .flatten()
        .map(|count| count as f64);
        counters.redis_commands = redis_info(&self.redis)
            .await
            .ok()
            .and_then(|info| info_field(&info, "total_commands_processed"));
        counters
    }

    /// One idle round trip to each store: the median of [`RTT_SAMPLES`] sequential ones.
    pub async fn round_trip(&mut self) -> RoundTrip {
        let admin = self.mongo.database("admin");
        let mongo = median_of(|| async { admin.run_command(doc! {"ping": 1}).await.is_ok() }).await;
        let postgres = {
            let connection = &mut self.postgres;
            let mut samples = Vec::with_capacity(RTT_SAMPLES);
            for _ in 0..RTT_SAMPLES {
                let started = Instant::now();
                if sqlx::raw_sql("SELECT 1")
                    .execute(&mut *connection)
                    .await
                    .is_err()
                {
                    break;
                }
                samples.push(started.elapsed());
            }
            median(samples)
        };
        let redis = match TcpStream::connect(&self.redis).await {
            Ok(mut stream) => {
                let mut samples = Vec::with_capacity(RTT_SAMPLES);
                for _ in 0..RTT_SAMPLES {
                    let started = Instant::now();
                    if redis_command(&mut stream, "PING").await.is_err() {
                        break;
                    }
                    samples.push(started.elapsed());
                }
                median(samples)
            }
            Err(_) => None,
        };
        RoundTrip {
            mongo,
            postgres,
            redis,
        }
    }
}

async fn median_of<F, Fut>(mut once: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let mut samples = Vec::with_capacity(RTT_SAMPLES);
    for _ in 0..RTT_SAMPLES {
        let started = Instant::now();
        if !once().await {
            break;
        }
        samples.push(started.elapsed());
    }
    median(samples)
}

fn median(mut samples: Vec<Duration>) -> Option<Duration> {
    if samples.len() < RTT_SAMPLES / 2 {
        return None;
    }
    samples.sort();
    Some(stats::percentile(&samples, 0.5))
}

/// A BSON number as `f64` (`serverStatus` mixes 32- and 64-bit integers and doubles).
fn number(value: &Bson) -> Option<f64> {
    match value {
        Bson::Int32(value) => Some(f64::from(*value)),
        Bson::Int64(value) => Some(*value as f64),
        Bson::Double(value) => Some(*value),
        _ => None,
    }
}

/// The operations and time `top` reports for the collections of `database`.
fn own_top(top: &Document, database: &str) -> Option<(f64, Duration)> {
    let prefix = format!("{database}.");
    let totals = top.get_document("totals").ok()?;
    let mut count = 0.0;
    let mut micros = 0.0;
    for (namespace, value) in totals {
        let Some(total) = namespace
            .starts_with(&prefix)
            .then(|| value.as_document())
            .flatten()
            .and_then(|collection| collection.get_document("total").ok())
        else {
            continue;
        };
        count += total.get("count").and_then(number).unwrap_or(0.0);
        micros += total.get("time").and_then(number).unwrap_or(0.0);
    }
    Some((count, Duration::from_secs_f64(micros / 1e6)))
}

/// `host:port` of a `redis://[user:password@]host:port[/db]` URL.
fn redis_address(url: &str) -> anyhow::Result<String> {
    let rest = url
        .strip_prefix("redis://")
        .with_context(|| format!("`{url}` is not a redis:// URL"))?;
    let authority = rest.split('/').next().unwrap_or(rest);
    let address = authority.rsplit('@').next().unwrap_or(authority);
    Ok(if address.contains(':') {
        address.to_owned()
    } else {
        format!("{address}:6379")
    })
}

/// Sends an inline command and reads one reply (a simple string, or a bulk string in full).
async fn redis_command(stream: &mut TcpStream, command: &str) -> anyhow::Result<String> {
    stream
        .write_all(format!("{command}\r\n").as_bytes())
        .await?;
    let mut reply = Vec::new();
    let mut buffer = [0_u8; 8192];
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let read = tokio::time::timeout_at(deadline.into(), stream.read(&mut buffer))
            .await
            .context("Redis did not answer within 5 s")??;
        anyhow::ensure!(read > 0, "Redis closed the connection");
        reply.extend_from_slice(&buffer[..read]);
        if let Some(complete) = complete_reply(&reply) {
            return complete;
        }
    }
}

/// The reply in `bytes`, once it is complete.
fn complete_reply(bytes: &[u8]) -> Option<anyhow::Result<String>> {
    let text = String::from_utf8_lossy(bytes);
    let (first, rest) = text.split_once("\r\n")?;
    match first.chars().next()? {
        '+' => Some(Ok(first[1..].to_owned())),
        '-' => Some(Err(anyhow::anyhow!("Redis: {}", &first[1..]))),
        '$' => {
            let length: usize = first[1..].parse().ok()?;
            (rest.len() >= length).then(|| Ok(rest[..length].to_owned()))
        }
        _ => Some(Err(anyhow::anyhow!("an unexpected Redis reply: {first}"))),
    }
}

async fn redis_info(address: &str) -> anyhow::Result<String> {
    let mut stream = TcpStream::connect(address).await?;
    redis_command(&mut stream, "INFO stats").await
}

/// A numeric `name:value` line of `INFO`.
fn info_field(info: &str, name: &str) -> Option<f64> {
    info.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|value| value.trim().parse().ok())
}

/// What the stores did between two readings of their counters: the same counters, each the
/// growth from the first reading to the second.
pub type StoreUse = Counters;

impl Counters {
    /// What happened since `before`.
    #[must_use]
    pub fn since(&self, before: &Counters) -> StoreUse {
        StoreUse {
            mongo_ops: self
                .mongo_ops
                .iter()
                .filter_map(|(name, after)| {
                    Some((
                        *name,
                        stats::growth(before.mongo_ops.get(name).copied(), Some(*after))?,
                    ))
                })
                .collect(),
            mongo_requests: stats::growth(before.mongo_requests, self.mongo_requests),
            mongo_own: before.mongo_own.zip(self.mongo_own).and_then(
                |((count_before, time_before), (count, time))| {
                    Some((
                        stats::growth(Some(count_before), Some(count))?,
                        time.checked_sub(time_before)?,
                    ))
                },
            ),
            pg_statements: match (&before.pg_statements, &self.pg_statements) {
                (Ok(before), Ok(after)) => stats::growth(Some(*before), Some(*after))
                    .ok_or_else(|| "the statistics were reset".to_owned()),
                (Err(error), _) | (_, Err(error)) => Err(error.clone()),
            },
            pg_transactions: stats::growth(before.pg_transactions, self.pg_transactions),
            redis_commands: stats::growth(before.redis_commands, self.redis_commands),
        }
    }
}

impl StoreUse {
    /// Round trips to each store, `(store, count, whether the count is only a lower bound)`:
    /// MongoDB's requests, PostgreSQL's statements (or, without them, its transactions: each
    /// is at least one), Redis's commands.
    pub fn round_trips(&self) -> Vec<(&'static str, Option<f64>, bool)> {
        let (postgres, lower_bound) = match &self.pg_statements {
            Ok(statements) => (Some(*statements), false),
            Err(_) => (self.pg_transactions, true),
        };
        vec![
            ("MongoDB", self.mongo_requests, false),
            ("PostgreSQL", postgres, lower_bound),
            ("Redis", self.redis_commands, false),
        ]
    }
}

impl RoundTrip {
    /// The idle round trip of `store` (a name of [`StoreUse::round_trips`]).
    pub fn of(&self, store: &str) -> Option<Duration> {
        match store {
            "MongoDB" => self.mongo,
            "PostgreSQL" => self.postgres,
            "Redis" => self.redis,
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_urls_become_addresses() {
        assert_eq!(
            redis_address("redis://127.0.0.1:56379").unwrap(),
            "127.0.0.1:56379"
        );
        assert_eq!(
            redis_address("redis://:pw@cache:7000/2").unwrap(),
            "cache:7000"
        );
        assert_eq!(redis_address("redis://cache").unwrap(), "cache:6379");
        assert!(redis_address("http://cache").is_err());
    }

    #[test]
    fn redis_replies_are_read_whole() {
        assert_eq!(complete_reply(b"+PONG\r\n").unwrap().unwrap(), "PONG");
        assert!(complete_reply(b"+PO").is_none());
        assert!(
            complete_reply(b"$10\r\n# Stats\r\n").is_none(),
            "half a bulk string"
        );
        let body = "# Stats\r\ntotal_commands_processed:42\r\n";
        let reply = format!("${}\r\n{body}\r\n", body.len());
        let info = complete_reply(reply.as_bytes()).unwrap().unwrap();
        assert_eq!(info_field(&info, "total_commands_processed"), Some(42.0));
        assert!(complete_reply(b"-ERR unknown\r\n").unwrap().is_err());
    }

    #[test]
    fn top_counts_only_the_bench_database() {
        let top = doc! {"totals": {
            "note": "all times in microseconds",
            "bench_x_inventory.products": {"total": {"time": 1500_i64, "count": 3}},
            "bench_x_inventory.reservations": {"total": {"time": 500, "count": 2_i64}},
            "other_inventory.products": {"total": {"time": 99_999, "count": 99}},
        }};
        let (count, time) = own_top(&top, "bench_x_inventory").unwrap();
        assert!((count - 5.0).abs() < f64::EPSILON);
        assert_eq!(time, Duration::from_millis(2));
    }

    #[test]
    fn postgres_round_trips_fall_back_to_transactions_as_a_lower_bound() {
        let before = Counters {
            mongo_requests: Some(100.0),
            pg_statements: Err("must be loaded via shared_preload_libraries".to_owned()),
            pg_transactions: Some(10.0),
            redis_commands: Some(5.0),
            ..Counters::default()
        };
        let after = Counters {
            mongo_requests: Some(160.0),
            pg_transactions: Some(40.0),
            redis_commands: Some(4.0),
            ..before.clone()
        };
        let used = after.since(&before);
        assert_eq!(
            used.round_trips(),
            vec![
                ("MongoDB", Some(60.0), false),
                ("PostgreSQL", Some(30.0), true),
                ("Redis", None, false),
            ]
        );
    }
}
