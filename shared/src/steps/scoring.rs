//! Scoring: the F1 (with precision, recall, accuracy, ROC AUC and the confusion matrix) of a
//! model on the held-out test data, saved as a versioned score record that names the model
//! version and the exact test files (with versions) it scored, plus the seed-compatible
//! `latestscore.txt`.

use arrow::array::RecordBatch;
use bytes::Bytes;
use chrono::Utc;

use super::{Pipeline, StepError};
use crate::data::csv::read_csv_file;
use crate::location::Location;
use crate::model::{Evaluation, ModelError, TrainedModel};
use crate::records::{ObjectRef, ScoreRecord, names};
use crate::steps::ingestion::is_csv_key;
use crate::store::PutMode;

/// A labelled data set read from a location: its files and their accepted rows.
#[derive(Debug, Clone)]
pub struct LabelledData {
    pub files: Vec<ObjectRef>,
    pub batches: Vec<RecordBatch>,
    /// Rows of those files that broke the schema (left out, and logged).
    pub rows_rejected: u64,
    /// Files that could not be read at all, with the reason.
    pub files_rejected: Vec<String>,
}

impl LabelledData {
    pub fn rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }
}

/// Reads every CSV file in `location` (the test data, or a data set to predict on).
pub async fn read_csv_location(location: &Location) -> Result<LabelledData, StepError> {
    let mut data = LabelledData {
        files: Vec::new(),
        batches: Vec::new(),
        rows_rejected: 0,
        files_rejected: Vec::new(),
    };
    for meta in location.list("").await? {
        if !is_csv_key(&meta.key) {
            continue;
        }
        let (meta, body) = location.get(&meta.key, Some(&meta.version_id)).await?;
        match read_csv_file(meta.key.clone(), body.as_ref()) {
            Ok(contents) => {
                for row in &contents.rejected {
                    tracing::warn!(file = %meta.key, "row left out: {row}");
                }
                data.rows_rejected += contents.counts.rows_rejected;
                data.batches.push(contents.accepted);
                data.files.push(ObjectRef::new(location, &meta));
            }
            Err(e) => {
                tracing::error!(file = %meta.key, "file left out: {e}");
                data.files_rejected.push(e.to_string());
            }
        }
    }
    Ok(data)
}

/// Reads the configured test data; refuses to score on nothing.
pub async fn load_test_data(pipeline: &Pipeline) -> Result<LabelledData, StepError> {
    let location = &pipeline.locations.test_data;
    let data = read_csv_location(location).await?;
    if data.rows() == 0 {
        return Err(StepError::NoTestData {
            location: location.url().to_string(),
        });
    }
    Ok(data)
}

/// What one scoring run produced.
#[derive(Debug, Clone)]
pub struct ScoreOutcome {
    pub record: ScoreRecord,
    /// The score record as written in `models`.
    pub artifact: ObjectRef,
    /// Every object written: the score record and `latestscore.txt`.
    pub written: Vec<ObjectRef>,
}

/// Evaluates `model` on `batches` off the async runtime.
pub async fn evaluate(
    model: &TrainedModel,
    batches: Vec<RecordBatch>,
) -> Result<Evaluation, StepError> {
    let model = model.clone();
    Ok(super::spawn_blocking_in_span(move || model.evaluate(&batches)).await??)
}

/// Evaluates `model` on `batches` at its own threshold and at 0.5, off the async runtime.
async fn evaluate_with_half(
    model: &TrainedModel,
    batches: Vec<RecordBatch>,
) -> Result<(Evaluation, Evaluation), StepError> {
    let model = model.clone();
    let evaluations = super::spawn_blocking_in_span(move || {
        Ok::<_, ModelError>((model.evaluate(&batches)?, model.evaluate_at(&batches, 0.5)?))
    })
    .await??;
    Ok(evaluations)
}

/// Scores `model` (the artifact `model_ref`) on the test data and writes the score record and
/// `latestscore.txt` to the models location.
pub async fn score_model(
    pipeline: &Pipeline,
    model_ref: &ObjectRef,
    model: &TrainedModel,
    run_id: &str,
) -> Result<ScoreOutcome, StepError> {
    let test = load_test_data(pipeline).await?;
    let (evaluation, at_half) = evaluate_with_half(model, test.batches).await?;
    let record = ScoreRecord {
        model: model_ref.clone(),
        data: test.files,
        metrics: evaluation.metrics,
        threshold: Some(model.threshold()),
        metrics_at_half: Some(at_half.metrics),
        excluded_missing_target: evaluation.excluded_missing_target,
        rows_rejected: test.rows_rejected,
        scored_at: Utc::now(),
        run_id: run_id.to_string(),
    };
    let models = &pipeline.locations.models;
    let written = models
        .put_json(names::SCORE, "score record", &record, PutMode::Overwrite)
        .await?;
    let text = models
        .put(
            names::LATEST_SCORE_TXT,
            Bytes::from(format!("{}\n", record.f1())),
            PutMode::Overwrite,
        )
        .await?;
    tracing::info!(
        model_version = %model_ref.version_id,
        f1 = record.f1(),
        rows = record.metrics.rows,
        "model scored on the test data"
    );
    let artifact = ObjectRef::new(models, &written);
    Ok(ScoreOutcome {
        written: vec![artifact.clone(), ObjectRef::new(models, &text)],
        artifact,
        record,
    })
}
