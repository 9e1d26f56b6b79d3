//! The scoring Lambda function: the F1 score (and the other metrics) of a model on the test
//! data, saved as a new score record version. Input: `{}` for the latest model, or
//! `{"model_version": "…"}`; the answer names `model_version` and `score_version`, which the
//! deployment function accepts. The pipeline is built once per cold start; the handler is in
//! `handler.rs`.

mod handler;

fn main() -> Result<(), shared::lambda::Error> {
    shared::lambda::run(handler::handle)
}
