//! The model lifecycle end to end on generated monthly data (2,000 clients a month, fixed seeds),
//! with local versioned stores in a temporary directory: stable months are not retrained; a
//! sudden concept drift is detected in its first month, and the challenger trained on the
//! drifted rows replaces the champion and recovers; a challenger that is no better than the
//! champion is rejected and the champion stays.

use std::path::Path;

use bytes::Bytes;
use shared::config::Config;
use shared::data::csv::read_csv_file;
use shared::drift::report::Verdict;
use shared::drift::stats::{Margin, SignificanceLevel, roc_auc};
use shared::lifecycle::LifecycleSettings;
use shared::lifecycle::profile::labelled_probabilities;
use shared::location::Locations;
use shared::model::{TrainingParams, train};
use shared::records::{Decision, RunRecord, names};
use shared::steps::Pipeline;
use shared::steps::deployment::deployed_model;
use shared::steps::fullprocess::run_full_process;
use shared::store::PutMode;
use shared::synth::{Drift, DriftKind, SynthSpec, generate_in_memory};

const CLIENTS: usize = 2_000;
const BOOTSTRAP_MONTHS: usize = 6;

async fn pipeline(root: &Path, test_file: &str, lifecycle: LifecycleSettings) -> Pipeline {
    let config = root.join("config.json");
    std::fs::write(
        &config,
        r#"{"source_data": "file://source", "compiled_data": "file://store/compiled",
            "test_data": "file://testdata", "models": "file://store/models",
            "production": "file://store/production", "reports": "file://store/reports"}"#,
    )
    .unwrap();
    let mut pipeline = Pipeline::new(Locations::open(&Config::load(&config).unwrap()).await)
        .unwrap()
        .with_lifecycle(lifecycle);
    pipeline.dependency_check.index_url = None;
    pipeline
        .locations
        .test_data
        .put(
            "testdata.csv",
            Bytes::from(test_file.to_string()),
            PutMode::Overwrite,
        )
        .await
        .unwrap();
    pipeline
}

async fn put_month(pipeline: &Pipeline, (name, body): &(String, String)) {
    pipeline
        .locations
        .source_data
        .put(name, Bytes::from(body.clone()), PutMode::Overwrite)
        .await
        .unwrap();
}

/// Bootstraps on the first six months.
async fn bootstrap(pipeline: &Pipeline, files: &[(String, String)]) -> RunRecord {
    for file in &files[..BOOTSTRAP_MONTHS] {
        put_month(pipeline, file).await;
    }
    let run = run_full_process(pipeline, "run-bootstrap").await.unwrap();
    assert_eq!(run.decision, Decision::Bootstrap, "{}", run.reason);
    run
}

/// AUC of the deployed model on a month's file.
async fn deployed_auc(pipeline: &Pipeline, (name, body): &(String, String)) -> f64 {
    let (_, model) = deployed_model(pipeline).await.unwrap();
    auc_of(&model, name, body)
}

fn auc_of(model: &shared::model::TrainedModel, name: &str, body: &str) -> f64 {
    let batch = read_csv_file(name.to_string(), body.as_bytes())
        .unwrap()
        .accepted;
    let (labels, probabilities) = labelled_probabilities(model, &[batch]).unwrap();
    roc_auc(&labels, &probabilities).unwrap().unwrap()
}

#[tokio::test]
async fn stable_months_are_not_retrained() {
    let spec = SynthSpec {
        clients: CLIENTS,
        months: 10,
        seed: 7,
        test_rows: 2_000,
        ..SynthSpec::default()
    };
    let (files, test) = generate_in_memory(&spec).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pipeline = pipeline(dir.path(), &test, LifecycleSettings::default()).await;
    let first = bootstrap(&pipeline, &files).await;
    // The bootstrap trains on the newest three months and validates on the newest one, where
    // the threshold is chosen.
    let (_, model) = deployed_model(&pipeline).await.unwrap();
    let window = first.training_window.unwrap();
    assert_eq!(window.files.len(), 3, "{window:?}");
    let choice = model
        .decision_threshold
        .as_ref()
        .expect("a tuned threshold");
    assert!(
        choice.metrics.f1 >= 2.0 * choice.metrics_at_default.f1,
        "tuned F1 {} against {} at 0.5",
        choice.metrics.f1,
        choice.metrics_at_default.f1
    );
    for (month, file) in files.iter().enumerate().skip(BOOTSTRAP_MONTHS) {
        put_month(&pipeline, file).await;
        let run = run_full_process(&pipeline, &format!("run-{month}"))
            .await
            .unwrap();
        assert!(
            matches!(run.decision, Decision::NoDrift | Decision::DataDrift),
            "month {month}: {:?}: {}",
            run.decision,
            run.reason
        );
        let report = run.drift.expect("a drift report");
        assert_eq!(
            report.performance.rows,
            CLIENTS - report_duplicates(&run.new_files)
        );
        assert!(report.performance.roc_auc.is_some());
    }
    assert_eq!(
        pipeline
            .locations
            .models
            .list_versions(names::MODEL)
            .await
            .unwrap()
            .len(),
        1,
        "no retrain on stable data"
    );
}

