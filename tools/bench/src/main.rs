//! `bench`: benchmarks that print figures.
//!
//! `bench gateway` measures, in one run on 127.0.0.1, a small GET (a) served directly by a
//! bare hyper upstream, (b) through nginx as a plain keep-alive reverse proxy to it, and
//! (c) through the gateway with JWT verification and Redis rate limiting on, each at
//! saturation (closed loop) and at a moderate fixed rate, and prints the table and the ratios.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod bare;
mod load;
mod nginx;
mod upstream;

use std::net::SocketAddr;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use clap::{Parser, Subcommand};
use http::HeaderValue;
use platform_auth::{Claims, Role, TokenSigner};

use crate::load::{Measurement, Target};

#[derive(Parser)]
#[command(about = "Benchmarks that print figures")]
struct Cli {
    #[command(subcommand)]
    command: Benchmark,
}

#[derive(Subcommand)]
enum Benchmark {
    /// Upstream direct vs nginx vs the gateway (JWT + rate limiting), on 127.0.0.1.
    Gateway(GatewayArgs),
    /// (internal) The upstream, in a process of its own.
    #[command(hide = true)]
    Upstream {
        #[arg(long)]
        port: u16,
    },
    /// (internal) A bare hyper reverse proxy, for reference.
    #[command(hide = true)]
    BareProxy {
        #[arg(long)]
        port: u16,
        #[arg(long)]
        upstream: SocketAddr,
    },
}

#[derive(clap::Args, Clone)]
struct GatewayArgs {
    /// Measured seconds at saturation, per target.
    #[arg(long, default_value_t = 5)]
    duration: u64,
    /// Warm-up seconds before each saturation measurement.
    #[arg(long, default_value_t = 1)]
    warm_up: u64,
    /// Rounds over all targets (interleaved); figures are medians over the rounds.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Connections of the closed loop.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Requests per second of the moderate-load measurement.
    #[arg(long, default_value_t = 1000)]
    rate: u32,
    /// Connections of the moderate-load measurement.
    #[arg(long, default_value_t = 8)]
    rate_connections: usize,
    /// RUST_LOG of the gateway (`info` logs one line per request).
    #[arg(long, default_value = "warn")]
    gateway_log: String,
    /// Redis for the rate limiter (default: REDIS_URL, else redis://127.0.0.1:6379).
    #[arg(long)]
    redis_url: Option<String>,
    /// Which targets to measure: any of a, b, c (ratios need all three), and p (a bare hyper
    /// proxy, for reference).
    #[arg(long, default_value = "abc")]
    targets: String,
    /// Extra variables for the gateway, e.g. `--gateway-env GATEWAY__RATE_LIMIT__ENABLED=false`.
    #[arg(long, value_parser = parse_key_value)]
    gateway_env: Vec<(String, String)>,
    /// Keep everything running after the measurements (to attach a profiler), until Ctrl-C.
    #[arg(long, hide = true)]
    hold: bool,
}

