//! A full process that dies at any write is finished by the next run. Every write point of a
//! bootstrap and of a drift run (generated data with a sudden drift, small so the test stays
//! bounded) is tried in turn: the run crashes there through the fault-injecting store
//! ([`shared::store::fault`]), the next run goes over a clean store, and the end state must equal
//! an uninterrupted run's — same compiled rows and ingested files (none twice), a deployment
//! whose model, score, threshold and data version exist and agree, reports of that deployment,
//! the user's uploads untouched — and a third run must find nothing to do and write nothing.
//! On local stores and on the S3 test server (which fails under `CI=true` when missing). On the
//! S3 test server, also transient failures (503 SlowDown, refused connections) injected in front
//! of it: retried by the client's retry policy, or, once retries run out, a retryable error
//! that the next run repairs.

use std::path::Path;
use std::sync::Arc;

use arrow::array::RecordBatch;
use bytes::Bytes;
use shared::config::{Config, LocationUrl};
use shared::location::{Location, Locations};
use shared::model::TrainedModel;
use shared::records::{
    Decision, DeploymentRecord, DiagnosticsRecord, FileOutcome, IngestionRecord, Report,
    ScoreRecord, names,
};
use shared::steps::Pipeline;
use shared::steps::fullprocess::run_full_process;
use shared::steps::training::load_compiled_data;
use shared::store::PutMode;
use shared::store::fault::{Fault, FaultPlan, with_faults};
use shared::synth::{Drift, DriftKind, SynthSpec, generate_in_memory};

const CLIENTS: usize = 300;
const BOOTSTRAP_MONTHS: usize = 3;

/// The generated monthly files (the last one drifted) and the test file.
fn data() -> (Vec<(String, String)>, String) {
    let spec = SynthSpec {
        clients: CLIENTS,
        months: BOOTSTRAP_MONTHS + 1,
        seed: 12,
        drift: Some(Drift {
            from_month: BOOTSTRAP_MONTHS,
            kind: DriftKind::Sudden,
        }),
        test_rows: 300,
        ..SynthSpec::default()
    };
    generate_in_memory(&spec).unwrap()
}

/// The same locations, every call going through `plan`.
fn pipeline_over(locations: &Locations, plan: &Arc<FaultPlan>) -> Pipeline {
    let mut pipeline = Pipeline::new(with_faults(locations, plan)).unwrap();
    pipeline.dependency_check.index_url = None;
    pipeline
}

fn clean(locations: &Locations) -> (Pipeline, Arc<FaultPlan>) {
    let plan = FaultPlan::new(Vec::new());
    (pipeline_over(locations, &plan), plan)
}

async fn put(location: &Location, name: &str, body: &str) {
    location
        .put(name, Bytes::from(body.to_string()), PutMode::Overwrite)
        .await
        .unwrap();
}

/// The test data and the bootstrap months; for the drift scenario, also the bootstrap run
/// itself and then the drifted month.
async fn prepare(locations: &Locations, drift: bool) {
    let (files, test) = data();
    put(&locations.test_data, "testdata.csv", &test).await;
    for (name, body) in &files[..BOOTSTRAP_MONTHS] {
        put(&locations.source_data, name, body).await;
    }
    if drift {
        let (pipeline, _) = clean(locations);
        let run = run_full_process(&pipeline, "run-bootstrap").await.unwrap();
        assert_eq!(run.decision, Decision::Bootstrap, "{}", run.reason);
        let (name, body) = &files[BOOTSTRAP_MONTHS];
        put(&locations.source_data, name, body).await;
    }
}

/// What must be the same after a crash and a repair as after an uninterrupted run.
#[derive(Debug, PartialEq)]
struct EndState {
    compiled_rows: Vec<RecordBatch>,
    /// Key, content, outcome, accepted and duplicate rows of every ingested file.
    files: Vec<(String, String, FileOutcome, u64, u64)>,
    deployed_f1: f64,
    threshold: f64,
    coefficients: (Vec<f64>, f64),
    training_rows: std::ops::Range<u64>,
}

