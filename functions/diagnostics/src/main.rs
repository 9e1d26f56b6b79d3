//! The diagnostics Lambda function: predictions of the deployed model, summary statistics and
//! missing values of the compiled data, ingestion and training timings, and dependency status,
//! saved as a diagnostics record. Input: `{}`. The pipeline is built once per cold start; the
//! handler is in `handler.rs`.

mod handler;

fn main() -> Result<(), shared::lambda::Error> {
    shared::lambda::run(handler::handle)
}
