//! One function per route. Each reads what it needs through the pipeline's steps (the same code
//! the Lambda steps and the CLI run), so the API's figures are the pipeline's figures: scoring
//! and summary statistics are computed live from the deployed model, the test data and the
//! compiled data; diagnostics are the latest saved record (with the ingestion and training times
//! of the run that deployed the model), not recomputed per request.

use arrow::array::RecordBatch;
use axum::extract::Request;
use bytes::Bytes;
use chrono::Utc;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::request::Parts;
use http::{HeaderMap, Response, StatusCode};
use http_body_util::{BodyExt, LengthLimitError, Limited};

use super::dataset::{DataLocation, DatasetSelection, parse_request};
use super::types::{
    DataRef, DiagnosticsAnswer, HealthAnswer, ModelInfo, Prediction, PredictionAnswer,
    RejectedRowInfo, ScoringAnswer, SummaryStatsAnswer, TimingsInfo,
};
use super::{Api, ApiError, json_response};
use crate::data::DataError;
use crate::data::csv::read_csv_file;
use crate::data::schema::NUMERIC_COLUMNS;
use crate::dependencies::Freshness;
use crate::location::Location;
use crate::records::{DiagnosticsRecord, ObjectRef, names};
use crate::steps::StepError;
use crate::steps::deployment::{current_deployment, deployed_model};
use crate::steps::diagnostics::{predict_rows, summarize_compiled_data};
use crate::steps::ingestion::is_csv_key;
use crate::steps::scoring::{evaluate, load_test_data};
use crate::store::StoreError;

type Answer = Result<Response<Bytes>, ApiError>;

/// How the CSV sent in a request body is named in messages and answers.
const REQUEST_BODY_FILE: &str = "request body";

pub(super) async fn health(api: &Api, request_id: &str) -> Answer {
    let deployment = current_deployment(api.pipeline()).await.map_err(|e| {
        tracing::error!(request_id, "health: cannot read the deployment record: {e}");
        ApiError::NotReady {
            code: "unavailable",
            message: "the service cannot read its storage; see its logs".to_string(),
        }
    })?;
    let answer = HealthAnswer {
        status: "ok".to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        model_deployed: deployment.is_some(),
        model: deployment.as_ref().map(ModelInfo::from_deployment),
        request_id: request_id.to_string(),
    };
    json_response(StatusCode::OK, &answer, request_id)
}

/// What `/prediction` reads: a stored data set, or CSV sent in the body.
enum Input {
    Stored(DatasetSelection),
    Body(Bytes),
}

/// Rows read for prediction, with what was refused.
struct Loaded {
    data: Vec<DataRef>,
    batches: Vec<RecordBatch>,
    rows_rejected: u64,
    rejected_rows: Vec<RejectedRowInfo>,
    files_rejected: Vec<String>,
}

impl Loaded {
    fn new() -> Self {
        Loaded {
            data: Vec::new(),
            batches: Vec::new(),
            rows_rejected: 0,
            rejected_rows: Vec::new(),
            files_rejected: Vec::new(),
        }
    }

    fn rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }

    /// Reads one CSV file's bytes off the async runtime. The outer error is ours (500); the
    /// inner one, a file that is not client data at all, is the caller's decision (fatal for
    /// one named file, reported for one of many).
    async fn read(
        &mut self,
        file: String,
        body: Bytes,
        max_listed: usize,
        request_id: &str,
    ) -> Result<Result<(), DataError>, ApiError> {
        let read = tokio::task::spawn_blocking(move || read_csv_file(file, body.as_ref()))
            .await
            .map_err(|e| ApiError::internal(request_id, "CSV reader task failed", &e))?;
        let contents = match read {
            Ok(contents) => contents,
            Err(e) => return Ok(Err(e)),
        };
        self.rows_rejected += contents.counts.rows_rejected;
        for row in contents.rejected {
            if self.rejected_rows.len() >= max_listed {
                break;
            }
            self.rejected_rows.push(RejectedRowInfo {
                kind: row.problem.kind().to_string(),
                reason: row.problem.to_string(),
                file: row.file,
                line: row.line,
                column: row.column,
            });
        }
        self.batches.push(contents.accepted);
        Ok(Ok(()))
    }
}

