//! The training Lambda function: trains the logistic-regression model on the compiled data set
//! and saves it as a new version of the model artifact. Invoked by hand or from a Step
//! Functions state with a plain JSON input (`{}`); it answers with the new `model_version`, which
//! the scoring function accepts. The pipeline is built once per cold start; the handler is in
//! `handler.rs`.

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
