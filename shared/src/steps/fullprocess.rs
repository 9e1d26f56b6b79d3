//! The full process, the job the original cron ran every ten minutes: ingest whatever source
//! files are new; with no deployment yet, bootstrap (train, score, deploy, diagnostics,
//! reporting); otherwise score the deployed model on the newly compiled data — the rows this run
//! added, which the model has never seen — and, if the pipeline's drift rule ([`crate::drift`])
//! finds drift, retrain, rescore, redeploy and rerun diagnostics and reporting. A run that finds nothing new writes nothing at all, so the schedule
//! costs only a listing; every other run writes a run record saying what it found, what it
//! decided and why (with both F1 figures), what it wrote, and how long each step took.

use std::time::Instant;

use arrow::array::RecordBatch;
use chrono::Utc;

use super::deployment::{current_deployment, deploy, deployed_model};
use super::diagnostics::run_diagnostics;
use super::ingestion::{IngestScope, ingest};
use super::reporting::run_reporting;
use super::scoring::{evaluate, score_model};
use super::training::{load_compiled_data, train_model};
use super::{Pipeline, StepError};
use crate::drift::{DriftCheck, NewRows};
use crate::records::{
    Decision, DeploymentRecord, FoundFile, ObjectRef, RunRecord, StepTiming, names,
};
use crate::store::PutMode;

/// Step timings collected as the run goes.
#[derive(Default)]
struct Stopwatch(Vec<StepTiming>);

impl Stopwatch {
    fn record(&mut self, step: &str, started: Instant) {
        self.0.push(StepTiming {
            step: step.to_string(),
            ms: super::millis(started.elapsed()),
        });
        // The next step runs on other threads: what this one freed would otherwise stay mapped.
        crate::memory::release_free_memory();
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

/// Measures the deployed model on the `rows_added` rows this run appended to the compiled data
/// and asks the pipeline's drift rule whether it drifted.
async fn check_drift(
    pipeline: &Pipeline,
    deployed: &DeploymentRecord,
    rows_added: u64,
) -> Result<DriftCheck, StepError> {
    let (_, model) = deployed_model(pipeline).await?;
    let (data, batches) = load_compiled_data(pipeline, &pipeline.locations.compiled_data).await?;
    let new_rows = rows_added_last(&batches, rows_added);
    let evaluation = evaluate(&model, new_rows).await?;
    Ok(pipeline.drift_rule.check(
        deployed,
        NewRows {
            evaluation: &evaluation,
            compiled_data: &data,
        },
    ))
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
    crate::memory::tune_allocator();
    let started_at = Utc::now();
    let mut steps = Stopwatch::default();
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
            let verdict = check_drift(pipeline, deployed, ingestion.rows_added).await?;
            steps.record("drift_check", started);
            record.deployed_f1 = Some(verdict.deployed_f1);
            record.new_data_f1 = Some(verdict.new_data_f1);
            record.decision = verdict.decision;
            let retrain = verdict.drifted();
            record.reason = verdict.reason;
            retrain
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
