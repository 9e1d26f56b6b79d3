//! The full process, the job the original cron ran every ten minutes: ingest whatever source
//! files are new; with no deployment yet, bootstrap (train, score, deploy, diagnostics,
//! reporting); otherwise score the deployed model on the compiled rows it has not been checked
//! on, which it has never seen, and, if the pipeline's drift rule ([`crate::drift`]) finds
//! drift, retrain, rescore, redeploy and rerun diagnostics and reporting. What to do is decided
//! from what is stored ([`super::repair`]), so a run finishes whatever an earlier one left undone.
//! A run that finds nothing new and nothing pending writes nothing at all, so the schedule costs
//! a listing and one record read ([`super::idle`]); every other run writes a run record saying
//! what it found, what it decided and why (with both F1 figures), what it wrote, and how long
//! each step took.

use std::time::Instant;

use chrono::Utc;

use super::compiled::committed_data;
use super::deadline::Deadline;
use super::deployment::{current_deployment, deploy};
use super::diagnostics::{TimingSource, run_diagnostics_with};
use super::ingestion::{IngestScope, ingest, ingest_candidates};
use super::reporting::write_reports;
use super::scoring::score_model;
use super::training::{
    TrainingOutcome, load_model, model_columns_from, train_on, training_window, window_columns,
};
use super::{Pipeline, StepError, idle, repair};
use crate::drift::report::{DriftReport, Verdict, check_drift};
use crate::lifecycle::gate::{Challenger, challenge};
use crate::model::TrainedModel;
use crate::records::{
    CompiledData, Decision, DeploymentRecord, DriftEntry, FoundFile, IngestionRecord, ObjectRef,
    RunRecord, StepTiming, Timings, names,
};
use crate::store::PutMode;

/// Step timings collected as the run goes; after each step, the pipeline's
/// [`between_steps`](Pipeline::between_steps) hook; before each, its deadline.
struct Stopwatch(Vec<StepTiming>, fn(), Option<Deadline>);

impl Stopwatch {
    fn new(pipeline: &Pipeline) -> Self {
        Stopwatch(Vec::new(), pipeline.between_steps, pipeline.deadline)
    }

    /// Whether `step` may start: a retryable error when the invocation is nearly out of time.
    fn before(&self, step: &str) -> Result<(), StepError> {
        match &self.2 {
            Some(deadline) => deadline.check(step, std::time::SystemTime::now()),
            None => Ok(()),
        }
    }

    /// A step run alongside another one (its time overlaps that step's).
    fn overlapped(&mut self, step: &str, took: std::time::Duration) {
        self.0.push(StepTiming {
            step: step.to_string(),
            ms: super::millis(took),
        });
    }

    fn record(&mut self, step: &str, started: Instant) {
        self.record_took(step, started.elapsed());
    }

    fn record_took(&mut self, step: &str, took: std::time::Duration) {
        self.overlapped(step, took);
        (self.1)();
    }
}

/// The deployed model checked on the new rows: the rows it has not been checked on (see
/// [`repair::rows_to_check`]), extended back to the drift rule's minimum with older rows the
/// model was not trained or validated on.
struct Checked {
    /// `None` when the model has seen every compiled row: nothing to check.
    report: Option<DriftReport>,
    champion: TrainedModel,
    /// The first row not checked yet (where a retrain after a drift starts its window).
    first_new_row: u64,
    /// The ingestion record the check read, which a retrain in the same run trains on.
    compiled: (IngestionRecord, CompiledData),
}

