//! Serving a router until told to stop, then draining in-flight requests under a deadline.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// Resolves when the process receives SIGINT (Ctrl-C) or SIGTERM, and logs which.
///
/// If a handler cannot be installed, that is logged and the other signal still works.
pub async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();

    tokio::select! {
        () = interrupt => tracing::info!(signal = "SIGINT", "shutdown signal received"),
        () = terminate => tracing::info!(signal = "SIGTERM", "shutdown signal received"),
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then stops accepting connections
/// and waits up to `drain_timeout` for in-flight requests before returning.
///
/// Handlers can extract `ConnectInfo<SocketAddr>`. When the deadline passes, the requests
/// still running are logged (their count) and left behind: they end with the runtime.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    drain_timeout: Duration,
) -> std::io::Result<()> {
    let in_flight = Arc::new(AtomicUsize::new(0));
    let router = router.layer(middleware::from_fn_with_state(
        in_flight.clone(),
        count_in_flight,
    ));

    // axum runs the shutdown future in a task of its own; learn from it when draining starts.
    let (draining_tx, draining_rx) = oneshot::channel();
    let signal = async move {
        shutdown.await;
        let _ = draining_tx.send(());
    };
    let server = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(signal)
    .into_future();
    tokio::pin!(server);

    tokio::select! {
        result = &mut server => return result,
        started = draining_rx => {
            if started.is_err() {
                // The signal task is gone without a signal (runtime shutting down): nothing to
                // time, let the server finish as it will.
                return server.await;
            }
        }
    }
    tracing::info!(
        in_flight = in_flight.load(Ordering::Relaxed),
        ?drain_timeout,
        "stopped accepting connections; draining in-flight requests"
    );
    if let Ok(result) = tokio::time::timeout(drain_timeout, &mut server).await {
        tracing::info!("all in-flight requests completed");
        result
    } else {
        tracing::warn!(
            in_flight = in_flight.load(Ordering::Relaxed),
            ?drain_timeout,
            "gave up waiting for in-flight requests after the drain deadline"
        );
        Ok(())
    }
}

/// Counts requests between their arrival and their response (also when dropped midway).
async fn count_in_flight(
    State(in_flight): State<Arc<AtomicUsize>>,
    request: Request,
    next: Next,
) -> Response {
    struct Guard(Arc<AtomicUsize>);
    impl Drop for Guard {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::Relaxed);
        }
    }
    in_flight.fetch_add(1, Ordering::Relaxed);
    let _guard = Guard(in_flight);
    next.run(request).await
}

/// Binds a listener on `host:port`, with an error that says which listener and address failed
/// (a port already in use is the usual cause).
pub async fn bind(host: &str, port: u16, what: &str) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind((host, port))
        .await
        .map_err(|error| {
            std::io::Error::new(
                error.kind(),
                format!("binding the {what} listener to {host}:{port}: {error}"),
            )
        })
}
