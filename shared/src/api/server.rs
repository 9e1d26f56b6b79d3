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
    #[error(
        "cannot use '{addr}' as the address to listen on: {reason}; expected host:port, e.g. 127.0.0.1:8000 or localhost:8000"
    )]
    Resolve { addr: String, reason: String },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Binds `addr`, an `ip:port` or a `name:port` such as `localhost:8000`, refusing it unless
/// every address the name resolves to is loopback; the first of them that binds is used.
pub async fn bind_name(addr: &str) -> Result<TcpListener, ServeError> {
    let resolve_error = |reason: String| ServeError::Resolve {
        addr: addr.to_string(),
        reason,
    };
    let mut resolved: Vec<SocketAddr> = tokio::net::lookup_host(addr)
        .await
        .map_err(|e| resolve_error(e.to_string()))?
        .collect();
    if let Some(remote) = resolved.iter().find(|a| !a.ip().is_loopback()) {
        return Err(ServeError::NotLoopback(*remote));
    }
    // IPv4 first: `localhost` in a URL reaches 127.0.0.1 with every client.
    resolved.sort_by_key(|a| !a.is_ipv4());
    let mut last_error = None;
    for candidate in resolved {
        match bind(candidate).await {
            Ok(listener) => return Ok(listener),
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error.unwrap_or_else(|| resolve_error("it resolves to no address".into())))
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

#[cfg(test)]
mod name_tests {
    use super::*;

    #[tokio::test]
    async fn names_that_resolve_to_loopback_are_accepted_others_refused() {
        let listener = bind_name("localhost:0").await.unwrap();
        assert!(listener.local_addr().unwrap().ip().is_loopback());
        let listener = bind_name("127.0.0.1:0").await.unwrap();
        assert!(listener.local_addr().unwrap().ip().is_loopback());
        let refused = bind_name("0.0.0.0:0").await.unwrap_err();
        assert!(matches!(refused, ServeError::NotLoopback(_)), "{refused}");
        let malformed = bind_name("localhost").await.unwrap_err().to_string();
        assert!(malformed.contains("host:port"), "{malformed}");
    }
}
