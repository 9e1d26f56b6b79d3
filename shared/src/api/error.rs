//! The API's errors and how each becomes an answer. Messages sent to a client are written here,
//! for a client: they name what the client sent (a location name, a key, a column) but never a
//! location's URL, a path on the machine, or a store's or SDK's message. Anything unexpected is
//! logged in full with the request id and answered with a generic message and that id.

use bytes::Bytes;
use http::header::{ALLOW, HeaderValue};
use http::{Response, StatusCode};

use super::types::ErrorBody;
use crate::location::RecordError;
use crate::model::ModelError;
use crate::steps::StepError;
use crate::store::StoreError;

/// Why a request was not answered normally.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiError {
    /// 400: the request is malformed or asks for something outside the API's confines.
    BadRequest(String),
    /// 404: no such route.
    UnknownRoute,
    /// 404: the data set a request names does not exist.
    DataSetNotFound(String),
    /// 404: the corporation a request names is not in the latest risk list.
    ClientNotFound(String),
    /// 405: the path exists with another method.
    MethodNotAllowed { allow: &'static str },
    /// 413: the body exceeds the limit.
    PayloadTooLarge { limit: usize },
    /// 415: the body is neither JSON nor CSV.
    UnsupportedMediaType(String),
    /// 422: the request is well formed but its data cannot be used (not CSV of the client
    /// schema, too large to answer).
    Unprocessable { code: &'static str, message: String },
    /// 503: the pipeline has not produced what the route serves yet (no deployment, no compiled
    /// data, no test data, no diagnostics record), or storage failed in a way worth retrying.
    NotReady { code: &'static str, message: String },
    /// 500: anything else; the detail is only in the log.
    Internal,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::UnknownRoute | ApiError::DataSetNotFound(_) | ApiError::ClientNotFound(_) => {
                StatusCode::NOT_FOUND
            }
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::NotReady { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable machine-readable code of the answer's `error` field.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::UnknownRoute => "not_found",
            ApiError::DataSetNotFound(_) => "dataset_not_found",
            ApiError::ClientNotFound(_) => "client_not_found",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::Unprocessable { code, .. } | ApiError::NotReady { code, .. } => code,
            ApiError::Internal => "internal",
        }
    }

    pub fn message(&self) -> String {
        match self {
            ApiError::BadRequest(message)
            | ApiError::DataSetNotFound(message)
            | ApiError::UnsupportedMediaType(message)
            | ApiError::Unprocessable { message, .. }
            | ApiError::NotReady { message, .. } => message.clone(),
            ApiError::UnknownRoute => format!(
                "no such route; the API serves {}",
                super::ROUTES
                    .iter()
                    .map(|r| format!("{} {}", r.method, r.path))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            ApiError::MethodNotAllowed { allow } => {
                format!("this route only answers {allow}")
            }
            ApiError::ClientNotFound(corporation) => format!(
                "there is no client {corporation:?} in the latest risk list (codes are matched exactly)"
            ),
            ApiError::PayloadTooLarge { limit } => format!(
                "the request body is larger than {limit} bytes; send a smaller data set, or store it in a data location and name it instead"
            ),
            ApiError::Internal => {
                "internal error; the request id identifies the details in the service's logs"
                    .to_string()
            }
        }
    }

    /// The answer for this error.
    pub fn into_response(self, request_id: &str) -> Response<Bytes> {
        let body = ErrorBody {
            error: self.code().to_string(),
            message: self.message(),
            request_id: request_id.to_string(),
        };
        // ErrorBody is three strings: encoding cannot fail; an empty body would still carry the
        // status and the request id header.
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        let mut response = Response::new(Bytes::from(bytes));
        *response.status_mut() = self.status();
        if let ApiError::MethodNotAllowed { allow } = self {
            response
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static(allow));
        }
        response
    }

    /// A 500 whose detail goes to the log only.
    pub fn internal(request_id: &str, what: &str, detail: &dyn std::fmt::Display) -> ApiError {
        tracing::error!(request_id, "{what}: {detail}");
        ApiError::Internal
    }

    /// 503 for a pipeline without a deployed model.
    pub fn no_deployment() -> ApiError {
        ApiError::NotReady {
            code: "no_deployment",
            message: "no model is deployed yet; run the full process (it bootstraps a deployment) and try again".to_string(),
        }
    }

    /// Maps a pipeline step's error: the "not produced yet" cases become 503 with a message of
    /// our own (the step's message names location URLs), everything else is logged and hidden.
    pub fn from_step(error: StepError, request_id: &str) -> ApiError {
        let not_ready = |code: &'static str, message: &str| {
            tracing::warn!(request_id, "{code}: {error}");
            ApiError::NotReady {
                code,
                message: message.to_string(),
            }
        };
        match &error {
            StepError::NoDeployment { .. } => {
                tracing::warn!(request_id, "{error}");
                ApiError::no_deployment()
            }
            StepError::NoCompiledData { .. } => not_ready(
                "no_compiled_data",
                "there is no compiled data set yet; ingest source data (run the full process) and try again",
            ),
            StepError::NoTestData { .. } | StepError::Model(ModelError::EmptyEvaluation) => {
                not_ready(
                    "no_test_data",
                    "there is no usable test data (rows with a known outcome) in the test data location",
                )
            }
            StepError::ConcurrentUpdate { .. } => not_ready(
                "busy",
                "the pipeline changed what this request was reading; try again",
            ),
            StepError::Store(e) | StepError::Record(RecordError::Store(e)) if e.is_retryable() => {
                not_ready(
                    "storage_unavailable",
                    "storage is temporarily unavailable; try again",
                )
            }
            _ => {
                tracing::error!(request_id, "request failed: {error}");
                ApiError::Internal
            }
        }
    }

    /// Maps a storage error met outside a step.
    pub fn from_store(error: StoreError, request_id: &str) -> ApiError {
        ApiError::from_step(StepError::Store(error), request_id)
    }
}
