//! The HTTP API over the deployed model — `POST /prediction`, `GET /scoring`,
//! `GET /summarystats`, `GET /diagnostics` and `GET /health` — as one router over plain `http`
//! request and response types, so the very same code answers behind the Lambda Function URL
//! (`functions/api`), in the local server of `risk serve` ([`server`]), and in tests. The API is
//! read-only: it never writes to any configured location. Answers are JSON with the stable field
//! names of [`types`] (described in `openapi.yaml` at the top of the repository); errors are
//! `{"error", "message", "request_id"}` and never carry internals (paths, URLs of locations,
//! store or SDK messages): the detail is logged with the request id instead. Data sets named in a
//! request are confined to the configured data locations by [`dataset`]. `client` (feature
//! `client`) is the program that calls every endpoint and saves the combined answers (`risk
//! apicalls`).

#[cfg(feature = "client")]
pub mod client;
pub mod dataset;
mod error;
#[cfg(feature = "testing")]
pub mod fixture;
mod handlers;
pub mod server;
pub mod types;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bytes::Bytes;
use chrono::Utc;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Response, StatusCode};

pub use self::error::ApiError;
use crate::steps::Pipeline;

/// One route: its path, the one method it answers, and every status it can answer with (the
/// OpenAPI description is checked against this table).
#[derive(Debug, Clone)]
pub struct Route {
    pub path: &'static str,
    pub method: Method,
    pub statuses: &'static [u16],
}

/// Every route the router serves. Any other path is 404; another method on one of these paths
/// is 405 with `Allow`.
pub const ROUTES: [Route; 5] = [
    Route {
        path: "/health",
        method: Method::GET,
        statuses: &[200, 503],
    },
    Route {
        path: "/prediction",
        method: Method::POST,
        statuses: &[200, 400, 404, 413, 415, 422, 500, 503],
    },
    Route {
        path: "/scoring",
        method: Method::GET,
        statuses: &[200, 500, 503],
    },
    Route {
        path: "/summarystats",
        method: Method::GET,
        statuses: &[200, 500, 503],
    },
    Route {
        path: "/diagnostics",
        method: Method::GET,
        statuses: &[200, 500, 503],
    },
];

/// Header carrying the request id on every answer.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Environment variables overriding [`ApiLimits`].
pub const MAX_BODY_BYTES_ENV: &str = "RISK_API_MAX_BODY_BYTES";
pub const MAX_PREDICTION_ROWS_ENV: &str = "RISK_API_MAX_PREDICTION_ROWS";

/// Bounds on what one request may cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiLimits {
    /// Largest request body accepted (413 above). A Function URL caps a synchronous request at
    /// 6 MB, envelope and base64 included, so the default stays below that.
    pub max_body_bytes: usize,
    /// Largest stored data set `/prediction` reads (422 above): it is read whole into memory.
    pub max_dataset_bytes: u64,
    /// Most rows one `/prediction` answers (422 above). A Lambda response is capped at 6 MB, and
    /// a prediction row is about 80 bytes of JSON.
    pub max_prediction_rows: usize,
    /// Rejected rows listed one by one in a `/prediction` answer; all are counted.
    pub max_listed_rejections: usize,
    /// Largest `/prediction` answer (422 above): a Function URL response is capped at 6 MB.
    pub max_answer_bytes: usize,
}

impl Default for ApiLimits {
    fn default() -> Self {
        ApiLimits {
            max_body_bytes: 4 * 1024 * 1024,
            max_dataset_bytes: 64 * 1024 * 1024,
            max_prediction_rows: 50_000,
            max_listed_rejections: 100,
            max_answer_bytes: 5_500_000,
        }
    }
}

impl ApiLimits {
    /// The defaults, with [`MAX_BODY_BYTES_ENV`] and [`MAX_PREDICTION_ROWS_ENV`] applied when
    /// they hold a positive whole number (anything else is ignored with a warning).
    pub fn from_env() -> Self {
        let mut limits = ApiLimits::default();
        let read = |name: &str| -> Option<usize> {
            let value = std::env::var(name).ok()?;
            match value.trim().parse::<usize>() {
                Ok(n) if n > 0 => Some(n),
                _ => {
                    tracing::warn!("{name}={value:?} is not a positive whole number; ignored");
                    None
                }
            }
        };
        if let Some(n) = read(MAX_BODY_BYTES_ENV) {
            limits.max_body_bytes = n;
        }
        if let Some(n) = read(MAX_PREDICTION_ROWS_ENV) {
            limits.max_prediction_rows = n;
        }
        limits
    }
}

