//! Diagnostics of the deployed system: the deployed model's predictions for a data set; mean,
//! median and standard deviation of every numeric column of the compiled data and the share of
//! missing values per column; how long ingestion and training took (as the run that trained the
//! deployed model measured them; re-measured over every source file on an in-memory scratch
//! location only when asked, so timing never writes to any configured place); and the status of
//! every direct dependency. Saved as one diagnostics record in `reports`.

use std::time::Instant;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::Int8Type;
use chrono::Utc;

use super::compiled::committed_data;
use super::deployment::deployed_model;
use super::ingestion::{IngestScope, ingest_into};
use super::scoring::read_csv_location;
use super::statistics::compiled_statistics;
use super::training::train_into;
use super::{Pipeline, StepError};
use crate::dependencies::dependency_status;
use crate::location::Location;
use crate::model::TrainedModel;
use crate::records::{
    DiagnosticsRecord, MissingShare, ObjectRef, PredictionRow, PredictionSet, RunRecord, Timings,
    names,
};
use crate::stats::DataSummary;
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

/// Summarises the compiled data set named by the ingestion record, from its parts' stored
/// statistics ([`super::statistics`]): the history is not decoded.
pub async fn summarize_compiled_data(
    pipeline: &Pipeline,
) -> Result<(ObjectRef, DataSummary), StepError> {
    let compiled = &pipeline.locations.compiled_data;
    let (_, data) = committed_data(pipeline, compiled).await?;
    let statistics = compiled_statistics(compiled, &data).await?;
    Ok((data.object, statistics.summary()))
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

/// Where the diagnostics' ingestion and training times come from.
#[derive(Debug, Clone, PartialEq)]
pub enum TimingSource {
    /// The run under way measured them (the full process passes its own).
    Run(Timings),
    /// The run that deployed the model, from its run record (the diagnostics step's default).
    DeployingRun,
    /// Re-run the ingestion of every source file and a training on scratch storage: heavy on a
    /// long history, so only when asked (`risk diagnostics --retime`).
    Retime,
}

/// The ingestion and training times of the run that deployed the model; an explanation when
/// that run recorded none.
async fn deploying_run_timings(pipeline: &Pipeline) -> Result<Timings, String> {
    let deployment = super::deployment::current_deployment(pipeline)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("nothing is deployed")?;
    let run_id = deployment.run_id;
    let record = pipeline
        .locations
        .reports
        .get_json_if_exists::<RunRecord>(
            &format!("{}/{run_id}.json", names::RUNS_PREFIX),
            "run record",
        )
        .await
        .map_err(|e| e.to_string())?;
    record
        .and_then(|(_, record)| Timings::from_run_record(&record))
        .ok_or_else(|| {
            format!(
                "the deploying run {run_id} recorded no ingestion and training times (deployed by hand?); `risk diagnostics --retime` measures them on scratch storage"
            )
        })
}

/// Times a full ingestion of every source file and a training run, against a scratch location.
/// What they log is labelled with a `retiming` span: no second ingestion of the real data runs.
pub async fn time_ingestion_and_training(
    pipeline: &Pipeline,
    run_id: &str,
) -> Result<Timings, StepError> {
    use tracing::Instrument;
    let span = tracing::info_span!("retiming", scratch = true);
    time_on_scratch(pipeline, run_id).instrument(span).await
}

async fn time_on_scratch(pipeline: &Pipeline, run_id: &str) -> Result<Timings, StepError> {
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
        run_id: None,
        scratch_location: Some(scratch.url().to_string()),
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

/// Runs every diagnostic, with the timings of the run that deployed the model, and saves the
/// record in `reports`.
pub async fn run_diagnostics(
    pipeline: &Pipeline,
    run_id: &str,
) -> Result<(DiagnosticsRecord, ObjectRef), StepError> {
    run_diagnostics_with(pipeline, run_id, TimingSource::DeployingRun).await
}

/// Runs every diagnostic, taking the timings from `timing`, and saves the record in `reports`.
pub async fn run_diagnostics_with(
    pipeline: &Pipeline,
    run_id: &str,
    timing: TimingSource,
) -> Result<(DiagnosticsRecord, ObjectRef), StepError> {
    let measurements = async {
        let predictions = deployed_predictions(pipeline, None).await?;
        let (compiled_data, summary) = summarize_compiled_data(pipeline).await?;
        (pipeline.between_steps)();
        let timings =
            match timing {
                TimingSource::Run(timings) => Ok(timings),
                TimingSource::DeployingRun => deploying_run_timings(pipeline).await,
                TimingSource::Retime => time_ingestion_and_training(pipeline, run_id)
                    .await
                    .map_err(|e| {
                        tracing::warn!("timing run failed: {e}");
                        e.to_string()
                    }),
            };
        let (timings, timing_error) = match timings {
            Ok(timings) => (Some(timings), None),
            Err(e) => (None, Some(e)),
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
