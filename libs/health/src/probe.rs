//! `<binary> healthcheck [--live]`: a process asking its running twin whether it is healthy.
//!
//! Container images have no shell and no curl (distroless), so each binary probes itself:
//! Docker's `HEALTHCHECK`, compose's `healthcheck` and Kubernetes `exec` probes run the same
//! binary with `healthcheck`, which sends `GET /health/ready` (or `/health/live` with `--live`)
//! to the port the service listens on, read from the same variables the service reads
//! (`{PREFIX}__HTTP__HOST`, `{PREFIX}__HTTP__PORT`), and exits 0 on `200`, 1 otherwise. On
//! failure it prints why (the readiness body names the check that is down), which Docker keeps
//! in the container's health log.
//!
//! Plain `std` networking: no runtime, no TLS, no configuration parsing beyond the two
//! variables, so it answers within its timeout even when the service's settings are broken.

use std::io::{Read as _, Write as _};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream, ToSocketAddrs as _};
use std::process::ExitCode;
use std::time::Duration;

/// How long the whole probe may take (connect, then the answer).
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// The command-line word that selects the probe.
pub const COMMAND: &str = "healthcheck";

/// Which endpoint to ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// `/health/ready`: every dependency answers.
    Ready,
    /// `/health/live`: the process serves.
    Live,
}

impl Probe {
    /// The endpoint it asks.
    pub fn path(self) -> &'static str {
        match self {
            Self::Ready => "/health/ready",
            Self::Live => "/health/live",
        }
    }

    /// The probe named by the arguments after `healthcheck`: none, or `--live`.
    pub fn from_args<I: IntoIterator<Item = String>>(args: I) -> Result<Self, String> {
        let mut probe = Self::Ready;
        for arg in args {
            match arg.as_str() {
                "--live" => probe = Self::Live,
                "--ready" => probe = Self::Ready,
                other => {
                    return Err(format!(
                        "healthcheck: unknown argument '{other}' (--live or --ready)"
                    ));
                }
            }
        }
        Ok(probe)
    }
}

/// If the process was started as `<binary> healthcheck [--live]`, runs the probe and returns
/// the exit code; otherwise `None`, and the binary goes on as usual.
pub fn run_if_asked(env_prefix: &str, default_port: u16) -> Option<ExitCode> {
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() != Some(COMMAND) {
        return None;
    }
    let code = match Probe::from_args(args) {
        Ok(probe) => report(check(env_prefix, default_port, probe)),
        Err(message) => {
            eprintln!("{message}");
            ExitCode::from(2)
        }
    };
    Some(code)
}

/// Prints the outcome (the body on failure) and turns it into an exit code.
pub fn report(outcome: Result<(), String>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            eprintln!("unhealthy: {why}");
            ExitCode::FAILURE
        }
    }
}

/// Asks the service listening where `{env_prefix}__HTTP__HOST`/`__PORT` say (the port defaults
/// to `default_port`; an unspecified host such as `0.0.0.0` means this machine).
pub fn check(env_prefix: &str, default_port: u16, probe: Probe) -> Result<(), String> {
    let variable = |key: &str| std::env::var(format!("{env_prefix}__HTTP__{key}")).ok();
    let port = match variable("PORT") {
        Some(port) => port
            .trim()
            .parse::<u16>()
            .map_err(|_| format!("{env_prefix}__HTTP__PORT is not a port: '{port}'"))?,
        None => default_port,
    };
    let address = target(variable("HOST").as_deref(), port)?;
    get(address, probe.path(), PROBE_TIMEOUT)
}

fn target(host: Option<&str>, port: u16) -> Result<SocketAddr, String> {
    let loopback = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
    let Some(host) = host.map(str::trim).filter(|host| !host.is_empty()) else {
        return Ok(loopback);
    };
    match host.parse::<IpAddr>() {
        Ok(ip) if ip.is_unspecified() => Ok(loopback),
        Ok(ip) => Ok(SocketAddr::new(ip, port)),
        Err(_) => (host, port)
            .to_socket_addrs()
            .map_err(|error| format!("cannot resolve {host}: {error}"))?
            .next()
            .ok_or_else(|| format!("{host} has no address")),
    }
}

/// `GET path` on `address`: `Ok` on a `200`, else why not (the status line and the body).
pub fn get(address: SocketAddr, path: &str, timeout: Duration) -> Result<(), String> {
    let mut stream = TcpStream::connect_timeout(&address, timeout)
        .map_err(|error| format!("cannot connect to {address}: {error}"))?;
    let io = |error: std::io::Error| format!("{address}{path}: {error}");
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    stream.set_write_timeout(Some(timeout)).map_err(io)?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nUser-Agent: healthcheck\r\n\r\n"
    )
    .map_err(io)?;
    let mut answer = Vec::new();
    stream
        .take(64 * 1024)
        .read_to_end(&mut answer)
        .map_err(io)?;
    let answer = String::from_utf8_lossy(&answer);
    let status_line = answer.lines().next().unwrap_or_default();
    if status_line.split_whitespace().nth(1) == Some("200") {
        return Ok(());
    }
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.trim())
        .unwrap_or_default();
    Err(format!("{path} answered '{status_line}' {body}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_select_the_endpoint_and_refuse_others() {
        assert_eq!(Probe::from_args(Vec::new()), Ok(Probe::Ready));
        assert_eq!(Probe::from_args(["--live".to_owned()]), Ok(Probe::Live));
        let error = Probe::from_args(["--deep".to_owned()]).unwrap_err();
        assert!(error.contains("--deep"), "{error}");
    }

    #[test]
    fn an_unspecified_host_means_this_machine() {
        let loopback: SocketAddr = "127.0.0.1:8082".parse().unwrap();
        assert_eq!(target(None, 8082), Ok(loopback));
        assert_eq!(target(Some("0.0.0.0"), 8082), Ok(loopback));
        assert_eq!(target(Some("::"), 8082), Ok(loopback));
        assert_eq!(
            target(Some("10.1.2.3"), 80),
            Ok("10.1.2.3:80".parse().unwrap())
        );
    }
}