/// The user's uploads: every version of every source object.
async fn uploads(locations: &Locations) -> Vec<(String, String, u64)> {
    let mut found = Vec::new();
    for meta in locations.source_data.list("").await.unwrap() {
        for version in locations
            .source_data
            .list_versions(&meta.key)
            .await
            .unwrap()
        {
            found.push((version.key, version.etag, version.size));
        }
    }
    found
}

/// After the run that repairs: the end state is the uninterrupted run's, the uploads are as they
/// were, and the next run has nothing to do and writes nothing (repaired within one run).
async fn assert_repaired(
    locations: &Locations,
    reference: &EndState,
    uploaded: &[(String, String, u64)],
    case: &str,
) {
    assert_eq!(
        &consistent_end_state(locations, case).await,
        reference,
        "{case}: the end state differs from an uninterrupted run"
    );
    assert_eq!(
        uploads(locations).await,
        uploaded,
        "{case}: uploads touched"
    );
    let (pipeline, plan) = clean(locations);
    let idle = run_full_process(&pipeline, "run-idle").await.unwrap();
    assert_eq!(
        idle.decision,
        Decision::NoNewData,
        "{case}: {}",
        idle.reason
    );
    assert_eq!(plan.writes(), 0, "{case}: the idle run wrote");
    // The schedule's idle tick: one listing of the source and the deployment record.
    assert_eq!(
        plan.reads(),
        2,
        "{case}: the idle run read more than a listing and one record"
    );
}