async fn check_deployed(
    pipeline: &Pipeline,
    deployed: &DeploymentRecord,
) -> Result<Checked, StepError> {
    let (_, champion) = load_model(
        &pipeline.locations.production,
        Some(&deployed.model.version_id),
    )
    .await?;
    let compiled = committed_data(pipeline, &pipeline.locations.compiled_data).await?;
    let total = compiled.1.rows;
    let trained_until = champion.window.as_ref().map(|w| w.rows.end);
    let rows_added = repair::rows_to_check(deployed, trained_until, total);
    let first_new_row = total - rows_added;
    if rows_added == 0 {
        return Ok(Checked {
            report: None,
            champion,
            first_new_row,
            compiled,
        });
    }
    let unseen_from = trained_until.map_or(first_new_row, |end| end.min(first_new_row));
    // The original rule looks at exactly the rows not checked yet.
    let wanted = if pipeline.lifecycle.is_original() {
        rows_added
    } else {
        rows_added.max(pipeline.lifecycle.min_rows.get() as u64)
    };
    let check_from = total.saturating_sub(wanted).max(unseen_from);
    // Only the parts holding these rows are read: ingestion appends, so they are the newest.
    let new_rows =
        model_columns_from(&pipeline.locations.compiled_data, &compiled.1, check_from).await?;
    let settings = pipeline.lifecycle.clone();
    let deployed_f1 = deployed.f1;
    let (report, champion) = super::spawn_blocking_in_span(move || {
        check_drift(&champion, &new_rows, deployed_f1, &settings).map(|report| (report, champion))
    })
    .await??;
    Ok(Checked {
        report: Some(report),
        champion,
        first_new_row,
        compiled,
    })
}

/// Runs `main` and `draft` together until `main` finishes, then finishes `draft` if `wanted`
/// by `main`'s outcome; otherwise drops it where it is (`None`).
async fn with_draft_while<M, D>(
    main: impl Future<Output = M>,
    draft: impl Future<Output = D>,
    wanted: impl FnOnce(&M) -> bool,
) -> (M, Option<D>) {
    let (mut main, mut draft) = (std::pin::pin!(main), std::pin::pin!(draft));
    let (outcome, drafted) = tokio::select! {
        outcome = &mut main => (outcome, None),
        drafted = &mut draft => (main.await, Some(drafted)),
    };
    let drafted = match drafted {
        Some(drafted) => Some(drafted),
        None if wanted(&outcome) => Some(draft.await),
        None => None,
    };
    (outcome, drafted)
}

fn decision_for(verdict: Verdict) -> Decision {
    match verdict {
        Verdict::TooFewRows => Decision::TooFewRows,
        Verdict::PerformanceDrift | Verdict::NoReference => Decision::Drift,
        Verdict::DataDriftOnly => Decision::DataDrift,
        Verdict::NoDrift => Decision::NoDrift,
    }
}

/// Keeps the drift report: one version per run under `drift/`, and the latest.
async fn save_drift_report(
    pipeline: &Pipeline,
    run_id: &str,
    report: &DriftReport,
) -> Result<Vec<ObjectRef>, StepError> {
    let reports = &pipeline.locations.reports;
    let entry = DriftEntry {
        run_id: run_id.to_string(),
        checked_at: Utc::now(),
        report: report.clone(),
    };
    let one = reports
        .put_json(
            &format!("{}/{run_id}.json", names::DRIFT_PREFIX),
            "drift report",
            &entry,
            PutMode::CreateOnly,
        )
        .await?;
    let latest = reports
        .put_json(
            names::LAST_DRIFT,
            "drift report",
            &entry,
            PutMode::Overwrite,
        )
        .await?;
    Ok(vec![
        ObjectRef::new(reports, &one),
        ObjectRef::new(reports, &latest),
    ])
}

/// Scores the new model on the test data, deploys it, and reruns diagnostics and reporting.
async fn deploy_and_report(
    pipeline: &Pipeline,
    run_id: &str,
    trained: &TrainingOutcome,
    record: &mut RunRecord,
    wrote: &mut Vec<ObjectRef>,
    steps: &mut Stopwatch,
) -> Result<(), StepError> {
    steps.before("scoring")?;
    let started = Instant::now();
    let scored = score_model(pipeline, &trained.artifact, &trained.model, run_id).await?;
    steps.record("scoring", started);
    wrote.extend(scored.written.iter().cloned());
    record.new_model_f1 = Some(scored.record.f1());

    steps.before("deployment")?;
    let started = Instant::now();
    let deployed = deploy(pipeline, &trained.artifact, &scored.artifact, run_id).await?;
    steps.record("deployment", started);
    wrote.extend(deployed.written);
    record.model_after = Some(deployed.record.model);
    record.model_version_after = Some(deployed.record.model_source.version_id);
    diagnose_and_report(pipeline, run_id, record, wrote, steps).await
}

