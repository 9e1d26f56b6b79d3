//! The records the pipeline keeps about itself, each a small versioned JSON object: which source
//! files were ingested (the ancestor of the seed's `ingestedfiles.txt`), what a score measured,
//! what is live in production, and what each full-process run found, decided and wrote. Field
//! names are part of the public contract (people and the API read them): rename nothing lightly.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::location::Location;
use crate::store::ObjectMeta;

/// Object names inside the configured locations.
pub mod names {
    /// Compiled training data set (Parquet), in `compiled_data`.
    pub const COMPILED_DATA: &str = "finaldata.parquet";
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

/// The compiled training data set, as of one ingestion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompiledData {
    pub object: ObjectRef,
    pub rows: u64,
    /// Exact duplicate rows dropped over all ingestions.
    pub duplicates_dropped: u64,
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
}

/// The short form of a score, as run records cite it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreSummary {
    pub f1: f64,
    pub rows: u64,
    pub score: Option<ObjectRef>,
}