/// Checks that everything readers follow exists and agrees, and returns what must match an
/// uninterrupted run.
async fn consistent_end_state(locations: &Locations, case: &str) -> EndState {
    let (_, record) = locations
        .compiled_data
        .get_json::<IngestionRecord>(names::INGESTION_RECORD, "ingestion record", None)
        .await
        .unwrap();
    let mut seen = std::collections::HashSet::new();
    for file in &record.files {
        assert!(
            seen.insert((&file.key, &file.version_id)),
            "{case}: {} ingested twice",
            file.key
        );
    }
    let compiled = record.compiled.clone().expect("compiled data");
    let ingested_txt = locations
        .compiled_data
        .get(names::INGESTED_FILES_TXT, None)
        .await
        .unwrap()
        .1;
    assert_eq!(
        String::from_utf8_lossy(&ingested_txt),
        record.ingested_files_text(),
        "{case}"
    );
    let (pipeline, _) = clean(locations);
    let (data, batches) = load_compiled_data(&pipeline, &locations.compiled_data)
        .await
        .unwrap();
    assert_eq!(data, compiled.object, "{case}");

    // The deployment: every version it names exists and they agree.
    let (_, deployment) = locations
        .production
        .get_json::<DeploymentRecord>(names::DEPLOYMENT, "deployment", None)
        .await
        .unwrap();
    let checked = deployment
        .checked_against
        .as_ref()
        .unwrap_or_else(|| panic!("{case}: the deployment was never finished"));
    assert_eq!(
        checked.data, compiled.object,
        "{case}: checked data version"
    );
    assert_eq!(checked.rows, compiled.rows, "{case}");
    let model_bytes = locations
        .production
        .get(names::MODEL, Some(&deployment.model.version_id))
        .await
        .unwrap()
        .1;
    let source_bytes = locations
        .models
        .get(names::MODEL, Some(&deployment.model_source.version_id))
        .await
        .unwrap()
        .1;
    assert_eq!(
        model_bytes, source_bytes,
        "{case}: deployed model is its source"
    );
    let model: TrainedModel = serde_json::from_slice(&model_bytes).unwrap();
    assert_eq!(
        model.metadata.training_data_version.as_deref(),
        Some(compiled.object.version_id.as_str()),
        "{case}: the model was trained on the current compiled data"
    );
    let (_, score) = locations
        .production
        .get_json::<ScoreRecord>(names::SCORE, "score", Some(&deployment.score.version_id))
        .await
        .unwrap();
    let (_, score_source) = locations
        .models
        .get_json::<ScoreRecord>(
            names::SCORE,
            "score",
            Some(&deployment.score_source.version_id),
        )
        .await
        .unwrap();
    assert_eq!(score, score_source, "{case}");
    assert_eq!(
        score.model.version_id, deployment.model_source.version_id,
        "{case}: the score is of the deployed model"
    );
    assert_eq!(score.threshold, Some(model.threshold()), "{case}");
    assert_eq!(score.f1(), deployment.f1, "{case}");
    let (_, deployed_ingestion) = locations
        .production
        .get_json::<IngestionRecord>(
            names::INGESTION_RECORD,
            "ingestion record",
            Some(&deployment.ingestion_record.version_id),
        )
        .await
        .unwrap();
    assert_eq!(deployed_ingestion.compiled, record.compiled, "{case}");
    let latest_score = locations
        .production
        .get(names::LATEST_SCORE_TXT, None)
        .await
        .unwrap()
        .1;
    assert_eq!(
        String::from_utf8_lossy(&latest_score)
            .trim()
            .parse::<f64>()
            .unwrap(),
        deployment.f1,
        "{case}"
    );
    let production_txt = locations
        .production
        .get(names::INGESTED_FILES_TXT, None)
        .await
        .unwrap()
        .1;
    assert_eq!(
        String::from_utf8_lossy(&production_txt),
        deployed_ingestion.ingested_files_text(),
        "{case}"
    );

    // The reports describe this deployment.
    let (_, report) = locations
        .reports
        .get_json::<Report>(names::REPORT_JSON, "report", None)
        .await
        .unwrap();
    assert_eq!(report.model, deployment.model, "{case}: report.json");
    let (_, diagnostics) = locations
        .reports
        .get_json::<DiagnosticsRecord>(names::DIAGNOSTICS, "diagnostics", None)
        .await
        .unwrap();
    assert_eq!(
        diagnostics.predictions.model, deployment.model,
        "{case}: diagnostics"
    );
    assert_eq!(diagnostics.compiled_data, compiled.object, "{case}");

    let mut files: Vec<_> = record
        .files
        .iter()
        .map(|f| {
            (
                f.key.clone(),
                f.etag.clone(),
                f.outcome,
                f.rows_accepted,
                f.rows_duplicate,
            )
        })
        .collect();
    files.sort_by(|a, b| a.0.cmp(&b.0));
    EndState {
        compiled_rows: batches,
        files,
        deployed_f1: deployment.f1,
        threshold: model.threshold(),
        coefficients: model.coefficients_in_original_units(),
        training_rows: model.window.as_ref().map(|w| w.rows.clone()).unwrap(),
    }
}

/// What a reader follows after a run that stopped: the ingestion record and the deployment
/// record, when they exist, name only versions that exist in full.
async fn readers_see_whole_objects(locations: &Locations, case: &str) {
    let ingestion = locations
        .compiled_data
        .get_json_if_exists::<IngestionRecord>(names::INGESTION_RECORD, "ingestion record")
        .await
        .unwrap();
    if let Some(compiled) = ingestion.and_then(|(_, record)| record.compiled) {
        let (pipeline, _) = clean(locations);
        let (data, _) = load_compiled_data(&pipeline, &locations.compiled_data)
            .await
            .unwrap_or_else(|e| panic!("{case}: the compiled data readers follow: {e}"));
        assert_eq!(data, compiled.object, "{case}");
    }
    let deployment = locations
        .production
        .get_json_if_exists::<DeploymentRecord>(names::DEPLOYMENT, "deployment")
        .await
        .unwrap();
    if let Some((_, deployment)) = deployment {
        let (_, model) = locations
            .production
            .get(names::MODEL, Some(&deployment.model.version_id))
            .await
            .unwrap_or_else(|e| panic!("{case}: the deployed model: {e}"));
        serde_json::from_slice::<TrainedModel>(&model).unwrap();
        locations
            .production
            .get_json::<ScoreRecord>(names::SCORE, "score", Some(&deployment.score.version_id))
            .await
            .unwrap_or_else(|e| panic!("{case}: the deployed score: {e}"));
    }
}

