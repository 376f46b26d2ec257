//! Rate limiting in Redis, so that a limit holds across every replica of the gateway.
//!
//! **Algorithm: fixed window.** Each (class, client) pair has one counter key, created by the
//! first call of a window with the window as its TTL. One Lua script adds to the counter, sets
//! the expiry and reads the time left, atomically, in one round trip (on a multiplexed
//! connection shared by every request). The trade-off: a client can spend its quota at the end
//! of one window and again at the start of the next (up to twice the limit over a short span),
//! which is fine for abuse protection.
//!
//! **Permit leasing.** A round trip per request would be most of the gateway's own cost, so a
//! worker takes permits from Redis in batches and spends them locally. A class's lease is a
//! hundredth of its limit, between 1 and `GATEWAY__RATE_LIMIT__MAX_LEASE` (100): the script adds
//! the lease to the counter (`INCRBY`), the worker is granted the part of it that fits under the
//! limit, spends one permit on the request and keeps the rest for the client's next requests
//! until the window ends. Redis counts every permit handed out, so the requests admitted in a
//! window never exceed the limit, however many workers and replicas share it. The price is
//! under-admission: permits a worker still holds when the client's requests land elsewhere are
//! lost to the client, at most `lease - 1` per worker (1 % of the limit). Limits under 200
//! lease 1: one call per request, exact. While a worker's call for a client's permits is in
//! flight, its other requests for that client wait for the answer instead of leasing more
//! (which would break that bound); with a lease of 1 there is nothing to share, and they do not.
//!
//! **Full windows are remembered**: once a worker has seen a window's counter reach the limit
//! (its permits are all handed out), it refuses the client's requests until the window ends
//! without asking Redis again, so a client hammering past its limit costs Redis nothing.
//!
//! A worker's copy of a window ends at Redis's time left counted from *before* the call was
//! sent, so never after the key expires in Redis: a permit is never spent in a window that did
//! not count it. Memory is bounded: expired windows are swept as the table grows, and a table
//! still three-quarters full of live windows after a sweep (a flood of clients) is emptied,
//! which loses held permits (fewer requests pass, never more) and the memory of full windows
//! (Redis is asked again), never more than [`MAX_WINDOWS`] per worker.
//!
//! **The client** is the user (their id) on authenticated requests, otherwise the client's
//! address: the socket peer, or the last `X-Forwarded-For` entry when
//! `GATEWAY__RATE_LIMIT__TRUST_FORWARDED_FOR` says a proxy in front of the gateway appends it.
//! The `auth` class (login, registration, refresh) always counts per address.
//!
//! **When Redis is down the gateway fails open**: requests pass unlimited, a warning is logged
//! at most every ten seconds, and `gateway_rate_limit_failures_total` counts them. Refusing all
//! traffic because the limiter's store is down would turn a Redis outage into a platform
//! outage; the services behind still authenticate every request. A breaker stops asking Redis
//! for a second after three failures in a row, so an outage costs no latency either. Permits a
//! worker already holds, and windows it knows are full, still apply during an outage: they
//! need no call.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use platform_resilience::BreakerConfig;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::watch;

use crate::breaker::Breaker;
use crate::config::{ClassLimit, RateLimitSettings};
use crate::metrics::{RateDecision, RateMetrics};
use crate::routes::RateClass;

/// `RateLimit-Limit`: the quota of the window.
pub const RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
/// `RateLimit-Remaining`: requests left in the window.
pub const RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
/// `RateLimit-Reset`: seconds until the window ends.
pub const RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");
/// `RateLimit-Policy`: the quota and the window (`10;w=60`).
pub const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");

/// Adds the lease (`ARGV[2]`) to the window's counter, starting the window (`ARGV[1]` ms) on its
/// first call (or repairing a key that lost its TTL), and returns the count and the window's
/// remaining milliseconds.
const SCRIPT: &str = r"
local lease = tonumber(ARGV[2])
local count = redis.call('INCRBY', KEYS[1], lease)
local ttl = -1
if count > lease then ttl = redis.call('PTTL', KEYS[1]) end
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
";

