//! End to end on the seed's scenario, with local versioned stores in a temporary directory:
//! under the original rule, bootstrap on `practicedata`, then the `sourcedata` files arrive and
//! the full process checks the deployed model for drift (none), then drifted data arrives
//! (retrain and redeploy), then a run with nothing new changes nothing; under the default
//! statistical rule the seed's small batches are "too few rows to tell". Also drives the
//! `risk` binary itself the way the README's main command does.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use shared::config::Config;
use shared::lifecycle::LifecycleSettings;
use shared::lifecycle::window::Validation;
use shared::location::Locations;
use shared::records::{
    Decision, DeploymentRecord, DiagnosticsRecord, DriftEntry, FileOutcome, IngestionRecord,
    RunRecord, ScoreRecord, names,
};
use shared::steps::fullprocess::run_full_process;
use shared::steps::training::load_compiled_data;
use shared::steps::{Pipeline, scoring};
use shared::store::PutMode;

fn repo(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// A configuration whose every location is a fresh directory under `root`, with the seed's
/// test data copied in.
fn scenario_config(root: &Path) -> PathBuf {
    let test_dir = root.join("testdata");
    std::fs::create_dir_all(&test_dir).unwrap();
    std::fs::copy(
        repo("data/testdata/testdata.csv"),
        test_dir.join("testdata.csv"),
    )
    .unwrap();
    let config = root.join("config.json");
    std::fs::write(
        &config,
        r#"{
            "source_data": "file://source",
            "compiled_data": "file://store/compiled",
            "test_data": "file://testdata",
            "models": "file://store/models",
            "production": "file://store/production",
            "reports": "file://store/reports"
        }"#,
    )
    .unwrap();
    config
}

async fn pipeline(config: &Path) -> Pipeline {
    // SAFETY of the environment: the dependency check must not wait on the network in tests.
    let mut pipeline =
        Pipeline::new(Locations::open(&Config::load(config).unwrap()).await).unwrap();
    pipeline.dependency_check.index_url = None;
    pipeline
}

async fn upload(pipeline: &Pipeline, files: &[&str]) {
    for file in files {
        let body = std::fs::read(repo(file)).unwrap();
        let name = Path::new(file).file_name().unwrap().to_str().unwrap();
        pipeline
            .locations
            .source_data
            .put(name, Bytes::from(body), PutMode::Overwrite)
            .await
            .unwrap();
    }
}

/// Every file under `root`, with its size: a run that writes nothing leaves this unchanged.
fn snapshot(root: &Path) -> Vec<(PathBuf, u64)> {
    let mut found = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                pending.push(entry.path());
            } else {
                found.push((entry.path(), meta.len()));
            }
        }
    }
    found.sort();
    found
}

/// Uploads the two practice files and runs the full process once: the bootstrap.
async fn bootstrap_on_practice_data(pipeline: &Pipeline) -> RunRecord {
    upload(
        pipeline,
        &[
            "data/practicedata/dataset1.csv",
            "data/practicedata/dataset2.csv",
        ],
    )
    .await;
    let first = run_full_process(pipeline, "run-1").await.unwrap();
    assert_eq!(first.decision, Decision::Bootstrap, "{}", first.reason);
    first
}

/// How many versions `name` has in `location`.
async fn versions(location: &shared::location::Location, name: &str) -> usize {
    location.list_versions(name).await.unwrap().len()
}

fn assert_png(bytes: &[u8]) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
    assert_eq!(&bytes[12..16], b"IHDR");
    let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    assert!(
        (300..=4000).contains(&width) && (300..=4000).contains(&height),
        "{width}x{height}"
    );
    assert!(
        bytes.len() > 5_000 && bytes.len() < 5_000_000,
        "{} bytes",
        bytes.len()
    );
}