/// A fresh set of locations for one case of a scenario.
type Fresh = Box<dyn Fn(String) -> std::pin::Pin<Box<dyn Future<Output = Locations>>>>;

/// Runs the scenario uninterrupted, then crashes it at every write point in `points` (all of
/// them when `None`) and repairs it; returns how many write points the scenario has.
async fn crash_at_every_write(fresh: &Fresh, drift: bool, points: Option<&[u64]>) -> u64 {
    let scenario = if drift { "drift" } else { "bootstrap" };
    let locations = fresh(format!("{scenario}-reference")).await;
    prepare(&locations, drift).await;
    let (pipeline, plan) = clean(&locations);
    let reference_run = run_full_process(&pipeline, "run-reference").await.unwrap();
    let expected = if drift {
        Decision::Drift
    } else {
        Decision::Bootstrap
    };
    assert_eq!(reference_run.decision, expected, "{}", reference_run.reason);
    let write_points = plan.writes();
    for (n, key) in plan.written_keys().iter().enumerate() {
        eprintln!("{scenario} write {}: {key}", n + 1);
    }
    let reference = consistent_end_state(&locations, scenario).await;

    let all: Vec<u64> = (1..=write_points).collect();
    for &point in points.unwrap_or(&all) {
        assert!(point <= write_points, "{scenario}: no write {point}");
        let case = format!("{scenario}, crash at write {point} of {write_points}");
        let locations = fresh(format!("{scenario}-{point}")).await;
        prepare(&locations, drift).await;
        let uploaded = uploads(&locations).await;

        let crash = FaultPlan::new(vec![Fault::CrashAtWrite { nth: point }]);
        let crashed = run_full_process(&pipeline_over(&locations, &crash), "run-crashed").await;
        assert!(crashed.is_err(), "{case}: the run did not stop");
        assert!(crash.crashed(), "{case}");
        readers_see_whole_objects(&locations, &case).await;

        let (pipeline, _) = clean(&locations);
        let repaired = run_full_process(&pipeline, "run-repair")
            .await
            .unwrap_or_else(|e| panic!("{case}: the next run failed: {e}"));
        // A crash while writing the run record leaves nothing to finish (the record of the
        // crashed run is what is lost).
        eprintln!("{case}: repaired, {:?}", repaired.decision);
        assert_repaired(&locations, &reference, &uploaded, &case).await;
    }
    write_points
}

fn local_locations(root: &Path) -> Locations {
    let file = |dir: &str| LocationUrl::File {
        root: root.join(dir),
    };
    let config = Config {
        source_data: file("source"),
        compiled_data: file("compiled"),
        test_data: file("testdata"),
        models: file("models"),
        production: file("production"),
        reports: file("reports"),
        lifecycle: Default::default(),
        seed: Default::default(),
    };
    Locations::open_with_client(&config, None)
}

#[tokio::test]
async fn a_crash_at_any_write_is_repaired_by_the_next_run_on_local_stores() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let fresh: Fresh = Box::new(move |case| {
        let root = root.join(case);
        Box::pin(async move { local_locations(&root) })
    });
    let bootstrap = crash_at_every_write(&fresh, false, None).await;
    let drift = crash_at_every_write(&fresh, true, None).await;
    eprintln!("write points: bootstrap {bootstrap}, drift run {drift}; all repaired");
}

#[tokio::test]
async fn a_crash_at_any_write_is_repaired_by_the_next_run_on_s3() {
    let Some(bucket) = shared::testing::s3_test_bucket("crash_repair::s3").await else {
        return;
    };
    let fresh: Fresh = Box::new(move |case| {
        let locations = s3_locations(&bucket.client, &bucket.bucket, &case);
        Box::pin(async move { locations })
    });
    // The S3 test server is slow: seven or eight write points of each scenario, spread over its
    // steps (chosen when the runs had 19 and 21 writes; the risk list and the report page added
    // writes since, so they now fall earlier in the run). The bootstrap's first writes are the
    // compiled part (1), its fingerprint index (2), its statistics (3) and the ingestion record
    // (4): a crash between the part and the record leaves an orphan part. Every point of both
    // scenarios runs on local stores above.
    let bootstrap = crash_at_every_write(&fresh, false, Some(&[2, 3, 4, 7, 12, 13, 17, 18])).await;
    let drift = crash_at_every_write(&fresh, true, Some(&[3, 4, 6, 9, 14, 15, 19])).await;
    eprintln!(
        "write points on S3: bootstrap {bootstrap}, drift run {drift}; 15 tried, all repaired"
    );
}

