//! The HTML report: one self-contained page (inline CSS, inline SVG charts, no script, no font,
//! nothing fetched) written to `reports/index.html` after every run that found new data, with a
//! copy per run under `reports/runs/<run>.html`, and served by the API's `GET /report`. [`gather`]
//! reads what the pipeline has recorded — deployment, model, test data, drift reports, run
//! records, ingestion record, quarantine, diagnostics — each part on its own, so a part that does
//! not exist yet becomes a section saying so instead of failing the page; [`html::render`] turns
//! that into the page, and [`stats`] computes the curves and intervals it shows.

pub mod html;
pub mod stats;
pub mod svg;

use bytes::Bytes;
use chrono::{DateTime, Utc};

use crate::drift::report::bootstrap_f1_and_auc;
use crate::drift::stats::{
    BootstrapInterval, ConfidenceLevel, MeanInterval, log_loss_per_row, mean_interval,
};
use crate::lifecycle::profile::labelled_probabilities;
use crate::model::{ClassificationMetrics, TrainedModel, classification_metrics};
use crate::records::{
    DeploymentRecord, DiagnosticsRecord, DriftEntry, IngestionRecord, ObjectRef, RunRecord, names,
};
use crate::steps::deployment::current_deployment;
use crate::steps::scoring::read_csv_location;
use crate::steps::training::load_model;
use crate::steps::{Pipeline, StepError};
use crate::store::PutMode;

/// The latest page, in `reports`.
pub const INDEX_HTML: &str = "index.html";
/// Run records kept on the page's history (the newest).
pub const HISTORY_RUNS: usize = 200;
/// Run records the history section reads at once.
const RUN_RECORDS_AT_ONCE: usize = 16;
/// Quarantine files read to count rejected rows by reason (the newest), and the most bytes read
/// of each: the page stays cheap however much was rejected over the years.
pub const QUARANTINE_FILES_READ: usize = 50;
pub const QUARANTINE_BYTES_READ: usize = 4 << 20;

/// The per-run copy of the page, in `reports`.
pub fn run_page_name(run_id: &str) -> String {
    format!("{}/{run_id}.html", names::RUNS_PREFIX)
}

/// One part of the page: its data, or why it is not available (shown in its section).
pub type Part<T> = Result<T, String>;

/// What the model card shows.
#[derive(Debug, Clone)]
pub struct ModelCard {
    pub deployment: DeploymentRecord,
    pub model: TrainedModel,
    /// The run that deployed the model (why it was deployed), when its record is kept.
    pub deployed_by: Option<RunRecord>,
}

/// The deployed model on the test data: every row's label and probability, and the metrics at
/// the model's threshold with their intervals.
#[derive(Debug, Clone)]
pub struct TestFigures {
    pub files: Vec<ObjectRef>,
    pub labels: Vec<u8>,
    pub probabilities: Vec<f64>,
    pub threshold: f64,
    pub metrics: ClassificationMetrics,
    pub f1: Option<BootstrapInterval>,
    pub roc_auc: Option<BootstrapInterval>,
    pub log_loss: Option<MeanInterval>,
}

/// Rejected rows of one (column, problem) kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectionReason {
    pub column: String,
    pub kind: String,
    pub rows: u64,
    /// One reason in words, as an example.
    pub example: String,
}

/// What the data-quality section shows.
#[derive(Debug, Clone)]
pub struct DataQuality {
    pub ingestion: IngestionRecord,
    pub reasons: Vec<RejectionReason>,
    /// Quarantine files that could not be read or were read only in part.
    pub notes: Vec<String>,
    pub diagnostics: Option<DiagnosticsRecord>,
}

/// One client of the risk list, as the page shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct AtRiskClient {
    pub rank: u32,
    pub client: String,
    pub probability: f64,
    /// The risk band's name (`high`, `watch`, `low`).
    pub band: &'static str,
    /// The change of the probability since the previous list, when the client was ranked there.
    pub change: Option<f64>,
    pub newly_high: bool,
    /// What drives the risk, in words, strongest first.
    pub drivers: Vec<String>,
}