#[tokio::test]
async fn seed_scenario_bootstrap_then_drift_check_then_nothing_new() {
    let dir = tempfile::tempdir().unwrap();
    let config = scenario_config(dir.path());
    // The seed's own behaviour: the original raw-F1 rule, selectable in the configuration.
    let pipeline = pipeline(&config)
        .await
        .with_lifecycle(LifecycleSettings::original());
    let locations = &pipeline.locations;

    // 1. Bootstrap on the practice data.
    let first = bootstrap_on_practice_data(&pipeline).await;
    assert_eq!(first.new_files.len(), 2);

    let (_, record) = locations
        .compiled_data
        .get_json::<IngestionRecord>(names::INGESTION_RECORD, "ingestion record", None)
        .await
        .unwrap();
    let files: Vec<_> = record
        .files
        .iter()
        .map(|f| (f.key.as_str(), f.rows_read, f.rows_accepted, f.outcome))
        .collect();
    assert_eq!(
        files,
        [
            ("dataset1.csv", 17, 17, FileOutcome::Ingested),
            ("dataset2.csv", 19, 19, FileOutcome::Ingested)
        ]
    );
    let compiled = record.compiled.clone().unwrap();
    assert_eq!(
        compiled.rows, 26,
        "36 practice rows less 10 exact duplicates"
    );
    assert_eq!(compiled.duplicates_dropped, 10);

    let (_, deployed_1) = locations
        .production
        .get_json::<DeploymentRecord>(names::DEPLOYMENT, "deployment", None)
        .await
        .unwrap();
    let (_, score_1) = locations
        .production
        .get_json::<ScoreRecord>(names::SCORE, "score", Some(&deployed_1.score.version_id))
        .await
        .unwrap();
    assert_eq!(deployed_1.f1, score_1.metrics.f1);
    assert_eq!(score_1.model.version_id, deployed_1.model_source.version_id);
    assert_eq!(Some(deployed_1.model.clone()), first.model_after);
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
        deployed_1.f1
    );
    let ingested_txt = locations
        .production
        .get(names::INGESTED_FILES_TXT, None)
        .await
        .unwrap()
        .1;
    assert_eq!(
        String::from_utf8_lossy(&ingested_txt),
        "dataset1.csv\ndataset2.csv\n"
    );

    // 2. The source data arrives: the deployed model is scored on the new compiled data.
    upload(
        &pipeline,
        &[
            "data/sourcedata/dataset3.csv",
            "data/sourcedata/dataset4.csv",
        ],
    )
    .await;
    let (_, bootstrap_model) = shared::steps::deployment::deployed_model(&pipeline)
        .await
        .unwrap();
    let second = run_full_process(&pipeline, "run-2").await.unwrap();
    let keys: Vec<_> = second.new_files.iter().map(|f| f.key.as_str()).collect();
    assert_eq!(keys, ["dataset3.csv", "dataset4.csv"]);

    // The two figures the decision rests on, recomputed independently.
    let (_, batches) = load_compiled_data(&pipeline, &locations.compiled_data)
        .await
        .unwrap();
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    assert_eq!(rows as u64, 26 + second.rows_added);
    // The rows this run added are the last ones of the compiled data set.
    let all = arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap();
    let added = all.slice(26, rows - 26);
    let new_data_f1 = scoring::evaluate(&bootstrap_model, vec![added])
        .await
        .unwrap()
        .metrics
        .f1;
    assert_eq!(second.deployed_f1, Some(deployed_1.f1));
    assert_eq!(second.new_data_f1, Some(new_data_f1));
    // On the seed data the practice model does better on the new rows than on the test data
    // (whose five clients it ranks backwards: ROC AUC 0), so there is no drift and nothing is
    // retrained. Figures: F1 9/14 on the 26 new rows against 1/3 recorded.
    assert_eq!(second.decision, Decision::NoDrift, "{}", second.reason);
    assert!((new_data_f1 - 9.0 / 14.0).abs() < 1e-12, "{new_data_f1}");
    assert!(
        (deployed_1.f1 - 1.0 / 3.0).abs() < 1e-12,
        "{}",
        deployed_1.f1
    );
    assert_eq!(second.model_before, second.model_after);
    assert_eq!(versions(&locations.models, names::MODEL).await, 1);
    // The deployment record is written twice by the bootstrap (deployed, then marked as
    // checked once its reports were done) and marked again by this check: same model.
    assert_eq!(versions(&locations.production, names::DEPLOYMENT).await, 3);
    let (_, checked) = locations
        .production
        .get_json::<DeploymentRecord>(names::DEPLOYMENT, "deployment", None)
        .await
        .unwrap();
    assert_eq!(checked.model, deployed_1.model);
    assert_eq!(
        checked
            .checked_against
            .as_ref()
            .map(|c| (c.rows, c.run_id.as_str())),
        Some((52, "run-2"))
    );
    assert_eq!(second.rows_added, 26);
    // No drift: the list drafted during the check, with the deployed model, is the one stored.
    assert!(second.steps.iter().any(|s| s.step == "risk_list_draft"));
    let second_list = second.risk_list.as_ref().unwrap();
    assert_eq!(second_list.model_version, deployed_1.model.version_id);

    // 3. Drifted data arrives: very active clients who all left. The deployed model (less
    // activity -> more risk) predicts they stay, so its F1 on them is 0: drift, retrain.
    let drifted = "corporation,lastmonth_activity,lastyear_activity,number_of_employees,exited\n\
                   dr01,5000,20000,50,1\ndr02,4200,18000,12,1\ndr03,3900,15000,300,1\n\
                   dr04,6100,26000,7,1\ndr05,4400,19000,80,1\ndr06,10,100,5,0\n";
    locations
        .source_data
        .put("drifted.csv", Bytes::from(drifted), PutMode::Overwrite)
        .await
        .unwrap();
    let third = run_full_process(&pipeline, "run-3").await.unwrap();
    assert_eq!(third.decision, Decision::Drift, "{}", third.reason);
    assert_eq!(third.new_data_f1, Some(0.0));
    assert_eq!(third.deployed_f1, Some(deployed_1.f1));

    // Drift: a new model version, scored and deployed; the old versions are all still there.
    let (_, deployed_2) = locations
        .production
        .get_json::<DeploymentRecord>(names::DEPLOYMENT, "deployment", None)
        .await
        .unwrap();
    assert_ne!(deployed_2.model.version_id, deployed_1.model.version_id);
    assert_ne!(
        deployed_2.model_source.version_id,
        deployed_1.model_source.version_id
    );
    assert_eq!(third.model_before, Some(deployed_1.model.clone()));
    assert_eq!(third.model_after, Some(deployed_2.model.clone()));
    // ... and as the models location's versions, which a rollback names.
    assert_eq!(
        third.model_version_before.as_ref(),
        Some(&deployed_1.model_source.version_id)
    );
    assert_eq!(
        third.model_version_after.as_ref(),
        Some(&deployed_2.model_source.version_id)
    );
    assert_eq!(third.new_model_f1, Some(deployed_2.f1));
    // A list drafted during the drift check would score with the replaced model: the run
    // wrote one scored with the new model.
    let third_list = third.risk_list.as_ref().unwrap();
    assert_eq!(third_list.model_version, deployed_2.model.version_id);
    let latest = shared::risklist::load_latest(&locations.reports)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(latest.meta.model_version, deployed_2.model.version_id);
    assert_eq!(latest.meta.run_id, "run-3");
    let model_versions = locations.models.list_versions(names::MODEL).await.unwrap();
    assert_eq!(model_versions.len(), 2);
    assert_eq!(
        model_versions[0].version_id, deployed_2.model_source.version_id,
        "newest first"
    );
    assert_eq!(
        model_versions[1].version_id,
        deployed_1.model_source.version_id
    );
    assert_eq!(versions(&locations.models, names::SCORE).await, 2);
    assert_eq!(versions(&locations.production, names::DEPLOYMENT).await, 5);
    assert_eq!(versions(&locations.production, names::MODEL).await, 2);
    let (_, retrained) = shared::steps::deployment::deployed_model(&pipeline)
        .await
        .unwrap();
    assert_eq!(retrained.rows.rows_used, 58, "26 + 26 + 6 rows");

    // Reports: a real PNG, both reports, and a diagnostics record with every part.
    let png = locations
        .reports
        .get(names::CONFUSION_MATRIX_PNG, None)
        .await
        .unwrap()
        .1;
    assert_png(&png);
    let markdown = locations
        .reports
        .get(names::REPORT_MARKDOWN, None)
        .await
        .unwrap()
        .1;
    assert!(String::from_utf8_lossy(&markdown).contains("| F1 |"));
    let (_, diagnostics) = locations
        .reports
        .get_json::<DiagnosticsRecord>(names::DIAGNOSTICS, "diagnostics", None)
        .await
        .unwrap();
    assert_eq!(diagnostics.predictions.model, deployed_2.model);
    assert_eq!(diagnostics.predictions.rows.len(), 5, "one per test row");
    assert!(
        diagnostics
            .predictions
            .rows
            .iter()
            .all(|r| (0.0..=1.0).contains(&r.probability))
    );
    assert_eq!(diagnostics.summary.rows, 58);
    for column in [
        "lastmonth_activity",
        "lastyear_activity",
        "number_of_employees",
        "exited",
    ] {
        let summary = diagnostics.summary.column(column).unwrap();
        assert!(
            summary.mean.is_some() && summary.median.is_some() && summary.std.is_some(),
            "{column}"
        );
    }
    assert_eq!(diagnostics.missing_values.len(), 5);
    assert!(diagnostics.missing_values.iter().all(|m| m.percent == 0.0));
    let timings = diagnostics
        .timings
        .as_ref()
        .unwrap_or_else(|| panic!("no timings: {:?}", diagnostics.timing_error));
    assert!(timings.ingestion_ms > 0.0 && timings.training_ms > 0.0);
    // The run's own times (its one new file, its 6 rows), not a re-run over the whole history.
    assert_eq!(timings.run_id.as_deref(), Some("run-3"));
    assert_eq!((timings.source_files, timings.rows_compiled), (1, 6));
    assert_eq!(timings.scratch_location, None);
    let ms = |step: &str| third.steps.iter().find(|s| s.step == step).unwrap().ms;
    assert_eq!(
        (timings.ingestion_ms, timings.training_ms),
        (ms("ingestion"), ms("training"))
    );
    assert!(!diagnostics.dependencies.is_empty());
    assert!(
        diagnostics
            .dependencies
            .iter()
            .any(|d| d.name == "smartcore")
    );

    // The run records say what was written.
    let runs = locations.reports.list("runs/").await.unwrap();
    let records: Vec<_> = runs.iter().filter(|m| m.key.ends_with(".json")).collect();
    assert_eq!(records.len(), 3);
    // Each run also kept its copy of the HTML report.
    assert_eq!(runs.len(), 6);
    for name in [
        names::CONFUSION_MATRIX_PNG,
        names::DEPLOYMENT,
        names::LATEST_SCORE_TXT,
        names::INGESTED_FILES_TXT,
        names::DIAGNOSTICS,
        shared::report::INDEX_HTML,
    ] {
        assert!(
            third.wrote.iter().any(|o| o.url.ends_with(name)),
            "{name} not in {:?}",
            third.wrote
        );
    }
    // The run's new rows: one new part of the compiled data.
    assert!(
        third
            .wrote
            .iter()
            .any(|o| o.url.contains("/compiled/parts/ingested_month=")
                && o.url.ends_with(".parquet")),
        "no compiled part in {:?}",
        third.wrote
    );
    let deployment_written = third
        .wrote
        .iter()
        .rfind(|o| o.url.ends_with(names::DEPLOYMENT))
        .unwrap();
    let current_deployment = locations
        .production
        .head(names::DEPLOYMENT, None)
        .await
        .unwrap();
    assert_eq!(deployment_written.version_id, current_deployment.version_id);
    assert!(!second.wrote.iter().any(|o| o.url.ends_with(names::MODEL)));

    // 4. Nothing new: nothing is written anywhere.
    let before = snapshot(dir.path());
    let fourth = run_full_process(&pipeline, "run-4").await.unwrap();
    assert_eq!(fourth.decision, Decision::NoNewData);
    assert_eq!(snapshot(dir.path()), before);
}