/// Locations for one case on the S3 test server, over `client`.
fn s3_locations(client: &shared::testing::S3Client, bucket: &str, case: &str) -> Locations {
    let s3 = |dir: &str| LocationUrl::S3 {
        bucket: bucket.to_string(),
        prefix: format!("{case}/{dir}"),
    };
    let config = Config {
        source_data: s3("source"),
        compiled_data: s3("compiled"),
        test_data: s3("testdata"),
        models: s3("models"),
        production: s3("production"),
        reports: s3("reports"),
        lifecycle: Default::default(),
        seed: Default::default(),
    };
    Locations::open_with_client(&config, Some(client.clone()))
}

#[tokio::test]
async fn transient_s3_failures_are_retried_and_exhausted_retries_are_repaired_by_the_next_run() {
    use shared::testing::flaky_s3::{Flakiness, flaky_client};
    let Some(bucket) = shared::testing::s3_test_bucket("crash_repair::s3_transient").await else {
        return;
    };
    // The retry policy is the one the project sets, not the SDK's default.
    let retry = bucket.client.config().retry_config().unwrap();
    assert_eq!(retry, &shared::store::s3::retry_config());
    assert_eq!(retry.max_attempts(), 5);

    // Every third request attempt fails (a read with 503 SlowDown, a write with a refused
    // connection): every call still succeeds on a later attempt, and the bootstrap completes.
    let flaky = flaky_client(&bucket.client, Flakiness { from: 1, every: 3 })
        .await
        .unwrap();
    let locations = s3_locations(&flaky.client, &bucket.bucket, "flaky");
    prepare(&locations, false).await;
    let (pipeline, _) = clean(&locations);
    let run = run_full_process(&pipeline, "run-flaky").await.unwrap();
    assert_eq!(run.decision, Decision::Bootstrap, "{}", run.reason);
    assert!(
        flaky.injected() >= 20,
        "{} failures injected",
        flaky.injected()
    );
    eprintln!(
        "bootstrap over a flaky connection: {} of {} attempts failed, all retried",
        flaky.injected(),
        flaky.attempts()
    );
    let reference = consistent_end_state(&locations, "flaky").await;

    // Retries run out half-way through (every attempt from then on fails): a retryable error,
    // and the next run, over a healthy connection, finishes the work.
    let counting = flaky_client(&bucket.client, Flakiness::NONE).await.unwrap();
    let locations = s3_locations(&counting.client, &bucket.bucket, "counted");
    prepare(&locations, false).await;
    let before = counting.attempts();
    let (pipeline, _) = clean(&locations);
    run_full_process(&pipeline, "run-counted").await.unwrap();
    let attempts = counting.attempts() - before;

    let healthy = s3_locations(&bucket.client, &bucket.bucket, "exhausted");
    prepare(&healthy, false).await;
    let failing = flaky_client(
        &bucket.client,
        Flakiness {
            from: attempts / 2,
            every: 1,
        },
    )
    .await
    .unwrap();
    let locations = s3_locations(&failing.client, &bucket.bucket, "exhausted");
    let (pipeline, _) = clean(&locations);
    let error = run_full_process(&pipeline, "run-exhausted")
        .await
        .unwrap_err();
    assert!(error.is_retryable(), "{error}");
    readers_see_whole_objects(&healthy, "exhausted retries").await;
    assert!(
        failing.injected() >= 5,
        "{} failures injected",
        failing.injected()
    );
    eprintln!(
        "retries exhausted from attempt {} of {attempts}: {error}",
        attempts / 2
    );
    let (pipeline, _) = clean(&healthy);
    let repaired = run_full_process(&pipeline, "run-after-exhausted")
        .await
        .unwrap();
    assert_ne!(
        repaired.decision,
        Decision::NoNewData,
        "{}",
        repaired.reason
    );
    assert_eq!(consistent_end_state(&healthy, "exhausted").await, reference);
}

