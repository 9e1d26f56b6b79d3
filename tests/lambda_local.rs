//! End to end through the Lambda runtime emulator, the way the README tests locally: versioned
//! buckets on the S3-compatible test server (moto, started by `scripts/test.sh`), the seed's CSV
//! files uploaded (one key with a space and non-ASCII letters), `cargo lambda watch
//! --only-lambda-apis` serving the Runtime API, the `ingestion` and `fullprocess` binaries (the
//! workspace's ordinary debug build, which `scripts/test.sh` makes before the tests: building
//! them here would mean a second build) running against it, and every invocation made with
//! `cargo lambda invoke --data-file`. An S3 put event is delivered twice, then the schedule
//! fires with one more file uploaded behind the trigger's back; the buckets must then hold every
//! source file ingested exactly once, a deployed model and score, and the reports.
//!
//! Without the server, cargo-lambda or the binaries the test is skipped with a message, except
//! under `CI=true`, where it fails.

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{Value, json};
use shared::config::Config;
use shared::events::encode_s3_event_key;
use shared::location::{Location, Locations};
use shared::records::{DeploymentRecord, IngestionRecord, names};
use shared::store::{ObjectMeta, PutMode};
use shared::testing::{TestBucket, event_fixture, repo_path, s3_test_bucket};

const FUNCTIONS: [&str; 2] = ["ingestion", "fullprocess"];

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true"))
}

/// Skips (locally) or fails (in CI) for a missing prerequisite.
fn missing<T>(what: &str) -> Option<T> {
    if in_ci() {
        panic!("the cargo-lambda end-to-end test needs {what} in CI");
    }
    eprintln!("SKIPPED (cargo-lambda end-to-end): {what} is missing");
    None
}

fn cargo() -> PathBuf {
    std::env::var_os("CARGO")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("cargo"))
}

/// A process killed when the test ends, however it ends.
struct Process {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Process {
    fn spawn(name: &str, mut command: Command, logs: &Path) -> Process {
        let log = logs.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).unwrap();
        command
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Process {
            name: name.to_string(),
            child,
            log,
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "{} exited ({status}); its log:\n{}",
                self.name,
                self.log_text()
            );
        }
    }
}

/// The Runtime API emulator and the two function binaries running against it.
struct LocalLambda {
    port: u16,
    watch: Process,
    functions: Vec<Process>,
    logs: tempfile::TempDir,
}

impl LocalLambda {
    /// Finds cargo-lambda and the binaries; `None` (after a message) when one is missing.
    fn prerequisites() -> Option<PathBuf> {
        let version = Command::new(cargo()).args(["lambda", "-V"]).output();
        match version {
            Ok(out) if out.status.success() => {}
            _ => return missing("cargo-lambda on PATH (scripts/test.sh installs it into .venv)"),
        }
        // This test runs from <target>/debug/deps/; the binaries are in <target>/debug/.
        let bin_dir = std::env::current_exe()
            .ok()
            .and_then(|exe| Some(exe.parent()?.parent()?.to_path_buf()))
            .unwrap_or_default();
        for function in FUNCTIONS {
            if !bin_dir.join(function).is_file() {
                return missing(&format!(
                    "the {function} binary in {} (cargo build --workspace --bins; scripts/test.sh does it)",
                    bin_dir.display()
                ));
            }
        }
        Some(bin_dir)
    }

