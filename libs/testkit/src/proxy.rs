//! A TCP proxy a test can cut and restore, to make a dependency "go away" for one test without
//! stopping the server every other test shares.

use std::net::SocketAddr;

use anyhow::Context as _;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Forwards connections from a local port to a target server until [`TcpProxy::cut`].
///
/// While cut, open connections are closed and new ones are accepted and closed at once, which
/// a client sees exactly like a server that went down. [`TcpProxy::restore`] lets connections
/// through again. Dropping the proxy stops it.
pub struct TcpProxy {
    addr: SocketAddr,
    cut: watch::Sender<bool>,
    listener: JoinHandle<()>,
}

impl TcpProxy {
    /// Starts a proxy on `127.0.0.1:0` in front of the server a URL points at.
    pub async fn start(target_url: &str) -> anyhow::Result<Self> {
        let target = authority(target_url)
            .with_context(|| format!("no host:port in `{target_url}`"))?
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (cut, cut_rx) = watch::channel(false);
        let listener = tokio::spawn(accept_loop(listener, target, cut_rx));
        Ok(Self {
            addr,
            cut,
            listener,
        })
    }

    /// The proxy's own address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `url` with its host and port replaced by the proxy's.
    pub fn url_for(&self, url: &str) -> String {
        match authority(url) {
            Some(authority) => url.replacen(authority, &self.addr.to_string(), 1),
            None => url.to_owned(),
        }
    }

    /// Closes every open connection and refuses new ones until [`TcpProxy::restore`].
    pub fn cut(&self) {
        self.cut.send_replace(true);
    }

    /// Lets connections through again.
    pub fn restore(&self) {
        self.cut.send_replace(false);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.cut.send_replace(true);
        self.listener.abort();
    }
}

/// The `host:port` part of a URL (after any `user:password@`).
fn authority(url: &str) -> Option<&str> {
    let rest = &url[url.find("://")? + 3..];
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let host_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    (!host_port.is_empty()).then_some(host_port)
}

async fn accept_loop(listener: TcpListener, target: String, cut: watch::Receiver<bool>) {
    while let Ok((client, _)) = listener.accept().await {
        if *cut.borrow() {
            drop(client);
            continue;
        }
        tokio::spawn(forward(client, target.clone(), cut.clone()));
    }
}

async fn forward(mut client: TcpStream, target: String, mut cut: watch::Receiver<bool>) {
    let Ok(mut server) = TcpStream::connect(&target).await else {
        return;
    };
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
        _ = cut.wait_for(|cut| *cut) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::authority;

    #[test]
    fn the_authority_skips_credentials_and_stops_at_the_path_or_query() {
        assert_eq!(
            authority("postgres://postgres:secret@127.0.0.1:55432/postgres"),
            Some("127.0.0.1:55432")
        );
        assert_eq!(
            authority("mongodb://127.0.0.1:57017/?directConnection=true"),
            Some("127.0.0.1:57017")
        );
        assert_eq!(
            authority("mongodb://127.0.0.1:57017?x=1"),
            Some("127.0.0.1:57017")
        );
        assert_eq!(authority("nats://127.0.0.1:54222"), Some("127.0.0.1:54222"));
        assert_eq!(authority("not a url"), None);
    }
}