/// Every row as text, sorted: the compiled rows whatever order the files were ingested in.
fn sorted_rows(batches: &[RecordBatch]) -> Vec<String> {
    let mut rows = Vec::new();
    for batch in batches {
        for row in 0..batch.num_rows() {
            let fields: Vec<String> = batch
                .columns()
                .iter()
                .map(|column| arrow::util::display::array_value_to_string(column, row).unwrap())
                .collect();
            rows.push(fields.join(","));
        }
    }
    rows.sort();
    rows
}

#[tokio::test]
async fn eight_concurrent_ingestions_on_s3_each_ingest_their_file_exactly_once() {
    use shared::steps::fullprocess::run_full_process_for;
    use shared::steps::ingestion::{IngestScope, SourceObject};
    const FILES: usize = 8;
    let Some(bucket) = shared::testing::s3_test_bucket("crash_repair::concurrent").await else {
        return;
    };
    let spec = SynthSpec {
        clients: 150,
        months: FILES,
        seed: 8,
        test_rows: 200,
        ..SynthSpec::default()
    };
    let (files, test) = generate_in_memory(&spec).unwrap();

    // The reference: the same files ingested by one run.
    let sequential = s3_locations(&bucket.client, &bucket.bucket, "sequential");
    put(&sequential.test_data, "testdata.csv", &test).await;
    for (name, body) in &files {
        put(&sequential.source_data, name, body).await;
    }
    let (pipeline, _) = clean(&sequential);
    run_full_process(&pipeline, "run-sequential").await.unwrap();
    let (_, reference) = load_compiled_data(&pipeline, &sequential.compiled_data)
        .await
        .unwrap();

    // Eight uploads and eight events at once, one object version each, as the ingestion
    // function receives them; a run that fails retryably is invoked again, as Lambda does.
    let locations = s3_locations(&bucket.client, &bucket.bucket, "concurrent");
    put(&locations.test_data, "testdata.csv", &test).await;
    let mut objects = Vec::new();
    for (name, body) in &files {
        let meta = locations
            .source_data
            .put(name, Bytes::from(body.clone()), PutMode::Overwrite)
            .await
            .unwrap();
        objects.push(SourceObject {
            key: name.clone(),
            version_id: Some(meta.version_id),
        });
    }
    let (pipeline, _) = clean(&locations);
    let mut tasks = Vec::new();
    for (n, object) in objects.into_iter().enumerate() {
        let pipeline = pipeline.clone();
        tasks.push(tokio::spawn(async move {
            let scope = IngestScope::Objects(vec![object]);
            for attempt in 0..30u64 {
                match run_full_process_for(&pipeline, &scope, &format!("run-{n}-{attempt}")).await {
                    Ok(run) => return (run, attempt),
                    Err(e) if e.is_retryable() => {
                        tokio::time::sleep(std::time::Duration::from_millis(20 * (n as u64 + 1)))
                            .await
                    }
                    Err(e) => panic!("event {n}: a permanent error: {e}"),
                }
            }
            panic!("event {n}: still failing after 30 attempts");
        }));
    }
    let mut retries = 0;
    for task in tasks {
        let (_, attempt) = task.await.unwrap();
        retries += attempt;
    }
    eprintln!("{FILES} concurrent ingestions: done after {retries} retried invocations");

    let (_, record) = locations
        .compiled_data
        .get_json::<IngestionRecord>(names::INGESTION_RECORD, "ingestion record", None)
        .await
        .unwrap();
    let mut keys: Vec<&str> = record.files.iter().map(|f| f.key.as_str()).collect();
    keys.sort();
    let expected: Vec<&str> = files.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(keys, expected, "every file exactly once");
    let (_, compiled) = load_compiled_data(&pipeline, &locations.compiled_data)
        .await
        .unwrap();
    assert_eq!(sorted_rows(&compiled), sorted_rows(&reference));
    // Every event's work is finished: the deployment was checked against the final data.
    let (_, deployment) = locations
        .production
        .get_json::<DeploymentRecord>(names::DEPLOYMENT, "deployment", None)
        .await
        .unwrap();
    assert_eq!(
        deployment.checked_against.map(|c| c.data),
        record.compiled.map(|c| c.object)
    );
    let (pipeline, plan) = clean(&locations);
    let idle = run_full_process(&pipeline, "run-idle").await.unwrap();
    assert_eq!(idle.decision, Decision::NoNewData, "{}", idle.reason);
    assert_eq!(plan.writes(), 0);
}