    fn start(bin_dir: &Path, env: &[(String, String)]) -> LocalLambda {
        let logs = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut watch_command = Command::new(cargo());
        watch_command
            .args(["lambda", "watch", "--only-lambda-apis", "--invoke-address"])
            .arg("127.0.0.1")
            .arg("--invoke-port")
            .arg(port.to_string())
            .current_dir(repo_path(""));
        let mut watch = Process::spawn("cargo-lambda-watch", watch_command, logs.path());
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            watch.assert_running();
            assert!(
                Instant::now() < deadline,
                "cargo lambda watch did not listen on {port}:\n{}",
                watch.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let functions = FUNCTIONS
            .iter()
            .map(|function| {
                let mut command = Command::new(bin_dir.join(function));
                command
                    .env(
                        "AWS_LAMBDA_RUNTIME_API",
                        format!("http://127.0.0.1:{port}/.rt/{function}"),
                    )
                    .env("AWS_LAMBDA_FUNCTION_NAME", function)
                    .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
                    .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
                    .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
                    .envs(env.iter().map(|(k, v)| (k, v)));
                Process::spawn(function, command, logs.path())
            })
            .collect();
        LocalLambda {
            port,
            watch,
            functions,
            logs,
        }
    }

    /// `cargo lambda invoke <function> --data-file <event>`; the function's answer, or a panic
    /// with the error and every log.
    fn invoke(&mut self, function: &str, event: &Value) -> Value {
        let file = self
            .logs
            .path()
            .join(format!("event-{}.json", rand_suffix()));
        std::fs::write(&file, serde_json::to_vec_pretty(event).unwrap()).unwrap();
        let output: Output = Command::new(cargo())
            .args([
                "lambda",
                "invoke",
                function,
                "--invoke-address",
                "127.0.0.1",
            ])
            .arg("--invoke-port")
            .arg(self.port.to_string())
            .arg("--data-file")
            .arg(&file)
            .args(["--output-format", "json"])
            .current_dir(repo_path(""))
            .output()
            .unwrap();
        if !output.status.success() {
            self.watch.assert_running();
            for process in &mut self.functions {
                process.assert_running();
            }
            panic!(
                "cargo lambda invoke {function} failed: {}\n{}\nfunction logs:\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr),
                self.function(function).log_text()
            );
        }
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
            panic!(
                "{function} answered with something that is not JSON ({e}): {}",
                String::from_utf8_lossy(&output.stdout)
            )
        })
    }

    fn function(&self, name: &str) -> &Process {
        self.functions
            .iter()
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("no function {name}"))
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// An S3 put event in the real shape (the fixture's record), naming the given object versions.
fn s3_put_event(bucket: &str, objects: &[(&str, &ObjectMeta)]) -> Value {
    let template = event_fixture("s3-put-multi.json")["Records"][0].clone();
    let records: Vec<Value> = objects
        .iter()
        .map(|(key, meta)| {
            let mut record = template.clone();
            record["eventName"] = json!("ObjectCreated:Put");
            record["s3"]["bucket"]["name"] = json!(bucket);
            record["s3"]["bucket"]["arn"] = json!(format!("arn:aws:s3:::{bucket}"));
            record["s3"]["object"] = json!({
                "key": encode_s3_event_key(key),
                "size": meta.size,
                "eTag": meta.etag,
                "versionId": meta.version_id,
                "sequencer": "0067616D4EA8D0DA01",
            });
            record
        })
        .collect();
    json!({ "Records": records })
}

/// Every version of every object in `location`, sorted: unchanged when nothing was written.
async fn all_versions(location: &Location) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for object in location.list("").await.unwrap() {
        for version in location.list_versions(&object.key).await.unwrap() {
            found.push((version.key, version.version_id));
        }
    }
    found.sort();
    found
}

async fn upload(location: &Location, key: &str, seed_file: &str) -> ObjectMeta {
    let body = std::fs::read(repo_path(seed_file)).unwrap();
    location
        .put(key, Bytes::from(body), PutMode::Overwrite)
        .await
        .unwrap()
}

