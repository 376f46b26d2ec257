//! Who is calling: the access token of a request, verified against the user service's JWKS.
//!
//! [`JwksVerifier`] does the verification (keys cached by `kid`, refreshed on an unknown one,
//! cached keys kept while the user service is down). An Ed25519 verification costs tens of
//! microseconds, which at the gateway's request rates would be most of its CPU, and clients
//! send the same token for its whole lifetime: so each worker thread remembers the tokens it
//! has verified, until they expire. The cache is thread-local, so a hit takes no lock and
//! touches no shared cache line. An entry matches only the exact token bytes it was made from
//! (a different signature is a different token). When a key disappears from the key set
//! (rotated out, or withdrawn because it leaked), every cache is flushed, so tokens signed
//! with it are verified again, and refused.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, HeaderValue};
use platform_auth::{AuthError, JwksVerifier, bearer_token};
use tokio::task::JoinHandle;
use uuid::Uuid;

/// A verified caller.
#[derive(Debug)]
pub struct Identity {
    /// The user's id (the token's `sub`).
    pub user_id: Uuid,
    /// The id as a header value, for `x-user-id` to the upstream.
    pub user_id_header: HeaderValue,
    /// The token's `exp`, in seconds since the epoch.
    expires_at: i64,
}

/// Verifies the bearer tokens of requests, with a per-thread cache of verified tokens.
#[derive(Clone)]
pub struct Authenticator {
    verifier: JwksVerifier,
    /// Distinguishes the caches of two authenticators in one process (tests run several
    /// gateways side by side).
    id: u64,
    cache_size: usize,
    /// Bumped when a key leaves the key set; caches of an older generation are flushed.
    generation: Arc<AtomicU64>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("verifier", &self.verifier)
            .field("cache_size", &self.cache_size)
            .finish_non_exhaustive()
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl Authenticator {
    /// An authenticator over `verifier`, remembering up to `cache_size` tokens per worker
    /// thread (0: every request is verified).
    pub fn new(verifier: JwksVerifier, cache_size: usize) -> Self {
        Self {
            verifier,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            cache_size,
            generation: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The verifier underneath.
    pub fn verifier(&self) -> &JwksVerifier {
        &self.verifier
    }

    /// The caller of a request: `Ok(None)` without an `Authorization` header, the identity for
    /// a token that verifies, the reason otherwise.
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
    ) -> Result<Option<Arc<Identity>>, AuthError> {
        let token = match bearer_token(headers) {
            Ok(token) => token,
            Err(AuthError::Missing) => return Ok(None),
            Err(error) => return Err(error),
        };
        if self.cache_size == 0 {
            return self.verify(token).await.map(Some);
        }
        let now = unix_now();
        let generation = self.generation.load(Ordering::Acquire);
        let digest = digest(token);
        if let Some(identity) =
            CACHES.with_borrow_mut(|caches| caches.of(self.id, generation).get(digest, token, now))
        {
            return Ok(Some(identity));
        }
        let identity = self.verify(token).await?;
        CACHES.with_borrow_mut(|caches| {
            caches.of(self.id, generation).insert(
                digest,
                token,
                identity.clone(),
                now,
                self.cache_size,
            );
        });
        Ok(Some(identity))
    }

    async fn verify(&self, token: &str) -> Result<Arc<Identity>, AuthError> {
        let user = self.verifier.verify(token).await?;
        Ok(Arc::new(Identity {
            user_id: user.user_id,
            // A UUID's text is always a valid header value.
            user_id_header: HeaderValue::try_from(user.user_id.to_string())
                .map_err(|_| AuthError::Malformed)?,
            expires_at: user.expires_at.timestamp(),
        }))
    }

    /// Keeps the key set fresh: refreshes it every `period` (the first time at once; while no
    /// key is held, after [`FIRST_RETRY`](crate::openapi::FIRST_RETRY), doubling up to a
    /// second), and flushes the token caches whenever a key leaves the set. Both tasks end once
    /// the authenticator is dropped.
    pub fn spawn_refresh(&self, period: Duration) -> Vec<JoinHandle<()>> {
        let refresher = self.verifier.spawn_refresh(period);
        let verifier = self.verifier.clone();
        let generation = Arc::downgrade(&self.generation);
        let watcher = tokio::spawn(async move {
            let mut known = verifier.cached_kids();
            let mut retry = crate::openapi::FIRST_RETRY;
            loop {
                // While no key is held (the user service is starting), ask again soon rather
                // than at the next refresh, so that the worker is ready moments after it is.
                let wait = if known.is_empty() {
                    let wait = retry;
                    retry = (retry * 2).min(Duration::from_secs(1));
                    wait
                } else {
                    Duration::from_secs(1)
                };
                tokio::time::sleep(wait).await;
                let Some(generation) = generation.upgrade() else {
                    break;
                };
                let mut now = verifier.cached_kids();
                if now.is_empty() {
                    let _ = verifier.refresh().await;
                    now = verifier.cached_kids();
                }
                if known.iter().any(|kid| !now.contains(kid)) {
                    tracing::info!(
                        before = ?known,
                        after = ?now,
                        "a signing key left the key set; verified tokens will be checked again"
                    );
                    generation.fetch_add(1, Ordering::Release);
                }
                known = now;
            }
        });
        vec![refresher, watcher]
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs() as i64)
}

/// A hash of the token's tail (its signature): cheap, and distinct per token. Collisions only
/// cost a cache miss, since entries compare the whole token.
fn digest(token: &str) -> u64 {
    let bytes = token.as_bytes();
    let tail = &bytes[bytes.len().saturating_sub(64)..];
    BuildHasherDefault::<DefaultHasher>::default().hash_one(tail)
}

thread_local! {
    static CACHES: RefCell<ThreadCaches> = const { RefCell::new(ThreadCaches(Vec::new())) };
}

/// One worker thread's caches, one per authenticator (nearly always exactly one).
struct ThreadCaches(Vec<(u64, TokenCache)>);

impl ThreadCaches {
    fn of(&mut self, id: u64, generation: u64) -> &mut TokenCache {
        let index = match self.0.iter().position(|(owner, _)| *owner == id) {
            Some(index) => index,
            None => {
                self.0.push((id, TokenCache::default()));
                self.0.len() - 1
            }
        };
        let cache = &mut self.0[index].1;
        if cache.generation != generation {
            cache.entries.clear();
            cache.generation = generation;
        }
        cache
    }
}

#[derive(Default)]
struct TokenCache {
    generation: u64,
    entries: HashMap<u64, (Box<str>, Arc<Identity>)>,
}

impl TokenCache {
    fn get(&mut self, digest: u64, token: &str, now: i64) -> Option<Arc<Identity>> {
        let (cached, identity) = self.entries.get(&digest)?;
        if &**cached != token {
            return None;
        }
        if identity.expires_at <= now {
            self.entries.remove(&digest);
            return None;
        }
        Some(identity.clone())
    }

    fn insert(
        &mut self,
        digest: u64,
        token: &str,
        identity: Arc<Identity>,
        now: i64,
        capacity: usize,
    ) {
        if self.entries.len() >= capacity {
            self.entries
                .retain(|_, (_, identity)| identity.expires_at > now);
            if self.entries.len() >= capacity {
                self.entries.clear();
            }
        }
        self.entries.insert(digest, (token.into(), identity));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(expires_at: i64) -> Arc<Identity> {
        Arc::new(Identity {
            user_id: Uuid::nil(),
            user_id_header: HeaderValue::from_static("nil"),
            expires_at,
        })
    }

    #[test]
    fn a_cached_token_matches_only_itself_and_only_until_it_expires() {
        let mut cache = TokenCache::default();
        let token = "header.payload.signature";
        cache.insert(digest(token), token, identity(100), 50, 10);
        assert!(cache.get(digest(token), token, 99).is_some());
        // Same digest slot, different token: a miss, never someone else's identity.
        assert!(
            cache
                .get(digest(token), "header.payload.signaturf", 99)
                .is_none()
        );
        assert!(cache.get(digest(token), token, 100).is_none(), "expired");
        assert!(cache.entries.is_empty(), "the expired entry is dropped");
    }

    #[test]
    fn a_full_cache_drops_expired_entries_first_then_everything() {
        let mut cache = TokenCache::default();
        cache.insert(1, "a", identity(10), 0, 2);
        cache.insert(2, "b", identity(100), 0, 2);
        cache.insert(3, "c", identity(100), 20, 2);
        assert_eq!(cache.entries.len(), 2, "`a` had expired and made room");
        cache.insert(4, "d", identity(100), 20, 2);
        assert_eq!(cache.entries.len(), 1, "nothing had expired: flushed");
    }

    #[test]
    fn a_new_generation_flushes_a_thread_cache() {
        let mut caches = ThreadCaches(Vec::new());
        caches.of(7, 0).insert(1, "a", identity(100), 0, 10);
        assert!(caches.of(7, 0).get(1, "a", 0).is_some());
        assert!(
            caches.of(8, 0).get(1, "a", 0).is_none(),
            "another authenticator's"
        );
        assert!(caches.of(7, 1).get(1, "a", 0).is_none());
    }
}
