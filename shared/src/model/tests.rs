//! Model tests across training, prediction and scoring, including the comparison with
//! scikit-learn on the seed data (numbers from `tests/reference/sklearn_reference.py`).

use super::reference::train_smartcore;
use super::test_support::{Row, batch, practice_data, test_data};
use super::*;

fn default_params() -> ValidTrainingParams {
    TrainingParams::default().check().unwrap()
}

fn assert_close(actual: f64, expected: f64, tolerance: f64, what: &str) {
    assert!(
        (actual - expected).abs() <= tolerance,
        "{what}: {actual} vs expected {expected} (tolerance {tolerance})"
    );
}

/// Output of `tests/reference/sklearn_reference.py` (scikit-learn 1.9.1): `LogisticRegression(C=1.0)`
/// on `StandardScaler` features of data/practicedata/*.csv (26 rows after dropping duplicates).
mod sklearn {
    pub const MEANS: [f64; 3] = [165.65384615384616, 1502.923076923077, 26.884615384615383];
    pub const STDS: [f64; 3] = [278.5174959713127, 2150.065274913888, 30.745014509018585];
    pub const COEFFICIENTS: [f64; 3] =
        [-1.13107378123106, -0.04360624158001987, 0.3786984638082962];
    pub const INTERCEPT: f64 = 0.22080322331584706;
    pub const OBJECTIVE: f64 = 14.654838064618108;
    pub const TEST_PROBABILITIES: [f64; 5] = [
        0.4416895308163712,
        0.8470862743776968,
        0.9999971421258456,
        0.48923662890188274,
        0.7082933787338643,
    ];
    pub const TEST_PREDICTIONS: [u8; 5] = [0, 1, 1, 0, 1];
    pub const F1: f64 = 0.3333333333333333;
    pub const PRECISION: f64 = 0.3333333333333333;
    pub const RECALL: f64 = 0.3333333333333333;
    pub const ACCURACY: f64 = 0.2;
    pub const ROC_AUC: f64 = 0.0;
}

#[test]
fn matches_scikit_learn_on_the_seed_data() {
    let model = train(&[practice_data()], &default_params()).unwrap();
    assert_eq!(model.rows.rows_used, 26);
    assert_eq!((model.rows.stayed, model.rows.exited), (11, 15));
    for (j, feature) in model.features.iter().enumerate() {
        assert_close(feature.mean, sklearn::MEANS[j], 1e-9, "mean");
        assert_close(feature.std, sklearn::STDS[j], 1e-9, "std");
        assert_close(
            feature.impute_value,
            sklearn::MEANS[j],
            1e-9,
            "impute value",
        );
        assert_close(
            feature.coefficient_standardized,
            sklearn::COEFFICIENTS[j],
            1e-3,
            "coefficient",
        );
    }
    assert_close(
        model.intercept_standardized,
        sklearn::INTERCEPT,
        1e-3,
        "intercept",
    );
    assert_close(
        model.diagnostics.objective,
        sklearn::OBJECTIVE,
        1e-6,
        "objective",
    );
    assert!(
        model.diagnostics.gradient_norm < 1e-4,
        "{:?}",
        model.diagnostics
    );

    let predictions = model.predict(&test_data()).unwrap();
    for (p, expected) in predictions
        .probabilities
        .iter()
        .zip(sklearn::TEST_PROBABILITIES)
    {
        assert_close(*p, expected, 1e-3, "test probability");
    }
    assert_eq!(predictions.classes, sklearn::TEST_PREDICTIONS);

    let evaluation = model.evaluate(&[test_data()]).unwrap();
    let metrics = evaluation.metrics;
    assert_close(metrics.f1, sklearn::F1, 1e-12, "f1");
    assert_close(metrics.precision, sklearn::PRECISION, 1e-12, "precision");
    assert_close(metrics.recall, sklearn::RECALL, 1e-12, "recall");
    assert_close(metrics.accuracy, sklearn::ACCURACY, 1e-12, "accuracy");
    assert_close(metrics.roc_auc.unwrap(), sklearn::ROC_AUC, 1e-12, "roc auc");
    assert_eq!(evaluation.excluded_missing_target, 0);
}

