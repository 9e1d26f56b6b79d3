//! The risk list, the output a person acts on: every client's (`corporation`'s) latest known
//! snapshot — its newest ingested row in the compiled data — scored by the deployed model,
//! ranked by the probability of leaving, put in a band, explained by its drivers (each feature's
//! contribution to the log-odds, standardised coefficient × standardised value, in words), and
//! compared with the previous list. Clients whose latest row says they already left are marked
//! `exited`, not ranked — but only those who left within the new data: in the rows added since
//! the previous list (the same rows as it when none were added) or, for a first list, in the
//! newest ingested file. Clients who left earlier
//! are counted (`exited_earlier`), not listed, so a list stays the size of the client base
//! however long the history is. A list is built incrementally from the previous one (its rows
//! overlaid with the rows added since, all re-scored by the deployed model) when the ingestion
//! record extends the data it was built from, and by a full pass over the compiled data
//! otherwise; both give the same list, except that a client who comes back after its exit was
//! dropped from the lists stays counted in `exited_earlier` by an incremental build (telling it
//! from a new client would take reading the whole history again). The list is kept in the
//! reports location as Parquet (self-describing: its provenance is in the file's key-value
//! metadata) and CSV, as `risk/latest.*` (versioned) and a per-run Parquet copy
//! `risk/lists/<run>.parquet` ([`store`]); [`load_latest`] reads it back.
//!
//! Bands ([`RiskBands`]): `high` is a probability at or above the model's decision threshold
//! (the model predicts the client leaves), or a fixed cut-off when one is configured; `watch` is
//! the rest of the top decile (the top 10 % of ranked clients by probability, configurable), so
//! there is always a short list to work through even when few clients cross the threshold;
//! `low` is everyone else. A client in the top decile and above the threshold is `high`.

mod build;
pub mod compiled_rows;
mod drivers;
pub mod store;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use build::{
    BuiltList, LatestRows, PreviousClient, PreviousList, Provenance, build_risk_list, latest_rows,
    latest_rows_newest_first, recent_exits_from, rows_for_new_list,
};
pub use drivers::driver_phrase;
pub use store::{
    HistoryPoint, PreviousRead, RiskListDraft, RiskListRecord, client_history, draft_risk_list,
    load_latest, load_previous, store_draft, write_after_run, write_risk_list,
};

use crate::data::DataError;
use crate::location::RecordError;
use crate::model::ModelError;
use crate::records::IngestionRecord;
use crate::store::StoreError;

/// Environment variables overriding the default [`RiskBands`].
pub const HIGH_PROBABILITY_ENV: &str = "RISK_LIST_HIGH_PROBABILITY";
pub const WATCH_SHARE_ENV: &str = "RISK_LIST_WATCH_SHARE";

/// Everything that can go wrong building, writing or reading a risk list.
#[derive(Debug, thiserror::Error)]
pub enum RiskListError {
    #[error("invalid risk-list setting {setting} = {value:?}: {requirement}")]
    InvalidSetting {
        setting: &'static str,
        value: String,
        requirement: &'static str,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("cannot encode the risk list as {format}: {detail}; this is a bug: report it")]
    Encode {
        format: &'static str,
        detail: String,
    },
    #[error(
        "{url} (version {version}) is not a risk list this version can read: {detail}; write a new one with `risk at-risk --refresh`"
    )]
    Unreadable {
        url: String,
        version: String,
        detail: String,
    },
}

/// The result of a scoped worker thread; a panic in it becomes an error naming `work`.
pub(crate) fn joined<T>(
    worker: std::thread::ScopedJoinHandle<'_, T>,
    work: &'static str,
) -> Result<T, RiskListError> {
    worker.join().map_err(|_| RiskListError::Encode {
        format: work,
        detail: "its worker thread panicked".to_string(),
    })
}

/// How the cut-off of the `high` band is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "rule", content = "probability")]
pub enum HighCutoff {
    /// The deployed model's decision threshold (the default).
    ModelThreshold,
    /// A fixed probability, strictly between 0 and 1.
    Fixed(f64),
}

/// The band cut-offs, valid by construction ([`RiskBands::new`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RiskBands {
    high: HighCutoff,
    watch_share: f64,
}

impl Default for RiskBands {
    fn default() -> Self {
        RiskBands {
            high: HighCutoff::ModelThreshold,
            watch_share: 0.1,
        }
    }
}