/// The top of the risk list, and where the full list is.
#[derive(Debug, Clone, PartialEq)]
pub struct RiskList {
    pub clients: Vec<AtRiskClient>,
    /// How many clients are ranked, and how many of them are in the high band.
    pub ranked: usize,
    pub high: usize,
    /// Clients who left within the new data (marked in the full list), and those who left
    /// before it (counted only).
    pub exited: u64,
    pub exited_earlier: u64,
    pub generated_at: DateTime<Utc>,
    pub full_list: String,
}

/// How many clients the page lists; the API (`GET /risk`) and the CSV have them all.
const TOP_AT_RISK: usize = 10;
/// How many drivers the page names per client.
const DRIVERS_SHOWN: usize = 2;

/// Everything the page shows.
#[derive(Debug, Clone)]
pub struct PageData {
    pub run_id: String,
    pub generated_at: DateTime<Utc>,
    pub confidence: ConfidenceLevel,
    pub card: Part<ModelCard>,
    pub test: Part<TestFigures>,
    pub drift: Part<DriftEntry>,
    pub runs: Part<Vec<RunRecord>>,
    pub quality: Part<DataQuality>,
    pub risk: Part<RiskList>,
}

/// The objects one publication wrote.
#[derive(Debug, Clone)]
pub struct HtmlPages {
    pub latest: ObjectRef,
    pub run_copy: ObjectRef,
}

/// Gathers the page's data and writes `index.html` and the run's copy. `current_run`: the
/// record of the run writing the page, when it is not stored yet (the full process writes the
/// page before the record that lists it); `written_list`: the risk list that run just wrote,
/// so it is not read back.
pub async fn publish_html(
    pipeline: &Pipeline,
    run_id: &str,
    current_run: Option<&RunRecord>,
    written_list: Option<&crate::risklist::BuiltList>,
) -> Result<HtmlPages, StepError> {
    let data = gather(pipeline, run_id, current_run, written_list).await;
    let page = Bytes::from(html::render(&data));
    let reports = &pipeline.locations.reports;
    let run_copy = reports
        .put(&run_page_name(run_id), page.clone(), PutMode::Overwrite)
        .await?;
    let latest = reports.put(INDEX_HTML, page, PutMode::Overwrite).await?;
    let pages = HtmlPages {
        latest: ObjectRef::new(reports, &latest),
        run_copy: ObjectRef::new(reports, &run_copy),
    };
    tracing::info!(page = %pages.latest.url, bytes = pages.latest.size, "HTML report written");
    Ok(pages)
}

impl HtmlPages {
    pub fn objects(&self) -> [ObjectRef; 2] {
        [self.run_copy.clone(), self.latest.clone()]
    }
}

/// [`publish_html`] for a full-process run, with its record so far: the page is a view of what
/// is kept, so failing to write it is logged, never a failed run.
pub async fn publish_for_run(
    pipeline: &Pipeline,
    run: &RunRecord,
    written_list: Option<&crate::risklist::BuiltList>,
) -> Option<HtmlPages> {
    match publish_html(pipeline, &run.run_id, Some(run), written_list).await {
        Ok(pages) => Some(pages),
        Err(error) => {
            tracing::warn!("the HTML report was not written: {error}");
            None
        }
    }
}

/// Reads every part of the page; a part that is missing or unreadable says why.
pub async fn gather(
    pipeline: &Pipeline,
    run_id: &str,
    current_run: Option<&RunRecord>,
    written_list: Option<&crate::risklist::BuiltList>,
) -> PageData {
    let card = model_card(pipeline, current_run).await;
    let test = async {
        match &card {
            Ok(card) => test_figures(pipeline, card).await,
            Err(_) => Err("no model is deployed yet: the full process bootstraps one".to_string()),
        }
    };
    let (test, drift, runs, quality, risk) = tokio::join!(
        test,
        latest_drift(pipeline),
        run_history(pipeline, current_run),
        data_quality(pipeline),
        risk_list(pipeline, written_list),
    );
    PageData {
        run_id: run_id.to_string(),
        generated_at: Utc::now(),
        confidence: pipeline.lifecycle.confidence,
        card,
        test,
        drift,
        runs,
        quality,
        risk,
    }
}