/// Diagnostics and reporting of the deployed model.
async fn diagnose_and_report(
    pipeline: &Pipeline,
    run_id: &str,
    record: &RunRecord,
    wrote: &mut Vec<ObjectRef>,
    steps: &mut Stopwatch,
) -> Result<(), StepError> {
    steps.before("diagnostics")?;
    let started = Instant::now();
    // The times this run measured, not a second ingestion and training over the whole history.
    let timing = Timings::from_run(run_id, &steps.0, record.new_files.len(), record.rows_added)
        .map_or(TimingSource::DeployingRun, TimingSource::Run);
    let (_, diagnostics) = run_diagnostics_with(pipeline, run_id, timing).await?;
    steps.record("diagnostics", started);
    wrote.push(diagnostics);

    steps.before("reporting")?;
    let started = Instant::now();
    let report = write_reports(pipeline, run_id).await?;
    steps.record("reporting", started);
    wrote.extend([report.png, report.json, report.markdown]);
    Ok(())
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

    steps.before("ingestion")?;
    let started = Instant::now();
    // The latest risk list, read during ingestion: a run that checks its model drafts the next
    // list from it (a failed read is left to the draft, which reads it again).
    let previous_list = |read: bool| async move {
        let reports = &pipeline.locations.reports;
        if !read {
            return None;
        }
        crate::risklist::load_previous(reports).await.ok()
    };
    // A scheduled tick lists the source and reads the deployment record first: with nothing new
    // and nothing pending, that is all it reads ([`idle`]).
    let (ingestion, deployment, listing, previous_list) = match scope {
        IngestScope::All => {
            let listing = pipeline.locations.source_data.list("").await?;
            let deployment = current_deployment(pipeline).await?;
            if idle::nothing_to_do(&listing, deployment.as_ref()) {
                (None, deployment, listing, None)
            } else {
                let compiled = &pipeline.locations.compiled_data;
                let (ingestion, previous_list) = tokio::join!(
                    ingest_candidates(pipeline, compiled, listing.clone(), run_id),
                    previous_list(deployment.is_some()),
                );
                (Some(ingestion?), deployment, listing, previous_list)
            }
        }
        _ => {
            let (ingestion, previous_list) =
                tokio::join!(ingest(pipeline, scope, run_id), previous_list(true));
            let deployment = current_deployment(pipeline).await?;
            (Some(ingestion?), deployment, Vec::new(), previous_list)
        }
    };
    steps.record("ingestion", started);
    let idle = ingestion.is_none();
    let ingestion = ingestion.unwrap_or_default();
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
        model_version_before: None,
        model_version_after: None,
        new_model_f1: None,
        drift: None,
        training_window: None,
        gate: None,
        challenger: None,
        risk_list: None,
        wrote: Vec::new(),
        steps: Vec::new(),
    };
    // Decided from what is stored, not from what this run ingested: compiled data the
    // deployment was not checked against is work an earlier run may have left undone.
    let pending = !idle && repair::work_pending(&ingestion.record, deployment.as_ref());
    if !ingestion.found_new_files() && !pending {
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
    if !ingestion.found_new_files() {
        tracing::info!("no new source files, but an earlier run left work undone: finishing it");
        wrote.extend(repair::repair_ingested_files_text(pipeline, &ingestion.record).await?);
    }

    record.model_before = deployment.as_ref().map(|d| d.model.clone());
    record.model_version_before = deployment
        .as_ref()
        .map(|d| d.model_source.version_id.clone());
    let mut since_row = None;
    let mut champion: Option<TrainedModel> = None;
    let mut compiled: Option<(IngestionRecord, CompiledData)> = None;
    // The compiled data this run finishes the deployment's check against.
    let mut checked_data: Option<CompiledData> = None;
    let mut draft: Option<crate::risklist::RiskListDraft> = None;
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
        Some(_) if !pending => {
            record.decision = Decision::NoNewRows;
            record.reason =
                "new files added no new rows (rejected or exact duplicates): nothing to score"
                    .into();
            false
        }
        Some(deployed) => {
            steps.before("drift_check")?;
            // The list the run writes if it keeps this model, drafted during the check; a
            // retrain drops the draft where it is, and a failed draft is built again later.
            let drafting = async {
                let started = Instant::now();
                let bands = &pipeline.risk_bands;
                let previous = previous_list.map(crate::risklist::PreviousRead);
                let drafted =
                    crate::risklist::draft_risk_list(pipeline, run_id, bands, previous).await;
                (drafted, started.elapsed())
            };
            let checking = async {
                let started = Instant::now();
                (check_deployed(pipeline, deployed).await, started.elapsed())
            };
            let keeps_model = |(checked, _): &(Result<Checked, StepError>, _)| {
                checked.as_ref().is_ok_and(|checked| {
                    (checked.report.as_ref()).is_none_or(|report| !report.verdict.retrain())
                })
            };
            let ((checked, check_time), drafted) =
                with_draft_while(checking, drafting, keeps_model).await;
            let checked = checked?;
            match drafted {
                Some((Ok(drafted), draft_time)) => {
                    steps.overlapped("risk_list_draft", draft_time);
                    draft = Some(drafted);
                }
                Some((Err(error), _)) => tracing::debug!("the risk list was not drafted: {error}"),
                None => {}
            }
            checked_data = Some(checked.compiled.1.clone());
            record.deployed_f1 = Some(deployed.f1);
            let retrain = match &checked.report {
                None => {
                    record.decision = Decision::Resumed;
                    record.reason = "an earlier run stopped before it finished; the deployed \
                                     model has seen every compiled row: nothing to check"
                        .into();
                    false
                }
                Some(report) => {
                    steps.record_took("drift_check", check_time);
                    record.new_data_f1 = report.performance.f1.as_ref().map(|f| f.estimate);
                    record.decision = decision_for(report.verdict);
                    record.reason = report.explanation.clone();
                    if report.verdict == Verdict::PerformanceDrift
                        && !pipeline.lifecycle.is_original()
                    {
                        since_row = Some(checked.first_new_row);
                    }
                    wrote.extend(save_drift_report(pipeline, run_id, report).await?);
                    report.verdict.retrain()
                }
            };
            record.drift = checked.report;
            champion = Some(checked.champion);
            compiled = Some(checked.compiled);
            retrain
        }
    };
    if !ingestion.found_new_files() {
        record.reason = format!(
            "finishing what an earlier run left undone: {}",
            record.reason
        );
    }
    tracing::info!(decision = ?record.decision, "{}", record.reason);

    if retrain {
        // Scored with the model this run replaces (and its memory is the training's).
        draft = None;
        steps.before("training")?;
        let started = Instant::now();
        let (ingested, data) = match compiled {
            Some(compiled) => compiled,
            None => committed_data(pipeline, &pipeline.locations.compiled_data).await?,
        };
        checked_data = ingested.compiled.clone();
        let window = training_window(pipeline, &ingested, since_row);
        // Only the parts overlapping the window are read.
        let batches = window_columns(&pipeline.locations.compiled_data, &data, &window).await?;
        let first_row = window.rows.start;
        let models = &pipeline.locations.models;
        let trained = train_on(pipeline, &data.object, batches, first_row, window, models).await?;
        steps.record("training", started);
        wrote.push(trained.artifact.clone());
        record.training_window = trained.model.window.clone();
        record.challenger = Some(trained.artifact.clone());

        let gate = match (champion, pipeline.lifecycle.is_original()) {
            (Some(champion), false) => {
                let started = Instant::now();
                let challenger = Challenger {
                    model: trained.model.clone(),
                    validation: trained.validation.clone(),
                };
                let settings = pipeline.lifecycle.clone();
                let gate = super::spawn_blocking_in_span(move || {
                    challenge(&champion, &challenger, &settings)
                })
                .await??;
                steps.record("champion_challenger", started);
                Some(gate)
            }
            _ => None,
        };
        let rejected = gate.as_ref().is_some_and(|g| !g.accepted);
        if let Some(gate) = &gate {
            record.reason = format!("{}; {}", record.reason, gate.reason);
        }
        record.gate = gate;
        if rejected {
            record.decision = Decision::ChallengerRejected;
            record.model_after = record.model_before.clone();
            record.model_version_after = record.model_version_before.clone();
            tracing::info!(decision = ?record.decision, "{}", record.reason);
        } else {
            deploy_and_report(
                pipeline,
                run_id,
                &trained,
                &mut record,
                &mut wrote,
                &mut steps,
            )
            .await?;
        }
    } else {
        record.model_after = record.model_before.clone();
        record.model_version_after = record.model_version_before.clone();
    }
    // Before the data is marked checked, so a crash before the list is written is repaired.
    steps.before("risk_list")?;
    let started = Instant::now();
    let checked = checked_data.is_some();
    let written_list =
        crate::risklist::write_after_run(pipeline, run_id, &record, checked, draft).await?;
    let written_list = written_list.map(|(list_record, list)| {
        steps.record("risk_list", started);
        wrote.extend([
            list_record.run_parquet.clone(),
            list_record.latest_csv.clone(),
            list_record.latest_parquet.clone(),
        ]);
        record.risk_list = Some(list_record);
        list
    });
    if let (Some(data), Some(model)) = (&checked_data, &record.model_after) {
        // A deployment an earlier run never finished may lack its diagnostics and reports.
        let unfinished = record.model_after == record.model_before
            && deployment
                .as_ref()
                .is_some_and(|d| d.checked_against.is_none());
        if unfinished && !repair::reports_describe(pipeline, model).await? {
            diagnose_and_report(pipeline, run_id, &record, &mut wrote, &mut steps).await?;
        }
        // The listing this run's data covers, so the ticks after it stop at the listing.
        let listing = match scope {
            IngestScope::All => listing,
            _ => pipeline.locations.source_data.list("").await?,
        };
        let covered = idle::covered_listing_digest(&listing, &ingestion.record);
        let marked = repair::mark_checked(pipeline, &model.version_id, data, covered, run_id);
        wrote.extend(marked.await?);
    }

    // The HTML page shows this run too, so it is written before the record that lists it.
    let started = Instant::now();
    if let Some(pages) =
        crate::report::publish_for_run(pipeline, &record, written_list.as_ref()).await
    {
        steps.record("html_report", started);
        wrote.extend(pages.objects());
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

#[cfg(test)]
mod tests {
    use super::with_draft_while;

    #[tokio::test]
    async fn a_draft_is_finished_only_when_the_main_outcome_wants_it() {
        // Not wanted: dropped unfinished (a draft that never ends does not hold the run).
        let (outcome, drafted) =
            with_draft_while(async { 1 }, std::future::pending::<u8>(), |_| false).await;
        assert_eq!((outcome, drafted), (1, None));
        // Wanted: awaited after the main future.
        let slow_draft = async {
            tokio::task::yield_now().await;
            7
        };
        let (outcome, drafted) = with_draft_while(async { 2 }, slow_draft, |&o| o == 2).await;
        assert_eq!((outcome, drafted), (2, Some(7)));
        // Finished first: kept whatever the outcome (the caller decides).
        let slow_main = async {
            tokio::task::yield_now().await;
            4
        };
        let (outcome, drafted) = with_draft_while(slow_main, async { 3 }, |_| false).await;
        assert_eq!((outcome, drafted), (4, Some(3)));
    }
}
