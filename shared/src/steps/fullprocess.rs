//! The full process, the job the original cron ran every ten minutes: ingest whatever source
//! files are new; with no deployment yet, bootstrap (train, score, deploy, diagnostics,
//! reporting); otherwise score the deployed model on the newly compiled data — the rows this run
//! added, which the model has never seen — and, if that F1 is lower than the F1 recorded at
//! deployment (model drift), retrain, rescore, redeploy and rerun
//! diagnostics and reporting. A run that finds nothing new writes nothing at all, so the schedule
//! costs only a listing; every other run writes a run record saying what it found, what it
//! decided and why (with both F1 figures), what it wrote, and how long each step took.

use std::time::Instant;

use arrow::array::RecordBatch;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::deployment::{current_deployment, deploy, deployed_model};
use super::diagnostics::run_diagnostics;
use super::ingestion::{IngestScope, ingest};
use super::reporting::run_reporting;
use super::scoring::{evaluate, score_model};
use super::training::{load_compiled_data, train_model};
use super::{Pipeline, StepError};
use crate::records::{FileOutcome, IngestedFile, ObjectRef, names};
use crate::store::PutMode;

/// What the full process decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// No source file was new: nothing was done or written.
    NoNewData,
    /// New files arrived but added no rows (all rejected or all duplicates): nothing to score.
    NoNewRows,
    /// Nothing was deployed yet: trained, scored and deployed the first model.
    Bootstrap,
    /// The deployed model scored at least its recorded F1 on the new data: kept.
    NoDrift,
    /// The deployed model scored below its recorded F1: retrained and redeployed.
    Drift,
}

/// How long one step took.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepTiming {
    pub step: String,
    pub ms: f64,
}

/// A new source file, as the run record lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FoundFile {
    pub key: String,
    pub version_id: String,
    pub outcome: FileOutcome,
    pub rows_accepted: u64,
    pub rows_rejected: u64,
    pub rows_duplicate: u64,
    pub error: Option<String>,
}

impl From<&IngestedFile> for FoundFile {
    fn from(file: &IngestedFile) -> Self {
        FoundFile {
            key: file.key.clone(),
            version_id: file.version_id.clone(),
            outcome: file.outcome,
            rows_accepted: file.rows_accepted,
            rows_rejected: file.rows_rejected,
            rows_duplicate: file.rows_duplicate,
            error: file.error.clone(),
        }
    }
}

/// The record of one full-process run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub run_id: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub new_files: Vec<FoundFile>,
    pub rows_added: u64,
    pub decision: Decision,
    /// Why, in words, with the figures.
    pub reason: String,
    /// F1 recorded when the deployed model was deployed (before this run).
    pub deployed_f1: Option<f64>,
    /// F1 of that model on the rows this run added to the compiled data.
    pub new_data_f1: Option<f64>,
    /// The deployed model before and after this run.
    pub model_before: Option<ObjectRef>,
    pub model_after: Option<ObjectRef>,
    /// F1 of the newly trained model on the test data, when one was trained.
    pub new_model_f1: Option<f64>,
    /// Every object this run wrote, with its version.
    pub wrote: Vec<ObjectRef>,
    pub steps: Vec<StepTiming>,
}

/// Step timings collected as the run goes; after each step, the pipeline's
/// [`between_steps`](Pipeline::between_steps) hook.
struct Stopwatch(Vec<StepTiming>, fn());

impl Stopwatch {
    fn new(pipeline: &Pipeline) -> Self {
        Stopwatch(Vec::new(), pipeline.between_steps)
    }

    fn record(&mut self, step: &str, started: Instant) {
        self.0.push(StepTiming {
            step: step.to_string(),
            ms: super::millis(started.elapsed()),
        });
        (self.1)();
    }
}

/// The last `count` rows of `batches`: ingestion appends a run's new rows after every row
/// compiled before, so these are exactly the rows this run added.
fn rows_added_last(batches: &[RecordBatch], count: u64) -> Vec<RecordBatch> {
    let mut remaining = usize::try_from(count).unwrap_or(usize::MAX);
    let mut tail = Vec::new();
    for batch in batches.iter().rev() {
        if remaining == 0 {
            break;
        }
        let take = remaining.min(batch.num_rows());
        tail.push(batch.slice(batch.num_rows() - take, take));
        remaining -= take;
    }
    tail.reverse();
    tail
}

/// Runs the full process once over every new source file (the schedule, the command line).
pub async fn run_full_process(pipeline: &Pipeline, run_id: &str) -> Result<RunRecord, StepError> {
    run_full_process_for(pipeline, &IngestScope::All, run_id).await
}

