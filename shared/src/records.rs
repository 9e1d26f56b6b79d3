//! Every record the pipeline persists about itself, each a small versioned JSON object: which
//! source files were ingested (the ancestor of the seed's `ingestedfiles.txt`), what a score
//! measured, what is live in production, what the diagnostics and the report found, and what each
//! full-process run found, decided and wrote. The steps fill them; the types live here, together,
//! so the persisted contract can be read in one file. Field names are part of that contract
//! (people and the API read them): rename nothing lightly.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::dependencies::DependencyStatus;
use crate::location::Location;
use crate::model::ClassificationMetrics;
use crate::stats::DataSummary;
use crate::store::ObjectMeta;

/// Object names inside the configured locations.
pub mod names {
    /// The compiled data set as one Parquet file: how versions before parts stored it (still
    /// read as their part 0), and the seed-compatible name `risk export-compiled` suggests.
    pub const COMPILED_DATA: &str = "finaldata.parquet";
    /// Prefix of the compiled data's Parquet parts in `compiled_data`, Hive-style by ingestion
    /// month (`parts/ingested_month=2026-12/part-<run id>.parquet`).
    pub const COMPILED_PARTS_PREFIX: &str = "parts";
    /// Prefix of the parts' row-fingerprint indexes in `compiled_data` (outside `parts/`, so
    /// engines reading the parts never see them).
    pub const FINGERPRINTS_PREFIX: &str = "fingerprints";
    /// Prefix of the parts' summary statistics (JSON) in `compiled_data`, outside `parts/` too.
    pub const STATISTICS_PREFIX: &str = "stats";
    /// Ingestion record (JSON), in `compiled_data` and, when deployed, in `production`.
    pub const INGESTION_RECORD: &str = "ingestion_record.json";
    /// Seed-compatible list of ingested files, one per line.
    pub const INGESTED_FILES_TXT: &str = "ingestedfiles.txt";
    /// Rejected rows, one CSV per source object version, under this prefix of `compiled_data`.
    pub const QUARANTINE_PREFIX: &str = "quarantine";
    /// Trained model (JSON), in `models` and `production`.
    pub const MODEL: &str = "trainedmodel.json";
    /// Score record (JSON), in `models` and `production`.
    pub const SCORE: &str = "score.json";
    /// Seed-compatible score: the F1 as a bare number.
    pub const LATEST_SCORE_TXT: &str = "latestscore.txt";
    /// What is live, written last by a deployment, in `production`.
    pub const DEPLOYMENT: &str = "deployment.json";
    /// Diagnostics record (JSON), in `reports`.
    pub const DIAGNOSTICS: &str = "diagnostics.json";
    /// Metrics report (JSON and Markdown) and the confusion-matrix plot, in `reports`.
    pub const REPORT_JSON: &str = "report.json";
    pub const REPORT_MARKDOWN: &str = "report.md";
    pub const CONFUSION_MATRIX_PNG: &str = "confusionmatrix.png";
    /// Full-process run records, one per run that found new data, under this prefix of `reports`.
    pub const RUNS_PREFIX: &str = "runs";
    /// Drift reports, one per run that checked the deployed model, under this prefix of `reports`.
    pub const DRIFT_PREFIX: &str = "drift";
    /// The most recent drift report, in `reports`.
    pub const LAST_DRIFT: &str = "drift_latest.json";
    /// The most recent run record, in `reports`.
    pub const LAST_RUN: &str = "last_run.json";
}

/// One version of one object, as records cite it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRef {
    /// Full URL of the object (`s3://bucket/prefix/name` or `file:///dir/name`).
    pub url: String,
    pub version_id: String,
    pub etag: String,
    pub size: u64,
}

impl ObjectRef {
    /// Cites `meta`, an object of `location`.
    pub fn new(location: &Location, meta: &ObjectMeta) -> Self {
        ObjectRef {
            url: location.object_url(&meta.key),
            version_id: meta.version_id.clone(),
            etag: meta.etag.clone(),
            size: meta.size,
        }
    }
}

/// What happened to one version of one source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileOutcome {
    /// Read; its good rows are in the compiled data (bad rows, if any, are quarantined).
    Ingested,
    /// Could not be read as client data at all; kept where it is and reported.
    Rejected,
}