/// Every JSON log line a function wrote while handling invocations carries the runtime's
/// request id and the handler's run id.
fn assert_invocation_logs_carry_ids(log: &str, function: &str) {
    let mut checked = 0;
    for line in BufReader::new(log.as_bytes()).lines() {
        let line = line.unwrap();
        let Ok(entry) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if entry["message"] == "configuration loaded" {
            continue;
        }
        let spans = entry["spans"].as_array().cloned().unwrap_or_default();
        let has = |field: &str| spans.iter().any(|s| s[field].is_string());
        assert!(
            has("requestId") && has("run_id"),
            "{function} logged a line without request and run ids: {line}"
        );
        checked += 1;
    }
    assert!(checked >= 3, "{function} logged {checked} invocation lines");
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_events_delivered_twice_and_the_schedule_through_cargo_lambda() {
    let started = Instant::now();
    let Some(source_bucket) = s3_test_bucket("lambda_local: source").await else {
        return;
    };
    let Some(artifacts) = s3_test_bucket("lambda_local: artifacts").await else {
        return;
    };
    let Some(bin_dir) = LocalLambda::prerequisites() else {
        return;
    };

    let settings = |bucket: &TestBucket| format!("s3://{}", bucket.bucket);
    let a = settings(&artifacts);
    let locations_env = [
        ("RISK_SOURCE_DATA", settings(&source_bucket)),
        ("RISK_COMPILED_DATA", format!("{a}/compiled")),
        ("RISK_TEST_DATA", format!("{a}/testdata")),
        ("RISK_MODELS", format!("{a}/models")),
        ("RISK_PRODUCTION", format!("{a}/production")),
        ("RISK_REPORTS", format!("{a}/reports")),
    ];
    let config = Config::load_with_env(
        None,
        &locations_env
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    )
    .unwrap();
    let locations = Locations::open_with_client(&config, Some(artifacts.client.clone()));
    let whole_artifacts = Location::new(Arc::new(artifacts.store()), "", a.clone());

    upload(
        &locations.test_data,
        "testdata.csv",
        "data/testdata/testdata.csv",
    )
    .await;
    const SPACED: &str = "incoming/2026 11/dataset 4 (März).csv";
    let first = upload(
        &locations.source_data,
        "dataset3.csv",
        "data/sourcedata/dataset3.csv",
    )
    .await;
    let spaced = upload(
        &locations.source_data,
        SPACED,
        "data/sourcedata/dataset4.csv",
    )
    .await;
    let notes = upload(&locations.source_data, "incoming/notes.txt", "README.md").await;

    let env_or = |name: &str, default: &str| {
        std::env::var(name)
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| default.to_string())
    };
    let mut env: Vec<(String, String)> = locations_env
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    env.extend([
        ("AWS_ENDPOINT_URL".to_string(), artifacts.endpoint.clone()),
        (
            "AWS_ACCESS_KEY_ID".to_string(),
            env_or("AWS_ACCESS_KEY_ID", "test"),
        ),
        (
            "AWS_SECRET_ACCESS_KEY".to_string(),
            env_or("AWS_SECRET_ACCESS_KEY", "test"),
        ),
        ("AWS_REGION".to_string(), env_or("AWS_REGION", "us-east-1")),
        ("RISK_DEPENDENCY_CHECK".to_string(), "off".to_string()),
    ]);
    let mut lambda = LocalLambda::start(&bin_dir, &env);

    // 1. The upload's event: two CSV files (one key with spaces and non-ASCII letters) and a
    // text file. Nothing is deployed yet, so the ingestion function bootstraps.
    let event = s3_put_event(
        &source_bucket.bucket,
        &[
            ("dataset3.csv", &first),
            (SPACED, &spaced),
            ("incoming/notes.txt", &notes),
        ],
    );
    let answer = lambda.invoke("ingestion", &event);
    assert_eq!(answer["run"]["decision"], "bootstrap", "{answer:#}");
    let ingested: Vec<&str> = answer["run"]["new_files"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["key"].as_str())
        .collect();
    assert_eq!(ingested, ["dataset3.csv", SPACED]);
    assert_eq!(answer["skipped"][0]["key"], "incoming/notes.txt");
    assert_eq!(answer["skipped"][0]["reason"], "not_csv");

    // 2. The same event delivered again: nothing new, and not one object version written.
    let before = all_versions(&whole_artifacts).await;
    let again = lambda.invoke("ingestion", &event);
    assert_eq!(again["run"]["decision"], "no_new_data", "{again:#}");
    assert_eq!(all_versions(&whole_artifacts).await, before);

    // 3. A file whose event never came; the schedule finds it and checks the model for drift.
    let late = upload(
        &locations.source_data,
        "late/dataset1.csv",
        "data/practicedata/dataset1.csv",
    )
    .await;
    let scheduled = lambda.invoke("fullprocess", &event_fixture("schedule.json"));
    assert_eq!(scheduled["trigger"]["kind"], "schedule", "{scheduled:#}");
    let decision = scheduled["decision"].as_str().unwrap_or_default();
    assert!(
        // A practice file is far below the drift test's minimum sample: too few rows to tell.
        ["drift", "no_drift", "too_few_rows"].contains(&decision),
        "{decision}: {}",
        scheduled["reason"]
    );
    assert_eq!(scheduled["new_files"][0]["key"], "late/dataset1.csv");

    // Every source file ingested exactly once, at the version uploaded.
    let (_, record) = locations
        .compiled_data
        .get_json::<IngestionRecord>(names::INGESTION_RECORD, "ingestion record", None)
        .await
        .unwrap();
    let mut files: Vec<(&str, &str)> = record
        .files
        .iter()
        .map(|f| (f.key.as_str(), f.version_id.as_str()))
        .collect();
    files.sort();
    let mut expected = vec![
        ("dataset3.csv", first.version_id.as_str()),
        (SPACED, spaced.version_id.as_str()),
        ("late/dataset1.csv", late.version_id.as_str()),
    ];
    expected.sort();
    assert_eq!(files, expected);
    let record_versions = locations
        .compiled_data
        .list_versions(names::INGESTION_RECORD)
        .await
        .unwrap();
    assert_eq!(
        record_versions.len(),
        2,
        "written by step 1 and step 3 only"
    );

    // A model and its score deployed, each a version in production.
    let (_, deployment) = locations
        .production
        .get_json::<DeploymentRecord>(names::DEPLOYMENT, "deployment record", None)
        .await
        .unwrap();
    let production = &locations.production;
    let model = production
        .head(names::MODEL, Some(&deployment.model.version_id))
        .await
        .unwrap();
    let score = production
        .head(names::SCORE, Some(&deployment.score.version_id))
        .await
        .unwrap();
    assert!(model.size > 0 && score.size > 0);
    // Each deployment is written, then marked as checked once its reports are done; a check
    // that keeps the model marks it again.
    let expected_deployments = if decision == "drift" { 4 } else { 3 };
    assert_eq!(
        production
            .list_versions(names::DEPLOYMENT)
            .await
            .unwrap()
            .len(),
        expected_deployments
    );

    // Reports written: diagnostics, both reports, the plot, a run record for each run that
    // found new data.
    let reports = &locations.reports;
    for name in [
        names::DIAGNOSTICS,
        names::REPORT_JSON,
        names::REPORT_MARKDOWN,
        names::CONFUSION_MATRIX_PNG,
        names::LAST_RUN,
    ] {
        let meta = reports.head(name, None).await.unwrap();
        assert!(meta.size > 0, "{name}");
    }
    // Per run: its record and its copy of the HTML report.
    let runs = reports.list("runs/").await.unwrap();
    assert_eq!(runs.iter().filter(|m| m.key.ends_with(".json")).count(), 2);
    assert_eq!(runs.iter().filter(|m| m.key.ends_with(".html")).count(), 2);

    for function in FUNCTIONS {
        assert_invocation_logs_carry_ids(&lambda.function(function).log_text(), function);
    }
    eprintln!(
        "cargo-lambda end-to-end test took {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
