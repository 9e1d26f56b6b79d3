//! Training: reads the compiled data set at the version the ingestion record names, fits the
//! logistic-regression model on the lifecycle's window (the newest files, validated on the
//! newest rows, with the decision threshold chosen there), and saves it as a new version of the
//! model artifact, with its window, threshold, reference profile and where its data came from.

use std::time::Instant;

use arrow::array::RecordBatch;
use bytes::Bytes;

use super::compiled::{FetchedPart, committed_data, decode_rows, fetch_parts};
use super::{Pipeline, StepError};
use crate::data::schema::{EXITED, FEATURES};
use crate::lifecycle::gate::{Challenger, train_challenger};
use crate::lifecycle::window::{TrainingWindow, file_rows};
use crate::location::Location;
use crate::model::TrainedModel;
use crate::records::{CompiledData, IngestionRecord, ObjectRef, names};
use crate::store::PutMode;

/// What one training run produced.
#[derive(Debug, Clone)]
pub struct TrainingOutcome {
    pub model: TrainedModel,
    /// The model artifact as written.
    pub artifact: ObjectRef,
    pub elapsed_ms: f64,
    /// The rows held out for validation (what a champion/challenger gate compares on).
    pub validation: Vec<RecordBatch>,
}

/// The ingestion record in `compiled`, the compiled data's version (its newest part) and every
/// part, fetched at the versions the record names.
pub async fn compiled_data_with_record(
    pipeline: &Pipeline,
    compiled: &Location,
) -> Result<(IngestionRecord, ObjectRef, Vec<FetchedPart>), StepError> {
    let (record, data) = committed_data(pipeline, compiled).await?;
    let parts = fetch_parts(compiled, &data, 0).await?;
    Ok((record, data.object, parts))
}

/// The parts of the compiled data set that the ingestion record in `compiled` names.
pub async fn compiled_data_parts(
    pipeline: &Pipeline,
    compiled: &Location,
) -> Result<(ObjectRef, Vec<FetchedPart>), StepError> {
    let (_, object, parts) = compiled_data_with_record(pipeline, compiled).await?;
    Ok((object, parts))
}

/// Reads the compiled data set that the ingestion record in `compiled` names, as batches.
pub async fn load_compiled_data(
    pipeline: &Pipeline,
    compiled: &Location,
) -> Result<(ObjectRef, Vec<RecordBatch>), StepError> {
    let (object, parts) = compiled_data_parts(pipeline, compiled).await?;
    let batches = super::spawn_blocking_in_span(move || decode_rows(&parts, None, 0)).await??;
    Ok((object, batches))
}

/// The compiled data the model reads (its features and `exited`; the corporation codes, most of
/// the bytes, are not decoded), with the ingestion record and the data set's reference.
pub async fn load_model_columns(
    pipeline: &Pipeline,
    compiled: &Location,
) -> Result<(IngestionRecord, ObjectRef, Vec<RecordBatch>), StepError> {
    let (record, data) = committed_data(pipeline, compiled).await?;
    let batches = model_columns_from(compiled, &data, 0).await?;
    Ok((record, data.object, batches))
}

/// The model's columns of the compiled rows at positions `from_row..` of `data`: only the
/// parts holding them are fetched and decoded.
pub async fn model_columns_from(
    compiled: &Location,
    data: &CompiledData,
    from_row: u64,
) -> Result<Vec<RecordBatch>, StepError> {
    let parts = fetch_parts(compiled, data, from_row).await?;
    let batches = super::spawn_blocking_in_span(move || {
        let mut columns: Vec<&str> = FEATURES.to_vec();
        columns.push(EXITED);
        decode_rows(&parts, Some(&columns), from_row)
    })
    .await??;
    Ok(batches)
}

/// The training window the lifecycle settings give for `record`'s compiled data.
pub fn training_window(
    pipeline: &Pipeline,
    record: &IngestionRecord,
    since_row: Option<u64>,
) -> TrainingWindow {
    let total = record.compiled.as_ref().map_or(0, |c| c.rows);
    if pipeline.lifecycle.is_original() {
        return TrainingWindow::everything(total);
    }
    let files = file_rows(record);
    TrainingWindow::choose(files.as_deref(), total, since_row, &pipeline.lifecycle)
}

/// Trains a model on the window of already loaded compiled rows and writes it to `models`.
pub async fn train_on(
    pipeline: &Pipeline,
    data: &ObjectRef,
    batches: Vec<RecordBatch>,
    window: TrainingWindow,
    models: &Location,
) -> Result<TrainingOutcome, StepError> {
    let started = Instant::now();
    let params = pipeline.training.clone();
    let settings = pipeline.lifecycle.clone();
    let challenger = super::spawn_blocking_in_span(move || {
        train_challenger(&batches, window, &params, &settings)
    })
    .await??;
    let Challenger { model, validation } = challenger;
    let model = model.with_training_data(data.url.clone(), Some(data.version_id.clone()));
    let body = model.to_json()?;
    let written = models
        .put(names::MODEL, Bytes::from(body), PutMode::Overwrite)
        .await?;
    let artifact = ObjectRef::new(models, &written);
    tracing::info!(
        model_version = %artifact.version_id,
        rows = model.rows.rows_used,
        threshold = model.threshold(),
        training_data_version = %data.version_id,
        window = model.window.as_ref().map(|w| w.reason.as_str()).unwrap_or(""),
        "model trained"
    );
    Ok(TrainingOutcome {
        model,
        artifact,
        elapsed_ms: super::millis(started.elapsed()),
        validation,
    })
}

/// Trains on the compiled data in `compiled` (the lifecycle's window: the newest files, or from
/// `since_row` on after a drift) and writes the model to `models`.
pub async fn train_into(
    pipeline: &Pipeline,
    compiled: &Location,
    models: &Location,
    since_row: Option<u64>,
) -> Result<TrainingOutcome, StepError> {
    let started = Instant::now();
    let (record, data, batches) = load_model_columns(pipeline, compiled).await?;
    let window = training_window(pipeline, &record, since_row);
    let mut outcome = train_on(pipeline, &data, batches, window, models).await?;
    outcome.elapsed_ms = super::millis(started.elapsed());
    Ok(outcome)
}

/// Trains on the configured compiled data and writes to the configured models location.
pub async fn train_model(pipeline: &Pipeline) -> Result<TrainingOutcome, StepError> {
    train_into(
        pipeline,
        &pipeline.locations.compiled_data,
        &pipeline.locations.models,
        None,
    )
    .await
}

/// Reads a model artifact (latest, or a given version) from `location`.
pub async fn load_model(
    location: &Location,
    version: Option<&str>,
) -> Result<(ObjectRef, TrainedModel), StepError> {
    let (meta, bytes) = location.get(names::MODEL, version).await?;
    let model = TrainedModel::from_json(&bytes)?;
    Ok((ObjectRef::new(location, &meta), model))
}