fn report_duplicates(files: &[shared::records::FoundFile]) -> usize {
    files.iter().map(|f| f.rows_duplicate as usize).sum()
}

#[tokio::test]
async fn a_sudden_drift_is_detected_at_once_and_the_challenger_recovers() {
    let spec = SynthSpec {
        clients: CLIENTS,
        months: 9,
        seed: 11,
        drift: Some(Drift {
            from_month: BOOTSTRAP_MONTHS,
            kind: DriftKind::Sudden,
        }),
        test_rows: 2_000,
        ..SynthSpec::default()
    };
    let (files, test) = generate_in_memory(&spec).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pipeline = pipeline(dir.path(), &test, LifecycleSettings::default()).await;
    bootstrap(&pipeline, &files).await;
    let (_, champion) = deployed_model(&pipeline).await.unwrap();

    // The first drifted month: detected, retrained on the drifted rows only, and accepted.
    put_month(&pipeline, &files[BOOTSTRAP_MONTHS]).await;
    let run = run_full_process(&pipeline, "run-drift").await.unwrap();
    assert_eq!(run.decision, Decision::Drift, "{}", run.reason);
    let report = run.drift.as_ref().unwrap();
    assert_eq!(report.verdict, Verdict::PerformanceDrift);
    let gate = run.gate.as_ref().expect("a champion/challenger comparison");
    assert!(gate.accepted, "{}", gate.reason);
    assert!(gate.challenger.log_loss < gate.champion.log_loss);
    let window = run.training_window.as_ref().unwrap();
    assert_eq!(
        window.files,
        [files[BOOTSTRAP_MONTHS].0.clone()],
        "{window:?}"
    );
    assert_ne!(run.model_after, run.model_before);

    // Recovery on the next month: the deployed model against the old champion and against a
    // model trained on the new regime alone (the drifted month, all of it).
    let next = &files[BOOTSTRAP_MONTHS + 1];
    let deployed = deployed_auc(&pipeline, next).await;
    let old = auc_of(&champion, &next.0, &next.1);
    let regime = read_csv_file(
        files[BOOTSTRAP_MONTHS].0.clone(),
        files[BOOTSTRAP_MONTHS].1.as_bytes(),
    )
    .unwrap()
    .accepted;
    let oracle = train(&[regime], &TrainingParams::default().check().unwrap()).unwrap();
    let oracle_auc = auc_of(&oracle, &next.0, &next.1);
    assert!(
        deployed >= 0.95 * oracle_auc && deployed > old + 0.2,
        "deployed AUC {deployed}, regime-only model {oracle_auc}, old champion {old}"
    );

    // The next drifted month is the new normal: no further retrain.
    put_month(&pipeline, next).await;
    let after = run_full_process(&pipeline, "run-after").await.unwrap();
    assert!(
        matches!(after.decision, Decision::NoDrift | Decision::DataDrift),
        "{:?}: {}",
        after.decision,
        after.reason
    );
}

#[tokio::test]
async fn a_challenger_that_is_no_better_is_rejected_and_the_champion_stays() {
    let spec = SynthSpec {
        clients: CLIENTS,
        months: 7,
        seed: 5,
        test_rows: 2_000,
        ..SynthSpec::default()
    };
    let (files, test) = generate_in_memory(&spec).unwrap();
    // A hair-trigger drift test (any increase at all, at significance 0.99) on stable data, and a
    // gate that asks the challenger to be significantly better (margin 0): the challenger, trained
    // on one month's rows, is not.
    let lifecycle = LifecycleSettings {
        significance: SignificanceLevel::new(0.99).unwrap(),
        min_log_loss_increase: Margin::new(0.0).unwrap(),
        challenger_margin: Margin::new(0.0).unwrap(),
        ..LifecycleSettings::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let pipeline = pipeline(dir.path(), &test, lifecycle).await;
    bootstrap(&pipeline, &files).await;
    let (deployment_before, _) = deployed_model(&pipeline).await.unwrap();

    put_month(&pipeline, &files[BOOTSTRAP_MONTHS]).await;
    let run = run_full_process(&pipeline, "run-rejected").await.unwrap();
    assert_eq!(run.decision, Decision::ChallengerRejected, "{}", run.reason);
    let gate = run.gate.as_ref().unwrap();
    assert!(!gate.accepted);
    assert!(
        run.reason
            .contains("the challenger is rejected, the champion stays")
    );
    assert!(gate.champion.roc_auc.is_some() && gate.challenger.roc_auc.is_some());
    // The challenger is kept in the models location (traceable), but nothing was deployed.
    assert!(run.challenger.is_some());
    assert_eq!(run.model_after, run.model_before);
    // The deployment record is only marked as checked against the new data: same versions.
    let (deployment_after, _) = deployed_model(&pipeline).await.unwrap();
    assert_eq!(deployment_after.model, deployment_before.model);
    assert_eq!(deployment_after.score, deployment_before.score);
    let checked = deployment_after.checked_against.expect("marked as checked");
    assert_eq!(checked.run_id, "run-rejected");
}
