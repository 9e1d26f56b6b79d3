//! The `api` binary run as Lambda runs it, against a stand-in for the Runtime API, with one
//! Function URL request for `/health` over configured, empty local locations: the function
//! follows Lambda's logging controls like every other function. Under
//! `AWS_LAMBDA_LOG_FORMAT=JSON` every line is a JSON object and the request's line carries the
//! invocation's request id; `AWS_LAMBDA_LOG_LEVEL` sets the level.

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use shared::api::fixture::local_config;
use shared::testing::runtime_api::{Outcome, RuntimeApi};

const FUNCTION_URL: &str = include_str!("fixtures/function-url-request.json");
const REQUEST_ID: &str = "8476a536-e9f4-11e8-9739-2dfe598c3fcd";

/// Runs the function for one `GET /health` with `env` added; its answer and what it logged.
fn answer_health(env: &[(&str, &str)]) -> (Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let seed_data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data");
    let config = local_config(dir.path(), &seed_data).unwrap();
    let mut event: Value = serde_json::from_str(FUNCTION_URL).unwrap();
    event["rawPath"] = "/health".into();
    event["rawQueryString"] = "".into();
    event["requestContext"]["http"]["method"] = "GET".into();
    event["requestContext"]["http"]["path"] = "/health".into();
    let runtime = RuntimeApi::start(vec![(REQUEST_ID.to_string(), event)]);

    let mut function = Command::new(env!("CARGO_BIN_EXE_api"));
    function
        .env("AWS_LAMBDA_FUNCTION_NAME", "api")
        .env("RISK_CONFIG", &config)
        .env("RISK_DEPENDENCY_CHECK", "off")
        .envs(env.iter().copied());
    let (outcome, logged) = runtime.run_once(function, 512);
    match outcome {
        Some(Outcome::Response { request_id, body }) => {
            assert_eq!(request_id, REQUEST_ID);
            (body, logged)
        }
        other => panic!("the api function did not answer: {other:?}; it logged:\n{logged}"),
    }
}

#[test]
fn under_the_json_log_format_every_line_is_json_and_the_request_line_has_the_request_id() {
    let (answer, logged) = answer_health(&[("AWS_LAMBDA_LOG_FORMAT", "JSON")]);
    assert_eq!(answer["statusCode"], 200, "{answer}");
    assert_eq!(answer["headers"]["x-request-id"], REQUEST_ID, "{answer}");

    let lines: Vec<Value> = logged
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    for line in &lines {
        assert!(
            line["timestamp"].is_string() && line["level"].is_string(),
            "Lambda filters JSON logs by timestamp and level: {line}"
        );
    }
    let request = lines
        .iter()
        .find(|line| line["message"] == "request")
        .unwrap_or_else(|| panic!("no request line in:\n{logged}"));
    assert_eq!(request["path"], "/health");
    assert_eq!(request["request_id"], REQUEST_ID);
    let spans = request["spans"].as_array().cloned().unwrap_or_default();
    assert!(
        spans.iter().any(|span| span["requestId"] == REQUEST_ID),
        "the runtime's span with the request id is missing: {request}"
    );
}

#[test]
fn the_lambda_log_level_holds_back_lines_below_it() {
    let (_, logged) = answer_health(&[
        ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
        ("AWS_LAMBDA_LOG_LEVEL", "ERROR"),
    ]);
    // At info the function logs its configuration and the request; nothing here is an error.
    let levels: Vec<String> = logged
        .lines()
        .map(|line| {
            let line: Value = serde_json::from_str(line).unwrap();
            line["level"].as_str().unwrap_or_default().to_string()
        })
        .collect();
    assert!(
        levels.iter().all(|level| level == "ERROR"),
        "lines below ERROR were logged:\n{logged}"
    );
    let (_, at_info) = answer_health(&[("AWS_LAMBDA_LOG_FORMAT", "JSON")]);
    assert!(at_info.lines().count() > levels.len(), "{at_info}");
}
