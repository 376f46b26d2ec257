//! The sign-in phase: the bench's customers sign in again and again (each sign-in hashes a
//! password with Argon2id, the user service's costliest request), to see its memory under that
//! load.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::StreamExt as _;

use super::{Memory, PeakMemory};
use crate::client::{Client, Customer, PASSWORD};

/// What the sign-in phase measured.
#[derive(Debug, Default)]
pub struct SignIns {
    /// Sign-ins answered 200.
    pub succeeded: usize,
    /// How long each successful one took.
    pub latencies: Vec<Duration>,
    /// Failures by kind.
    pub errors: BTreeMap<String, usize>,
    /// Sign-ins not attempted because the time ran out.
    pub skipped: usize,
    /// How long the phase took.
    pub elapsed: Duration,
    /// Each process's peak resident memory during the phase.
    pub peak: Memory,
}

/// `count` sign-ins by `customers` in turn, `concurrency` at once, for at most `limit`;
/// `memory` is sampled every 100 ms.
pub async fn run(
    customers: &[(Client, Customer)],
    count: usize,
    concurrency: usize,
    limit: Duration,
    memory: impl Fn() -> Memory,
) -> SignIns {
    let started = Instant::now();
    let deadline = started + limit;
    let attempts = futures::stream::iter((0..count).map(|index| {
        let (client, customer) = &customers[index % customers.len()];
        async move {
            if Instant::now() >= deadline {
                return None;
            }
            let begun = Instant::now();
            let answer =
                tokio::time::timeout_at(deadline.into(), client.login(&customer.email, PASSWORD))
                    .await;
            Some(match answer {
                Ok(Ok(response)) if response.status().is_success() => Ok(begun.elapsed()),
                Ok(Ok(response)) => Err(format!("answered {}", response.status())),
                Ok(Err(_)) => Err("no answer".to_owned()),
                Err(_) => Err(format!("not answered within the {limit:?} limit")),
            })
        }
    }))
    .buffer_unordered(concurrency.max(1));
    let mut attempts = std::pin::pin!(attempts);
    let mut results = SignIns::default();
    let mut peak = PeakMemory::default();
    let mut ticker = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            next = attempts.next() => match next {
                None => break,
                Some(None) => results.skipped += 1,
                Some(Some(Ok(latency))) => {
                    results.succeeded += 1;
                    results.latencies.push(latency);
                }
                Some(Some(Err(error))) => *results.errors.entry(error).or_default() += 1,
            },
            _ = ticker.tick() => peak.sample(memory()),
        }
    }
    peak.sample(memory());
    results.elapsed = started.elapsed();
    results.peak = peak.0;
    results
}
