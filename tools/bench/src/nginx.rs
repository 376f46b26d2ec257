//! nginx as the peer: a plain reverse proxy with keep-alive to the upstream, no auth, no rate
//! limiting, access log off, one worker per core. Installed with apt-get when missing; run as
//! a foreground child with a generated configuration in a temporary directory.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::Context as _;

/// A running nginx; stopped (SIGTERM, then waited for) on drop.
pub struct Nginx {
    child: Child,
    dir: PathBuf,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The nginx binary, installing the Debian package if there is none.
pub fn ensure_installed() -> anyhow::Result<PathBuf> {
    if let Some(path) = find() {
        return Ok(path);
    }
    eprintln!("nginx is missing: apt-get update && apt-get install -y nginx");
    let status = Command::new("sh")
        .arg("-c")
        .arg("apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx")
        .status()
        .context("running apt-get")?;
    anyhow::ensure!(status.success(), "installing nginx failed ({status})");
    find().context("nginx was installed but cannot be found")
}

fn find() -> Option<PathBuf> {
    ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|path| path.exists())
}

/// Starts nginx on `listen`, proxying everything to `upstream`.
pub fn start(
    binary: &Path,
    listen: SocketAddr,
    upstream: SocketAddr,
    workers: usize,
) -> anyhow::Result<Nginx> {
    let dir = std::env::temp_dir().join(format!("bench-nginx-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir)?;
    let d = dir.display();
    let config = format!(
        "worker_processes {workers};
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    keepalive_requests 10000000;
    keepalive_timeout 60s;
    upstream backend {{
        server {upstream};
        keepalive 256;
        keepalive_requests 10000000;
    }}
    server {{
        listen {listen};
        location / {{
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
        }}
    }}
}}
"
    );
    let path = dir.join("nginx.conf");
    std::fs::write(&path, config)?;
    let child = Command::new(binary)
        .arg("-p")
        .arg(&dir)
        .arg("-c")
        .arg(&path)
        .arg("-g")
        .arg("daemon off; user root;")
        .stdin(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    Ok(Nginx { child, dir })
}
