//! The Redis read cache (cache-aside) of the public product reads.
//!
//! Each entry is a response body as served, with its ETag. Invalidation cannot race with a
//! read: every key carries a **generation** number kept in Redis (`{prefix}:cache:generation`),
//! and every write bumps it (`INCR`) after its transaction commits. A read that loaded stale
//! data before the bump stores it under the old generation, which nobody reads any more; old
//! entries expire after the TTL.
//!
//! Redis is an optimisation, never a dependency of an answer: when it is down or slow (every
//! call has a short deadline) reads go to MongoDB, a warning is logged and
//! `inventory_cache_requests_total{outcome="error"}` counts it. A write that cannot bump the
//! generation leaves an invalidation owed: until it is paid (by the next cache call, or the
//! background retry within a second of Redis coming back) this replica reads from MongoDB, so
//! entries cached before the outage are not served after writes made during it.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use redis::AsyncCommands as _;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use sha2::{Digest as _, Sha256};
use tokio_util::sync::CancellationToken;

use crate::error::InventoryError;

/// How long one Redis call may take before the cache is bypassed.
const CALL_DEADLINE: Duration = Duration::from_millis(250);

/// The cache of product reads.
#[derive(Clone)]
pub struct ReadCache {
    connection: ConnectionManager,
    prefix: String,
    ttl: Duration,
    /// A write committed but could not invalidate the cache.
    owed: Arc<AtomicBool>,
}

impl ReadCache {
    /// A cache on the Redis at `url`, its keys starting with `prefix:cache:`, entries kept
    /// for `ttl`. Connects lazily: the service starts (and answers reads from MongoDB) while
    /// Redis is away.
    pub fn connect(url: &str, prefix: &str, ttl: Duration) -> anyhow::Result<Self> {
        let client = redis::Client::open(url).context("not a Redis URL")?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CALL_DEADLINE))
            .set_response_timeout(Some(CALL_DEADLINE))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(200));
        let connection = ConnectionManager::new_lazy_with_config(client, config)
            .context("setting up the Redis connection")?;
        Ok(Self {
            connection,
            prefix: prefix.to_owned(),
            ttl,
            owed: Arc::new(AtomicBool::new(false)),
        })
    }

    fn generation_key(&self) -> String {
        format!("{}:cache:generation", self.prefix)
    }

    fn entry_key(&self, generation: u64, key: &str) -> String {
        format!("{}:cache:{generation}:{key}", self.prefix)
    }

    /// The cached body for `key`, or the one `load` produces (then cached). When Redis fails,
    /// the answer comes from `load` all the same.
    pub async fn get_or_load<F, Fut>(
        &self,
        key: &str,
        load: F,
    ) -> Result<CachedBody, InventoryError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Vec<u8>, InventoryError>>,
    {
        let looked_up = match self.settle_debt().await {
            Ok(()) => self.lookup(key).await,
            Err(error) => Err(error),
        };
        let generation = match looked_up {
            Ok((_, Some(hit))) => {
                metrics::counter!("inventory_cache_requests_total", "outcome" => "hit")
                    .increment(1);
                return Ok(hit);
            }
            Ok((generation, None)) => {
                metrics::counter!("inventory_cache_requests_total", "outcome" => "miss")
                    .increment(1);
                Some(generation)
            }
            Err(error) => {
                metrics::counter!("inventory_cache_requests_total", "outcome" => "error")
                    .increment(1);
                tracing::warn!(
                    error = format!("{error:#}"),
                    "the read cache is unavailable; reading from MongoDB"
                );
                None
            }
        };
        let body = CachedBody::new(load().await?);
        if let Some(generation) = generation
            && let Err(error) = self.store(generation, key, &body).await
        {
            tracing::warn!(
                error = format!("{error:#}"),
                "could not fill the read cache"
            );
        }
        Ok(body)
    }

    /// Makes every cached read stale. Call it after a write has committed. If Redis cannot be
    /// told now, the invalidation is owed and paid as soon as it answers again.
    pub async fn invalidate(&self) {
        if let Err(error) = self.bump_generation().await {
            self.owed.store(true, Ordering::SeqCst);
            metrics::counter!("inventory_cache_invalidation_failures_total").increment(1);
            tracing::warn!(
                error = format!("{error:#}"),
                "could not invalidate the read cache; retrying until Redis answers"
            );
        }
    }

    async fn bump_generation(&self) -> anyhow::Result<()> {
        let mut connection = self.connection.clone();
        deadline(connection.incr::<_, _, u64>(self.generation_key(), 1)).await?;
        Ok(())
    }

    /// Pays an owed invalidation, if any: `Ok` when none is owed any more.
    async fn settle_debt(&self) -> anyhow::Result<()> {
        if !self.owed.swap(false, Ordering::SeqCst) {
            return Ok(());
        }
        self.bump_generation().await.inspect_err(|_| {
            self.owed.store(true, Ordering::SeqCst);
        })
    }

    /// Retries an owed invalidation every `interval` until `stop` is cancelled, so that it is
    /// paid soon after Redis is back even if this replica gets no request.
    pub async fn run_invalidation_retries(self, interval: Duration, stop: CancellationToken) {
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(interval) => {}
            }
            if self.owed.load(Ordering::SeqCst) && self.settle_debt().await.is_ok() {
                tracing::info!("Redis is back; the owed cache invalidation is done");
            }
        }
    }

    async fn lookup(&self, key: &str) -> anyhow::Result<(u64, Option<CachedBody>)> {
        let mut connection = self.connection.clone();
        let generation: Option<u64> = deadline(connection.get(self.generation_key())).await?;
        let generation = generation.unwrap_or(0);
        let entry: Option<Vec<u8>> =
            deadline(connection.get(self.entry_key(generation, key))).await?;
        Ok((generation, entry.and_then(|raw| CachedBody::decode(&raw))))
    }

    async fn store(&self, generation: u64, key: &str, body: &CachedBody) -> anyhow::Result<()> {
        let mut connection = self.connection.clone();
        let seconds = self.ttl.as_secs().max(1);
        deadline(connection.set_ex::<_, _, ()>(
            self.entry_key(generation, key),
            body.encode(),
            seconds,
        ))
        .await
    }
}