/// Runs the full process once, ingesting only the new source files in `scope` (the objects an
/// S3 event names), so new data is checked for drift as soon as it lands.
pub async fn run_full_process_for(
    pipeline: &Pipeline,
    scope: &IngestScope,
    run_id: &str,
) -> Result<RunRecord, StepError> {
    let started_at = Utc::now();
    let mut steps = Stopwatch::new(pipeline);
    let mut wrote: Vec<ObjectRef> = Vec::new();

    let started = Instant::now();
    let ingestion = ingest(pipeline, scope, run_id).await?;
    steps.record("ingestion", started);
    let mut record = RunRecord {
        run_id: run_id.to_string(),
        started_at,
        finished_at: started_at,
        new_files: ingestion.new_files.iter().map(FoundFile::from).collect(),
        rows_added: ingestion.rows_added,
        decision: Decision::NoNewData,
        reason: String::new(),
        deployed_f1: None,
        new_data_f1: None,
        model_before: None,
        model_after: None,
        new_model_f1: None,
        wrote: Vec::new(),
        steps: Vec::new(),
    };
    if !ingestion.found_new_files() {
        record.reason = match scope {
            IngestScope::All => format!("no new files in {}", pipeline.locations.source_data.url()),
            _ => format!(
                "the named files in {} were all ingested before (or are gone): nothing to do",
                pipeline.locations.source_data.url()
            ),
        };
        record.steps = steps.0;
        record.finished_at = Utc::now();
        tracing::info!(decision = "no_new_data", "{}", record.reason);
        return Ok(record);
    }
    wrote.extend(ingestion.written.iter().cloned());

    let deployment = current_deployment(pipeline).await?;
    record.model_before = deployment.as_ref().map(|d| d.model.clone());
    let retrain = match &deployment {
        _ if ingestion.record.compiled.is_none() => {
            record.decision = Decision::NoNewRows;
            record.reason =
                "new files arrived but none had a usable row; see the ingestion record".into();
            false
        }
        None => {
            record.decision = Decision::Bootstrap;
            record.reason = "no model is deployed yet: training the first one".into();
            true
        }
        Some(_) if !ingestion.compiled_data_changed() => {
            record.decision = Decision::NoNewRows;
            record.reason =
                "new files added no new rows (rejected or exact duplicates): nothing to score"
                    .into();
            false
        }
        Some(deployed) => {
            let started = Instant::now();
            let (_, model) = deployed_model(pipeline).await?;
            let (data, batches) =
                load_compiled_data(pipeline, &pipeline.locations.compiled_data).await?;
            let new_rows = rows_added_last(&batches, ingestion.rows_added);
            let evaluation = evaluate(&model, new_rows).await?;
            steps.record("drift_check", started);
            let new_f1 = evaluation.metrics.f1;
            record.deployed_f1 = Some(deployed.f1);
            record.new_data_f1 = Some(new_f1);
            if new_f1 < deployed.f1 {
                record.decision = Decision::Drift;
                record.reason = format!(
                    "model drift: the deployed model's F1 on the {} rows this run added to the compiled data (version {}) is {new_f1:.4}, lower than its recorded F1 ({:.4}); retraining",
                    evaluation.metrics.rows, data.version_id, deployed.f1
                );
                true
            } else {
                record.decision = Decision::NoDrift;
                record.reason = format!(
                    "no drift: the deployed model's F1 on the {} rows this run added ({new_f1:.4}) is not lower than its recorded F1 ({:.4}); keeping it",
                    evaluation.metrics.rows, deployed.f1
                );
                false
            }
        }
    };
    tracing::info!(decision = ?record.decision, "{}", record.reason);

    if retrain {
        let started = Instant::now();
        let trained = train_model(pipeline).await?;
        steps.record("training", started);
        wrote.push(trained.artifact.clone());

        let started = Instant::now();
        let scored = score_model(pipeline, &trained.artifact, &trained.model, run_id).await?;
        steps.record("scoring", started);
        wrote.extend(scored.written.iter().cloned());
        record.new_model_f1 = Some(scored.record.f1());

        let started = Instant::now();
        let deployed = deploy(pipeline, &trained.artifact, &scored.artifact, run_id).await?;
        steps.record("deployment", started);
        wrote.extend(deployed.written);
        record.model_after = Some(deployed.record.model);

        let started = Instant::now();
        let (_, diagnostics) = run_diagnostics(pipeline, run_id).await?;
        steps.record("diagnostics", started);
        wrote.push(diagnostics);

        let started = Instant::now();
        let report = run_reporting(pipeline, run_id).await?;
        steps.record("reporting", started);
        wrote.extend([report.png, report.json, report.markdown]);
    } else {
        record.model_after = record.model_before.clone();
    }

    record.steps = steps.0;
    record.wrote = wrote;
    record.finished_at = Utc::now();
    let reports = &pipeline.locations.reports;
    reports
        .put_json(
            &format!("{}/{run_id}.json", names::RUNS_PREFIX),
            "run record",
            &record,
            PutMode::CreateOnly,
        )
        .await?;
    reports
        .put_json(names::LAST_RUN, "run record", &record, PutMode::Overwrite)
        .await?;
    Ok(record)
}