/// The request id of a request, set by the adapter (the Lambda request id) as a request
/// extension; the router makes one up when there is none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

/// Request extension set by an adapter that stopped reading a body at the size limit; the body
/// it passes on is then empty.
#[derive(Debug, Clone, Copy)]
pub struct BodyTooLarge;

/// A fresh request id, unique within this process and sortable by time.
pub fn new_request_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!(
        "req-{}-{:06}",
        Utc::now().format("%Y%m%dT%H%M%S%3fZ"),
        COUNTER.fetch_add(1, Ordering::Relaxed) % 1_000_000
    )
}

/// The API: the pipeline it reads from and the limits it enforces. Built once per process (per
/// Lambda execution environment) and shared by every request.
#[derive(Debug, Clone)]
pub struct Api {
    pipeline: Pipeline,
    limits: ApiLimits,
}

impl Api {
    pub fn new(pipeline: Pipeline, limits: ApiLimits) -> Self {
        Api { pipeline, limits }
    }

    pub fn limits(&self) -> &ApiLimits {
        &self.limits
    }

    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// The answer for an error met before routing (an adapter that could not read the body).
    pub fn error_response(&self, error: ApiError, request_id: &str) -> Response<Bytes> {
        let mut response = error.into_response(request_id);
        finish_headers(&mut response, request_id);
        response
    }

    /// Answers one request. Never fails: every problem becomes a JSON error answer.
    pub async fn handle(&self, request: Request<Bytes>) -> Response<Bytes> {
        let started = Instant::now();
        let request_id = request
            .extensions()
            .get::<RequestId>()
            .map(|id| id.0.clone())
            .unwrap_or_else(new_request_id);
        let method = request.method().clone();
        let path = request.uri().path().to_string();
        let result = self.route(request, &request_id).await;
        let mut response = match result {
            Ok(response) => response,
            Err(error) => error.into_response(&request_id),
        };
        finish_headers(&mut response, &request_id);
        // The path is logged, never the query string or body: they may hold client data.
        tracing::info!(
            request_id = %request_id,
            method = %method,
            path = %path,
            status = response.status().as_u16(),
            ms = crate::steps::millis(started.elapsed()),
            "request"
        );
        response
    }

    async fn route(
        &self,
        request: Request<Bytes>,
        request_id: &str,
    ) -> Result<Response<Bytes>, ApiError> {
        let path = request.uri().path();
        let Some(route) = ROUTES.iter().find(|r| r.path == path) else {
            return Err(ApiError::UnknownRoute);
        };
        if request.method() != route.method {
            return Err(ApiError::MethodNotAllowed {
                allow: route.method.as_str(),
            });
        }
        match route.path {
            "/health" => handlers::health(self, request_id).await,
            "/prediction" => handlers::prediction(self, request, request_id).await,
            "/scoring" => handlers::scoring(self, request_id).await,
            "/summarystats" => handlers::summarystats(self, request_id).await,
            "/diagnostics" => handlers::diagnostics(self, request_id).await,
            _ => Err(ApiError::UnknownRoute),
        }
    }
}

/// A JSON answer. Serialising the API's own types cannot fail in practice; if it ever did, the
/// client gets a 500 and the log the reason.
fn json_response<T: serde::Serialize>(
    status: StatusCode,
    value: &T,
    request_id: &str,
) -> Result<Response<Bytes>, ApiError> {
    let body = serde_json::to_vec(value)
        .map_err(|e| ApiError::internal(request_id, "cannot encode the answer", &e))?;
    let mut response = Response::new(Bytes::from(body));
    *response.status_mut() = status;
    Ok(response)
}

fn finish_headers(response: &mut Response<Bytes>, request_id: &str) {
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    // Answers describe live state; a cache in between must not serve yesterday's model.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert(REQUEST_ID_HEADER, value);
    }
}