/// How long warnings about Redis failures are held back after one is logged.
const WARNING_INTERVAL: Duration = Duration::from_secs(10);

/// The most (class, client) windows one worker remembers.
pub const MAX_WINDOWS: usize = 100_000;

/// Size of the window table at which it is first swept of expired windows (then at twice what
/// the last sweep kept).
const FIRST_SWEEP: usize = 1024;

/// Who a request counts against.
#[derive(Clone, Copy, Debug)]
pub enum Client<'a> {
    /// An authenticated user (their id as text).
    User(&'a str),
    /// An anonymous client's address.
    Address(IpAddr),
}

/// The outcome for one request.
#[derive(Debug)]
pub enum Verdict {
    /// Under the limit: forward it, with these headers on the response.
    Allowed(Quota),
    /// Over the limit: answer 429 with these headers.
    Limited(Quota),
    /// Not counted (no class, limiting off, or Redis unavailable): forward it as is.
    Unlimited,
}

/// Where a client stands in its window.
#[derive(Debug)]
pub struct Quota {
    class: RateClass,
    limit: HeaderValue,
    policy: HeaderValue,
    /// Requests left in the window.
    pub remaining: u64,
    /// Seconds until the window ends (at least 1).
    pub reset_secs: u64,
}

impl Quota {
    /// The class the request counted against.
    pub fn class(&self) -> RateClass {
        self.class
    }

    /// Adds the `RateLimit-*` headers.
    pub fn write_headers(&self, headers: &mut HeaderMap) {
        headers.insert(RATELIMIT_LIMIT, self.limit.clone());
        headers.insert(RATELIMIT_REMAINING, HeaderValue::from(self.remaining));
        headers.insert(RATELIMIT_RESET, HeaderValue::from(self.reset_secs));
        headers.insert(RATELIMIT_POLICY, self.policy.clone());
    }
}

struct ClassState {
    limit: u64,
    window_ms: u64,
    /// Permits taken from Redis per call.
    lease: u64,
    limit_header: HeaderValue,
    policy_header: HeaderValue,
}

impl ClassState {
    fn new(limit: ClassLimit, max_lease: u64) -> Self {
        Self {
            limit: limit.limit,
            window_ms: limit.window_secs.saturating_mul(1000),
            lease: lease_size(limit.limit, max_lease),
            limit_header: HeaderValue::from(limit.limit),
            policy_header: HeaderValue::try_from(format!(
                "{};w={}",
                limit.limit, limit.window_secs
            ))
            .expect("digits and `;w=` make a valid header value"),
        }
    }
}

/// The rate limiter: counters in Redis, limits per class, permits leased per worker.
pub struct RateLimiter {
    redis: ConnectionManager,
    script: redis::Script,
    key_prefix: String,
    timeout: Duration,
    enabled: bool,
    classes: [ClassState; 3],
    breaker: Breaker,
    metrics: RateMetrics,
    /// What this worker knows of its clients' windows. Never locked across an `.await`.
    windows: Mutex<Windows>,
    started: Instant,
    /// Milliseconds after `started` before which no new warning is logged.
    quiet_until_ms: AtomicU64,
}

impl fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiter")
            .field("key_prefix", &self.key_prefix)
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