/// The same order under the default statistical rule: the seed's batches are far below the
/// minimum sample size, so each check says so and keeps the model instead of retraining on noise.
#[tokio::test]
async fn seed_scenario_under_the_statistical_rule_is_too_few_rows_to_tell() {
    let dir = tempfile::tempdir().unwrap();
    let config = scenario_config(dir.path());
    let pipeline = pipeline(&config).await;
    let first = bootstrap_on_practice_data(&pipeline).await;
    let window = first.training_window.as_ref().expect("a training window");
    assert!(
        matches!(window.validation, Validation::None { .. }),
        "{window:?}"
    );

    upload(
        &pipeline,
        &[
            "data/sourcedata/dataset3.csv",
            "data/sourcedata/dataset4.csv",
        ],
    )
    .await;
    let second = run_full_process(&pipeline, "run-2").await.unwrap();
    assert_eq!(second.decision, Decision::TooFewRows, "{}", second.reason);
    assert!(
        second
            .reason
            .starts_with("too few rows to tell: 26 new labelled rows, at least 200"),
        "{}",
        second.reason
    );
    let report = second.drift.as_ref().expect("the drift report");
    assert_eq!(report.performance.rows, 26);
    assert_eq!(report.features.len(), 3);
    assert_eq!(second.model_before, second.model_after);
    // The drift report is kept: one per run, and the latest.
    let (_, latest) = pipeline
        .locations
        .reports
        .get_json::<DriftEntry>(names::LAST_DRIFT, "drift report", None)
        .await
        .unwrap();
    assert_eq!(latest.run_id, "run-2");
    assert_eq!(&latest.report, report);
}