/// One source object version the ingestion has seen. A key uploaded again with new content is a
/// new entry (new version id or ETag), so it is ingested again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestedFile {
    /// Key relative to the source-data location.
    pub key: String,
    pub version_id: String,
    pub etag: String,
    pub size: u64,
    pub outcome: FileOutcome,
    /// Data rows in the file (header and blank lines excluded).
    pub rows_read: u64,
    /// Rows that passed validation.
    pub rows_accepted: u64,
    /// Rows that broke the schema; kept in `quarantine`.
    pub rows_rejected: u64,
    /// Accepted rows that were exact duplicates of rows already compiled.
    pub rows_duplicate: u64,
    /// Missing (empty) values per column among accepted rows.
    pub missing_values: BTreeMap<String, u64>,
    /// Why the whole file was rejected.
    pub error: Option<String>,
    /// Non-fatal remarks (e.g. extra columns ignored).
    pub warnings: Vec<String>,
    /// The rejected rows, with their reasons, when there were any.
    pub quarantine: Option<ObjectRef>,
    pub ingested_at: DateTime<Utc>,
    /// The run that ingested it.
    pub run_id: String,
}

impl IngestedFile {
    /// Whether this entry is the given version of the given object.
    pub fn is_same_object(&self, meta: &ObjectMeta) -> bool {
        self.key == meta.key && self.version_id == meta.version_id && self.etag == meta.etag
    }
}

/// The ingestion record: every source object version seen, and the compiled data set they make.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestionRecord {
    /// Source location the keys are relative to.
    pub source: String,
    pub files: Vec<IngestedFile>,
    /// The compiled data set built from every ingested file; `None` before the first ingestion.
    pub compiled: Option<CompiledData>,
    pub updated_at: Option<DateTime<Utc>>,
}

impl IngestionRecord {
    /// The seed's `ingestedfiles.txt`: one ingested key per line, in ingestion order.
    pub fn ingested_files_text(&self) -> String {
        self.files
            .iter()
            .filter(|f| f.outcome == FileOutcome::Ingested)
            .map(|f| format!("{}\n", f.key))
            .collect()
    }
}

/// The compiled training data set, as of one ingestion: one logical table whose rows are the
/// parts' rows in manifest order (each ingestion that adds rows appends one part, or one per
/// million rows).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompiledData {
    /// The newest part: which version of the compiled data this is (every ingestion that adds
    /// rows writes a new part). In a record written before parts, the single compiled file.
    pub object: ObjectRef,
    pub rows: u64,
    /// Exact duplicate rows dropped over all ingestions.
    pub duplicates_dropped: u64,
    /// The manifest: every part, in compiled order. Empty in a record written before parts,
    /// whose single file `object` is then the only part (see [`CompiledData::parts`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<CompiledPart>,
}

impl CompiledData {
    /// The parts in compiled order; a record from before parts has its one file as part 0.
    pub fn parts(&self) -> Vec<CompiledPart> {
        if self.parts.is_empty() {
            return vec![CompiledPart {
                key: names::COMPILED_DATA.to_string(),
                object: self.object.clone(),
                rows: self.rows,
                first_row: 0,
                fingerprints: None,
                statistics: None,
            }];
        }
        self.parts.clone()
    }
}

/// One Parquet part of the compiled data, written once and never rewritten.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompiledPart {
    /// Key relative to the compiled-data location (`parts/ingested_month=…/part-….parquet`).
    pub key: String,
    pub object: ObjectRef,
    pub rows: u64,
    /// Position of its first row in the whole compiled data.
    pub first_row: u64,
    /// Its rows' 128-bit fingerprints, sorted (`fingerprints/…`, 16 bytes a row), so a new file
    /// is de-duplicated without decoding this part. `None` for a part written before the index
    /// (decoded instead; the next ingestion that adds rows writes its index).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprints: Option<FingerprintIndex>,
    /// Its rows' summary statistics in mergeable form (`stats/…`, [`crate::stats::DataStatistics`]
    /// as JSON), so the diagnostics summarise the history without decoding it. `None` for a part
    /// written before them (summarised from its rows instead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statistics: Option<PartStatistics>,
}

/// The statistics object of one part, written once with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartStatistics {
    /// Key relative to the compiled-data location.
    pub key: String,
    pub object: ObjectRef,
}

/// The fingerprint index of one part, written once with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FingerprintIndex {
    /// Key relative to the compiled-data location.
    pub key: String,
    pub object: ObjectRef,
}