pub(super) async fn prediction(api: &Api, request: Request, request_id: &str) -> Answer {
    let limits = api.limits();
    let (parts, body) = read_body(request, limits.max_body_bytes, request_id).await?;
    let input = match body_kind(&parts.headers, &body)? {
        BodyKind::Json => Input::Stored(parse_request(&body).map_err(ApiError::BadRequest)?),
        BodyKind::Csv => Input::Body(body),
    };
    let pipeline = api.pipeline();
    let (deployment, model) = deployed_model(pipeline)
        .await
        .map_err(|e| ApiError::from_step(e, request_id))?;

    let loaded = match input {
        Input::Stored(selection) => read_stored(api, &selection, request_id).await?,
        Input::Body(body) => {
            let mut loaded = Loaded::new();
            loaded
                .read(
                    REQUEST_BODY_FILE.to_string(),
                    body,
                    limits.max_listed_rejections,
                    request_id,
                )
                .await?
                .map_err(unreadable)?;
            loaded.data.push(DataRef {
                location: "request_body".to_string(),
                key: REQUEST_BODY_FILE.to_string(),
                version_id: None,
            });
            loaded
        }
    };
    let rows = loaded.rows();
    if rows > limits.max_prediction_rows {
        return Err(ApiError::Unprocessable {
            code: "too_many_rows",
            message: format!(
                "the data set has {rows} rows; one answer holds at most {}: split it into smaller files",
                limits.max_prediction_rows
            ),
        });
    }
    let threshold = model.threshold();
    let batches = loaded.batches;
    let predicted = tokio::task::spawn_blocking(move || predict_rows(&model, &batches))
        .await
        .map_err(|e| ApiError::internal(request_id, "prediction task failed", &e))?
        .map_err(|e| ApiError::from_step(e, request_id))?;
    let predictions: Vec<Prediction> = predicted
        .into_iter()
        .map(|row| Prediction {
            corporation: row.corporation,
            predicted: row.predicted,
            probability: row.probability,
            actual: row.actual,
        })
        .collect();
    let answer = PredictionAnswer {
        model: ModelInfo::from_deployment(&deployment),
        threshold,
        data: loaded.data,
        rows_predicted: predictions.len() as u64,
        rows_rejected: loaded.rows_rejected,
        predictions,
        rejected_rows: loaded.rejected_rows,
        files_rejected: loaded.files_rejected,
        request_id: request_id.to_string(),
    };
    let response = json_response(StatusCode::OK, &answer, request_id)?;
    if response.body().len() > limits.max_answer_bytes {
        return Err(ApiError::Unprocessable {
            code: "answer_too_large",
            message: format!(
                "the answer would be {} bytes, more than one answer carries ({}); predict a smaller data set",
                response.body().len(),
                limits.max_answer_bytes
            ),
        });
    }
    Ok(response)
}

/// Reads the body up to `limit` bytes and no further: a larger declared length is refused before
/// reading, so a client cannot make the server buffer (or wait for) more than the limit. Under
/// Lambda the body is already in memory and the same rule applies.
async fn read_body(
    request: Request,
    limit: usize,
    request_id: &str,
) -> Result<(Parts, Bytes), ApiError> {
    let (parts, body) = request.into_parts();
    let too_large = ApiError::PayloadTooLarge { limit };
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large);
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok((parts, collected.to_bytes())),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large),
        Err(e) => {
            tracing::debug!(request_id, "cannot read the request body: {e}");
            Err(ApiError::BadRequest(
                "the request body could not be read".into(),
            ))
        }
    }
}

/// A data set that is not CSV of the client schema. The message names the key (or "request
/// body") the client gave and what is wrong, nothing of the machine.
fn unreadable(error: DataError) -> ApiError {
    ApiError::Unprocessable {
        code: "unreadable_data",
        message: error.to_string(),
    }
}

enum BodyKind {
    Json,
    Csv,
}

/// JSON names a stored data set; CSV is the data itself. An empty body without a content type
/// is the default request, so `curl -X POST …/prediction` predicts the test data.
fn body_kind(headers: &HeaderMap, body: &[u8]) -> Result<BodyKind, ApiError> {
    let Some(value) = headers.get(CONTENT_TYPE) else {
        if body.is_empty() {
            return Ok(BodyKind::Json);
        }
        return Err(ApiError::UnsupportedMediaType(
            "say what the body is: content-type application/json (a data set to read) or text/csv (the rows themselves)".to_string(),
        ));
    };
    let media_type = value
        .to_str()
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match media_type.as_str() {
        "application/json" => Ok(BodyKind::Json),
        "text/csv" => Ok(BodyKind::Csv),
        _ => Err(ApiError::UnsupportedMediaType(
            "the body must be application/json (a data set to read) or text/csv (the rows themselves)".to_string(),
        )),
    }
}