fn parse_key_value(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .ok_or_else(|| format!("`{text}` is not KEY=VALUE"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Benchmark::Gateway(args) => {
            runtime(None).and_then(|rt| rt.block_on(gateway_benchmark(args)))
        }
        Benchmark::Upstream { port } => runtime(None).and_then(|rt| {
            rt.block_on(async {
                let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
                upstream::serve(listener).await
            })
        }),
        Benchmark::BareProxy { port, upstream } => runtime(None).and_then(|rt| {
            rt.block_on(async {
                let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
                bare::serve(listener, upstream).await
            })
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bench: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn runtime(workers: Option<usize>) -> anyhow::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(workers) = workers {
        builder.worker_threads(workers);
    }
    Ok(builder.enable_all().build()?)
}

/// A child process killed on drop.
struct ChildProcess(Child);

impl Drop for ChildProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

async fn wait_until_listening(addr: SocketAddr, what: &str) -> anyhow::Result<()> {
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("{what} did not start listening on {addr}")
}

/// One target's figures: the median over the rounds of each.
struct Row {
    name: &'static str,
    /// Requests per second at saturation, per round.
    rps: Vec<f64>,
    p50_ms: f64,
    p99_ms: f64,
    moderate_p50_ms: f64,
}

impl Row {
    fn new(name: &'static str) -> Self {
        Self {
            name,
            rps: Vec::new(),
            p50_ms: f64::NAN,
            p99_ms: f64::NAN,
            moderate_p50_ms: f64::NAN,
        }
    }

    fn median_rps(&self) -> f64 {
        median(self.rps.clone())
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// One round on one target: saturation, then the moderate rate.
async fn measure(
    name: &str,
    target: &Target,
    args: &GatewayArgs,
) -> anyhow::Result<(Measurement, Measurement)> {
    eprintln!("measuring {name} ...");
    let saturated = load::saturate(
        target,
        args.connections,
        Duration::from_secs(args.warm_up),
        Duration::from_secs(args.duration),
    )
    .await?;
    let moderate = load::fixed_rate(
        target,
        args.rate_connections,
        args.rate,
        Duration::from_secs(args.duration),
    )
    .await?;
    anyhow::ensure!(
        saturated.errors == 0 && moderate.errors == 0,
        "{name}: {} + {} requests failed or were refused (is something rejecting them?)",
        saturated.errors,
        moderate.errors
    );
    Ok((saturated, moderate))
}

/// Rounds interleave the targets, so that a burst of other work on the machine costs every
/// target alike instead of one; each figure is the median over the rounds.
async fn run_rounds(
    targets: &[(&'static str, SocketAddr)],
    target: &impl Fn(SocketAddr) -> Target,
    args: &GatewayArgs,
) -> anyhow::Result<Vec<Row>> {
    let rounds = args.rounds.max(1);
    let mut results: Vec<Vec<(Measurement, Measurement)>> =
        targets.iter().map(|_| Vec::new()).collect();
    for round in 1..=rounds {
        for ((name, addr), results) in targets.iter().zip(&mut results) {
            let label = format!("{name}, round {round}/{rounds}");
            results.push(measure(&label, &target(*addr), args).await?);
        }
    }
    Ok(targets
        .iter()
        .zip(results)
        .map(|((name, _), results)| {
            let saturated = |quantile| {
                median(
                    results
                        .iter()
                        .map(|(saturated, _)| saturated.percentile_ms(quantile))
                        .collect(),
                )
            };
            let mut row = Row::new(name);
            row.rps = results.iter().map(|(saturated, _)| saturated.rps).collect();
            row.p50_ms = saturated(0.5);
            row.p99_ms = saturated(0.99);
            row.moderate_p50_ms = median(
                results
                    .iter()
                    .map(|(_, moderate)| moderate.percentile_ms(0.5))
                    .collect(),
            );
            row
        })
        .collect())
}

async fn gateway_benchmark(args: GatewayArgs) -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    // The gateway as it ships: its release binary, built beside this one.
    let gateway_binary = exe.with_file_name("gateway");
    anyhow::ensure!(
        gateway_binary.exists(),
        "{} is missing: build it first (cargo build --release -p gateway -p bench, or make bench-gateway)",
        gateway_binary.display()
    );
    let nginx_binary = nginx::ensure_installed()?;
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let redis_url = args
        .redis_url
        .clone()
        .or_else(|| std::env::var("REDIS_URL").ok())
        .unwrap_or_else(|| "redis://127.0.0.1:6379".to_owned());

    // The upstream, in its own process.
    let upstream_port = free_port()?;
    let upstream_addr: SocketAddr = ([127, 0, 0, 1], upstream_port).into();
    let _upstream = ChildProcess(
        Command::new(&exe)
            .args(["upstream", "--port", &upstream_port.to_string()])
            .stdin(Stdio::null())
            .spawn()
            .context("starting the upstream")?,
    );
    wait_until_listening(upstream_addr, "the upstream").await?;

    // A key, its JWKS (served from this process; the gateway fetches it once) and a token.
    let signer = TokenSigner::generate("bench-key");
    let jwks = Bytes::from(serde_json::to_vec(&signer.jwk_set())?);
    let (jwks_listener, jwks_addr) = upstream::bind().await?;
    tokio::spawn(upstream::serve_json(jwks_listener, jwks));
    let claims = Claims::new(
        uuid::Uuid::now_v7(),
        "bench@example.com",
        vec![Role::Customer],
        "platform-user-service",
        "platform-api",
        Duration::from_secs(3600),
    );
    let authorization = HeaderValue::try_from(format!("Bearer {}", signer.sign(&claims)?))?;

    // nginx.
    let nginx_addr: SocketAddr = ([127, 0, 0, 1], free_port()?).into();
    let nginx = nginx::start(&nginx_binary, nginx_addr, upstream_addr, cores)?;
    wait_until_listening(nginx_addr, "nginx").await?;

    let gateway_addr: SocketAddr = ([127, 0, 0, 1], free_port()?).into();
    let _gateway = start_gateway(
        &args,
        &gateway_binary,
        gateway_addr,
        upstream_addr,
        jwks_addr,
        &redis_url,
    )?;
    wait_until_listening(gateway_addr, "the gateway").await?;

    let path = "/api/v1/orders".to_owned();
    let target = |addr| Target {
        addr,
        path: path.clone(),
        authorization: Some(authorization.clone()),
    };
    let limiting = !args
        .gateway_env
        .iter()
        .any(|(key, value)| key == "GATEWAY__RATE_LIMIT__ENABLED" && value == "false");
    check_gateway(&target(gateway_addr), limiting).await?;

    let bare_addr: SocketAddr = ([127, 0, 0, 1], free_port()?).into();
    let _bare = if args.targets.contains('p') {
        Some(start_bare_proxy(&exe, bare_addr, upstream_addr).await?)
    } else {
        None
    };
    eprintln!("upstream {upstream_addr}, nginx {nginx_addr}, gateway {gateway_addr}");
    let targets: Vec<(&'static str, SocketAddr)> = [
        ('a', "(a) upstream, direct", upstream_addr),
        ('b', "(b) nginx, reverse proxy", nginx_addr),
        (
            'c',
            if limiting {
                "(c) gateway, JWT + rate limit"
            } else {
                "(c) gateway, JWT, NO rate limit"
            },
            gateway_addr,
        ),
        ('p', "(p) bare hyper proxy", bare_addr),
    ]
    .into_iter()
    .filter(|(key, _, _)| args.targets.contains(*key))
    .map(|(_, name, addr)| (name, addr))
    .collect();
    let rows = run_rounds(&targets, &target, &args).await?;
    if args.hold {
        eprintln!("holding; Ctrl-C to stop");
        let _ = tokio::signal::ctrl_c().await;
    }
    drop(nginx);

    print_report(&args, cores, &redis_url, &rows.iter().collect::<Vec<_>>());
    Ok(())
}

/// The gateway, in its own process, as its binary runs: the built-in route table, JWT
/// verification on `GET /api/v1/orders`, rate limiting in Redis with a limit no run reaches.
fn start_gateway(
    args: &GatewayArgs,
    binary: &std::path::Path,
    addr: SocketAddr,
    upstream: SocketAddr,
    jwks: SocketAddr,
    redis_url: &str,
) -> anyhow::Result<ChildProcess> {
    let upstream_url = format!("http://{upstream}");
    let mut command = Command::new(binary);
    for name in ["ORDER", "USER", "PAYMENT", "INVENTORY", "NOTIFICATION"] {
        command.env(format!("GATEWAY__UPSTREAMS__{name}"), &upstream_url);
    }
    let child = command
        // Its request log (RUST_LOG=info) would flood the terminal; it is still written.
        .stdout(Stdio::null())
        .stdin(Stdio::null())
        .env("GATEWAY__HTTP__HOST", "127.0.0.1")
        .env("GATEWAY__HTTP__PORT", addr.port().to_string())
        .env(
            "GATEWAY__JWT__JWKS_URL",
            format!("http://{jwks}/.well-known/jwks.json"),
        )
        .env("GATEWAY__REDIS__URL", redis_url)
        .env(
            "GATEWAY__RATE_LIMIT__KEY_PREFIX",
            format!("bench:{}", uuid::Uuid::now_v7().simple()),
        )
        .env("GATEWAY__RATE_LIMIT__READ__LIMIT", "1000000000000")
        .env("RUST_LOG", &args.gateway_log)
        .env("LOG_FORMAT", "json")
        .envs(args.gateway_env.iter().cloned())
        .spawn()
        .context("starting the gateway")?;
    Ok(ChildProcess(child))
}

/// The bare hyper proxy, in its own process.
async fn start_bare_proxy(
    exe: &std::path::Path,
    addr: SocketAddr,
    upstream: SocketAddr,
) -> anyhow::Result<ChildProcess> {
    let child = ChildProcess(
        Command::new(exe)
            .args(["bare-proxy", "--port", &addr.port().to_string()])
            .args(["--upstream", &upstream.to_string()])
            .stdin(Stdio::null())
            .spawn()
            .context("starting the bare proxy")?,
    );
    wait_until_listening(addr, "the bare proxy").await?;
    Ok(child)
}

/// Fails unless the gateway really verifies the token and counts the request in Redis.
async fn check_gateway(target: &Target, limiting: bool) -> anyhow::Result<()> {
    let anonymous = Target {
        authorization: None,
        ..target.clone()
    };
    let refused = load::probe(&anonymous).await?;
    anyhow::ensure!(
        refused.0 == 401,
        "the gateway answered {} without a token: JWT verification is not on",
        refused.0
    );
    let accepted = load::probe(target).await?;
    anyhow::ensure!(
        accepted.0 == 200,
        "the gateway answered {} with a valid token",
        accepted.0
    );
    anyhow::ensure!(
        accepted.1 || !limiting,
        "the gateway's answer has no RateLimit-Remaining: is Redis up (make infra-up)?"
    );
    Ok(())
}

fn print_report(args: &GatewayArgs, cores: usize, redis_url: &str, rows: &[&Row]) {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|line| line.strip_prefix("model name"))
                .map(|model| model.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    println!();
    println!(
        "gateway benchmark: GET /api/v1/orders (86-byte JSON answer), 127.0.0.1, {cores} cores ({cpu})"
    );
    println!(
        "saturation: closed loop, {} connections, {} s after {} s warm-up; moderate: {} req/s over {} connections, {} s",
        args.connections,
        args.duration,
        args.warm_up,
        args.rate,
        args.rate_connections,
        args.duration
    );
    let extra: Vec<String> = args
        .gateway_env
        .iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect();
    println!(
        "gateway: JWT (Ed25519) verified, Redis rate limit ({redis_url}), RUST_LOG={}{}{}",
        args.gateway_log,
        if extra.is_empty() { "" } else { ", " },
        extra.join(", ")
    );
    println!();
    println!(
        "{:<32} {:>10} {:>10} {:>10} {:>14}",
        "target", "req/s", "p50 ms", "p99 ms", "p50 ms @ rate"
    );
    for row in rows {
        let rounds: Vec<String> = row.rps.iter().map(|rps| format!("{rps:.0}")).collect();
        println!(
            "{:<32} {:>10.0} {:>10.3} {:>10.3} {:>14.3}   rounds: {}",
            row.name,
            row.median_rps(),
            row.p50_ms,
            row.p99_ms,
            row.moderate_p50_ms,
            rounds.join(" "),
        );
    }
    let find = |prefix: &str| rows.iter().find(|row| row.name.starts_with(prefix));
    let (Some(direct), Some(nginx), Some(gateway)) = (find("(a)"), find("(b)"), find("(c)")) else {
        return;
    };
    // Ratios per round (the targets of a round ran back to back), then their median.
    let ratio = |over: &Row, under: &Row| {
        let per_round: Vec<f64> = over
            .rps
            .iter()
            .zip(&under.rps)
            .map(|(o, u)| o / u)
            .collect();
        let listed: Vec<String> = per_round
            .iter()
            .map(|ratio| format!("{ratio:.2}"))
            .collect();
        (median(per_round), listed.join(" "))
    };
    println!();
    let (c_b, rounds) = ratio(gateway, nginx);
    println!("throughput c/b (gateway / nginx):    {c_b:.2}   (goal >= 0.80; rounds: {rounds})");
    let (c_a, rounds) = ratio(gateway, direct);
    println!("throughput c/a (gateway / direct):   {c_a:.2}   (rounds: {rounds})");
    let (b_a, rounds) = ratio(nginx, direct);
    println!("throughput b/a (nginx / direct):     {b_a:.2}   (rounds: {rounds})");
    println!(
        "p50 added over (a) at {} req/s:    gateway {:+.3} ms (goal < 0.300), nginx {:+.3} ms",
        args.rate,
        gateway.moderate_p50_ms - direct.moderate_p50_ms,
        nginx.moderate_p50_ms - direct.moderate_p50_ms,
    );
}