#[test]
fn predict_is_the_sigmoid_of_the_linear_score() {
    let model = train(&[practice_data()], &default_params()).unwrap();
    let rows: [Row; 3] = [
        (Some(0), Some(0), Some(0), None),
        (Some(1_000_000), Some(5), Some(3), None),
        (Some(234), Some(3), Some(10), None),
    ];
    let predictions = model.predict(&batch(&rows)).unwrap();
    for (row, probability) in rows.iter().zip(&predictions.probabilities) {
        let raw = [row.0, row.1, row.2].map(|v| v.unwrap() as f64);
        let z = model.intercept_standardized
            + model
                .features
                .iter()
                .zip(raw)
                .map(|(f, x)| f.coefficient_standardized * (x - f.mean) / f.std)
                .sum::<f64>();
        assert_close(*probability, sigmoid(z), 1e-15, "probability");
        // The raw-unit coefficients describe the same model.
        let (w, b) = model.coefficients_in_original_units();
        let z_raw = b + w.iter().zip(raw).map(|(w, x)| w * x).sum::<f64>();
        assert_close(z_raw, z, 1e-9 * z.abs().max(1.0), "raw-unit score");
    }
    // A huge activity drives the probability to 0 without NaN.
    assert!(predictions.probabilities[1] >= 0.0 && predictions.probabilities[1] < 1e-100);
    assert_eq!(predictions.classes[1], 0);
}

#[test]
fn sigmoid_is_stable_for_large_magnitudes() {
    assert_eq!(sigmoid(0.0), 0.5);
    assert_eq!(sigmoid(1_000.0), 1.0);
    assert_eq!(sigmoid(-1_000.0), 0.0);
    assert_eq!(sigmoid(f64::MAX), 1.0);
    assert_eq!(sigmoid(f64::MIN), 0.0);
    // Small probabilities keep their relative precision instead of rounding to 0.
    assert_close(
        sigmoid(-40.0) / (-40.0f64).exp(),
        1.0,
        1e-12,
        "sigmoid(-40)",
    );
    for z in [-30.0, -2.5, -0.1, 0.1, 2.5, 30.0] {
        assert_close(sigmoid(z) + sigmoid(-z), 1.0, 1e-15, "symmetry");
    }
}

#[test]
fn threshold_decides_the_class() {
    let strict = TrainingParams::default().threshold(0.9).check().unwrap();
    let model = train(&[practice_data()], &strict).unwrap();
    let predictions = model.predict(&test_data()).unwrap();
    let expected: Vec<u8> = predictions
        .probabilities
        .iter()
        .map(|&p| u8::from(p >= 0.9))
        .collect();
    assert_eq!(predictions.classes, expected);
    assert_eq!(predictions.classes, [0, 0, 1, 0, 0]);
}

#[test]
fn missing_values_are_imputed_and_missing_targets_excluded() {
    let clean = practice_data();
    let baseline = train(std::slice::from_ref(&clean), &default_params()).unwrap();
    // Rows without an outcome change nothing but the counts.
    let unlabelled = batch(&[(Some(1), Some(2), Some(3), None), (None, None, None, None)]);
    let with_unlabelled = train(&[clean.clone(), unlabelled], &default_params()).unwrap();
    assert_eq!(with_unlabelled.rows.rows_seen, 28);
    assert_eq!(with_unlabelled.rows.excluded_missing_target, 2);
    assert_eq!(with_unlabelled.features, baseline.features);
    assert_eq!(
        with_unlabelled.intercept_standardized,
        baseline.intercept_standardized
    );

    // A labelled row with missing features is used, its gaps filled with the observed mean.
    let gaps = batch(&[(None, Some(100), None, Some(1))]);
    let model = train(&[clean, gaps], &default_params()).unwrap();
    assert_eq!(model.rows.rows_used, 27);
    assert_eq!(model.rows.imputed["lastmonth_activity"], 1);
    assert_eq!(model.rows.imputed["lastyear_activity"], 0);
    assert_eq!(model.rows.imputed["number_of_employees"], 1);
    assert_close(
        model.features[0].mean,
        sklearn::MEANS[0],
        1e-9,
        "mean over observed",
    );

    // Prediction treats a null exactly like the imputation value.
    let mean = model.features[0].impute_value;
    let with_null = model
        .predict(&batch(&[(None, Some(50), Some(4), None)]))
        .unwrap();
    let scored = batch(&[(Some(mean.round() as i64), Some(50), Some(4), None)]);
    let with_mean = model.predict(&scored).unwrap();
    assert_eq!(with_null.imputed["lastmonth_activity"], 1);
    assert_eq!(with_mean.imputed["lastmonth_activity"], 0);
    let step = model.features[0].coefficient_standardized / model.features[0].std;
    assert_close(
        with_null.probabilities[0],
        with_mean.probabilities[0],
        step.abs() * 0.5 + 1e-12,
        "imputed prediction",
    );
}

