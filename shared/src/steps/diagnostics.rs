//! Diagnostics of the deployed system: the deployed model's predictions for a data set; mean,
//! median and standard deviation of every numeric column of the compiled data and the share of
//! missing values per column; how long ingestion and training take (timed against an in-memory
//! scratch location, so timing never writes to any configured place, production least of all);
//! and the status of every direct dependency. Saved as one diagnostics record in `reports`.

use std::time::Instant;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::Int8Type;
use chrono::Utc;

use super::deployment::deployed_model;
use super::ingestion::{IngestScope, ingest_into};
use super::scoring::read_csv_location;
use super::training::{compiled_data_bytes, train_into};
use super::{Pipeline, StepError};
use crate::data::parquet::read_parquet;
use crate::dependencies::dependency_status;
use crate::location::Location;
use crate::model::TrainedModel;
use crate::records::{
    DiagnosticsRecord, MissingShare, ObjectRef, PredictionRow, PredictionSet, Timings, names,
};
use crate::stats::{DataSummary, SummaryBuilder};
use crate::store::PutMode;

/// Predicts every row of `batches` with `model`, keeping the corporation code and known outcome.
pub fn predict_rows(
    model: &TrainedModel,
    batches: &[RecordBatch],
) -> Result<Vec<PredictionRow>, StepError> {
    let mut rows = Vec::with_capacity(batches.iter().map(RecordBatch::num_rows).sum());
    for batch in batches {
        let predictions = model.predict(batch)?;
        let corporation = batch
            .column_by_name(crate::data::schema::CORPORATION)
            .map(|c| c.as_string::<i32>().clone());
        let exited = batch
            .column_by_name(crate::data::schema::EXITED)
            .map(|c| c.as_primitive::<Int8Type>().clone());
        for (i, (probability, predicted)) in predictions
            .probabilities
            .iter()
            .zip(&predictions.classes)
            .enumerate()
        {
            rows.push(PredictionRow {
                corporation: corporation
                    .as_ref()
                    .filter(|c| c.is_valid(i))
                    .map(|c| c.value(i).to_string()),
                probability: *probability,
                predicted: *predicted,
                actual: exited
                    .as_ref()
                    .filter(|c| c.is_valid(i))
                    .and_then(|c| u8::try_from(c.value(i)).ok()),
            });
        }
    }
    Ok(rows)
}

/// Summarises the compiled data set named by the ingestion record.
pub async fn summarize_compiled_data(
    pipeline: &Pipeline,
) -> Result<(ObjectRef, DataSummary), StepError> {
    let (data, bytes) = compiled_data_bytes(pipeline, &pipeline.locations.compiled_data).await?;
    let url = data.url.clone();
    // Batch by batch: only the values the exact medians need are held, never the decoded set.
    let summary = super::spawn_blocking_in_span(move || {
        let mut builder = SummaryBuilder::new();
        for batch in read_parquet(names::COMPILED_DATA, bytes)? {
            builder.add(&batch?).map_err(|source| StepError::Summary {
                url: url.clone(),
                source,
            })?;
        }
        Ok::<_, StepError>(builder.finish())
    })
    .await??;
    Ok((data, summary))
}

/// Missing-value shares from a summary.
pub fn missing_shares(summary: &DataSummary) -> Vec<MissingShare> {
    summary
        .columns
        .iter()
        .map(|c| MissingShare {
            column: c.column.clone(),
            missing: c.missing,
            percent: c.missing_percent,
        })
        .collect()
}

/// Times a full ingestion of every source file and a training run, against a scratch location.
pub async fn time_ingestion_and_training(
    pipeline: &Pipeline,
    run_id: &str,
) -> Result<Timings, StepError> {
    let scratch = Location::scratch(&format!("diagnostics-{run_id}"));
    let started = Instant::now();
    let ingestion = ingest_into(pipeline, &scratch, &IngestScope::All, run_id).await?;
    let ingestion_ms = super::millis(started.elapsed());
    let started = Instant::now();
    train_into(pipeline, &scratch, &scratch, None).await?;
    let training_ms = super::millis(started.elapsed());
    Ok(Timings {
        ingestion_ms,
        training_ms,
        source_files: ingestion.new_files.len(),
        rows_compiled: ingestion.record.compiled.map_or(0, |c| c.rows),
        scratch_location: scratch.url().to_string(),
    })
}

/// Predictions of the deployed model for every CSV in `data` (the test data by default).
pub async fn deployed_predictions(
    pipeline: &Pipeline,
    data: Option<&Location>,
) -> Result<PredictionSet, StepError> {
    let (deployment, model) = deployed_model(pipeline).await?;
    let data = read_csv_location(data.unwrap_or(&pipeline.locations.test_data)).await?;
    let batches = data.batches;
    let rows = super::spawn_blocking_in_span(move || predict_rows(&model, &batches)).await??;
    Ok(PredictionSet {
        model: deployment.model,
        data: data.files,
        rows,
    })
}

/// Runs every diagnostic and saves the record in `reports`.
pub async fn run_diagnostics(
    pipeline: &Pipeline,
    run_id: &str,
) -> Result<(DiagnosticsRecord, ObjectRef), StepError> {
    let measurements = async {
        let predictions = deployed_predictions(pipeline, None).await?;
        let (compiled_data, summary) = summarize_compiled_data(pipeline).await?;
        (pipeline.between_steps)();
        let (timings, timing_error) = match time_ingestion_and_training(pipeline, run_id).await {
            Ok(timings) => (Some(timings), None),
            Err(e) => {
                tracing::warn!("timing run failed: {e}");
                (None, Some(e.to_string()))
            }
        };
        Ok::<_, StepError>((predictions, compiled_data, summary, timings, timing_error))
    };
    // The dependency check waits on the network, so it runs while the rest is measured.
    let dependency_check =
        dependency_status(&pipeline.dependency_check, &pipeline.locations.reports);
    let (measurements, dependencies) = tokio::join!(measurements, dependency_check);
    let (predictions, compiled_data, summary, timings, timing_error) = measurements?;
    let record = DiagnosticsRecord {
        predictions,
        compiled_data,
        missing_values: missing_shares(&summary),
        summary,
        timings,
        timing_error,
        dependencies: dependencies.statuses,
        dependencies_checked_at: Some(dependencies.checked_at),
        generated_at: Utc::now(),
        run_id: run_id.to_string(),
    };
    let reports = &pipeline.locations.reports;
    let written = reports
        .put_json(
            names::DIAGNOSTICS,
            "diagnostics record",
            &record,
            PutMode::Overwrite,
        )
        .await?;
    Ok((record, ObjectRef::new(reports, &written)))
}