/// Bytes in lower-case hexadecimal.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, byte| {
            let _ = write!(out, "{byte:02x}");
            out
        })
}

async fn deadline<T>(call: impl Future<Output = redis::RedisResult<T>>) -> anyhow::Result<T> {
    tokio::time::timeout(CALL_DEADLINE, call)
        .await
        .context("Redis did not answer in time")?
        .context("Redis")
}

/// A JSON body as served, and its strong ETag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CachedBody {
    /// The ETag header value, quotes included.
    pub etag: String,
    /// The JSON.
    pub body: Vec<u8>,
}

impl CachedBody {
    /// A body, with its ETag: the first 128 bits of its SHA-256, so that equal bodies have
    /// equal tags whichever replica (or the cache) served them.
    pub fn new(body: Vec<u8>) -> Self {
        let digest = Sha256::digest(&body);
        Self {
            etag: format!("\"{}\"", hex(&digest[..16])),
            body,
        }
    }

    /// Whether an `If-None-Match` header value names this body's tag (or is `*`). The
    /// comparison is the weak one RFC 9110 prescribes for `If-None-Match`.
    pub fn matches(&self, if_none_match: &str) -> bool {
        if_none_match
            .split(',')
            .map(str::trim)
            .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == self.etag)
    }

    /// The stored form: the tag, a newline, the body.
    pub fn encode(&self) -> Vec<u8> {
        let mut encoded = Vec::with_capacity(self.etag.len() + 1 + self.body.len());
        encoded.extend_from_slice(self.etag.as_bytes());
        encoded.push(b'\n');
        encoded.extend_from_slice(&self.body);
        encoded
    }

    /// Reads the stored form back; `None` for anything else.
    pub fn decode(raw: &[u8]) -> Option<Self> {
        let split = raw.iter().position(|byte| *byte == b'\n')?;
        let etag = std::str::from_utf8(&raw[..split]).ok()?;
        if !(etag.starts_with('"') && etag.ends_with('"') && etag.len() > 2) {
            return None;
        }
        Some(Self {
            etag: etag.to_owned(),
            body: raw[split + 1..].to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_bodies_have_equal_strong_tags() {
        let a = CachedBody::new(br#"{"a":1}"#.to_vec());
        let b = CachedBody::new(br#"{"a":1}"#.to_vec());
        let c = CachedBody::new(br#"{"a":2}"#.to_vec());
        assert_eq!(a.etag, b.etag);
        assert_ne!(a.etag, c.etag);
        assert_eq!(a.etag.len(), 34);
        assert!(a.etag.starts_with('"') && a.etag.ends_with('"'));
    }

    #[test]
    fn if_none_match_accepts_lists_weak_tags_and_a_star() {
        let body = CachedBody::new(b"{}".to_vec());
        assert!(body.matches(&body.etag));
        assert!(body.matches(&format!("\"other\", W/{}", body.etag)));
        assert!(body.matches("*"));
        assert!(!body.matches("\"other\""));
        assert!(!body.matches(""));
    }

    #[test]
    fn the_stored_form_reads_back() {
        let body = CachedBody::new(b"{\"name\":\"line\\nbreak\"}".to_vec());
        assert_eq!(CachedBody::decode(&body.encode()), Some(body));
        assert_eq!(CachedBody::decode(b"garbage"), None);
    }
}
