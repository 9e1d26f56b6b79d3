//! The HTTP API over the deployed model — `POST /prediction`, `GET /scoring`,
//! `GET /summarystats`, `GET /diagnostics`, `GET /drift`, `GET /risk`, `GET /clients/{corporation}`
//! and `GET /health` — as one axum [`router`], so the
//! very same code answers behind the Lambda Function URL (`functions/api`, through
//! `lambda_http`), in the local server of `risk serve` ([`server`]), and in tests. The API is
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
mod report;
pub mod risk;
mod router;
pub mod server;
pub mod types;

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use chrono::Utc;
use http::{Method, Response, StatusCode};

pub use self::error::ApiError;
pub use self::router::router;
use crate::steps::Pipeline;

/// One route: its path, the one method it answers, and every status it can answer with (the
/// OpenAPI description is checked against this table).
#[derive(Debug, Clone)]
pub struct Route {
    pub path: &'static str,
    pub method: Method,
    pub statuses: &'static [u16],
}

/// Every route the router serves (it is built from this table). Any other path is 404; another
/// method on one of these paths, `HEAD` included, is 405 with `Allow`.
pub const ROUTES: [Route; 9] = [
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
    Route {
        path: "/drift",
        method: Method::GET,
        statuses: &[200, 500, 503],
    },
    Route {
        path: "/risk",
        method: Method::GET,
        statuses: &[200, 400, 500, 503],
    },
    Route {
        path: "/clients/{corporation}",
        method: Method::GET,
        statuses: &[200, 400, 404, 500, 503],
    },
    Route {
        path: "/report",
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
/// extension; the router makes one up when there is none. Handlers take it as an extractor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

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
