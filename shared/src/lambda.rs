//! The one entry point of every Lambda function (feature `lambda`; `lambda-http` for the API), so
//! a function's `main` is a single call. Per execution environment it sets up glibc's allocator
//! ([`crate::memory`]) before any thread exists, starts the tokio runtime, installs the logging
//! Lambda's controls ask for ([`init_lambda_logging`]), and builds the configuration and the
//! pipeline once ([`pipeline_from_env`]), with freed memory given back between the steps of a
//! long run. Then it serves invocations: [`run`] and [`run_with`] pass each event to a step
//! handler and report its [`Failure`] as Lambda's `RetryableError` or `PermanentError`;
//! [`run_http`] serves the HTTP API's Function URL.

use std::future::Future;

use lambda_runtime::{Diagnostic, service_fn};
pub use lambda_runtime::{Error, LambdaEvent};
use serde::Serialize;
use serde_json::Value;

use crate::config::Config;
use crate::invocation::{Failure, StartupError, pipeline_from_env};
use crate::logging::init_lambda_logging;
use crate::steps::Pipeline;

/// Serves a step function whose handler needs only the pipeline.
pub fn run<R: Serialize>(
    handler: impl AsyncFn(&Pipeline, LambdaEvent<Value>) -> Result<R, Failure>,
) -> Result<(), Error> {
    run_with(|_, pipeline| pipeline, handler)
}

/// Serves a step function whose handler needs more than the pipeline: `build` makes what it
/// needs from the configuration and the pipeline, once per execution environment.
pub fn run_with<S, R: Serialize>(
    build: impl FnOnce(Config, Pipeline) -> S,
    handler: impl AsyncFn(&S, LambdaEvent<Value>) -> Result<R, Failure>,
) -> Result<(), Error> {
    block_on(async {
        let (config, pipeline) = start().await?;
        let state = build(config, pipeline);
        let (state, handler) = (&state, &handler);
        lambda_runtime::run(service_fn(move |event| async move {
            handler(state, event).await.map_err(Diagnostic::from)
        }))
        .await
    })
}

/// Serves the HTTP API: `build` makes the service that answers every Function URL request from
/// the configuration and the pipeline, once per execution environment.
#[cfg(feature = "lambda-http")]
pub fn run_http<S, R, E>(build: impl FnOnce(Config, Pipeline) -> S) -> Result<(), Error>
where
    S: lambda_http::Service<lambda_http::Request, Response = R, Error = E>,
    S::Future: Send,
    R: lambda_http::IntoResponse,
    E: std::fmt::Debug + Into<Diagnostic>,
{
    block_on(async {
        let (config, pipeline) = start().await?;
        lambda_http::run(build(config, pipeline)).await
    })
}

/// Logging, then the configuration and the pipeline (a bad configuration fails the cold start,
/// logged, rather than every invocation later).
async fn start() -> Result<(Config, Pipeline), StartupError> {
    init_lambda_logging();
    let (config, mut pipeline) = pipeline_from_env().await?;
    pipeline.between_steps = crate::memory::release_free_memory;
    Ok((config, pipeline))
}

/// Runs `work` on a multi-threaded runtime started after the allocator is set up.
fn block_on(work: impl Future<Output = Result<(), Error>>) -> Result<(), Error> {
    crate::memory::tune_allocator();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(work)
}

/// The runtime's error report: `RetryableError` or `PermanentError`, and the cause.
impl From<Failure> for Diagnostic {
    fn from(failure: Failure) -> Self {
        let (error_type, error_message) = failure.into_parts();
        Diagnostic {
            error_type,
            error_message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::invocation::{PERMANENT_ERROR, RETRYABLE_ERROR};

    #[test]
    fn a_failure_reaches_lambda_as_its_error_type_and_message() {
        let diagnostic = Diagnostic::from(Failure {
            retryable: true,
            message: "S3 throttled the request".into(),
        });
        assert_eq!(diagnostic.error_type, RETRYABLE_ERROR);
        assert_eq!(diagnostic.error_message, "S3 throttled the request");
        let diagnostic = Diagnostic::from(Failure {
            retryable: false,
            message: "not an S3 event".into(),
        });
        assert_eq!(diagnostic.error_type, PERMANENT_ERROR);
    }
}
