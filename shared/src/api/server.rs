//! The local HTTP server behind `risk serve`: plain HTTP/1.1 with hyper, serving the same
//! router as the Lambda function, for people without cargo-lambda (and for the end-to-end
//! tests). It has no authentication, so it only listens on loopback addresses; remote access is
//! the Function URL's job, behind IAM. Bodies are read up to the API's limit and no further, and
//! a client gets a bounded time to send its headers, so a slow or huge request cannot tie the
//! process up.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::CONTENT_LENGTH;
use http::{Request, Response};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use super::{Api, ApiError, BodyTooLarge, RequestId, new_request_id};

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

/// Serves `api` on `listener` until `shutdown` completes. Connections already open when it does
/// are dropped with the task that runs them.
pub async fn serve(listener: TcpListener, api: Arc<Api>, shutdown: impl Future<Output = ()>) {
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
        let api = api.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let api = api.clone();
                async move { Ok::<_, Infallible>(answer(&api, request).await) }
            });
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

/// Reads the body within the limit and hands the request to the router.
async fn answer(api: &Api, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let request_id = new_request_id();
    let (mut parts, body) = request.into_parts();
    parts.extensions.insert(RequestId(request_id.clone()));
    let limit = api.limits().max_body_bytes;
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let bytes = if declared.is_some_and(|n| n > limit as u64) {
        parts.extensions.insert(BodyTooLarge);
        Bytes::new()
    } else {
        match Limited::new(body, limit).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
                parts.extensions.insert(BodyTooLarge);
                Bytes::new()
            }
            Err(e) => {
                tracing::debug!(request_id, "cannot read the request body: {e}");
                let error = ApiError::BadRequest("the request body could not be read".into());
                return api.error_response(error, &request_id).map(Full::new);
            }
        }
    };
    api.handle(Request::from_parts(parts, bytes))
        .await
        .map(Full::new)
}