#[test]
fn constant_feature_gets_unit_scale_not_nan() {
    let rows: Vec<Row> = (0..20)
        .map(|i| {
            (
                Some(i * 10),
                Some(500),
                Some(i % 7),
                Some(i8::from(i % 3 == 0)),
            )
        })
        .collect();
    let model = train(&[batch(&rows)], &default_params()).unwrap();
    assert_eq!(model.features[1].std, 1.0);
    assert_eq!(model.features[1].mean, 500.0);
    assert!(
        model
            .features
            .iter()
            .all(|f| f.coefficient_standardized.is_finite())
    );
    assert!(model.diagnostics.objective.is_finite());
    let predictions = model.predict(&batch(&rows)).unwrap();
    assert!(predictions.probabilities.iter().all(|p| p.is_finite()));
}

#[test]
fn batches_are_equivalent_to_one_batch() {
    let rows: Vec<Row> = super::test_support::csv_rows("data/sourcedata/dataset3.csv")
        .into_iter()
        .chain(super::test_support::csv_rows(
            "data/sourcedata/dataset4.csv",
        ))
        .map(|(_, row)| row)
        .collect();
    let whole = train(&[batch(&rows)], &default_params()).unwrap();
    let split = train(&[batch(&rows[..7]), batch(&rows[7..])], &default_params()).unwrap();
    assert_eq!(whole.features, split.features);
    assert_eq!(whole.rows, split.rows);
}