/// A deployment: which versions are live. Written last, so production is never half-updated:
/// readers go through this record and fetch exactly these versions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentRecord {
    /// The model in production, and the `models` version it was copied from.
    pub model: ObjectRef,
    pub model_source: ObjectRef,
    pub score: ObjectRef,
    pub score_source: ObjectRef,
    pub ingestion_record: ObjectRef,
    pub ingestion_record_source: ObjectRef,
    /// F1 of the deployed model on the test data when it was deployed.
    pub f1: f64,
    pub deployed_at: DateTime<Utc>,
    pub run_id: String,
    /// The compiled data this model was last checked against, every step after the check
    /// (scoring, diagnostics, reports) done. `None` right after a deployment, until the full
    /// process finishes it; compiled data newer than this is work a run still has to do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked_against: Option<CheckedData>,
}

/// One version of the compiled data, as a deployment was checked against it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckedData {
    /// The compiled data set (`finaldata.parquet`) version.
    pub data: ObjectRef,
    /// Its rows: the rows after these are the ones the model has not been checked on.
    pub rows: u64,
    pub checked_at: DateTime<Utc>,
    /// The run that finished the check.
    pub run_id: String,
    /// Digest of a source listing every object of which this data includes
    /// ([`crate::steps::idle`]): a tick whose listing has this digest has nothing to do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_listing: Option<String>,
}

/// A saved score: a model version's metrics on the test data, in `models` and, when deployed, in
/// `production`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreRecord {
    /// The model version scored.
    pub model: ObjectRef,
    /// The test files scored on, with their versions.
    pub data: Vec<ObjectRef>,
    pub metrics: ClassificationMetrics,
    /// The decision threshold `metrics` were computed at (the model's own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// The same rows at the customary 0.5, for comparison with a tuned threshold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_at_half: Option<ClassificationMetrics>,
    /// Test rows left out because `exited` was missing.
    pub excluded_missing_target: usize,
    /// Test rows left out because they broke the schema.
    pub rows_rejected: u64,
    pub scored_at: DateTime<Utc>,
    pub run_id: String,
}

impl ScoreRecord {
    pub fn f1(&self) -> f64 {
        self.metrics.f1
    }
}

/// One row's prediction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PredictionRow {
    pub corporation: Option<String>,
    /// Probability that the client leaves.
    pub probability: f64,
    /// 1 when `probability` reaches the model's threshold.
    pub predicted: u8,
    /// The known outcome, when the data set has one.
    pub actual: Option<u8>,
}

/// Predictions of a model for a data set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PredictionSet {
    pub model: ObjectRef,
    pub data: Vec<ObjectRef>,
    pub rows: Vec<PredictionRow>,
}

/// Missing values of one column, as a share.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MissingShare {
    pub column: String,
    pub missing: u64,
    pub percent: f64,
}

/// How long ingestion and training took: as the run that trained the deployed model measured
/// them (its run record's steps), or, when asked explicitly, re-measured over every source file
/// on scratch storage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    /// The timed ingestion: the run's own (its new files), or every source file when re-timed.
    pub ingestion_ms: f64,
    /// The timed training.
    pub training_ms: f64,
    /// Source files the timed ingestion read.
    pub source_files: usize,
    /// Rows the timed ingestion added to the compiled data.
    pub rows_compiled: u64,
    /// The run whose steps these are; absent when re-timed on scratch storage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// Where a re-timing wrote (never a configured location); absent for a run's own timings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scratch_location: Option<String>,
}

impl Timings {
    /// A run's own ingestion and training times, from its step timings; `None` unless it
    /// trained (a run that only checked for drift timed no training).
    pub fn from_run(
        run_id: &str,
        steps: &[StepTiming],
        source_files: usize,
        rows_added: u64,
    ) -> Option<Timings> {
        let ms = |name: &str| steps.iter().find(|s| s.step == name).map(|s| s.ms);
        Some(Timings {
            ingestion_ms: ms("ingestion")?,
            training_ms: ms("training")?,
            source_files,
            rows_compiled: rows_added,
            run_id: Some(run_id.to_string()),
            scratch_location: None,
        })
    }

    /// The ingestion and training times a run record holds.
    pub fn from_run_record(record: &RunRecord) -> Option<Timings> {
        Timings::from_run(
            &record.run_id,
            &record.steps,
            record.new_files.len(),
            record.rows_added,
        )
    }
}

