//! The reporting Lambda function: the confusion-matrix plot and the metric reports (JSON and
//! Markdown) of the deployed model on the test data. Input: `{}`. The pipeline is built once per
//! cold start; the handler is in `handler.rs`.

mod handler;

fn main() -> Result<(), shared::lambda::Error> {
    shared::lambda::run(handler::handle)
}