#[test]
fn json_round_trip_keeps_predictions() {
    let model = train(&[practice_data()], &default_params())
        .unwrap()
        .with_training_data("s3://bucket/compiled/finaldata.parquet", Some("v7".into()));
    let json = model.to_json().unwrap();
    let reloaded = TrainedModel::from_json(&json).unwrap();
    assert_eq!(reloaded, model);
    assert_eq!(
        reloaded.predict(&test_data()).unwrap(),
        model.predict(&test_data()).unwrap()
    );
    let value: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(value["format_version"], MODEL_FORMAT_VERSION);
    assert_eq!(value["features"][0]["name"], "lastmonth_activity");
    assert!(value["features"][0]["coefficient_standardized"].is_number());
    assert_eq!(value["metadata"]["training_data_version"], "v7");
    assert_eq!(
        value["metadata"]["crate_version"],
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(value["params"]["alpha"], 1.0);
    assert_eq!(value["rows"]["imputed"]["number_of_employees"], 0);
}

#[test]
fn loading_refuses_edited_or_foreign_artifacts() {
    let model = train(&[practice_data()], &default_params()).unwrap();
    let edit = |change: &dyn Fn(&mut serde_json::Value)| {
        let mut value = serde_json::to_value(&model).unwrap();
        change(&mut value);
        TrainedModel::from_json(&serde_json::to_vec(&value).unwrap())
    };
    // Hyper-parameters are validated as they are deserialised, with the parameter's message.
    match edit(&|v| v["params"]["threshold"] = 1.5.into()) {
        Err(ModelError::ModelJson(e)) => {
            assert!(e.to_string().contains("`threshold` = 1.5"), "{e}")
        }
        other => panic!("an edited threshold gave {other:?}"),
    }
    assert!(matches!(
        edit(&|v| v["features"][2]["std"] = 0.0.into()),
        Err(ModelError::InvalidModel(_))
    ));
    assert!(matches!(
        edit(&|v| v["format_version"] = 99.into()),
        Err(ModelError::InvalidModel(_))
    ));
    assert!(matches!(
        edit(&|v| v["features"] = serde_json::json!([])),
        Err(ModelError::InvalidModel(_))
    ));
    assert!(matches!(
        TrainedModel::from_json(b"{\"not\": \"a model\"}"),
        Err(ModelError::ModelJson(_))
    ));
}

fn labelled(count: i64, exited: i8) -> Vec<Row> {
    (0..count)
        .map(|i| (Some(i), Some(i * 3 + 1), Some(i % 5), Some(exited)))
        .collect()
}

#[test]
fn one_class_only_is_refused() {
    let error = train(&[batch(&labelled(20, 0))], &default_params()).unwrap_err();
    assert!(
        matches!(error, ModelError::OneClassOnly { class: 0, rows: 20 }),
        "{error}"
    );
    assert!(error.to_string().contains("both outcomes"));
}

#[test]
fn too_few_rows_are_refused() {
    let mut rows = labelled(4, 0);
    rows.extend(labelled(4, 1));
    let error = train(&[batch(&rows)], &default_params()).unwrap_err();
    assert!(
        matches!(
            error,
            ModelError::TooFewRows {
                rows: 8,
                min_rows: 10
            }
        ),
        "{error}"
    );
    let relaxed = TrainingParams::default().min_rows(8).check().unwrap();
    assert!(train(&[batch(&rows)], &relaxed).is_ok());
}

#[test]
fn too_few_rows_in_a_class_are_refused() {
    let mut rows = labelled(12, 0);
    rows.extend(labelled(1, 1));
    let error = train(&[batch(&rows)], &default_params()).unwrap_err();
    assert!(
        matches!(
            error,
            ModelError::TooFewRowsInClass {
                class: 1,
                rows: 1,
                min_rows_per_class: 2
            }
        ),
        "{error}"
    );
}

#[test]
fn all_null_target_is_refused() {
    let rows: Vec<Row> = (0..15).map(|i| (Some(i), Some(i), Some(i), None)).collect();
    let error = train(&[batch(&rows)], &default_params()).unwrap_err();
    assert!(
        matches!(
            error,
            ModelError::NoUsableRows {
                rows_seen: 15,
                missing_target: 15
            }
        ),
        "{error}"
    );
    assert!(matches!(
        train(&[], &default_params()),
        Err(ModelError::NoUsableRows { .. })
    ));
    assert!(matches!(
        model_for_evaluation().evaluate(&[batch(&rows)]),
        Err(ModelError::EmptyEvaluation)
    ));
}

fn model_for_evaluation() -> TrainedModel {
    train(&[practice_data()], &default_params()).unwrap()
}

#[test]
fn invalid_target_and_schema_problems_are_refused() {
    let mut rows = labelled(10, 0);
    rows.extend(labelled(10, 1));
    rows[13].3 = Some(2);
    assert!(matches!(
        train(&[batch(&rows)], &default_params()),
        Err(ModelError::InvalidTarget { row: 13, value: 2 })
    ));

    let without_employees = practice_data().project(&[0, 1, 2, 4]).unwrap();
    let error = train(std::slice::from_ref(&without_employees), &default_params()).unwrap_err();
    assert!(
        matches!(&error, ModelError::MissingColumn { column, .. } if column == "number_of_employees")
    );
    assert!(model_for_evaluation().predict(&without_employees).is_err());

    let float_schema = std::sync::Arc::new(arrow::datatypes::Schema::new(vec![
        arrow::datatypes::Field::new(
            "lastmonth_activity",
            arrow::datatypes::DataType::Float64,
            true,
        ),
    ]));
    let floats = arrow::record_batch::RecordBatch::try_new(
        float_schema,
        vec![std::sync::Arc::new(arrow::array::Float64Array::from(vec![
            1.0,
        ]))],
    )
    .unwrap();
    assert!(matches!(
        model_for_evaluation().predict(&floats),
        Err(ModelError::WrongColumnType {
            expected: "Int64",
            ..
        })
    ));
}

#[test]
fn feature_without_any_value_is_refused() {
    let rows: Vec<Row> = (0..20)
        .map(|i| (Some(i), None, Some(i), Some(i8::from(i % 2 == 0))))
        .collect();
    assert!(matches!(
        train(&[batch(&rows)], &default_params()),
        Err(ModelError::FeatureAllMissing { feature }) if feature == "lastyear_activity"
    ));
}

#[test]
fn evaluation_counts_excluded_rows_and_imputations() {
    let model = model_for_evaluation();
    let extra = batch(&[
        (None, Some(3), Some(10), Some(1)),
        (None, Some(3), Some(10), None),
    ]);
    let evaluation = model.evaluate(&[test_data(), extra]).unwrap();
    assert_eq!(evaluation.metrics.rows, 6);
    assert_eq!(evaluation.excluded_missing_target, 1);
    assert_eq!(evaluation.imputed["lastmonth_activity"], 1);
}

/// Deterministic synthetic clients (no RNG crate): a known logistic relationship plus noise.
fn synthetic_rows(count: usize) -> Vec<Row> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..count)
        .map(|_| {
            let lastmonth = (next() * 500.0) as i64;
            let lastyear = (next() * 12_000.0) as i64;
            let employees = (next() * 1_000.0) as i64;
            let z = 1.0 - 0.006 * lastmonth as f64 + 0.00005 * lastyear as f64
                - 0.001 * employees as f64;
            let exited = i8::from(next() < sigmoid(z));
            (
                Some(lastmonth),
                Some(lastyear),
                Some(employees),
                Some(exited),
            )
        })
        .collect()
}