/// The diagnostics record, in `reports`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiagnosticsRecord {
    pub predictions: PredictionSet,
    pub compiled_data: ObjectRef,
    pub summary: DataSummary,
    pub missing_values: Vec<MissingShare>,
    /// `None` when the timing run failed; the reason is in `timing_error`.
    pub timings: Option<Timings>,
    pub timing_error: Option<String>,
    pub dependencies: Vec<DependencyStatus>,
    /// When the index gave the oldest of `dependencies`' answers (they are reused for a day);
    /// absent from records written before answers were reused.
    #[serde(default)]
    pub dependencies_checked_at: Option<DateTime<Utc>>,
    pub generated_at: DateTime<Utc>,
    pub run_id: String,
}

/// One coefficient of the deployed model, in raw feature units (for people reading the report).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Coefficient {
    pub feature: String,
    pub per_unit: f64,
    pub standardized: f64,
}

/// The metrics report (`report.json`, in `reports`; `report.md` is its Markdown form).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub model: ObjectRef,
    /// F1 recorded at deployment.
    pub deployed_f1: f64,
    pub deployed_at: DateTime<Utc>,
    pub test_data: Vec<ObjectRef>,
    pub metrics: ClassificationMetrics,
    pub coefficients: Vec<Coefficient>,
    pub intercept_per_unit: f64,
    pub training_rows: usize,
    pub training_data: Option<String>,
    /// The decision threshold the metrics are at (the model's own, tuned or 0.5).
    #[serde(default)]
    pub threshold: f64,
    pub confusion_matrix_png: ObjectRef,
    pub generated_at: DateTime<Utc>,
    pub run_id: String,
    /// Bootstrap intervals of F1 and ROC AUC on `test_data`, which the HTML page reuses while
    /// the model and the test data are these (absent from reports written before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_intervals: Option<TestIntervals>,
}

/// Percentile-bootstrap intervals of a model's F1 (at its threshold) and ROC AUC on the test
/// data, with the confidence and the number of resamples they were drawn with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestIntervals {
    pub confidence: crate::drift::stats::ConfidenceLevel,
    pub resamples: usize,
    pub f1: Option<crate::drift::stats::performance::BootstrapInterval>,
    pub roc_auc: Option<crate::drift::stats::performance::BootstrapInterval>,
}

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
    /// The deployed model passed the drift check ([`crate::drift`]) on the new rows: kept.
    NoDrift,
    /// Fewer new labelled rows than the drift check needs: not evidence either way; kept.
    TooFewRows,
    /// Feature distributions moved but the model's performance held: reported, kept.
    DataDrift,
    /// The deployed model failed the drift check on the new rows: retrained and redeployed.
    Drift,
    /// The deployed model drifted and was retrained, but the challenger was not at least as
    /// good on the same recent rows: the champion stays.
    ChallengerRejected,
    /// An earlier run stopped after deploying (a crash, a timeout): this run finished what it
    /// left undone (diagnostics and reports when they were not of the deployed model) and found
    /// no row the deployed model had not seen.
    Resumed,
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

/// The record of one full-process run, in `reports` (`runs/<run id>.json` and `last_run.json`).
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
    /// The deployed model before and after this run (production's copies).
    pub model_before: Option<ObjectRef>,
    pub model_after: Option<ObjectRef>,
    /// The same models as versions of the models location, the ids `risk deploy
    /// --model-version` takes for a rollback; absent from records written before they were kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_version_before: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_version_after: Option<String>,
    /// F1 of the newly trained model on the test data, when one was trained.
    pub new_model_f1: Option<f64>,
    /// The drift check of the deployed model on the new rows, every figure kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift: Option<crate::drift::report::DriftReport>,
    /// The rows a new model was trained and validated on, when one was trained.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training_window: Option<crate::lifecycle::window::TrainingWindow>,
    /// The champion/challenger comparison, when a retrained model was compared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<crate::lifecycle::gate::GateResult>,
    /// The newly trained model (in the models location), deployed or not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub challenger: Option<ObjectRef>,
    /// The risk list this run wrote (when it deployed a model or added rows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk_list: Option<crate::risklist::RiskListRecord>,
    /// Every object this run wrote, with its version.
    pub wrote: Vec<ObjectRef>,
    pub steps: Vec<StepTiming>,
}

/// One drift check as kept in `reports/drift/<run>.json` and `reports/drift_latest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftEntry {
    pub run_id: String,
    pub checked_at: DateTime<Utc>,
    pub report: crate::drift::report::DriftReport,
}
