//! One worker's keep-alive connections to one upstream: HTTP/1.1 connections, each carrying
//! one exchange at a time, kept for the next request once an exchange has finished.
//!
//! A connection goes back to the pool when the response body it carried has been read to its
//! end (see [`PooledBody`]) and it can take the next request (a request body still being sent
//! after its answer ended keeps it out until then, so no other request waits behind it); one
//! whose body was abandoned half-way is closed, as hyper cannot reuse it. Idle connections are taken most recently used first, and closed after the idle
//! timeout (checked when one is taken, and by a sweep every half timeout). A worker is one
//! thread, so the pool's lock is never contended: it costs an uncontended lock per request,
//! where a shared client would cost a pool keyed by URI, a task spawned to return each
//! connection and a lock shared by every worker.

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::http::uri::Authority;
use axum::http::{Request, Response};
use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::body::UpstreamBody;

/// How connections are made and kept.
#[derive(Clone, Copy, Debug)]
pub struct PoolSettings {
    /// The TCP connect timeout.
    pub connect_timeout: Duration,
    /// An idle connection is closed after this long.
    pub idle_timeout: Duration,
}

/// Why no connection could be made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The TCP connection failed (refused, unreachable, name not resolved).
    #[error("connecting to {authority} failed")]
    Tcp {
        /// The upstream's host and port.
        authority: Authority,
        /// The cause.
        source: std::io::Error,
    },
    /// No TCP connection within the connect timeout.
    #[error("connecting to {authority} timed out after {timeout:?}")]
    Timeout {
        /// The upstream's host and port.
        authority: Authority,
        /// The connect timeout.
        timeout: Duration,
    },
    /// The HTTP/1 connection could not be set up.
    #[error("setting up HTTP/1 to {authority} failed")]
    Handshake {
        /// The upstream's host and port.
        authority: Authority,
        /// The cause.
        source: hyper::Error,
    },
}

/// Why an exchange failed.
#[derive(Debug)]
pub enum SendError {
    /// No connection could be made: the request was not sent.
    Connect(ConnectError),
    /// The connection failed once the request was handed to it.
    Exchange(hyper::Error),
}

/// The connections of one worker to one upstream.
#[derive(Debug)]
pub struct Pool {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    authority: Authority,
    settings: PoolSettings,
    idle: Mutex<Vec<Idle>>,
}

#[derive(Debug)]
struct Idle {
    sender: SendRequest<UpstreamBody>,
    since: Instant,
}

impl Pool {
    /// An empty pool of connections to `authority`.
    pub fn new(authority: Authority, settings: PoolSettings) -> Self {
        Self {
            shared: Arc::new(Shared {
                authority,
                settings,
                idle: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Closes connections idle for longer than the idle timeout, every half timeout, for as
    /// long as the pool exists. Call it from the runtime the pool's connections run on.
    pub fn spawn_sweep(&self) -> tokio::task::JoinHandle<()> {
        let shared = Arc::downgrade(&self.shared);
        let period = (self.shared.settings.idle_timeout / 2).max(Duration::from_millis(100));
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                let Some(shared) = Weak::upgrade(&shared) else {
                    return;
                };
                shared.sweep();
            }
        })
    }

    /// Sends `request` over an idle connection, or a new one, and answers with the response,
    /// whose body gives the connection back to the pool once read to its end.
    ///
    /// A request that an idle connection turns out unable to take (the upstream closed it
    /// meanwhile) is sent over another one: it never reached the upstream.
    pub async fn send(
        &self,
        mut request: Request<UpstreamBody>,
    ) -> Result<Response<PooledBody>, SendError> {
        loop {
            let (mut sender, reused) = match self.shared.take_idle() {
                Some(sender) => (sender, true),
                None => (self.connect().await.map_err(SendError::Connect)?, false),
            };
            match sender.try_send_request(request).await {
                Ok(response) => {
                    let pool = Arc::downgrade(&self.shared);
                    return Ok(response.map(|body| PooledBody {
                        body,
                        ended: false,
                        lease: Some(Lease { sender, pool }),
                    }));
                }
                Err(mut error) => match error.take_message() {
                    Some(unsent) if reused => request = unsent,
                    _ => return Err(SendError::Exchange(error.into_error())),
                },
            }
        }
    }

    /// How many connections are idle.
    pub fn idle_count(&self) -> usize {
        self.shared.lock().len()
    }

    async fn connect(&self) -> Result<SendRequest<UpstreamBody>, ConnectError> {
        let authority = &self.shared.authority;
        let timeout = self.shared.settings.connect_timeout;
        let stream =
            match tokio::time::timeout(timeout, TcpStream::connect(authority.as_str())).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(source)) => {
                    return Err(ConnectError::Tcp {
                        authority: authority.clone(),
                        source,
                    });
                }
                Err(_elapsed) => {
                    return Err(ConnectError::Timeout {
                        authority: authority.clone(),
                        timeout,
                    });
                }
            };
        // Small requests and answers go out at once; a peer that vanished without closing is
        // noticed by the kernel.
        let _ = stream.set_nodelay(true);
        let _ = socket2::SockRef::from(&stream)
            .set_tcp_keepalive(&socket2::TcpKeepalive::new().with_time(Duration::from_secs(60)));
        let (sender, connection) = http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|source| ConnectError::Handshake {
                authority: authority.clone(),
                source,
            })?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "upstream connection ended with an error");
            }
        });
        Ok(sender)
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Idle>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The most recently used idle connection that can take a request, if any. Only ready
    /// connections are put in the pool (see [`Lease::give_back`]); one that is not any more
    /// has been closed since.
    fn take_idle(&self) -> Option<SendRequest<UpstreamBody>> {
        loop {
            let Idle { sender, since } = self.lock().pop()?;
            if sender.is_ready() && since.elapsed() < self.settings.idle_timeout {
                return Some(sender);
            }
        }
    }

    fn put(&self, sender: SendRequest<UpstreamBody>) {
        if !sender.is_closed() {
            self.lock().push(Idle {
                sender,
                since: Instant::now(),
            });
        }
    }

    fn sweep(&self) {
        let timeout = self.settings.idle_timeout;
        self.lock()
            .retain(|idle| !idle.sender.is_closed() && idle.since.elapsed() < timeout);
    }
}