impl RiskBands {
    /// `high` at `fixed_high` (default: the model's threshold); `watch` for the rest of the top
    /// `watch_share` of ranked clients (0 turns the band off, 1 puts everyone not high in it).
    pub fn new(fixed_high: Option<f64>, watch_share: f64) -> Result<Self, RiskListError> {
        let high = match fixed_high {
            None => HighCutoff::ModelThreshold,
            Some(p) if p.is_finite() && p > 0.0 && p < 1.0 => HighCutoff::Fixed(p),
            Some(p) => {
                return Err(RiskListError::InvalidSetting {
                    setting: HIGH_PROBABILITY_ENV,
                    value: p.to_string(),
                    requirement: "a probability strictly between 0 and 1 (unset: the model's decision threshold)",
                });
            }
        };
        if !(watch_share.is_finite() && (0.0..=1.0).contains(&watch_share)) {
            return Err(RiskListError::InvalidSetting {
                setting: WATCH_SHARE_ENV,
                value: watch_share.to_string(),
                requirement: "a share between 0 and 1 (0.1: the top decile)",
            });
        }
        Ok(RiskBands { high, watch_share })
    }

    /// The defaults with [`HIGH_PROBABILITY_ENV`] and [`WATCH_SHARE_ENV`] applied.
    pub fn from_env() -> Result<Self, RiskListError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// The defaults with the variables `lookup` finds applied (testable without the process
    /// environment).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, RiskListError> {
        let parse = |name: &'static str, requirement: &'static str| -> Result<Option<f64>, _> {
            match lookup(name) {
                None => Ok(None),
                Some(text) if text.trim().is_empty() => Ok(None),
                Some(text) => text.trim().parse::<f64>().map(Some).map_err(|_| {
                    RiskListError::InvalidSetting {
                        setting: name,
                        value: text,
                        requirement,
                    }
                }),
            }
        };
        let high = parse(HIGH_PROBABILITY_ENV, "a number strictly between 0 and 1")?;
        let watch = parse(WATCH_SHARE_ENV, "a number between 0 and 1")?;
        Self::new(high, watch.unwrap_or(0.1))
    }

    pub fn high(&self) -> HighCutoff {
        self.high
    }

    pub fn watch_share(&self) -> f64 {
        self.watch_share
    }

    /// The probability at or above which a client is `high`, for a model with `threshold`.
    pub fn high_probability(&self, threshold: f64) -> f64 {
        match self.high {
            HighCutoff::ModelThreshold => threshold,
            HighCutoff::Fixed(p) => p,
        }
    }

    /// How many of `ranked` clients make the top share: `ceil(share × ranked)`.
    pub fn watch_ranks(&self, ranked: usize) -> usize {
        ((self.watch_share * ranked as f64).ceil() as usize).min(ranked)
    }
}

/// A client's risk band.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Band {
    /// At or above the high cut-off (by default the model's decision threshold).
    High,
    /// Below it, but in the top share of ranked clients (by default the top decile).
    Watch,
    Low,
}

impl Band {
    pub const ALL: [Band; 3] = [Band::High, Band::Watch, Band::Low];

    pub fn name(self) -> &'static str {
        match self {
            Band::High => "high",
            Band::Watch => "watch",
            Band::Low => "low",
        }
    }

    pub fn parse(name: &str) -> Option<Band> {
        Band::ALL.into_iter().find(|b| b.name() == name)
    }
}

/// Whether the client is still a client, as its latest row says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientStatus {
    /// `exited` is 0 or unknown: ranked.
    Active,
    /// `exited` is 1: the client already left; marked, not ranked.
    Exited,
}

impl ClientStatus {
    pub fn name(self) -> &'static str {
        match self {
            ClientStatus::Active => "active",
            ClientStatus::Exited => "exited",
        }
    }
}

/// One feature's part in a client's risk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Driver {
    /// Shared with every other client's driver of the same feature (a list has 100,000s).
    pub feature: Arc<str>,
    /// The raw value in the client's latest row; `None` when missing (then imputed with the
    /// training mean).
    pub value: Option<i64>,
    /// `(value − training mean) / training std` (0 for a missing value).
    pub standardized: f64,
    /// Standardised coefficient × standardised value: what this feature adds to the log-odds
    /// of leaving (positive raises the risk).
    pub contribution: f64,
    /// The same in words, for a person (one of the few phrases a feature has, shared).
    pub phrase: Arc<str>,
}

/// One client in the list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RiskEntry {
    pub corporation: String,
    pub status: ClientStatus,
    /// 1 is the most at risk; `None` for a client that already left.
    pub rank: Option<u32>,
    /// Probability of leaving, the deployed model's prediction for the latest row; `None` for
    /// a client that already left.
    pub probability: Option<f64>,
    pub band: Option<Band>,
    /// The probability in the previous list, when the client was ranked there.
    pub previous_probability: Option<f64>,
    /// `probability − previous_probability`, when both exist.
    pub probability_change: Option<f64>,
    /// In the `high` band now and not in the previous list's (only when there was one).
    pub newly_high: bool,
    /// Every feature's contribution, the largest in absolute value first (empty for a client
    /// that already left).
    pub drivers: Vec<Driver>,
}