#[tokio::test]
async fn a_file_uploaded_again_with_new_content_is_new_data_and_a_bad_file_is_kept_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let config = scenario_config(dir.path());
    let pipeline = pipeline(&config).await;
    bootstrap_on_practice_data(&pipeline).await;

    let source = &pipeline.locations.source_data;
    // Same key, new content (one good row, one bad row), and a file that is not CSV data at all.
    source
        .put(
            "dataset1.csv",
            Bytes::from_static(b"corporation,lastmonth_activity,lastyear_activity,number_of_employees,exited\nzzzz,1,2,3,1\nyyyy,1,-2,3,0\n"),
            PutMode::Overwrite,
        )
        .await
        .unwrap();
    source
        .put(
            "broken.csv",
            Bytes::from_static(b"a;b;c\n1;2;3\n"),
            PutMode::Overwrite,
        )
        .await
        .unwrap();
    let run = run_full_process(&pipeline, "run-2").await.unwrap();
    let found: Vec<_> = run
        .new_files
        .iter()
        .map(|f| (f.key.as_str(), f.outcome, f.rows_accepted, f.rows_rejected))
        .collect();
    assert_eq!(
        found,
        [
            ("broken.csv", FileOutcome::Rejected, 0, 0),
            ("dataset1.csv", FileOutcome::Ingested, 1, 1)
        ]
    );
    assert!(
        run.new_files[0].error.as_deref().unwrap().contains("';'"),
        "{:?}",
        run.new_files[0].error
    );
    assert_eq!(run.rows_added, 1);

    // The rejected row is quarantined with its reason; both source files are untouched.
    let (_, record) = pipeline
        .locations
        .compiled_data
        .get_json::<IngestionRecord>(names::INGESTION_RECORD, "ingestion record", None)
        .await
        .unwrap();
    let entry = record
        .files
        .iter()
        .rfind(|f| f.key == "dataset1.csv")
        .unwrap();
    let quarantine = entry.quarantine.as_ref().expect("quarantined rows");
    let name = quarantine.url.rsplit_once("/compiled/").unwrap().1;
    let rows = pipeline
        .locations
        .compiled_data
        .get(name, None)
        .await
        .unwrap()
        .1;
    let text = String::from_utf8_lossy(&rows);
    assert!(
        text.contains("negative") && text.contains("lastyear_activity") && text.contains("yyyy"),
        "{text}"
    );
    assert_eq!(source.list_versions("dataset1.csv").await.unwrap().len(), 2);
    assert!(source.head("broken.csv", None).await.is_ok());
}

#[test]
fn the_cli_runs_the_full_process_and_a_second_run_finds_nothing_new() {
    let dir = tempfile::tempdir().unwrap();
    let config = scenario_config(dir.path());
    std::fs::create_dir_all(dir.path().join("source")).unwrap();
    for file in ["dataset3.csv", "dataset4.csv"] {
        std::fs::copy(
            repo(&format!("data/sourcedata/{file}")),
            dir.path().join("source").join(file),
        )
        .unwrap();
    }
    let risk = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_risk"))
            .args(args)
            .arg("--config")
            .arg(&config)
            .env("RISK_DEPENDENCY_CHECK", "off")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    let first = risk(&["fullprocess"]);
    assert!(first.contains("Bootstrap"), "{first}");
    assert!(
        first.contains("dataset3.csv") && first.contains("confusionmatrix.png"),
        "{first}"
    );
    let second = risk(&["fullprocess"]);
    assert!(
        second.contains("NoNewData") && second.contains("Nothing was written"),
        "{second}"
    );
}