async fn model_card(pipeline: &Pipeline, current_run: Option<&RunRecord>) -> Part<ModelCard> {
    let deployment = current_deployment(pipeline)
        .await
        .map_err(|e| format!("the deployment record could not be read: {e}"))?
        .ok_or_else(|| "no model is deployed yet: the full process bootstraps one".to_string())?;
    let (_, model) = load_model(
        &pipeline.locations.production,
        Some(&deployment.model.version_id),
    )
    .await
    .map_err(|e| format!("the deployed model could not be read: {e}"))?;
    let this_run = current_run
        .filter(|run| run.run_id == deployment.run_id)
        .cloned();
    let deployed_by = match this_run {
        Some(run) => Some(run),
        None => pipeline
            .locations
            .reports
            .get_json_if_exists::<RunRecord>(
                &format!("{}/{}.json", names::RUNS_PREFIX, deployment.run_id),
                "run record",
            )
            .await
            .ok()
            .flatten()
            .map(|(_, record)| record),
    };
    Ok(ModelCard {
        deployment,
        model,
        deployed_by,
    })
}

async fn test_figures(pipeline: &Pipeline, card: &ModelCard) -> Part<TestFigures> {
    let reports = &pipeline.locations.reports;
    let (test, report) = tokio::join!(
        read_csv_location(&pipeline.locations.test_data),
        reports.get_json_if_exists::<crate::records::Report>(names::REPORT_JSON, "report"),
    );
    let test = test.map_err(|e| format!("the test data could not be read: {e}"))?;
    if test.rows() == 0 {
        return Err(format!(
            "there is no test data in {}",
            pipeline.locations.test_data.url()
        ));
    }
    let confidence = pipeline.lifecycle.confidence;
    let resamples = pipeline.lifecycle.bootstrap_resamples;
    // The reporting step's intervals, when they are of this model, these test files and these
    // settings: the bootstraps are then not drawn again on every page.
    let drawn = report.ok().flatten().and_then(|(_, report)| {
        let intervals = report.test_intervals?;
        (report.model.version_id == card.deployment.model.version_id
            && report.test_data == test.files
            && intervals.confidence == confidence
            && intervals.resamples == resamples)
            .then_some((intervals.f1, intervals.roc_auc))
    });
    let model = card.model.clone();
    let files = test.files;
    let batches = test.batches;
    let computed = tokio::task::spawn_blocking(move || {
        let (labels, probabilities) =
            labelled_probabilities(&model, &batches).map_err(|e| e.to_string())?;
        let threshold = model.threshold();
        match drawn {
            Some(drawn) => test_metrics_with(labels, probabilities, threshold, confidence, drawn),
            None => test_metrics(labels, probabilities, threshold, confidence, resamples),
        }
    })
    .await
    .map_err(|e| format!("the test figures could not be computed: {e}"))?;
    computed.map(|mut figures| {
        figures.files = files;
        figures
    })
}

/// Metrics at `threshold` with intervals: bootstrap for F1 and ROC AUC (the drift report's seed
/// and subsample rule), the normal interval of the mean for the log loss.
pub fn test_metrics(
    labels: Vec<u8>,
    probabilities: Vec<f64>,
    threshold: f64,
    confidence: ConfidenceLevel,
    resamples: usize,
) -> Result<TestFigures, String> {
    let intervals = bootstrap_f1_and_auc(&labels, &probabilities, threshold, resamples, confidence);
    test_metrics_with(labels, probabilities, threshold, confidence, intervals)
}

/// [`test_metrics`] with F1 and ROC AUC intervals drawn before (the reporting step's).
fn test_metrics_with(
    labels: Vec<u8>,
    probabilities: Vec<f64>,
    threshold: f64,
    confidence: ConfidenceLevel,
    (f1, roc_auc): (Option<BootstrapInterval>, Option<BootstrapInterval>),
) -> Result<TestFigures, String> {
    let predicted: Vec<u8> = probabilities
        .iter()
        .map(|&p| u8::from(p >= threshold))
        .collect();
    let metrics = classification_metrics(&labels, &predicted, &probabilities)
        .map_err(|e| format!("no labelled test rows to score: {e}"))?;
    let log_loss = log_loss_per_row(&labels, &probabilities)
        .ok()
        .and_then(|losses| mean_interval(&losses, confidence).ok());
    Ok(TestFigures {
        files: Vec::new(),
        labels,
        probabilities,
        threshold,
        metrics,
        f1,
        roc_auc,
        log_loss,
    })
}