/// `risk fullprocess` on the configuration in `root`: killed (SIGKILL) after `kill_after` when
/// given and still running then; whether it was killed.
fn risk_fullprocess(root: &Path, kill_after: Option<std::time::Duration>) -> bool {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_risk"))
        .arg("fullprocess")
        .arg("--config")
        .arg(root.join("config.json"))
        .env("RISK_DEPENDENCY_CHECK", "off")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(after) = kill_after {
        let started = std::time::Instant::now();
        while started.elapsed() < after {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            child.wait().unwrap();
            return true;
        }
    }
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    false
}

/// A fresh local configuration under `root` with the test data and the bootstrap months
/// (uploaded through the store, as `risk put` does).
async fn cli_setup(root: &Path) {
    prepare(&local_locations(root), false).await;
    std::fs::write(
        root.join("config.json"),
        r#"{"source_data": "file://source", "compiled_data": "file://compiled",
            "test_data": "file://testdata", "models": "file://models",
            "production": "file://production", "reports": "file://reports"}"#,
    )
    .unwrap();
}

async fn add_drifted_month(root: &Path) {
    let (files, _) = data();
    let (name, body) = &files[BOOTSTRAP_MONTHS];
    put(&local_locations(root).source_data, name, body).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_killed_at_random_moments_is_repaired_by_the_next_run() {
    const TRIALS: usize = 4;
    let dir = tempfile::tempdir().unwrap();
    // The uninterrupted runs, timed to bound the kill moments.
    let reference_root = dir.path().join("reference");
    cli_setup(&reference_root).await;
    let started = std::time::Instant::now();
    risk_fullprocess(&reference_root, None);
    let bootstrap_time = started.elapsed();
    let bootstrap = consistent_end_state(&local_locations(&reference_root), "bootstrap").await;
    add_drifted_month(&reference_root).await;
    let started = std::time::Instant::now();
    risk_fullprocess(&reference_root, None);
    let drift_time = started.elapsed();
    let drift = consistent_end_state(&local_locations(&reference_root), "drift").await;

    // Kill moments drawn uniformly over each run's duration, from a fixed seed.
    let mut random = shared::synth::SplitMix64::new(12);
    let mut killed = 0;
    for trial in 0..TRIALS {
        let root = dir.path().join(format!("trial-{trial}"));
        cli_setup(&root).await;
        for (scenario, duration, reference) in [
            ("bootstrap", bootstrap_time, &bootstrap),
            ("drift", drift_time, &drift),
        ] {
            if scenario == "drift" {
                add_drifted_month(&root).await;
            }
            let uploaded = uploads(&local_locations(&root)).await;
            let after = duration.mul_f64(random.uniform());
            let case = format!("trial {trial}, {scenario}, killed after {after:?}");
            if risk_fullprocess(&root, Some(after)) {
                killed += 1;
            }
            risk_fullprocess(&root, None);
            assert_repaired(&local_locations(&root), reference, &uploaded, &case).await;
        }
    }
    eprintln!(
        "{killed} of {} runs killed mid-run (bootstrap {bootstrap_time:?}, drift run {drift_time:?}); all repaired",
        2 * TRIALS
    );
}
