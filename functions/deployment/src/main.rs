//! The deployment Lambda function: copies a scored model, its score and the ingestion record to
//! production and writes the deployment record. Input: `{}` for the latest model with its score,
//! `{"model_version": "…"}`, or `{"score_version": "…"}`; a model without a score is refused.
//! The pipeline is built once per cold start; the handler is in `handler.rs`.

mod handler;

use lambda_runtime::{Diagnostic, Error, LambdaEvent, run, service_fn};
use serde_json::Value;
use shared::invocation::{Failure, pipeline_from_env};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::logging::init_lambda_logging();
    let (_, pipeline) = pipeline_from_env().await?;
    let pipeline = &pipeline;
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        handler::handle(pipeline, event).await.map_err(diagnostic)
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
