//! Training: reads the compiled data set at the version the ingestion record names, fits the
//! logistic-regression model, and saves it as a new version of the model artifact, with where
//! its data came from (location and version) in its metadata.

use std::time::Instant;

use bytes::Bytes;

use super::{Pipeline, StepError};
use crate::data::parquet::{read_parquet, read_parquet_columns};
use crate::data::schema::{EXITED, FEATURES};
use crate::location::Location;
use crate::model::{TrainedModel, train};
use crate::records::{IngestionRecord, ObjectRef, names};
use crate::store::PutMode;

/// What one training run produced.
#[derive(Debug, Clone)]
pub struct TrainingOutcome {
    pub model: TrainedModel,
    /// The model artifact as written.
    pub artifact: ObjectRef,
    pub elapsed_ms: f64,
}

/// The bytes of the compiled data set that the ingestion record in `compiled` names.
pub async fn compiled_data_bytes(
    pipeline: &Pipeline,
    compiled: &Location,
) -> Result<(ObjectRef, Bytes), StepError> {
    let no_data = || StepError::NoCompiledData {
        location: compiled.url().to_string(),
        source_location: pipeline.locations.source_data.url().to_string(),
    };
    let (_, record) = compiled
        .get_json_if_exists::<IngestionRecord>(names::INGESTION_RECORD, "ingestion record")
        .await?
        .ok_or_else(no_data)?;
    let data = record.compiled.ok_or_else(no_data)?;
    let (_, bytes) = compiled
        .get(names::COMPILED_DATA, Some(&data.object.version_id))
        .await?;
    Ok((data.object, bytes))
}

/// Reads the compiled data set that the ingestion record in `compiled` names, as batches.
pub async fn load_compiled_data(
    pipeline: &Pipeline,
    compiled: &Location,
) -> Result<(ObjectRef, Vec<arrow::array::RecordBatch>), StepError> {
    let (object, bytes) = compiled_data_bytes(pipeline, compiled).await?;
    let batches = super::spawn_blocking_in_span(move || {
        read_parquet(names::COMPILED_DATA, bytes)?.collect::<Result<Vec<_>, _>>()
    })
    .await
    .map_err(|e| StepError::Task(e.to_string()))??;
    Ok((object, batches))
}

/// Trains on the compiled data in `compiled` and writes the model to `models`.
pub async fn train_into(
    pipeline: &Pipeline,
    compiled: &Location,
    models: &Location,
) -> Result<TrainingOutcome, StepError> {
    let started = Instant::now();
    let (data, bytes) = compiled_data_bytes(pipeline, compiled).await?;
    let params = pipeline.training.clone();
    // Only the columns the model reads are decoded: the corporation codes are most of the bytes.
    let model = super::spawn_blocking_in_span(move || {
        let mut columns: Vec<&str> = FEATURES.to_vec();
        columns.push(EXITED);
        let batches = read_parquet_columns(names::COMPILED_DATA, bytes, &columns)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok::<_, StepError>(train(&batches, &params)?)
    })
    .await
    .map_err(|e| StepError::Task(e.to_string()))??
    .with_training_data(data.url.clone(), Some(data.version_id.clone()));
    let body = model.to_json()?;
    let written = models
        .put(names::MODEL, Bytes::from(body), PutMode::Overwrite)
        .await?;
    let artifact = ObjectRef::new(models, &written);
    tracing::info!(
        model_version = %artifact.version_id,
        rows = model.rows.rows_used,
        training_data_version = %data.version_id,
        "model trained"
    );
    Ok(TrainingOutcome {
        model,
        artifact,
        elapsed_ms: super::millis(started.elapsed()),
    })
}

/// Trains on the configured compiled data and writes to the configured models location.
pub async fn train_model(pipeline: &Pipeline) -> Result<TrainingOutcome, StepError> {
    train_into(
        pipeline,
        &pipeline.locations.compiled_data,
        &pipeline.locations.models,
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
