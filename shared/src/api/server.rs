//! The local HTTP server behind `risk serve`: plain HTTP/1.1 with hyper, serving the API's axum
//! router (the same one the Lambda function runs), for people without cargo-lambda (and for the
//! end-to-end tests). It has no authentication, so it only listens on loopback addresses; remote
//! access is the Function URL's job, behind IAM. The router reads bodies up to the API's limit
//! and no further, and a client gets a bounded time to send its headers, so a slow or huge
//! request cannot tie the process up. It is not `axum::serve` because that sets no timer on its
//! connections, and so no header-read timeout at all.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

/// Time a client has to send its request headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the server would not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(
        "{0} is not a loopback address; the local server has no authentication, so it only listens on 127.0.0.1 or [::1] (deploy the Lambda Function URL, with IAM auth, for remote access)"
    )]
    NotLoopback(SocketAddr),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Binds `addr` (port 0 picks a free port), refusing anything but loopback.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, ServeError> {
    if !addr.ip().is_loopback() {
        return Err(ServeError::NotLoopback(addr));
    }
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })
}

/// Serves `router` (see [`super::router`]) on `listener` until `shutdown` completes. Connections
/// already open when it does are dropped with the task that runs them.
pub async fn serve(listener: TcpListener, router: Router, shutdown: impl Future<Output = ()>) {
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(connection) => connection,
            Err(e) => {
                // Typically out of file descriptors: wait rather than spin.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let service = TowerToHyperService::new(router.clone());
        tokio::spawn(async move {
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = connection.await {
                tracing::debug!(%peer, "connection ended: {e}");
            }
        });
    }
}