async fn latest_drift(pipeline: &Pipeline) -> Part<DriftEntry> {
    pipeline
        .locations
        .reports
        .get_json_if_exists::<DriftEntry>(names::LAST_DRIFT, "drift report")
        .await
        .map_err(|e| format!("the latest drift report could not be read: {e}"))?
        .map(|(_, entry)| entry)
        .ok_or_else(|| {
            "no drift check has run yet: it runs when new rows arrive for a deployed model"
                .to_string()
        })
}

async fn run_history(pipeline: &Pipeline, current_run: Option<&RunRecord>) -> Part<Vec<RunRecord>> {
    let reports = &pipeline.locations.reports;
    let mut keys: Vec<String> = reports
        .list(&format!("{}/", names::RUNS_PREFIX))
        .await
        .map_err(|e| format!("the run records could not be listed: {e}"))?
        .into_iter()
        .map(|meta| meta.key)
        .filter(|key| key.ends_with(".json"))
        .collect();
    // Run ids start with their time: the newest sort last.
    keys.sort_unstable();
    let skip = keys.len().saturating_sub(HISTORY_RUNS);
    // Read RUN_RECORDS_AT_ONCE at a time: on S3 each is a request, and 200 in turn took seconds.
    let permits = std::sync::Arc::new(tokio::sync::Semaphore::new(RUN_RECORDS_AT_ONCE));
    let mut reads = tokio::task::JoinSet::new();
    for key in &keys[skip..] {
        let (reports, key, permits) = (reports.clone(), key.clone(), permits.clone());
        reads.spawn(async move {
            let _permit = permits.acquire_owned().await;
            reports
                .get_json::<RunRecord>(&key, "run record", None)
                .await
        });
    }
    let mut runs = Vec::new();
    for read in reads.join_all().await {
        // One unreadable record leaves a gap, not an empty history.
        match read {
            Ok((_, record)) => runs.push(record),
            Err(error) => tracing::warn!("run record left off the report: {error}"),
        }
    }
    if let Some(run) = current_run
        && !runs.iter().any(|r| r.run_id == run.run_id)
    {
        runs.push(run.clone());
    }
    runs.sort_by_key(|run| run.started_at);
    if runs.is_empty() {
        return Err(
            "no run record yet: the full process writes one per run that finds new files".into(),
        );
    }
    Ok(runs)
}

async fn data_quality(pipeline: &Pipeline) -> Part<DataQuality> {
    let compiled = &pipeline.locations.compiled_data;
    let ingestion = compiled
        .get_json_if_exists::<IngestionRecord>(names::INGESTION_RECORD, "ingestion record")
        .await
        .map_err(|e| format!("the ingestion record could not be read: {e}"))?
        .map(|(_, record)| record)
        .ok_or_else(|| "nothing has been ingested yet".to_string())?;
    let mut reasons: Vec<RejectionReason> = Vec::new();
    let mut notes = Vec::new();
    let quarantined: Vec<&ObjectRef> = ingestion
        .files
        .iter()
        .rev()
        .filter_map(|f| f.quarantine.as_ref())
        .collect();
    if quarantined.len() > QUARANTINE_FILES_READ {
        notes.push(format!(
            "rejection reasons are counted over the newest {QUARANTINE_FILES_READ} of {} quarantine files",
            quarantined.len()
        ));
    }
    for object in quarantined.into_iter().take(QUARANTINE_FILES_READ) {
        let Some(name) = object
            .url
            .strip_prefix(compiled.url().trim_end_matches('/'))
            .map(|rest| rest.trim_start_matches('/'))
        else {
            continue;
        };
        match compiled.get(name, Some(&object.version_id)).await {
            Ok((_, body)) => {
                let body = if body.len() > QUARANTINE_BYTES_READ {
                    notes.push(format!(
                        "{name}: only its first {} MiB were read",
                        QUARANTINE_BYTES_READ >> 20
                    ));
                    body.slice(..QUARANTINE_BYTES_READ)
                } else {
                    body
                };
                count_reasons(&body, &mut reasons);
            }
            Err(error) => notes.push(format!("{name} could not be read: {error}")),
        }
    }
    reasons.sort_by(|a, b| b.rows.cmp(&a.rows).then(a.column.cmp(&b.column)));
    let diagnostics = pipeline
        .locations
        .reports
        .get_json_if_exists::<DiagnosticsRecord>(names::DIAGNOSTICS, "diagnostics record")
        .await
        .ok()
        .flatten()
        .map(|(_, record)| record);
    Ok(DataQuality {
        ingestion,
        reasons,
        notes,
        diagnostics,
    })
}