impl RateLimiter {
    /// A limiter on the Redis at `redis_url`. It connects lazily and reconnects by itself, so
    /// the gateway starts (failing open) while Redis is down.
    pub fn new(redis_url: &str, settings: &RateLimitSettings) -> anyhow::Result<Self> {
        let info = redis::IntoConnectionInfo::into_connection_info(redis_url)
            .map_err(|error| anyhow::anyhow!("GATEWAY__REDIS__URL is not a Redis URL: {error}"))?
            // Like every other connection of the gateway: a command is never held back behind
            // an unacknowledged one (Nagle).
            .set_tcp_settings(redis::io::tcp::TcpSettings::default().set_nodelay(true));
        let client = redis::Client::open(info)
            .map_err(|error| anyhow::anyhow!("setting up the Redis client: {error}"))?;
        let timeout = Duration::from_millis(settings.timeout_ms.max(1));
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            // Each call is bounded by `timeout` below: one timer per request, not two.
            .set_response_timeout(None)
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(100));
        let redis = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|error| anyhow::anyhow!("setting up the Redis connection: {error}"))?;
        Ok(Self {
            redis,
            script: redis::Script::new(SCRIPT),
            key_prefix: settings.key_prefix.clone(),
            timeout,
            enabled: settings.enabled,
            classes: [
                ClassState::new(settings.auth_limit(), settings.max_lease),
                ClassState::new(settings.read_limit(), settings.max_lease),
                ClassState::new(settings.write_limit(), settings.max_lease),
            ],
            breaker: Breaker::new(
                "redis",
                BreakerConfig {
                    failure_threshold: 3,
                    cool_down: Duration::from_secs(1),
                },
            ),
            metrics: RateMetrics::new(),
            windows: Mutex::new(Windows::new()),
            started: Instant::now(),
            quiet_until_ms: AtomicU64::new(0),
        })
    }

    /// Counts a request of `client` against `class`.
    pub async fn check(&self, class: RateClass, client: Client<'_>) -> Verdict {
        if !self.enabled {
            return Verdict::Unlimited;
        }
        let state = &self.classes[class_index(class)];
        let key = match client {
            Client::User(id) => format!("{}:{}:u:{id}", self.key_prefix, class.as_str()),
            Client::Address(address) => {
                format!("{}:{}:ip:{address}", self.key_prefix, class.as_str())
            }
        };
        let share_calls = state.lease > 1;
        loop {
            let now = Instant::now();
            let step = self.windows().local(&key, state.limit, share_calls, now);
            match step {
                Step::Decided(decision) => return self.verdict(class, state, &decision, now),
                Step::Ask(call) => return self.lease(class, state, key, call).await,
                Step::Wait(mut call) => {
                    // Returns when the call fails or is over (its sender dropped), whichever way.
                    let _ = call.changed().await;
                    if *call.borrow() == CallState::Failed {
                        self.failed_open(class, &"Redis could not be asked (a shared call failed)");
                        return Verdict::Unlimited;
                    }
                    // Its permits, or its news of a full window, are in the table now.
                }
            }
        }
    }

    /// Asks Redis for a lease of `state.lease` permits for `key`, and decides the request with
    /// the answer. `call`, when the client's calls are shared, wakes the requests waiting for
    /// this one when it is dropped, after the answer is in the table.
    async fn lease(
        &self,
        class: RateClass,
        state: &ClassState,
        key: String,
        call: Option<watch::Sender<CallState>>,
    ) -> Verdict {
        let failed = |error: &dyn fmt::Display| {
            if let Some(call) = &call {
                call.send_replace(CallState::Failed);
            }
            self.failed_open(class, error);
            Verdict::Unlimited
        };
        if self.breaker.acquire().is_err() {
            return failed(&"Redis is unavailable (circuit open)");
        }
        let mut redis = self.redis.clone();
        // Before the call, so that the window's local end is never after its end in Redis.
        let sent = Instant::now();
        let invocation = async {
            self.script
                .key(&key)
                .arg(state.window_ms)
                .arg(state.lease)
                .invoke_async::<(u64, i64)>(&mut redis)
                .await
        };
        let (count, ttl_ms) = match tokio::time::timeout(self.timeout, invocation).await {
            Ok(Ok(answer)) => {
                self.breaker.success();
                answer
            }
            Ok(Err(error)) => {
                self.breaker.failure();
                return failed(&error);
            }
            Err(_) => {
                self.breaker.failure();
                return failed(&format_args!("no answer within {:?}", self.timeout));
            }
        };
        let answer = Answer {
            count,
            asked: state.lease,
            ends: sent + Duration::from_millis(u64::try_from(ttl_ms).unwrap_or(0)),
        };
        let now = Instant::now();
        let decision = self.windows().settle(key, state.limit, &answer, now);
        drop(call);
        self.verdict(class, state, &decision, now)
    }

    fn verdict(
        &self,
        class: RateClass,
        state: &ClassState,
        decision: &Decision,
        now: Instant,
    ) -> Verdict {
        let left_ms = decision.ends.saturating_duration_since(now).as_millis();
        let quota = Quota {
            class,
            limit: state.limit_header.clone(),
            policy: state.policy_header.clone(),
            remaining: decision.remaining,
            reset_secs: u64::try_from(left_ms)
                .unwrap_or(u64::MAX)
                .max(1)
                .div_ceil(1000),
        };
        if decision.allowed {
            self.metrics.decision(class, RateDecision::Allowed);
            Verdict::Allowed(quota)
        } else {
            self.metrics.decision(class, RateDecision::Limited);
            Verdict::Limited(quota)
        }
    }

    fn windows(&self) -> MutexGuard<'_, Windows> {
        // Nothing panics while holding the lock; if something did, the table is still sound.
        self.windows.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn failed_open(&self, class: RateClass, error: &dyn fmt::Display) {
        self.metrics.failure();
        self.metrics.decision(class, RateDecision::FailedOpen);
        let now = self.started.elapsed().as_millis() as u64;
        let quiet_until = self.quiet_until_ms.load(Ordering::Relaxed);
        if now >= quiet_until
            && self
                .quiet_until_ms
                .compare_exchange(
                    quiet_until,
                    now + WARNING_INTERVAL.as_millis() as u64,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            tracing::warn!(
                error = %error,
                "rate limiting is failing open: Redis cannot be asked, requests pass unlimited \
                 (further failures within {WARNING_INTERVAL:?} are counted in \
                 gateway_rate_limit_failures_total, not logged)"
            );
        }
    }
}

