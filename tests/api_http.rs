//! The API over real HTTP: `risk serve` on a free loopback port over local stores with a
//! bootstrapped deployment, `risk apicalls` against it, and every saved answer checked against
//! the deployed model's actual figures, recomputed through the shared steps. Also: the client
//! records each failing endpoint and carries on, and the local server enforces its body limit
//! and refuses non-loopback addresses.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use shared::api::client::{
    API_RETURNS_JSON, API_RETURNS_TXT, ApiReturns, ClientOptions, call_all, standard_calls,
};
use shared::api::fixture::{deployed_pipeline, local_config, open_pipeline};
use shared::api::types::{
    DiagnosticsAnswer, HealthAnswer, PredictionAnswer, ScoringAnswer, SummaryStatsAnswer,
};
use shared::api::{Api, ApiLimits, router, server};
use shared::records::{DiagnosticsRecord, names};
use shared::steps::deployment::deployed_model;
use shared::steps::diagnostics::{deployed_predictions, summarize_compiled_data};
use shared::steps::scoring::{evaluate, load_test_data};

fn seed_data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data")
}

/// A child process killed when the test ends, pass or fail.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn risk(config: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_risk"));
    command
        .arg("--config")
        .arg(config)
        .env("RISK_DEPENDENCY_CHECK", "off")
        .env_remove("RISK_API_URL");
    command
}

