//! The training Lambda function: trains the logistic-regression model on the compiled data set
//! and saves it as a new version of the model artifact. Invoked by hand or from a Step
//! Functions state with a plain JSON input (`{}`); it answers with the new `model_version`, which
//! the scoring function accepts. The pipeline is built once per cold start; the handler is in
//! `handler.rs`.

mod handler;

fn main() -> Result<(), shared::lambda::Error> {
    shared::lambda::run(handler::handle)
}