#[test]
fn recovers_a_known_relationship() {
    let model = train(&[batch(&synthetic_rows(20_000))], &default_params()).unwrap();
    let (w, _) = model.coefficients_in_original_units();
    assert_close(w[0], -0.006, 0.001, "lastmonth coefficient");
    assert_close(w[1], 0.00005, 0.00002, "lastyear coefficient");
    assert_close(w[2], -0.001, 0.0003, "employees coefficient");
    assert!(
        model.diagnostics.gradient_norm_per_row < 1e-4,
        "{:?}",
        model.diagnostics
    );
}

/// The Newton solver and smartcore's L-BFGS minimise the same objective: they must agree on it
/// and on the parameters, with Newton at least as close to the optimum.
#[test]
fn newton_agrees_with_smartcore() {
    let mut gaps = synthetic_rows(5_000);
    for row in gaps.iter_mut().step_by(17) {
        row.1 = None;
    }
    for (name, data) in [
        ("practice", vec![practice_data()]),
        ("synthetic", vec![batch(&synthetic_rows(20_000))]),
        (
            "with gaps, two batches",
            vec![batch(&gaps[..1_234]), batch(&gaps[1_234..])],
        ),
    ] {
        for alpha in [1.0, 0.0] {
            let params = TrainingParams::default().alpha(alpha).check().unwrap();
            let newton = train(&data, &params).unwrap();
            let reference = train_smartcore(&data, &params).unwrap();
            let what = format!("{name}, alpha {alpha}");
            assert!(newton.diagnostics.solver.starts_with("Newton"));
            assert!(reference.diagnostics.solver.starts_with("smartcore"));
            let objective = reference.diagnostics.objective;
            assert!(
                newton.diagnostics.objective <= objective * (1.0 + 1e-9),
                "{what}: {} vs {objective}",
                newton.diagnostics.objective
            );
            assert_close(
                newton.diagnostics.objective,
                objective,
                1e-7 * objective,
                &what,
            );
            for (n, r) in newton.features.iter().zip(&reference.features) {
                assert_eq!((n.mean, n.std), (r.mean, r.std), "{what}");
                assert_close(
                    n.coefficient_standardized,
                    r.coefficient_standardized,
                    1e-4,
                    &what,
                );
            }
            assert_close(
                newton.intercept_standardized,
                reference.intercept_standardized,
                1e-4,
                &what,
            );
            assert!(newton.diagnostics.gradient_norm_per_row < 1e-9, "{what}");
            assert_eq!(newton.rows, reference.rows);
        }
    }
}
