//! The load generator: HTTP/1.1 keep-alive connections (hyper's client connection, nothing
//! pooled or shared), each sending one request at a time.
//!
//! - [`saturate`]: closed loop, every connection sends its next request as soon as the answer
//!   arrives, for a fixed duration after a warm-up: throughput and latency at saturation.
//! - [`fixed_rate`]: a fixed total rate spread over a few connections, well below saturation:
//!   the latency a request sees when nothing queues.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Request, StatusCode, header};
use http_body_util::{BodyExt as _, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// What to request.
#[derive(Clone, Debug)]
pub struct Target {
    /// Where to connect.
    pub addr: SocketAddr,
    /// The path (and query).
    pub path: String,
    /// `Authorization` value, if any.
    pub authorization: Option<HeaderValue>,
}

/// Latencies of the measured requests, and how many there were per second.
#[derive(Debug)]
pub struct Measurement {
    /// Completed requests per second over the measured span.
    pub rps: f64,
    /// Latencies in microseconds, sorted.
    pub latencies_us: Vec<u32>,
    /// Requests that failed or answered something else than 200.
    pub errors: u64,
}

impl Measurement {
    /// The latency at `quantile` (0..=1), in milliseconds.
    pub fn percentile_ms(&self, quantile: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        let rank = ((self.latencies_us.len() as f64 - 1.0) * quantile).round() as usize;
        f64::from(self.latencies_us[rank]) / 1000.0
    }
}

struct Connection {
    sender: SendRequest<Empty<Bytes>>,
    request: Request<Empty<Bytes>>,
}

impl Connection {
    async fn open(target: &Target) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(target.addr).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let mut request = Request::get(target.path.as_str())
            .header(header::HOST, target.addr.to_string())
            .body(Empty::new())?;
        if let Some(authorization) = &target.authorization {
            request
                .headers_mut()
                .insert(header::AUTHORIZATION, authorization.clone());
        }
        Ok(Self { sender, request })
    }

    /// One request; `Ok(true)` for a 200 whose body was read.
    async fn send(&mut self) -> anyhow::Result<bool> {
        let mut request = Request::new(Empty::new());
        *request.uri_mut() = self.request.uri().clone();
        *request.headers_mut() = self.request.headers().clone();
        self.sender.ready().await?;
        let response = self.sender.send_request(request).await?;
        let ok = response.status() == StatusCode::OK;
        response.into_body().collect().await?;
        Ok(ok)
    }
}

/// Closed loop on `connections` connections: `warm_up`, then `duration` measured.
pub async fn saturate(
    target: &Target,
    connections: usize,
    warm_up: Duration,
    duration: Duration,
) -> anyhow::Result<Measurement> {
    let start = Instant::now() + Duration::from_millis(50);
    let measure_from = start + warm_up;
    let until = measure_from + duration;
    let mut tasks = Vec::with_capacity(connections);
    for _ in 0..connections {
        let target = target.clone();
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::with_capacity(64 * 1024);
            let mut connection = Connection::open(&target).await?;
            tokio::time::sleep_until(start.into()).await;
            loop {
                let sent = Instant::now();
                if sent >= until {
                    break;
                }
                tally
                    .send(&mut connection, &target, sent, |done| {
                        sent >= measure_from && done <= until
                    })
                    .await?;
            }
            anyhow::Ok(tally)
        }));
    }
    collect(tasks, duration).await
}

/// `rate` requests per second in total, spread evenly over `connections`, for `duration`
/// after a short warm-up.
pub async fn fixed_rate(
    target: &Target,
    connections: usize,
    rate: u32,
    duration: Duration,
) -> anyhow::Result<Measurement> {
    let warm_up = Duration::from_millis(500);
    let interval = Duration::from_secs_f64(connections as f64 / f64::from(rate));
    let start = Instant::now() + Duration::from_millis(50);
    let measure_from = start + warm_up;
    let until = measure_from + duration;
    let mut tasks = Vec::with_capacity(connections);
    for index in 0..connections {
        let target = target.clone();
        // Staggered, so that the connections do not all fire at once.
        let first = start + interval.mul_f64(index as f64 / connections as f64);
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::with_capacity(1024);
            let mut connection = Connection::open(&target).await?;
            let mut ticker = tokio::time::interval_at(first.into(), interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                ticker.tick().await;
                let sent = Instant::now();
                if sent >= until {
                    break;
                }
                tally
                    .send(&mut connection, &target, sent, |_| sent >= measure_from)
                    .await?;
            }
            anyhow::Ok(tally)
        }));
    }
    collect(tasks, duration).await
}

/// What one connection measured.
struct Tally {
    /// Latencies of the measured requests, in µs.
    latencies: Vec<u32>,
    /// Measured requests that failed or got an unexpected status.
    errors: u64,
}

impl Tally {
    fn with_capacity(capacity: usize) -> Self {
        Self {
            latencies: Vec::with_capacity(capacity),
            errors: 0,
        }
    }

    /// Sends one request (`sent` is now) and counts it when `measured(done)` says it falls in
    /// the measured span; a connection that failed is replaced by a new one.
    async fn send(
        &mut self,
        connection: &mut Connection,
        target: &Target,
        sent: Instant,
        measured: impl Fn(Instant) -> bool,
    ) -> anyhow::Result<()> {
        let outcome = connection.send().await;
        let done = Instant::now();
        let measured = measured(done);
        match outcome {
            Ok(true) => {
                if measured {
                    self.latencies.push(micros(done - sent));
                }
            }
            Ok(false) => self.errors += u64::from(measured),
            Err(_) => {
                self.errors += u64::from(measured);
                *connection = Connection::open(target).await?;
            }
        }
        Ok(())
    }
}

/// A connection's task.
type ConnectionTask = tokio::task::JoinHandle<anyhow::Result<Tally>>;

async fn collect(tasks: Vec<ConnectionTask>, duration: Duration) -> anyhow::Result<Measurement> {
    let mut latencies_us = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let tally = task.await??;
        latencies_us.extend(tally.latencies);
        errors += tally.errors;
    }
    latencies_us.sort_unstable();
    Ok(Measurement {
        rps: latencies_us.len() as f64 / duration.as_secs_f64(),
        latencies_us,
        errors,
    })
}

fn micros(elapsed: Duration) -> u32 {
    u32::try_from(elapsed.as_micros()).unwrap_or(u32::MAX)
}

/// One request: its status, and whether the answer carried `RateLimit-Remaining`.
pub async fn probe(target: &Target) -> anyhow::Result<(u16, bool)> {
    let connection = Connection::open(target).await?;
    let mut sender = connection.sender;
    sender.ready().await?;
    let response = sender.send_request(connection.request).await?;
    let status = response.status().as_u16();
    let limited = response.headers().contains_key("ratelimit-remaining");
    response.into_body().collect().await?;
    Ok((status, limited))
}