async fn read_stored(
    api: &Api,
    selection: &DatasetSelection,
    request_id: &str,
) -> Result<Loaded, ApiError> {
    let limits = api.limits();
    let name = selection.location.name();
    let location = selection.location.open(&api.pipeline().locations);
    let store_error = |e: StoreError| ApiError::from_store(e, request_id);
    let too_large = |size: u64| ApiError::Unprocessable {
        code: "dataset_too_large",
        message: format!(
            "the data set is {size} bytes; the API reads at most {} per request: split it into smaller files",
            limits.max_dataset_bytes
        ),
    };

    let mut loaded = Loaded::new();
    match &selection.key {
        Some(key) => {
            let meta = location.head(key, None).await.map_err(|e| match e {
                StoreError::NotFound { .. } => {
                    ApiError::DataSetNotFound(format!("there is no data set {key:?} in {name}"))
                }
                other => store_error(other),
            })?;
            if meta.size > limits.max_dataset_bytes {
                return Err(too_large(meta.size));
            }
            let (meta, body) = location
                .get(key, Some(&meta.version_id))
                .await
                .map_err(store_error)?;
            loaded
                .read(key.clone(), body, limits.max_listed_rejections, request_id)
                .await?
                .map_err(unreadable)?;
            loaded.data.push(data_ref_of_key(
                selection.location,
                &meta.key,
                &meta.version_id,
            ));
        }
        None => {
            let files: Vec<_> = location
                .list("")
                .await
                .map_err(store_error)?
                .into_iter()
                .filter(|meta| is_csv_key(&meta.key))
                .collect();
            if files.is_empty() {
                return Err(ApiError::DataSetNotFound(format!(
                    "there are no CSV files in {name}"
                )));
            }
            let total: u64 = files.iter().map(|meta| meta.size).sum();
            if total > limits.max_dataset_bytes {
                return Err(too_large(total));
            }
            for meta in files {
                let (meta, body) = location
                    .get(&meta.key, Some(&meta.version_id))
                    .await
                    .map_err(store_error)?;
                match loaded
                    .read(
                        meta.key.clone(),
                        body,
                        limits.max_listed_rejections,
                        request_id,
                    )
                    .await?
                {
                    Ok(()) => loaded.data.push(data_ref_of_key(
                        selection.location,
                        &meta.key,
                        &meta.version_id,
                    )),
                    Err(e) => loaded.files_rejected.push(e.to_string()),
                }
            }
        }
    }
    Ok(loaded)
}

fn data_ref_of_key(location: DataLocation, key: &str, version_id: &str) -> DataRef {
    DataRef {
        location: location.name().to_string(),
        key: key.to_string(),
        version_id: Some(version_id.to_string()),
    }
}

/// Cites an object of `location` by setting name and key instead of its URL.
fn data_ref(name: &str, location: &Location, object: &ObjectRef) -> DataRef {
    let base = format!("{}/", location.url().trim_end_matches('/'));
    let key = object
        .url
        .strip_prefix(&base)
        .or_else(|| object.url.rsplit('/').next())
        .unwrap_or_default()
        .to_string();
    DataRef {
        location: name.to_string(),
        key,
        version_id: Some(object.version_id.clone()),
    }
}

pub(super) async fn scoring(api: &Api, request_id: &str) -> Answer {
    let pipeline = api.pipeline();
    let step = |e: StepError| ApiError::from_step(e, request_id);
    let (deployment, model) = deployed_model(pipeline).await.map_err(step)?;
    let test = load_test_data(pipeline).await.map_err(step)?;
    let evaluation = evaluate(&model, test.batches).await.map_err(step)?;
    let test_data = &pipeline.locations.test_data;
    let answer = ScoringAnswer {
        model: ModelInfo::from_deployment(&deployment),
        data: test
            .files
            .iter()
            .map(|file| data_ref("test_data", test_data, file))
            .collect(),
        f1: evaluation.metrics.f1,
        metrics: evaluation.metrics,
        excluded_missing_target: evaluation.excluded_missing_target as u64,
        rows_rejected: test.rows_rejected,
        files_rejected: test.files_rejected,
        scored_at: Utc::now(),
        request_id: request_id.to_string(),
    };
    json_response(StatusCode::OK, &answer, request_id)
}

pub(super) async fn summarystats(api: &Api, request_id: &str) -> Answer {
    let pipeline = api.pipeline();
    let (data, summary) = summarize_compiled_data(pipeline)
        .await
        .map_err(|e| ApiError::from_step(e, request_id))?;
    let answer = SummaryStatsAnswer {
        data: data_ref("compiled_data", &pipeline.locations.compiled_data, &data),
        rows: summary.rows,
        columns: summary
            .columns
            .into_iter()
            .filter(|c| NUMERIC_COLUMNS.contains(&c.column.as_str()))
            .collect(),
        request_id: request_id.to_string(),
    };
    json_response(StatusCode::OK, &answer, request_id)
}