impl RiskEntry {
    /// The driver of `feature`, if the entry has one (an exited client has none).
    pub fn driver(&self, feature: &str) -> Option<&Driver> {
        self.drivers.iter().find(|d| &*d.feature == feature)
    }
}

/// A model feature as the drivers were computed with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureScale {
    pub name: String,
    pub mean: f64,
    pub std: f64,
    pub coefficient_standardized: f64,
}

/// Where a list came from and what is in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RiskListMeta {
    /// The run that wrote it (a full-process run, or `risk at-risk --refresh`).
    pub run_id: String,
    pub generated_at: DateTime<Utc>,
    /// Version id of the deployed model (in the production location).
    pub model_version: String,
    /// The deployment run of that model.
    pub model_deployed_by: String,
    /// The model's decision threshold.
    pub threshold: f64,
    /// Version id of the compiled data set the latest rows were taken from.
    pub data_version: String,
    /// Probability at or above which a client is `high`.
    pub high_probability: f64,
    /// How it was chosen (`model_threshold` or `fixed`).
    pub high_rule: HighCutoff,
    /// Share of ranked clients in the top group (`high` or `watch`), and the rank it ends at.
    pub watch_share: f64,
    pub watch_last_rank: u32,
    /// Rows of the compiled data read; rows without a corporation code (not a client) are
    /// counted, not listed.
    pub rows_read: u64,
    pub rows_without_corporation: u64,
    /// Distinct clients: ranked (active), listed as `exited` (they left within the new data) and
    /// `exited_earlier` (they left before; counted, not listed). An incremental build cannot tell
    /// a client who comes back after being counted from a new one, so it counts such a client
    /// twice (listed, and still in `exited_earlier`); a full build counts each once.
    pub clients: u64,
    pub ranked: u64,
    pub exited: u64,
    #[serde(default)]
    pub exited_earlier: u64,
    pub high: u64,
    pub watch: u64,
    pub low: u64,
    pub newly_high: u64,
    /// The run of the list this one is compared with, if there was one.
    pub previous_run_id: Option<String>,
    /// The model's features, scaling and coefficients the drivers were computed with.
    pub features: Vec<FeatureScale>,
    /// The compiled data the list covers (`None` in lists written before it was recorded: the
    /// next list is then built by a full pass).
    #[serde(default)]
    pub lineage: Option<DataLineage>,
    /// Built from the previous list and the rows added since, not by a full pass.
    #[serde(default)]
    pub incremental: bool,
}

/// The compiled data a list covers: how many of its rows, the first row of the data it is new
/// for (whose exits it names), and the ingestion record's `files` as they were (how many
/// entries, and the last one). A later ingestion record extends it when its `files` still has
/// that entry at that place (the list is append-only) and the compiled data has at least as many
/// rows; then the rows after `compiled_rows` are exactly the new ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataLineage {
    pub compiled_rows: u64,
    pub recent_from: u64,
    pub files: u64,
    pub last_key: String,
    pub last_version_id: String,
    pub last_etag: String,
}

impl DataLineage {
    /// The lineage of compiled data of `compiled_rows` rows described by `record`, for a list
    /// naming the exits from row `recent_from` on; `None` when the record names no file.
    pub fn of(
        record: &IngestionRecord,
        compiled_rows: u64,
        recent_from: u64,
    ) -> Option<DataLineage> {
        let last = record.files.last()?;
        Some(DataLineage {
            compiled_rows,
            recent_from,
            files: record.files.len() as u64,
            last_key: last.key.clone(),
            last_version_id: last.version_id.clone(),
            last_etag: last.etag.clone(),
        })
    }

    /// Whether compiled data of `compiled_rows` rows described by `record` is this data with
    /// rows appended (or none).
    pub fn is_extended_by(&self, record: &IngestionRecord, compiled_rows: u64) -> bool {
        let Some(index) = usize::try_from(self.files)
            .ok()
            .and_then(|n| n.checked_sub(1))
        else {
            return false;
        };
        compiled_rows >= self.compiled_rows
            && record.files.get(index).is_some_and(|f| {
                f.key == self.last_key
                    && f.version_id == self.last_version_id
                    && f.etag == self.last_etag
            })
    }
}

/// A whole list: ranked clients by rank, then clients that already left by name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RiskList {
    pub meta: RiskListMeta,
    pub entries: Vec<RiskEntry>,
}

impl RiskList {
    /// The ranked clients, most at risk first.
    pub fn ranked(&self) -> impl Iterator<Item = &RiskEntry> {
        self.entries.iter().filter(|e| e.rank.is_some())
    }

    /// The entry of `corporation`, if it is in the list.
    pub fn client(&self, corporation: &str) -> Option<&RiskEntry> {
        self.entries.iter().find(|e| e.corporation == corporation)
    }
}

#[cfg(test)]
mod tests;
