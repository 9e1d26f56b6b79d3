//! The API's answers, field by field. These names are the public contract (the OpenAPI
//! description in `openapi.yaml` is checked against real answers): add fields freely, rename
//! none. Answers cite stored objects by location name, key and version id — never by URL — so
//! they reveal neither bucket names nor paths on the machine. Every type deserialises too, for
//! the client and the tests.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::dependencies::DependencyStatus;
use crate::model::ClassificationMetrics;
use crate::records::DeploymentRecord;
use crate::records::MissingShare;
use crate::stats::ColumnSummary;

/// Every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Stable machine-readable code (`bad_request`, `not_found`, `no_deployment`, …).
    pub error: String,
    /// What went wrong and what to do, for a person.
    pub message: String,
    pub request_id: String,
}

/// `GET /health`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthAnswer {
    /// `ok` (storage answered; a model may or may not be deployed).
    pub status: String,
    /// The version of this service.
    pub version: String,
    /// Whether a model is deployed.
    pub model_deployed: bool,
    pub model: Option<ModelInfo>,
    pub request_id: String,
}

/// The deployed model an answer was computed with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// Version id of the model artifact in production.
    pub version_id: String,
    /// Version id of the same model in the models location: what `risk models` lists and
    /// `risk deploy --model-version` takes.
    pub model_version: String,
    pub deployed_at: DateTime<Utc>,
    /// F1 on the test data when it was deployed.
    pub f1_at_deployment: f64,
    /// The pipeline run that deployed it.
    pub run_id: String,
}

impl ModelInfo {
    pub fn from_deployment(record: &DeploymentRecord) -> Self {
        ModelInfo {
            version_id: record.model.version_id.clone(),
            model_version: record.model_source.version_id.clone(),
            deployed_at: record.deployed_at,
            f1_at_deployment: record.f1,
            run_id: record.run_id.clone(),
        }
    }
}

/// One stored object an answer was computed from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataRef {
    /// Setting name of the location (`test_data`, `source_data`, `compiled_data`), or
    /// `request_body` for CSV sent with the request.
    pub location: String,
    /// Key inside the location.
    pub key: String,
    /// Version id of the object read; `null` for the request body.
    pub version_id: Option<String>,
}

/// One row's prediction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// The client's corporation code (`null` when missing in the data).
    pub corporation: Option<String>,
    /// 1: predicted to leave; 0: predicted to stay.
    pub predicted: u8,
    /// Probability that the client leaves, 0 to 1.
    pub probability: f64,
    /// The known outcome, when the data has one.
    pub actual: Option<u8>,
}

/// A row of the data that was not predicted, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedRowInfo {
    /// Key of the file (or `request body`).
    pub file: String,
    /// Physical line; the header is line 1.
    pub line: u64,
    /// The column at fault, when one is.
    pub column: Option<String>,
    /// Stable name of the problem (`not_a_number`, `negative`, `too_few_fields`, …).
    pub kind: String,
    pub reason: String,
}

/// `POST /prediction`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PredictionAnswer {
    pub model: ModelInfo,
    /// Probability at or above which a row is predicted to leave.
    pub threshold: f64,
    pub data: Vec<DataRef>,
    /// Rows predicted (`predictions.len()`).
    pub rows_predicted: u64,
    /// Rows refused for breaking the schema; the first ones are in `rejected_rows`.
    pub rows_rejected: u64,
    /// One per predicted row, in file order.
    pub predictions: Vec<Prediction>,
    pub rejected_rows: Vec<RejectedRowInfo>,
    /// Files of the location that could not be read at all, with the reason.
    pub files_rejected: Vec<String>,
    pub request_id: String,
}

/// `GET /scoring`: the deployed model scored live on the test data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoringAnswer {
    pub model: ModelInfo,
    /// The test files scored on.
    pub data: Vec<DataRef>,
    /// The F1 score (same as `metrics.f1`).
    pub f1: f64,
    pub metrics: ClassificationMetrics,
    /// Test rows left out because `exited` was missing.
    pub excluded_missing_target: u64,
    /// Test rows left out for breaking the schema.
    pub rows_rejected: u64,
    pub files_rejected: Vec<String>,
    pub scored_at: DateTime<Utc>,
    pub request_id: String,
}

/// `GET /summarystats`: statistics of every numeric column of the compiled data, computed live.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SummaryStatsAnswer {
    pub data: DataRef,
    pub rows: u64,
    /// `lastmonth_activity`, `lastyear_activity`, `number_of_employees`, `exited`.
    pub columns: Vec<ColumnSummary>,
    pub request_id: String,
}

/// How long ingestion and training took, as the run that deployed the model measured them (or
/// as re-timed on scratch storage when the diagnostics were asked to).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimingsInfo {
    pub ingestion_ms: f64,
    pub training_ms: f64,
    pub source_files: u64,
    pub rows_compiled: u64,
}

/// `GET /diagnostics`: the latest diagnostics record (written by the diagnostics step and the
/// full process), with its age.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiagnosticsAnswer {
    pub generated_at: DateTime<Utc>,
    /// Seconds since `generated_at`.
    pub age_seconds: f64,
    /// The run that wrote the record.
    pub run_id: String,
    /// The model version the record's predictions came from.
    pub model_version: String,
    /// The model version deployed now (`null` if none).
    pub deployed_model_version: Option<String>,
    /// Whether the record is about the model deployed now.
    pub current: bool,
    /// The compiled data set the statistics describe.
    pub compiled_data: DataRef,
    /// `null` when the timing run failed (`timing_failed`).
    pub timings: Option<TimingsInfo>,
    pub timing_failed: bool,
    /// Missing values per column of the compiled data.
    pub missing_values: Vec<MissingShare>,
    /// Every direct dependency with the version in use and the newest published one.
    pub dependencies: Vec<DependencyStatus>,
    /// How many dependencies are behind the newest release.
    pub outdated_dependencies: u64,
    pub request_id: String,
}