/// How many permits a class with `limit` takes from Redis per call: a hundredth of the limit,
/// between 1 and `max_lease`.
fn lease_size(limit: u64, max_lease: u64) -> u64 {
    (limit / 100).clamp(1, max_lease.max(1))
}

/// How many of the `asked` permits were granted by a call that brought the counter to `count`:
/// those that fit under the limit.
fn granted(limit: u64, count: u64, asked: u64) -> u64 {
    limit.saturating_sub(count.saturating_sub(asked)).min(asked)
}

/// `RateLimit-Remaining`: the permits nobody has taken from Redis yet, and those this worker
/// holds for the client.
fn remaining(limit: u64, count: u64, held: u64) -> u64 {
    limit.saturating_sub(count).saturating_add(held)
}

/// Redis's answer to a lease.
#[derive(Debug)]
struct Answer {
    /// The counter after the call.
    count: u64,
    /// The permits the call asked for (added to the counter).
    asked: u64,
    /// When the window ends, counted from before the call was sent.
    ends: Instant,
}

/// A worker's decision on one request.
#[derive(Debug)]
struct Decision {
    allowed: bool,
    remaining: u64,
    ends: Instant,
}

/// Where a call for a client's permits stands, as the requests waiting for it see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CallState {
    /// In flight (or over, when its sender is gone).
    InFlight,
    /// Redis could not be asked: the waiting requests fail open too.
    Failed,
}

/// What to do with a request after looking at the worker's table.
#[derive(Debug)]
enum Step {
    /// Decided locally: a held permit, or a full window.
    Decided(Decision),
    /// Another request is asking Redis for this client's permits: wait for it, then look again.
    Wait(watch::Receiver<CallState>),
    /// Ask Redis; the sender, when calls are shared, tells the waiting requests it is over.
    Ask(Option<watch::Sender<CallState>>),
}

/// What a worker knows of one client's window.
#[derive(Debug)]
struct Window {
    /// When the window ends, never after the key expires in Redis.
    ends: Instant,
    /// Permits taken from Redis for the client and not spent yet.
    held: u64,
    /// The counter in Redis after this worker's last call; at or past the limit, every permit
    /// of the window is handed out.
    count: u64,
    /// The call for more permits, while one is in flight.
    call: Option<watch::Receiver<CallState>>,
}