/// Starts `risk serve` on a free port and returns it with its base URL.
fn start_server(config: &Path) -> (Running, String) {
    let mut child = risk(config)
        .args(["serve", "--addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let server = Running(child);
    let mut stdout = BufReader::new(stdout);
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    // Keep the pipe open and drained, so the server never writes into a closed pipe.
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    let url = line
        .trim()
        .strip_prefix("Serving the API on ")
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
        .to_string();
    (server, url)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn apicalls_against_risk_serve_saves_the_deployed_models_figures() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let (config, pipeline) = rt
        .block_on(deployed_pipeline(dir.path(), &seed_data()))
        .unwrap();
    let (_server, url) = start_server(&config);
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");

    let output = risk(&config)
        .args(["apicalls", "--base-url", &url])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for endpoint in [
        "health",
        "prediction",
        "scoring",
        "summarystats",
        "diagnostics",
    ] {
        assert!(stdout.contains(endpoint), "{stdout}");
    }

    let reports = dir.path().join("store/reports");
    let returns: ApiReturns =
        serde_json::from_slice(&std::fs::read(reports.join(API_RETURNS_JSON)).unwrap()).unwrap();
    assert_eq!((returns.succeeded, returns.failed), (5, 0));
    assert_eq!(returns.base_url, url);
    assert!(!returns.signed);
    let answer = |endpoint: &str| {
        let result = returns.result(endpoint).unwrap();
        assert_eq!(result.status, Some(200), "{endpoint}: {:?}", result.error);
        assert!(result.request_id.is_some(), "{endpoint}");
        result.answer.clone().unwrap()
    };

    rt.block_on(async {
        let (deployment, model) = deployed_model(&pipeline).await.unwrap();

        let health: HealthAnswer = serde_json::from_value(answer("health")).unwrap();
        assert!(health.model_deployed);
        let health_model = health.model.unwrap();
        assert_eq!(health_model.version_id, deployment.model.version_id);
        // The id `risk models` lists and `risk deploy --model-version` takes.
        assert_eq!(
            health_model.model_version,
            deployment.model_source.version_id
        );

        let prediction: PredictionAnswer = serde_json::from_value(answer("prediction")).unwrap();
        let expected = deployed_predictions(&pipeline, None).await.unwrap();
        assert_eq!(prediction.model.version_id, deployment.model.version_id);
        assert_eq!(
            prediction.model.model_version,
            deployment.model_source.version_id
        );
        assert_eq!(prediction.rows_predicted as usize, expected.rows.len());
        for (got, want) in prediction.predictions.iter().zip(&expected.rows) {
            assert_eq!(got.corporation, want.corporation);
            assert_eq!(got.predicted, want.predicted);
            assert_eq!(got.probability, want.probability);
            assert_eq!(got.actual, want.actual);
        }

        let scoring: ScoringAnswer = serde_json::from_value(answer("scoring")).unwrap();
        let test = load_test_data(&pipeline).await.unwrap();
        let evaluation = evaluate(&model, test.batches).await.unwrap();
        assert_eq!(scoring.metrics, evaluation.metrics);
        assert_eq!(scoring.f1, evaluation.metrics.f1);
        // The deployed model was scored on the same test data when it was deployed.
        assert_eq!(scoring.f1, deployment.f1);
        assert_eq!(scoring.model.f1_at_deployment, deployment.f1);

        let stats: SummaryStatsAnswer = serde_json::from_value(answer("summarystats")).unwrap();
        let (_, summary) = summarize_compiled_data(&pipeline).await.unwrap();
        assert_eq!(stats.rows, summary.rows);
        assert_eq!(stats.columns.len(), 4);
        for column in &stats.columns {
            assert_eq!(Some(column), summary.column(&column.column));
        }

        let diagnostics: DiagnosticsAnswer = serde_json::from_value(answer("diagnostics")).unwrap();
        let (_, record) = pipeline
            .locations
            .reports
            .get_json::<DiagnosticsRecord>(names::DIAGNOSTICS, "diagnostics", None)
            .await
            .unwrap();
        assert!(diagnostics.current);
        assert_eq!(diagnostics.model_version, deployment.model.version_id);
        assert_eq!(diagnostics.generated_at, record.generated_at);
        assert_eq!(diagnostics.missing_values, record.missing_values);
        assert_eq!(diagnostics.dependencies, record.dependencies);
        let timings = diagnostics.timings.unwrap();
        let recorded = record.timings.unwrap();
        assert_eq!(timings.ingestion_ms, recorded.ingestion_ms);
        assert_eq!(timings.training_ms, recorded.training_ms);
    });

    let text = std::fs::read_to_string(reports.join(API_RETURNS_TXT)).unwrap();
    assert!(text.contains("5 succeeded, 0 failed"), "{text}");
    for endpoint in ["prediction", "scoring", "summarystats", "diagnostics"] {
        assert!(text.contains(&format!("== {endpoint} (")), "{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_failing_endpoint_is_recorded_and_the_others_still_called() {
    // Nothing deployed: health answers, the four others are 503.
    let dir = tempfile::tempdir().unwrap();
    let config = local_config(dir.path(), &seed_data()).unwrap();
    let pipeline = open_pipeline(&config).await.unwrap();
    let api = Api::new(pipeline.clone(), ApiLimits::default());
    let listener = server::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server::serve(listener, router(api), async {
        let _ = stopped.await;
    }));

    let returns = call_all(&url, &standard_calls(None), &ClientOptions::default())
        .await
        .unwrap();
    assert_eq!((returns.succeeded, returns.failed), (1, 4));
    for endpoint in ["prediction", "scoring", "summarystats", "diagnostics"] {
        let result = returns.result(endpoint).unwrap();
        assert_eq!(result.status, Some(503), "{endpoint}");
        assert!(!result.ok);
        assert!(
            result
                .error
                .as_deref()
                .unwrap()
                .starts_with("HTTP 503: no_"),
            "{endpoint}: {:?}",
            result.error
        );
    }
    returns.save(&pipeline.locations.reports).await.unwrap();
    assert!(dir.path().join("store/reports/apireturns.json").exists());
    stop.send(()).unwrap();
    serving.await.unwrap();

    // Nobody listening at all: every endpoint is recorded as unanswered.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let returns = call_all(&url, &standard_calls(None), &ClientOptions::default())
        .await
        .unwrap();
    assert_eq!((returns.succeeded, returns.failed), (0, 5));
    for result in &returns.results {
        assert_eq!(result.status, None);
        assert!(
            result.error.as_deref().unwrap().contains("no answer"),
            "{:?}",
            result.error
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_server_limits_bodies_and_listens_on_loopback_only() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let refused = server::bind("0.0.0.0:0".parse().unwrap())
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("loopback"), "{refused}");

    let dir = tempfile::tempdir().unwrap();
    let config = local_config(dir.path(), &seed_data()).unwrap();
    let limits = ApiLimits {
        max_body_bytes: 100,
        ..ApiLimits::default()
    };
    let api = Api::new(open_pipeline(&config).await.unwrap(), limits);
    let listener = server::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let serving = tokio::spawn(server::serve(listener, router(api), std::future::pending()));

    let exchange = |request: String| async move {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer).await;
        answer
    };
    // Declared too large: refused before reading.
    let answer = exchange(
        "POST /prediction HTTP/1.1\r\nhost: x\r\ncontent-type: text/csv\r\ncontent-length: 1000000\r\nconnection: close\r\n\r\n".to_string(),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("payload_too_large") && answer.contains("x-request-id"));
    // Chunked, no length declared: cut off at the limit.
    let chunk = "a".repeat(150);
    let answer = exchange(format!(
        "POST /prediction HTTP/1.1\r\nhost: x\r\ncontent-type: text/csv\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len()
    ))
    .await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    // Within the limit, the router answers (nothing deployed here: 503).
    let answer = exchange(
        "POST /prediction HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}".to_string(),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    serving.abort();
}

/// One GET over plain HTTP/1.1; the status line and the body.
fn http_get(base_url: &str, path: &str) -> (String, serde_json::Value) {
    use std::io::{Read, Write};
    let addr = base_url.strip_prefix("http://").unwrap();
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    let status = head.lines().next().unwrap().to_string();
    (status, serde_json::from_str(body).unwrap())
}

#[test]
fn the_risk_list_over_http_and_in_the_terminal() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let (config, pipeline) = rt
        .block_on(deployed_pipeline(dir.path(), &seed_data()))
        .unwrap();
    let list = rt
        .block_on(shared::risklist::load_latest(&pipeline.locations.reports))
        .unwrap()
        .unwrap();
    let top = list.ranked().next().unwrap();
    let (_server, url) = start_server(&config);

    let (status, body) = http_get(&url, "/risk?top=2");
    assert!(status.contains(" 200 "), "{status} {body}");
    assert_eq!(body["clients"].as_array().unwrap().len(), 2);
    assert_eq!(body["clients"][0]["corporation"], top.corporation.as_str());
    assert_eq!(body["list"]["run_id"], list.meta.run_id.as_str());
    let (status, body) = http_get(&url, &format!("/clients/{}", top.corporation));
    assert!(status.contains(" 200 "), "{status} {body}");
    assert_eq!(body["client"]["rank"], 1);
    let (status, body) = http_get(&url, "/clients/nosuchclient");
    assert!(status.contains(" 404 "), "{status}");
    assert_eq!(body["error"], "client_not_found");
    let (status, body) = http_get(&url, "/risk?top=100000");
    assert!(status.contains(" 400 "), "{status}");
    assert_eq!(body["error"], "bad_request");

    // The terminal table: the top clients in rank order with their main driver.
    let output = risk(&config)
        .args(["at-risk", "--top", "3"])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{table}");
    assert!(table.contains(&list.meta.model_version), "{table}");
    let ranked: Vec<&str> = list
        .ranked()
        .take(3)
        .map(|e| e.corporation.as_str())
        .collect();
    let positions: Vec<usize> = ranked.iter().map(|c| table.find(c).unwrap()).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{table}");
    assert!(table.contains(&*top.drivers[0].phrase), "{table}");
    // --json: the same clients, machine-readable; --refresh writes a new list first.
    let output = risk(&config)
        .args(["--json", "at-risk", "--top", "3", "--refresh"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let shown: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let names: Vec<&str> = shown["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["corporation"].as_str().unwrap())
        .collect();
    assert_eq!(names, ranked);
    assert_eq!(shown["list"]["previous_run_id"], list.meta.run_id.as_str());
}
