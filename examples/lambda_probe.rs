//! The smallest function that speaks the Lambda Runtime API through `lambda_runtime`: it answers
//! every event with the event itself. It exists to test `scripts/coldstart.py` without the real
//! function binaries, and as the floor a real function's cold start can be compared with (the
//! runtime client and tokio, nothing of the pipeline).
//!
//! `cargo build --release --example lambda_probe && python3 scripts/coldstart.py target/release/examples/lambda_probe`

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        Ok::<Value, Error>(event.payload)
    }))
    .await
}