/// Adds the rows of a quarantine CSV (`file,line,column,kind,reason,record`) to `reasons`.
pub fn count_reasons(csv_text: &[u8], reasons: &mut Vec<RejectionReason>) {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(csv_text);
    for record in reader.records().flatten() {
        let column = record.get(2).unwrap_or("").to_string();
        let kind = record.get(3).unwrap_or("").to_string();
        match reasons
            .iter_mut()
            .find(|r| r.column == column && r.kind == kind)
        {
            Some(reason) => reason.rows += 1,
            None => reasons.push(RejectionReason {
                example: record.get(4).unwrap_or("").to_string(),
                column,
                kind,
                rows: 1,
            }),
        }
    }
}

/// The top of the latest risk list, with its drivers: `written` when the run writing the page
/// has it in hand, else `reports/risk/latest.parquet`.
pub async fn risk_list(
    pipeline: &Pipeline,
    written: Option<&crate::risklist::BuiltList>,
) -> Part<RiskList> {
    let reports = &pipeline.locations.reports;
    // The meta and the first ranked entries: all the section shows.
    let (meta, top) = match written {
        Some(list) => (list.meta.clone(), list.top_ranked(TOP_AT_RISK)),
        None => match crate::risklist::load_latest(reports).await {
            Ok(Some(list)) => {
                let top = list.ranked().take(TOP_AT_RISK).cloned().collect();
                (list.meta, top)
            }
            Ok(None) => {
                return Err("not available yet: no risk list has been written (the full process writes one once a model is deployed; `risk at-risk --refresh` writes one now)".to_string());
            }
            Err(e) => return Err(format!("the latest risk list could not be read: {e}")),
        },
    };
    let clients = top
        .into_iter()
        .filter_map(|entry| {
            Some(AtRiskClient {
                rank: entry.rank?,
                probability: entry.probability?,
                band: entry.band?.name(),
                change: entry.probability_change,
                newly_high: entry.newly_high,
                drivers: entry
                    .drivers
                    .iter()
                    .take(DRIVERS_SHOWN)
                    .map(|d| d.phrase.to_string())
                    .collect(),
                client: entry.corporation,
            })
        })
        .collect();
    Ok(RiskList {
        clients,
        ranked: usize::try_from(meta.ranked).unwrap_or(usize::MAX),
        high: usize::try_from(meta.high).unwrap_or(usize::MAX),
        exited: meta.exited,
        exited_earlier: meta.exited_earlier,
        generated_at: meta.generated_at,
        full_list: reports.object_url(crate::risklist::store::LATEST_CSV),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_section_says_what_is_missing_before_anything_ran() {
        let dir = tempfile::tempdir().unwrap();
        let (_, pipeline) = crate::testing::local_pipeline(dir.path());
        let data = gather(&pipeline, "run-empty", None, None).await;
        assert!(data.card.is_err() && data.test.is_err() && data.drift.is_err());
        assert!(data.runs.is_err() && data.quality.is_err() && data.risk.is_err());
        let page = html::render(&data);
        for id in [
            "model", "metrics", "curves", "drift", "history", "quality", "risk",
        ] {
            assert!(page.contains(&format!("<section id=\"{id}\"")), "{id}");
        }
        assert_eq!(page.matches("class=\"na\"").count(), 7, "{page}");
        assert!(page.contains("No model is deployed yet"));
        assert!(page.contains("Nothing has been ingested yet"));
        assert!(page.contains("Not available yet"));
        assert!(!page.contains("<script") && !page.contains("<svg"));
    }

    #[tokio::test]
    async fn the_page_reuses_the_reports_intervals_while_the_model_and_test_data_are_the_same() {
        use crate::records::Report;
        let dir = tempfile::tempdir().unwrap();
        let (_, pipeline) = crate::testing::local_pipeline(dir.path());
        crate::testing::place_seed_source_files(dir.path());
        crate::steps::fullprocess::run_full_process(&pipeline, "run-boot")
            .await
            .unwrap();
        let reports = &pipeline.locations.reports;
        let (_, report) = reports
            .get_json::<Report>(names::REPORT_JSON, "report", None)
            .await
            .unwrap();
        let drawn = report.test_intervals.clone().expect("reporting draws them");
        let card = model_card(&pipeline, None).await.unwrap();
        let shown = test_figures(&pipeline, &card).await.unwrap();
        let (confidence, resamples) = (
            pipeline.lifecycle.confidence,
            pipeline.lifecycle.bootstrap_resamples,
        );
        let fresh = |figures: &TestFigures| {
            let (labels, probabilities) = (figures.labels.clone(), figures.probabilities.clone());
            test_metrics(
                labels,
                probabilities,
                figures.threshold,
                confidence,
                resamples,
            )
            .unwrap()
        };
        let again = fresh(&shown);
        assert!(again.f1.is_some() && again.roc_auc.is_some());
        assert_eq!((&shown.f1, &shown.roc_auc), (&again.f1, &again.roc_auc));
        assert_eq!((&drawn.f1, &drawn.roc_auc), (&again.f1, &again.roc_auc));
        assert_eq!(shown.log_loss, again.log_loss);

        // Taken from the report, not drawn again: what the report says is what the page shows.
        let mut marked = report.clone();
        let intervals = marked.test_intervals.as_mut().unwrap();
        intervals.f1.as_mut().unwrap().estimate = 0.123;
        reports
            .put_json(names::REPORT_JSON, "report", &marked, PutMode::Overwrite)
            .await
            .unwrap();
        let shown = test_figures(&pipeline, &card).await.unwrap();
        assert_eq!(shown.f1.as_ref().map(|f1| f1.estimate), Some(0.123));
        // A new version of the test data: drawn again.
        let test_file = dir.path().join("testdata/testdata.csv");
        let body = bytes::Bytes::from(std::fs::read(&test_file).unwrap());
        (pipeline.locations.test_data)
            .put("testdata.csv", body, PutMode::Overwrite)
            .await
            .unwrap();
        let shown = test_figures(&pipeline, &card).await.unwrap();
        assert_eq!((&shown.f1, &shown.roc_auc), (&again.f1, &again.roc_auc));
    }

    #[tokio::test]
    async fn after_a_bootstrap_the_page_has_every_chart_but_drift() {
        let dir = tempfile::tempdir().unwrap();
        let (_, pipeline) = crate::testing::local_pipeline(dir.path());
        crate::testing::place_seed_source_files(dir.path());
        let record = crate::steps::fullprocess::run_full_process(&pipeline, "run-boot")
            .await
            .unwrap();
        let pages = record
            .wrote
            .iter()
            .filter(|o| o.url.ends_with(".html"))
            .count();
        assert_eq!(
            pages, 2,
            "index.html and runs/run-boot.html are in the run record"
        );
        let (_, page) = pipeline
            .locations
            .reports
            .get(INDEX_HTML, None)
            .await
            .unwrap();
        let page = String::from_utf8(page.to_vec()).unwrap();
        // Confusion matrix, ROC, PR, calibration, scores, history; no drift check yet.
        assert_eq!(page.matches("<svg class=\"chart").count(), 6);
        assert!(page.contains("No drift check has run yet"));
        assert!(page.contains("bootstrap: first deployment"));
        assert!(!page.contains("NaN") && !page.contains("inf<"));
        // The at-risk section is the top of the list the run wrote, most at risk first.
        let list = crate::risklist::load_latest(&pipeline.locations.reports)
            .await
            .unwrap()
            .expect("the bootstrap wrote a risk list");
        let risk = risk_list(&pipeline, None).await.unwrap();
        let ranked: Vec<_> = list.ranked().collect();
        assert_eq!(risk.ranked, ranked.len());
        assert_eq!(risk.clients.len(), ranked.len().min(TOP_AT_RISK));
        for (shown, entry) in risk.clients.iter().zip(&ranked) {
            assert_eq!(shown.client, entry.corporation);
            assert_eq!(Some(shown.probability), entry.probability);
            assert_eq!(
                shown.drivers.first(),
                entry.drivers.first().map(|d| d.phrase.to_string()).as_ref()
            );
        }
        assert!(
            risk.clients
                .windows(2)
                .all(|w| w[0].probability >= w[1].probability)
        );
        let top = &risk.clients[0];
        assert!(
            page.contains(&format!("<th scope=\"row\">{}</th>", top.client)),
            "{page}"
        );
        assert!(page.contains("risk/latest.csv"));
        // The clients not ranked are accounted for: the exits of the new data and the earlier ones.
        assert_eq!(
            (risk.exited, risk.exited_earlier),
            (list.meta.exited, list.meta.exited_earlier)
        );
        assert!(risk.exited > 0, "the seed data has exits");
        assert!(
            page.contains(&format!(
                "Not ranked: {} clients who left within the new data",
                risk.exited
            )),
            "{page}"
        );
        let copy = pipeline
            .locations
            .reports
            .get(&run_page_name("run-boot"), None)
            .await
            .unwrap()
            .1;
        assert_eq!(copy.as_ref(), page.as_bytes());
    }

    #[test]
    fn counts_rejections_by_column_and_kind() {
        let csv = b"file,line,column,kind,reason,record\n\
            a.csv,3,number_of_employees,not_a_number,\"\"\"x\"\" is not a number\",\"x,1\"\n\
            a.csv,5,number_of_employees,not_a_number,\"\"\"y\"\" is not a number\",\"y,1\"\n\
            a.csv,9,,too_few_fields,the row has 2 fields,\"1,2\"\n";
        let mut reasons = Vec::new();
        count_reasons(csv, &mut reasons);
        count_reasons(csv, &mut reasons);
        assert_eq!(reasons.len(), 2);
        assert_eq!(reasons[0].column, "number_of_employees");
        assert_eq!(reasons[0].rows, 4);
        assert_eq!(reasons[0].example, "\"x\" is not a number");
        assert_eq!(
            (reasons[1].kind.as_str(), reasons[1].rows),
            ("too_few_fields", 2)
        );
    }

    #[test]
    fn test_metrics_carry_intervals_around_their_estimates() {
        let labels: Vec<u8> = (0..60).map(|i| u8::from(i % 3 == 0)).collect();
        let probabilities: Vec<f64> = (0..60)
            .map(|i| {
                if i % 3 == 0 {
                    0.55 + (i % 7) as f64 * 0.05
                } else {
                    0.1 + (i % 11) as f64 * 0.05
                }
            })
            .collect();
        let figures = test_metrics(
            labels,
            probabilities,
            0.5,
            ConfidenceLevel::NINETY_FIVE_PERCENT,
            200,
        )
        .unwrap();
        let f1 = figures.f1.unwrap();
        assert_eq!(f1.estimate, figures.metrics.f1);
        assert!(f1.lower <= f1.estimate && f1.estimate <= f1.upper);
        let auc = figures.roc_auc.unwrap();
        assert_eq!(Some(auc.estimate), figures.metrics.roc_auc);
        let loss = figures.log_loss.unwrap();
        assert!(loss.lower < loss.mean && loss.mean < loss.upper);
        assert!(
            test_metrics(
                Vec::new(),
                Vec::new(),
                0.5,
                ConfidenceLevel::NINETY_FIVE_PERCENT,
                10
            )
            .is_err()
        );
    }
}
