//! The `training` binary run as Lambda runs it, against a stand-in for the Runtime API, over
//! configured local locations with nothing ingested: the shared entry point reports the
//! handler's failure as Lambda's `PermanentError` with the cause, and the invocation's log lines
//! carry the request id and the run id.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};
use shared::api::fixture::local_config;
use shared::testing::runtime_api::{Outcome, RuntimeApi};

#[test]
fn a_failed_invocation_reaches_lambda_as_a_permanent_error_with_its_cause() {
    let dir = tempfile::tempdir().unwrap();
    let seed_data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data");
    let config = local_config(dir.path(), &seed_data).unwrap();
    let runtime = RuntimeApi::start(vec![("train-1".to_string(), json!({}))]);
    let mut function = Command::new(env!("CARGO_BIN_EXE_training"));
    function
        .env("AWS_LAMBDA_FUNCTION_NAME", "training")
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .env("RISK_CONFIG", &config);
    let (outcome, logged) = runtime.run_once(function, 1024);

    let Some(Outcome::Error { request_id, body }) = outcome else {
        panic!("expected an invocation error, got {outcome:?}; the function logged:\n{logged}");
    };
    assert_eq!(request_id, "train-1");
    assert_eq!(body["errorType"], "PermanentError", "{body}");
    let message = body["errorMessage"].as_str().unwrap_or_default();
    assert!(message.contains("no compiled data"), "{body}");

    let failed: Value = logged
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|line| {
            line["message"]
                .as_str()
                .unwrap_or_default()
                .starts_with("invocation failed")
        })
        .unwrap_or_else(|| panic!("no failure line in:\n{logged}"));
    assert_eq!(failed["error_type"], "PermanentError");
    let spans = failed["spans"].as_array().cloned().unwrap_or_default();
    assert!(
        spans.iter().any(|span| span["requestId"] == "train-1"),
        "{failed}"
    );
    assert!(
        spans.iter().any(|span| span["run_id"].is_string()),
        "{failed}"
    );
}
