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

/// The model's columns of the rows in `window`: only the parts overlapping it are fetched and
/// decoded, so a retrain costs the window, not the history. The batches start at compiled row
/// `window.rows.start` (what [`train_on`] is given as `first_row`).
pub async fn window_columns(
    compiled: &Location,
    data: &CompiledData,
    window: &TrainingWindow,
) -> Result<Vec<RecordBatch>, StepError> {
    model_columns_from(compiled, data, window.rows.start).await
}

/// Trains a model on the window of already loaded compiled rows (`batches`, starting at
/// compiled row `first_row`) and writes it to `models`.
pub async fn train_on(
    pipeline: &Pipeline,
    data: &ObjectRef,
    batches: Vec<RecordBatch>,
    first_row: u64,
    window: TrainingWindow,
    models: &Location,
) -> Result<TrainingOutcome, StepError> {
    let started = Instant::now();
    let params = pipeline.training.clone();
    let settings = pipeline.lifecycle.clone();
    let challenger = super::spawn_blocking_in_span(move || {
        train_challenger(&batches, first_row, window, &params, &settings)
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
    let (record, data) = committed_data(pipeline, compiled).await?;
    let window = training_window(pipeline, &record, since_row);
    let batches = window_columns(compiled, &data, &window).await?;
    let first_row = window.rows.start;
    let mut outcome = train_on(pipeline, &data.object, batches, first_row, window, models).await?;
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

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::lifecycle::LifecycleSettings;
    use crate::steps::ingestion::{IngestScope, ingest};
    use crate::synth::{SynthSpec, generate_in_memory};

    /// Four monthly files of 700 clients, each ingested by its own run: four parts.
    async fn four_part_store(settings: LifecycleSettings) -> Pipeline {
        let pipeline = crate::testing::scratch_pipeline().with_lifecycle(settings);
        let spec = SynthSpec {
            clients: 700,
            months: 4,
            test_rows: 0,
            ..SynthSpec::default()
        };
        let (files, _) = generate_in_memory(&spec).unwrap();
        for (month, (name, body)) in files.into_iter().enumerate() {
            pipeline
                .locations
                .source_data
                .put(&name, Bytes::from(body), PutMode::CreateOnly)
                .await
                .unwrap();
            ingest(&pipeline, &IngestScope::All, &format!("run-{month}"))
                .await
                .unwrap();
        }
        pipeline
    }

    /// What of a model follows from its rows (not when or how fast it was fitted).
    fn fitted(model: &TrainedModel) -> serde_json::Value {
        serde_json::json!({
            "features": model.features,
            "intercept": model.intercept_standardized,
            "rows": model.rows,
            "threshold": model.decision_threshold,
            "reference": model.reference,
            "window": model.window,
        })
    }

    #[tokio::test]
    async fn training_on_the_window_parts_alone_gives_the_model_of_all_parts() {
        let settings = LifecycleSettings {
            training_window_files: 2,
            ..LifecycleSettings::default()
        };
        let pipeline = four_part_store(settings.clone()).await;
        let compiled = &pipeline.locations.compiled_data;
        let (record, data) = committed_data(&pipeline, compiled).await.unwrap();
        assert_eq!(data.parts.len(), 4);
        let files = file_rows(&record).unwrap();
        let all = model_columns_from(compiled, &data, 0).await.unwrap();
        // The newest two files (validation by time); a drift from the newest file (a sampled
        // share: hashed by compiled row index, so a shifted index would pick other rows); a
        // drift starting inside a part.
        let cases = [
            None,
            Some(files[3].rows.start),
            Some(files[2].rows.start + 123),
        ];
        for since_row in cases {
            let window = training_window(&pipeline, &record, since_row);
            assert!(window.rows.start > 0, "{window:?}");
            let from_window = window_columns(compiled, &data, &window).await.unwrap();
            let window_rows: usize = from_window.iter().map(RecordBatch::num_rows).sum();
            assert_eq!(window_rows as u64, window.rows.end - window.rows.start);
            let train = |batches: &[RecordBatch], first_row| {
                train_challenger(
                    batches,
                    first_row,
                    window.clone(),
                    &pipeline.training,
                    &settings,
                )
                .unwrap()
            };
            let old = train(&all, 0);
            let new = train(&from_window, window.rows.start);
            assert_eq!(fitted(&new.model), fitted(&old.model), "{since_row:?}");
            assert_eq!(new.validation, old.validation, "{since_row:?}");
            assert!(!new.validation.is_empty());
            // Rows given as from another position are other rows: the comparison can fail.
            let shifted = train(&from_window, window.rows.start - 50);
            assert_ne!(fitted(&shifted.model), fitted(&old.model), "{since_row:?}");
        }

        // A retrain after a drift in the newest file reads the record and that one part.
        let plan = crate::store::fault::FaultPlan::new(Vec::new());
        let mut counted = pipeline.clone();
        counted.locations = crate::store::fault::with_faults(&pipeline.locations, &plan);
        let outcome = train_into(
            &counted,
            &counted.locations.compiled_data,
            &counted.locations.models,
            Some(files[3].rows.start),
        )
        .await
        .unwrap();
        assert_eq!(outcome.model.window.unwrap().rows, files[3].rows.clone());
        assert_eq!((plan.reads(), plan.writes()), (2, 1));
    }
}
