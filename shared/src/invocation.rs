//! What every Lambda function does around its step, kept free of the Lambda runtime so it is
//! tested here: building the configuration and the pipeline once per cold start from the
//! environment, running each invocation inside a tracing span that carries a fresh run id (the
//! runtime's own span adds the request id), and classifying a failure as retryable or permanent.
//!
//! Failures reach Lambda as one of two error types, [`RETRYABLE_ERROR`] (throttling, network,
//! S3 server errors, a concurrent run that won a conditional write: the same input may succeed
//! later) and [`PERMANENT_ERROR`] (an input that is not the expected event, a missing model or
//! test data, a corrupt record: the same input fails the same way until someone acts). Two
//! fixed names rather than one per cause because retry policies match error types exactly
//! (Step Functions `Retry.ErrorEquals`, a redrive filter on the on-failure destination's
//! `errorType`); the cause is in the message.

use std::future::Future;
use std::time::Instant;

use tracing::Instrument;

use crate::config::{CONFIG_PATH_ENV, Config, ConfigError};
use crate::events::EventError;
use crate::steps::{Pipeline, StepError, new_run_id};

/// The error type of a failure worth retrying.
pub const RETRYABLE_ERROR: &str = "RetryableError";
/// The error type of a failure that will repeat with the same input.
pub const PERMANENT_ERROR: &str = "PermanentError";

/// A failed invocation, as the Lambda runtime will report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub retryable: bool,
    pub message: String,
}

impl Failure {
    /// [`RETRYABLE_ERROR`] or [`PERMANENT_ERROR`].
    pub fn error_type(&self) -> &'static str {
        if self.retryable {
            RETRYABLE_ERROR
        } else {
            PERMANENT_ERROR
        }
    }

    /// `(error_type, error_message)`, the two fields of the runtime's error report.
    pub fn into_parts(self) -> (String, String) {
        (self.error_type().to_string(), self.message)
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error_type(), self.message)
    }
}

impl std::error::Error for Failure {}

impl From<StepError> for Failure {
    fn from(error: StepError) -> Self {
        Failure {
            retryable: error.is_retryable(),
            message: error.to_string(),
        }
    }
}

impl From<EventError> for Failure {
    fn from(error: EventError) -> Self {
        Failure {
            retryable: false,
            message: error.to_string(),
        }
    }
}

/// Why a function could not start. Lambda reports it as an init error and retries the cold
/// start, so it is logged before it is returned.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("configuration from the environment is not usable: {0}")]
    Config(#[from] ConfigError),
    #[error("cannot set up the pipeline: {0}")]
    Pipeline(#[from] StepError),
}

/// The configuration and the pipeline over its locations, built once per cold start: the S3
/// client and its connection pool are then reused by every invocation of this execution
/// environment. The configuration comes from the `RISK_*` location variables (as the SAM
/// template sets them), over the file `RISK_CONFIG` names when it is set (local runs under
/// `cargo lambda watch`, with relative paths resolved against that file's directory).
pub async fn pipeline_from_env() -> Result<(Config, Pipeline), StartupError> {
    let result = async {
        let config = match std::env::var_os(CONFIG_PATH_ENV).filter(|p| !p.is_empty()) {
            Some(path) => Config::load(std::path::Path::new(&path))?,
            None => Config::from_env()?,
        };
        let pipeline = Pipeline::open(&config).await?;
        Ok((config, pipeline))
    }
    .await;
    match &result {
        Ok((config, _)) => {
            let locations: Vec<String> = config
                .named_locations()
                .iter()
                .map(|(setting, url)| format!("{setting}={url}"))
                .collect();
            tracing::info!(?locations, "configuration loaded")
        }
        Err(e) => tracing::error!("{e}"),
    }
    result
}

/// Runs one invocation of `function`: a fresh run id, a span carrying it (and the function's
/// name) around everything the work logs, and a closing log line saying how it ended and, on
/// failure, which kind of failure it was.
pub async fn invoke<T, F, Fut>(function: &'static str, work: F) -> Result<T, Failure>
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = Result<T, Failure>>,
{
    let run_id = new_run_id();
    let span = tracing::info_span!("invocation", function, run_id = %run_id);
    async move {
        let started = Instant::now();
        let result = work(run_id).await;
        let elapsed_ms = crate::steps::millis(started.elapsed());
        match &result {
            Ok(_) => tracing::info!(elapsed_ms, "invocation succeeded"),
            Err(failure) => tracing::error!(
                error_type = failure.error_type(),
                elapsed_ms,
                "invocation failed: {}",
                failure.message
            ),
        }
        result
    }
    .instrument(span)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreError;

    #[test]
    fn failures_are_classified_by_the_step_error() {
        let throttled = StepError::Store(StoreError::S3 {
            store: "s3://b".into(),
            operation: "GetObject",
            key: "k".into(),
            status: Some(503),
            message: "SlowDown".into(),
            retryable: true,
        });
        let failure = Failure::from(throttled);
        assert_eq!(failure.error_type(), RETRYABLE_ERROR);
        assert!(failure.message.contains("SlowDown"));

        let raced = StepError::ConcurrentUpdate {
            what: "s3://b/ingestion_record.json".into(),
            detail: "412".into(),
        };
        assert_eq!(Failure::from(raced).error_type(), RETRYABLE_ERROR);

        let missing = StepError::NoTestData {
            location: "s3://b/testdata".into(),
        };
        let (error_type, message) = Failure::from(missing).into_parts();
        assert_eq!(error_type, PERMANENT_ERROR);
        assert!(message.contains("s3://b/testdata"));

        let bad_input = crate::events::step_input(&serde_json::json!(42)).unwrap_err();
        assert_eq!(Failure::from(bad_input).error_type(), PERMANENT_ERROR);
    }

    #[tokio::test]
    async fn invoke_hands_the_work_a_fresh_run_id_and_passes_the_result_through() {
        let first = invoke("test", |run_id| async move { Ok::<_, Failure>(run_id) })
            .await
            .unwrap();
        assert!(first.starts_with("run-"), "{first}");
        let failed = invoke("test", |_| async {
            Err::<(), _>(Failure {
                retryable: false,
                message: "bad".into(),
            })
        })
        .await
        .unwrap_err();
        assert_eq!(failed.message, "bad");
    }
}