impl Window {
    fn call_in_flight(&self) -> Option<&watch::Receiver<CallState>> {
        // A closed channel is a call that is over (or was cancelled with its request).
        self.call.as_ref().filter(|call| call.has_changed().is_ok())
    }

    fn decision(&self, allowed: bool, limit: u64) -> Decision {
        Decision {
            allowed,
            remaining: remaining(limit, self.count, self.held),
            ends: self.ends,
        }
    }
}

/// The windows of one worker, by Redis key.
#[derive(Debug)]
struct Windows {
    by_key: HashMap<String, Window>,
    sweep_at: usize,
}

impl Windows {
    fn new() -> Self {
        Self {
            by_key: HashMap::new(),
            sweep_at: FIRST_SWEEP,
        }
    }

    /// Decides a request on what the worker knows (a held permit, a full window), or says who
    /// asks Redis: this request, or (when `share_calls` and one is in flight) another one.
    fn local(&mut self, key: &str, limit: u64, share_calls: bool, now: Instant) -> Step {
        if let Some(window) = self.by_key.get_mut(key) {
            if window.ends > now {
                if window.held > 0 {
                    window.held -= 1;
                    return Step::Decided(window.decision(true, limit));
                }
                if window.count >= limit {
                    return Step::Decided(window.decision(false, limit));
                }
            }
            if !share_calls {
                return Step::Ask(None);
            }
            if let Some(call) = window.call_in_flight() {
                return Step::Wait(call.clone());
            }
            let (sender, call) = watch::channel(CallState::InFlight);
            window.call = Some(call);
            return Step::Ask(Some(sender));
        }
        if !share_calls {
            return Step::Ask(None);
        }
        let (sender, call) = watch::channel(CallState::InFlight);
        let placeholder = Window {
            ends: now,
            held: 0,
            count: 0,
            call: Some(call),
        };
        self.insert(key.to_owned(), placeholder, now);
        Step::Ask(Some(sender))
    }

    /// Records Redis's answer to a lease and decides the request that asked for it: it takes
    /// one of the granted permits (if any), and the worker holds the rest for the window.
    fn settle(&mut self, key: String, limit: u64, answer: &Answer, now: Instant) -> Decision {
        let granted = granted(limit, answer.count, answer.asked);
        let allowed = granted > 0;
        let spare = granted.saturating_sub(1);
        let fresh = Window {
            ends: answer.ends,
            held: spare,
            count: answer.count,
            call: None,
        };
        if answer.ends <= now {
            // The window ended while the answer travelled: the request was counted in it, but
            // spare permits would be spent in the next window, which did not count them.
            let ended = Window { held: 0, ..fresh };
            return ended.decision(allowed, limit);
        }
        match self.by_key.get_mut(&key) {
            // Both live: the same window, since a key's windows do not overlap and neither copy
            // ends after the key expires. (An answer from an older window has ended by now.)
            Some(window) if window.ends > now => {
                window.held += spare;
                window.count = window.count.max(answer.count);
                window.ends = window.ends.min(answer.ends);
                window.decision(allowed, limit)
            }
            Some(window) => {
                let call = window.call.take();
                *window = Window { call, ..fresh };
                window.decision(allowed, limit)
            }
            None => {
                let decision = fresh.decision(allowed, limit);
                // With no permits to hold, only a full window is worth remembering.
                if fresh.held > 0 || fresh.count >= limit {
                    self.insert(key, fresh, now);
                }
                decision
            }
        }
    }

    fn insert(&mut self, key: String, window: Window, now: Instant) {
        if self.by_key.len() >= self.sweep_at {
            self.by_key
                .retain(|_, window| window.ends > now || window.call_in_flight().is_some());
            if self.by_key.len() >= MAX_WINDOWS / 4 * 3 {
                // A flood of clients: forgetting them loses held permits (fewer requests pass,
                // never more) and full windows (Redis is asked again).
                self.by_key.clear();
            }
            self.sweep_at = (self.by_key.len() * 2).clamp(FIRST_SWEEP, MAX_WINDOWS);
        }
        self.by_key.insert(key, window);
    }
}

