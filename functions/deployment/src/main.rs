//! The deployment Lambda function: copies a scored model, its score and the ingestion record to
//! production and writes the deployment record. Input: `{}` for the latest model with its score,
//! `{"model_version": "…"}`, or `{"score_version": "…"}`; a model without a score is refused.
//! The pipeline is built once per cold start; the handler is in `handler.rs`.

mod handler;

fn main() -> Result<(), shared::lambda::Error> {
    shared::lambda::run(handler::handle)
}