/// A connection lent to one exchange.
#[derive(Debug)]
struct Lease {
    sender: SendRequest<UpstreamBody>,
    pool: Weak<Shared>,
}

impl Lease {
    /// Puts the connection in the pool once it can take the next request: at once when its
    /// task has already seen the end of the exchange, else when it has. Until then (the
    /// request body may still be on its way up, after the answer ended) it is nobody's, so
    /// that no other request waits behind it.
    fn give_back(self) {
        let Self { mut sender, pool } = self;
        if sender.is_ready() {
            if let Some(pool) = pool.upgrade() {
                pool.put(sender);
            }
        } else if !sender.is_closed()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                if sender.ready().await.is_ok()
                    && let Some(pool) = pool.upgrade()
                {
                    pool.put(sender);
                }
            });
        }
    }
}

/// An upstream's response body, streamed; it gives its connection back to the pool once read
/// to its end (or when dropped after that, or when it had nothing to read).
#[derive(Debug)]
pub struct PooledBody {
    body: Incoming,
    ended: bool,
    lease: Option<Lease>,
}

impl PooledBody {
    fn release(&mut self) {
        if let Some(lease) = self.lease.take() {
            lease.give_back();
        }
    }
}

impl Body for PooledBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => {
                this.ended = true;
                this.release();
            }
            Poll::Ready(Some(Err(_))) => {
                // The connection is broken; it is not given back.
                this.lease = None;
            }
            Poll::Ready(Some(Ok(_))) if this.body.is_end_stream() => {
                this.ended = true;
                this.release();
            }
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for PooledBody {
    fn drop(&mut self) {
        // A body never polled because it had nothing to read (a HEAD, a 204, a 304, an empty
        // answer) leaves its connection reusable; one abandoned half-way does not.
        if self.ended || self.body.is_end_stream() {
            self.release();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::http::StatusCode;
    use http_body_util::{BodyExt as _, Full, StreamBody};
    use hyper::service::service_fn;
    use tokio::net::TcpListener;
    use tokio::sync::watch;

    use super::*;

    /// An upstream on 127.0.0.1 that counts the connections it accepted: `/small` answers a
    /// few bytes, `/empty` a 204, `/large` 4 MiB in 64 KiB chunks. `drop_all` closes every
    /// connection it holds, as an upstream that restarts would.
    struct Upstream {
        authority: Authority,
        accepted: Arc<AtomicUsize>,
        open: Arc<AtomicUsize>,
        drop_all: watch::Sender<u32>,
    }

    type TestBody = http_body_util::Either<
        Full<Bytes>,
        StreamBody<futures::stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, Infallible>>>>,
    >;

    async fn upstream() -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let authority: Authority = listener.local_addr().unwrap().to_string().parse().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let (drop_all, dropped) = watch::channel(0u32);
        let open = Arc::new(AtomicUsize::new(0));
        let (counter, still_open) = (accepted.clone(), open.clone());
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                counter.fetch_add(1, Ordering::SeqCst);
                still_open.fetch_add(1, Ordering::SeqCst);
                let mut dropped = dropped.clone();
                dropped.mark_unchanged();
                let still_open = still_open.clone();
                tokio::spawn(async move {
                    let service = service_fn(|request: Request<Incoming>| async move {
                        let body: TestBody = match request.uri().path() {
                            "/large" => {
                                let chunks: Vec<_> = (0..64)
                                    .map(|_| Ok(Frame::data(Bytes::from(vec![7u8; 65536]))))
                                    .collect();
                                http_body_util::Either::Right(StreamBody::new(
                                    futures::stream::iter(chunks),
                                ))
                            }
                            _ => http_body_util::Either::Left(Full::new(Bytes::from_static(b"ok"))),
                        };
                        let mut response = Response::new(body);
                        if request.uri().path() == "/empty" {
                            *response.status_mut() = StatusCode::NO_CONTENT;
                            *response.body_mut() = http_body_util::Either::Left(Full::default());
                        }
                        Ok::<_, Infallible>(response)
                    });
                    let connection = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service);
                    tokio::select! {
                        _ = connection => {}
                        _ = dropped.changed() => {}
                    }
                    still_open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Upstream {
            authority,
            accepted,
            open,
            drop_all,
        }
    }

    fn settings(idle_timeout: Duration) -> PoolSettings {
        PoolSettings {
            connect_timeout: Duration::from_secs(1),
            idle_timeout,
        }
    }

    fn pool(upstream: &Upstream, idle_timeout: Duration) -> Pool {
        Pool::new(upstream.authority.clone(), settings(idle_timeout))
    }

    fn get(path: &'static str) -> Request<UpstreamBody> {
        Request::get(path)
            .header("host", "upstream")
            .body(UpstreamBody::Empty)
            .unwrap()
    }

    async fn read_all(response: Response<PooledBody>) -> usize {
        response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .len()
    }

    #[tokio::test]
    async fn an_exchange_read_to_its_end_leaves_its_connection_for_the_next() {
        let upstream = upstream().await;
        let pool = pool(&upstream, Duration::from_secs(60));
        for _ in 0..5 {
            let response = pool.send(get("/small")).await.unwrap();
            assert_eq!(read_all(response).await, 2);
            assert_eq!(pool.idle_count(), 1);
        }
        assert_eq!(
            read_all(pool.send(get("/large")).await.unwrap()).await,
            4 << 20
        );
        assert_eq!(upstream.accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_body_with_nothing_to_read_gives_its_connection_back_unread() {
        let upstream = upstream().await;
        let pool = pool(&upstream, Duration::from_secs(60));
        let response = pool.send(get("/empty")).await.unwrap();
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        drop(response);
        assert_eq!(pool.idle_count(), 1);
        assert_eq!(read_all(pool.send(get("/small")).await.unwrap()).await, 2);
        assert_eq!(upstream.accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_body_abandoned_half_way_closes_its_connection() {
        let upstream = upstream().await;
        let pool = pool(&upstream, Duration::from_secs(60));
        let mut body = pool.send(get("/large")).await.unwrap().into_body();
        assert!(body.frame().await.unwrap().unwrap().is_data());
        drop(body);
        assert_eq!(pool.idle_count(), 0, "a half-read connection is not kept");
        assert_eq!(read_all(pool.send(get("/small")).await.unwrap()).await, 2);
        assert_eq!(upstream.accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn connections_the_upstream_closed_while_idle_are_replaced_unseen() {
        let upstream = upstream().await;
        let pool = pool(&upstream, Duration::from_secs(60));
        for round in 1..=5 {
            let request = Request::post("/small")
                .header("host", "upstream")
                .body(UpstreamBody::Empty)
                .unwrap();
            let response = pool.send(request).await.unwrap();
            assert_eq!(read_all(response).await, 2);
            assert_eq!(upstream.accepted.load(Ordering::SeqCst), round);
            // The upstream restarts between two requests, and the gateway's side of the
            // connection has had a moment to read the end of it (a request sent at the very
            // moment a connection closes may fail, as with any client).
            upstream.drop_all.send_modify(|generation| *generation += 1);
            while upstream.open.load(Ordering::SeqCst) > 0 {
                tokio::task::yield_now().await;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert_eq!(
                pool.idle_count(),
                1,
                "the closed connection is still listed"
            );
        }
    }

    #[tokio::test]
    async fn idle_connections_are_closed_after_the_idle_timeout() {
        let upstream = upstream().await;
        let timeout = Duration::from_millis(300);
        let pool = pool(&upstream, timeout);
        let sweep = pool.spawn_sweep();
        read_all(pool.send(get("/small")).await.unwrap()).await;
        let idle_since = Instant::now();
        assert_eq!(pool.idle_count(), 1);
        while pool.idle_count() > 0 {
            assert!(idle_since.elapsed() < Duration::from_secs(5), "never swept");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            idle_since.elapsed() >= timeout,
            "{:?}",
            idle_since.elapsed()
        );
        drop(pool);
        tokio::time::timeout(Duration::from_secs(2), sweep)
            .await
            .expect("the sweep ends with its pool")
            .unwrap();
    }

    #[tokio::test]
    async fn an_upstream_nobody_listens_on_is_a_connect_error() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let pool = Pool::new(
            format!("127.0.0.1:{port}").parse().unwrap(),
            settings(Duration::from_secs(60)),
        );
        match pool.send(get("/small")).await {
            Err(SendError::Connect(error @ ConnectError::Tcp { .. })) => {
                let ConnectError::Tcp { source, .. } = &error else {
                    unreachable!()
                };
                assert_eq!(source.kind(), std::io::ErrorKind::ConnectionRefused);
                // The cause is the error's source, not repeated in its message (the gateway's
                // log line lists the chain).
                assert_eq!(
                    error.to_string(),
                    format!("connecting to 127.0.0.1:{port} failed")
                );
            }
            other => panic!("{other:?}"),
        }
    }
}
