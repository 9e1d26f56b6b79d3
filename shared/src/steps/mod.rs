//! Every pipeline step as a plain async function over a [`Pipeline`] (the opened locations and
//! the settings): ingestion, training, scoring, deployment, diagnostics, reporting, and the full
//! process that chains them. No Lambda types appear here; the Lambda handlers and the
//! command-line tool only parse their input, call one of these, and print or return the result.

pub mod compiled;
pub mod deadline;
pub mod deployment;
pub mod diagnostics;
pub mod fullprocess;
pub mod idle;
pub mod ingestion;
pub mod repair;
pub mod reporting;
pub mod scoring;
pub mod statistics;
pub mod training;
pub mod versions;

use std::time::Duration;

use chrono::Utc;

use crate::data::error::DataError;
use crate::dependencies::DependencyCheck;
use crate::lifecycle::LifecycleSettings;
use crate::location::{Locations, RecordError};
use crate::model::{ModelError, TrainingParams, ValidTrainingParams};
use crate::stats::StatsError;
use crate::store::StoreError;

/// Everything a step needs: where things are, how to train, and how to keep the model right
/// (drift rule, training window, threshold, champion/challenger gate).
#[derive(Debug, Clone)]
pub struct Pipeline {
    pub locations: Locations,
    pub training: ValidTrainingParams,
    pub lifecycle: LifecycleSettings,
    pub dependency_check: DependencyCheck,
    /// Called between the steps of a run that chains several (the full process, diagnostics),
    /// once what the finished step allocated is freed. The library leaves the allocator alone;
    /// a binary that runs long chains sets this to [`crate::memory::release_free_memory`].
    pub between_steps: fn(),
    /// When the invocation must end (Lambda's), checked before each long step; `None`: no limit.
    pub deadline: Option<deadline::Deadline>,
    /// The risk list's bands (`RISK_LIST_*` applied), checked when the pipeline is built so a
    /// bad setting stops a run before it starts, not after it deployed.
    pub risk_bands: crate::risklist::RiskBands,
}

impl Pipeline {
    /// A pipeline with default training parameters, the default lifecycle settings (with
    /// `RISK_DRIFT_RULE` applied), and the dependency check configured from the environment.
    pub fn new(locations: Locations) -> Result<Self, StepError> {
        let lifecycle = LifecycleSettings::default()
            .with_env(|name| std::env::var(name).ok())
            .map_err(StepError::Lifecycle)?;
        Ok(Pipeline {
            locations,
            training: TrainingParams::default().check()?,
            lifecycle,
            dependency_check: DependencyCheck::from_env(),
            between_steps: || {},
            deadline: None,
            risk_bands: crate::risklist::RiskBands::from_env()?,
        })
    }

    /// The pipeline over `config`'s locations, with its lifecycle settings; local locations
    /// with a seed directory are seeded first if they do not exist yet ([`crate::seed`]).
    pub async fn open(config: &crate::config::Config) -> Result<Self, StepError> {
        crate::seed::seed_first_use(config)?;
        Ok(Self::new(Locations::open(config).await)?.with_lifecycle(config.lifecycle.clone()))
    }

    /// The same pipeline, for one invocation that must end by `deadline`.
    pub fn with_deadline(mut self, deadline: Option<deadline::Deadline>) -> Self {
        self.deadline = deadline;
        self
    }

    /// The same pipeline with other lifecycle settings (a configuration file's, a benchmark's).
    pub fn with_lifecycle(mut self, lifecycle: LifecycleSettings) -> Self {
        self.lifecycle = lifecycle;
        self
    }
}

/// Errors of the steps. Each says what is wrong and what to do; [`StepError::is_retryable`]
/// tells a transient failure (worth retrying) from a permanent one.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Lifecycle(crate::lifecycle::LifecycleError),
    #[error(transparent)]
    RiskList(#[from] crate::risklist::RiskListError),
    #[error(transparent)]
    Seed(#[from] crate::seed::SeedError),
    #[error(
        "there is no compiled data set yet in {location}: run ingestion first (are there CSV files in {source_location}?)"
    )]
    NoCompiledData {
        location: String,
        source_location: String,
    },
    #[error(
        "there is no deployed model in {location}: run the full process (it bootstraps) or train, score and deploy"
    )]
    NoDeployment { location: String },
    #[error(
        "there is no usable test data in {location}: add a CSV file of the client schema there"
    )]
    NoTestData { location: String },
    #[error(
        "model version {model_version} in {location} has no score record: score it first (the scoring function with {{\"model_version\": \"{model_version}\"}})"
    )]
    NotScored {
        model_version: String,
        location: String,
    },
    #[error(
        "score record version {score_version} is for model version {scored_model}, not {model_version}"
    )]
    ScoreMismatch {
        score_version: String,
        scored_model: String,
        model_version: String,
    },
    #[error(
        "{what} was changed by another run while this one worked ({detail}); nothing was lost, run again"
    )]
    ConcurrentUpdate { what: String, detail: String },
    #[error(
        "stopped before {step}: {remaining_seconds:.1} s of this invocation remain, less than the {margin_seconds:.1} s kept so a step is never killed half-way; what is done is kept, run again (the next run finishes the rest)"
    )]
    OutOfTime {
        step: String,
        remaining_seconds: f64,
        margin_seconds: f64,
    },
    /// A worker thread of the step panicked or was cancelled: a bug, not bad input.
    #[error(
        "a worker thread of this step stopped unexpectedly ({0}); this is a bug: report it with the log lines above"
    )]
    Worker(#[from] tokio::task::JoinError),
    #[error(
        "{work} stopped unexpectedly (its thread could not start or panicked); this is a bug: report it with the log lines above"
    )]
    WorkerStopped { work: &'static str },
    #[error("cannot encode the rejected rows of {file} as CSV: {source}")]
    EncodeRejectedRows {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot drop the duplicate rows of a batch ({0}); this is a bug: report it")]
    DropDuplicates(#[source] arrow::error::ArrowError),
    #[error(
        "ingestion closed {closed} compiled parts but {written} were written; this is a bug: report it"
    )]
    PartsMissing { closed: usize, written: usize },
    #[error("cannot summarise the compiled data set {url}: {source}")]
    Summary {
        url: String,
        #[source]
        source: StatsError,
    },
}

impl StepError {
    /// Whether running the step again later may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            StepError::Store(e) => e.is_retryable(),
            StepError::Record(RecordError::Store(e)) => e.is_retryable(),
            StepError::ConcurrentUpdate { .. } | StepError::OutOfTime { .. } => true,
            _ => false,
        }
    }
}

/// [`tokio::task::spawn_blocking`] inside the caller's tracing span, so what the blocking work
/// logs (CSV warnings, training diagnostics) carries the invocation's request and run ids.
pub(crate) fn spawn_blocking_in_span<T, F>(work: F) -> tokio::task::JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(work))
}

/// A new run id: sortable by time, unique enough for one deployment (`run-20261126T093100123Z-4f2a`).
pub fn new_run_id() -> String {
    let now = Utc::now();
    let entropy = now.timestamp_subsec_nanos() ^ std::process::id().rotate_left(16);
    format!(
        "run-{}-{:04x}",
        now.format("%Y%m%dT%H%M%S%3fZ"),
        entropy & 0xffff
    )
}

/// Milliseconds of a duration, for records (fractional, so sub-millisecond steps are not 0).
pub fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
