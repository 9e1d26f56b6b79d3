//! The ingestion Lambda function, triggered by S3 `ObjectCreated` events on the source-data
//! bucket. It ingests exactly the CSV object versions the event names and, when any of them is
//! new, runs the rest of the full process at once (drift check, and retrain, rescore, redeploy,
//! diagnostics and reporting on drift), so new data does not wait for the schedule. The
//! configuration, S3 client and pipeline are built once per cold start; the handler is in
//! `handler.rs`.

mod handler;

use lambda_runtime::{Diagnostic, Error, LambdaEvent, run, service_fn};
use serde_json::Value;
use shared::events::SourceFilter;
use shared::invocation::{Failure, pipeline_from_env};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::logging::init_lambda_logging();
    let (config, pipeline) = pipeline_from_env().await?;
    let source = SourceFilter::for_location(&config.source_data);
    let (pipeline, source) = (&pipeline, &source);
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        handler::handle(pipeline, source, event)
            .await
            .map_err(diagnostic)
    }))
    .await
}

/// The runtime's error report: `RetryableError` or `PermanentError`, and the cause.
fn diagnostic(failure: Failure) -> Diagnostic {
    let (error_type, error_message) = failure.into_parts();
    Diagnostic {
        error_type,
        error_message,
    }
}