fn class_index(class: RateClass) -> usize {
    match class {
        RateClass::Auth => 0,
        RateClass::Read => 1,
        RateClass::Write => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: u64 = 1_000;

    fn answer(count: u64, asked: u64, ends: Instant) -> Answer {
        Answer { count, asked, ends }
    }

    fn decided(step: Step) -> Decision {
        match step {
            Step::Decided(decision) => decision,
            other => panic!("expected a local decision, got {other:?}"),
        }
    }

    #[test]
    fn a_class_leases_a_hundredth_of_its_limit_between_one_and_the_maximum() {
        assert_eq!(lease_size(10, 100), 1);
        assert_eq!(
            lease_size(199, 100),
            1,
            "limits under 200 keep one call per request"
        );
        assert_eq!(lease_size(1_000, 100), 10);
        assert_eq!(lease_size(10_000, 100), 100);
        assert_eq!(lease_size(1_000_000_000_000, 100), 100);
        assert_eq!(lease_size(10_000, 1), 1, "a maximum of 1 turns leasing off");
        assert_eq!(lease_size(10_000, 0), 1);
    }

    #[test]
    fn a_lease_is_granted_whole_under_the_limit_in_part_at_it_and_not_at_all_past_it() {
        assert_eq!(granted(LIMIT, 10, 10), 10, "the first lease of a window");
        assert_eq!(granted(LIMIT, 1_000, 10), 10, "the last whole lease");
        assert_eq!(
            granted(LIMIT, 1_004, 10),
            6,
            "only what fits under the limit"
        );
        assert_eq!(granted(LIMIT, 1_010, 10), 0);
        assert_eq!(granted(LIMIT, 5_000, 10), 0);
        assert_eq!(granted(3, 3, 1), 1, "a lease of 1 is today's INCR");
        assert_eq!(granted(3, 4, 1), 0);
        assert_eq!(granted(0, 1, 1), 0, "a limit of 0 admits nothing");
    }

    #[test]
    fn remaining_counts_the_permits_nobody_took_and_those_the_worker_holds() {
        assert_eq!(remaining(LIMIT, 10, 9), 999);
        assert_eq!(
            remaining(LIMIT, 1_004, 5),
            5,
            "past the limit in Redis: only what is held"
        );
        assert_eq!(remaining(LIMIT, 1_000, 0), 0);
    }

    #[test]
    fn a_worker_spends_its_lease_one_request_at_a_time_then_asks_again() {
        let now = Instant::now();
        let ends = now + Duration::from_secs(60);
        let mut windows = Windows::new();
        assert!(matches!(
            windows.local("k", LIMIT, true, now),
            Step::Ask(Some(_))
        ));
        let first = windows.settle("k".to_owned(), LIMIT, &answer(10, 10, ends), now);
        assert!(first.allowed);
        assert_eq!(first.remaining, 999);
        for expected in (990..999).rev() {
            let decision = decided(windows.local("k", LIMIT, true, now));
            assert!(decision.allowed);
            assert_eq!(decision.remaining, expected);
            assert_eq!(decision.ends, ends);
        }
        assert!(matches!(
            windows.local("k", LIMIT, true, now),
            Step::Ask(Some(_))
        ));
    }

    #[test]
    fn requests_wait_for_the_call_in_flight_instead_of_leasing_more() {
        let now = Instant::now();
        let mut windows = Windows::new();
        let Step::Ask(Some(call)) = windows.local("k", LIMIT, true, now) else {
            panic!("the first request asks");
        };
        assert!(matches!(
            windows.local("k", LIMIT, true, now),
            Step::Wait(_)
        ));
        drop(call);
        assert!(
            matches!(windows.local("k", LIMIT, true, now), Step::Ask(Some(_))),
            "a call that is over (or cancelled) is not waited for"
        );
        assert!(
            matches!(windows.local("other", LIMIT, false, now), Step::Ask(None)),
            "with a lease of 1, every request asks"
        );
    }

    #[test]
    fn at_the_limit_a_lease_is_granted_in_part_and_the_full_window_is_refused_locally() {
        let now = Instant::now();
        let ends = now + Duration::from_secs(30);
        let mut windows = Windows::new();
        // Other workers took 996 permits: 4 of these 10 fit.
        let decision = windows.settle("k".to_owned(), LIMIT, &answer(1_006, 10, ends), now);
        assert!(decision.allowed);
        assert_eq!(decision.remaining, 3);
        for expected in [2, 1, 0] {
            assert_eq!(
                decided(windows.local("k", LIMIT, true, now)).remaining,
                expected
            );
        }
        let refused = decided(windows.local("k", LIMIT, true, now));
        assert!(!refused.allowed, "every permit of the window is handed out");
        assert_eq!(refused.remaining, 0);
        assert_eq!(refused.ends, ends);
        assert!(
            matches!(
                windows.local("k", LIMIT, true, ends + Duration::from_millis(1)),
                Step::Ask(_)
            ),
            "the next window asks Redis again"
        );
    }

    #[test]
    fn a_refusal_is_remembered_until_the_window_ends() {
        let now = Instant::now();
        let ends = now + Duration::from_secs(5);
        let mut windows = Windows::new();
        let refused = windows.settle("k".to_owned(), 3, &answer(4, 1, ends), now);
        assert!(!refused.allowed);
        assert!(!decided(windows.local("k", 3, false, now)).allowed);
        assert!(matches!(
            windows.local("k", 3, false, ends),
            Step::Ask(None)
        ));
    }

    #[test]
    fn answers_of_the_same_window_add_up_and_spares_of_an_ended_one_are_dropped() {
        let before = Instant::now();
        let now = before + Duration::from_secs(1);
        let ends = now + Duration::from_secs(60);
        let mut windows = Windows::new();
        windows.settle("k".to_owned(), LIMIT, &answer(10, 10, ends), now);
        // A second call of the same window (the map was cleared in between, say).
        let later = now + Duration::from_millis(59_998);
        let decision = windows.settle("k".to_owned(), LIMIT, &answer(30, 10, later), now);
        assert_eq!(decision.remaining, 970 + 9 + 9);
        assert_eq!(decision.ends, later, "the earlier end is the safe one");

        let ended = windows.settle(
            "gone".to_owned(),
            LIMIT,
            &answer(10, 10, before + Duration::from_millis(999)),
            now,
        );
        assert!(
            ended.allowed,
            "the request itself was counted in its window"
        );
        assert!(
            matches!(windows.local("gone", LIMIT, true, now), Step::Ask(_)),
            "no permit of an ended window is kept"
        );
    }

    #[test]
    fn a_windows_local_end_never_passes_the_keys_expiry_in_redis() {
        // Nothing is held past the answer's own end, which is counted from before the call.
        let now = Instant::now();
        let ends = now + Duration::from_millis(500);
        let mut windows = Windows::new();
        windows.settle("k".to_owned(), LIMIT, &answer(10, 10, ends), now);
        let just_before = now + Duration::from_millis(499);
        assert!(decided(windows.local("k", LIMIT, true, just_before)).allowed);
        assert!(matches!(
            windows.local("k", LIMIT, true, ends),
            Step::Ask(_)
        ));
    }

    #[test]
    fn the_table_sweeps_ended_windows_and_never_holds_more_than_its_cap() {
        let now = Instant::now();
        let mut windows = Windows::new();
        let ended = now + Duration::from_millis(1);
        let later = now + Duration::from_secs(2);
        for client in 0..FIRST_SWEEP {
            windows.settle(format!("a{client}"), LIMIT, &answer(10, 10, ended), now);
        }
        assert_eq!(windows.by_key.len(), FIRST_SWEEP);
        windows.settle(
            "b".to_owned(),
            LIMIT,
            &answer(10, 10, later),
            now + Duration::from_secs(1),
        );
        assert_eq!(windows.by_key.len(), 1, "the ended windows were swept");

        for client in 0..MAX_WINDOWS * 2 {
            windows.settle(format!("c{client}"), LIMIT, &answer(10, 10, later), now);
            assert!(windows.by_key.len() <= MAX_WINDOWS);
        }
    }
}