pub(super) async fn diagnostics(api: &Api, request_id: &str) -> Answer {
    let pipeline = api.pipeline();
    let step = |e: StepError| ApiError::from_step(e, request_id);
    let record = pipeline
        .locations
        .reports
        .get_json_if_exists::<DiagnosticsRecord>(names::DIAGNOSTICS, "diagnostics record")
        .await
        .map_err(|e| step(e.into()))?
        .map(|(_, record)| record)
        .ok_or_else(|| ApiError::NotReady {
            code: "no_diagnostics",
            message: "no diagnostics have been run yet; run the diagnostics step or the full process, then try again".to_string(),
        })?;
    let deployment = current_deployment(pipeline).await.map_err(step)?;
    let age = Utc::now() - record.generated_at;
    let answer = DiagnosticsAnswer {
        generated_at: record.generated_at,
        age_seconds: (age.num_milliseconds().max(0) as f64) / 1000.0,
        run_id: record.run_id,
        model_version: record.predictions.model.version_id.clone(),
        deployed_model_version: deployment.as_ref().map(|d| d.model.version_id.clone()),
        current: deployment
            .as_ref()
            .is_some_and(|d| d.model == record.predictions.model),
        compiled_data: data_ref(
            "compiled_data",
            &pipeline.locations.compiled_data,
            &record.compiled_data,
        ),
        timings: record.timings.map(|t| TimingsInfo {
            ingestion_ms: t.ingestion_ms,
            training_ms: t.training_ms,
            source_files: t.source_files as u64,
            rows_compiled: t.rows_compiled,
        }),
        // The failure's text names locations; it stays in the record and the logs.
        timing_failed: record.timing_error.is_some(),
        missing_values: record.missing_values,
        outdated_dependencies: record
            .dependencies
            .iter()
            .filter(|d| d.status == Freshness::Outdated)
            .count() as u64,
        dependencies: record.dependencies,
        request_id: request_id.to_string(),
    };
    json_response(StatusCode::OK, &answer, request_id)
}

/// Drift reports kept in the history answer, newest first.
const DRIFT_HISTORY: usize = 100;

/// One past drift check, in short.
#[derive(Debug, serde::Serialize)]
struct DriftHistoryEntry {
    run_id: String,
    checked_at: chrono::DateTime<Utc>,
    verdict: crate::drift::report::Verdict,
    rows: usize,
    log_loss: Option<f64>,
    reference_log_loss: Option<f64>,
    roc_auc: Option<f64>,
    f1: Option<f64>,
    data_drift: bool,
    explanation: String,
}

#[derive(Debug, serde::Serialize)]
struct DriftAnswer {
    latest: crate::records::DriftEntry,
    history: Vec<DriftHistoryEntry>,
    request_id: String,
}

/// The latest drift report, whole, and the history of every kept check in short (newest first).
pub(super) async fn drift(api: &Api, request_id: &str) -> Answer {
    let reports = &api.pipeline().locations.reports;
    let step = |e: StepError| ApiError::from_step(e, request_id);
    let latest = reports
        .get_json_if_exists::<crate::records::DriftEntry>(names::LAST_DRIFT, "drift report")
        .await
        .map_err(|e| step(e.into()))?
        .map(|(_, entry)| entry)
        .ok_or_else(|| ApiError::NotReady {
            code: "no_drift_report",
            message: "no drift check has run yet: it runs when new rows arrive for a deployed model; try again after the full process has checked new data".to_string(),
        })?;
    let mut keys: Vec<String> = reports
        .list(&format!("{}/", names::DRIFT_PREFIX))
        .await
        .map_err(|e| step(e.into()))?
        .into_iter()
        .map(|meta| meta.key)
        .filter(|key| key.ends_with(".json"))
        .collect();
    // Run ids start with their time, so the newest sort last.
    keys.sort_unstable_by(|a, b| b.cmp(a));
    keys.truncate(DRIFT_HISTORY);
    let mut history = Vec::with_capacity(keys.len());
    for entry in reports
        .get_json_all::<crate::records::DriftEntry>(keys, "drift report")
        .await
    {
        let entry = entry.map_err(|e| step(e.into()))?;
        let performance = &entry.report.performance;
        history.push(DriftHistoryEntry {
            run_id: entry.run_id,
            checked_at: entry.checked_at,
            verdict: entry.report.verdict,
            rows: performance.rows,
            log_loss: performance.log_loss.as_ref().map(|l| l.mean),
            reference_log_loss: performance.reference_log_loss,
            roc_auc: performance.roc_auc.as_ref().map(|a| a.estimate),
            f1: performance.f1.as_ref().map(|f| f.estimate),
            data_drift: entry.report.data_drift,
            explanation: entry.report.explanation,
        });
    }
    let answer = DriftAnswer {
        latest,
        history,
        request_id: request_id.to_string(),
    };
    json_response(StatusCode::OK, &answer, request_id)
}
