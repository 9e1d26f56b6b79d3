//! Fitting: Arrow batches → standardised, imputed feature matrix → smartcore's L-BFGS logistic
//! regression → an independently checked [`TrainedModel`]. The matrix is filled straight from
//! the Arrow value buffers into one preallocated row-major `Vec<f64>` (no per-row allocation),
//! because training must stay fast on millions of rows.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::time::Instant;

use arrow::array::{Array as _, Int8Array, Int64Array};
use arrow::record_batch::RecordBatch;
use chrono::Utc;
use smartcore::linalg::basic::arrays::Array;
use smartcore::linalg::basic::matrix::DenseMatrix;
use smartcore::linear::logistic_regression::{LogisticRegression, LogisticRegressionParameters};

use super::ModelError;
use super::columns::{feature_column, is_present, label_at, target_column};
use super::logistic::{
    FitDiagnostics, MODEL_FORMAT_VERSION, ModelFeature, ModelMetadata, RowCounts, TrainedModel,
    sigmoid,
};
use super::params::ValidTrainingParams;
use crate::data::schema::FEATURES;

/// Above this gradient norm per training row the solver stopped short of the optimum: it is
/// several times what scikit-learn's default lbfgs fit leaves on the seed data (1.5e-5), so a
/// larger value means a fit less precise than the reference implementation's. smartcore normally
/// ends orders of magnitude below it (3e-12 on the seed data, 3e-10 on 1M synthetic rows).
const GRADIENT_WARN_PER_ROW: f64 = 1e-4;

/// Standard deviations below this are treated as zero (a constant feature): dividing by them
/// would blow rounding noise up into huge standardised values.
const MIN_STD: f64 = 1e-12;

const SOLVER: &str = "smartcore 0.7 LogisticRegression (L-BFGS)";

/// Fits the attrition model on `batches` (client schema) with `params`.
///
/// Rows with a null `exited` are skipped and counted; null features are imputed with the mean
/// of the feature over the used rows and counted. Fails with a typed error when there are no
/// usable rows, too few rows overall or per class, only one class, a feature with no values, a
/// solver failure or a non-finite fit.
pub fn train(
    batches: &[RecordBatch],
    params: &ValidTrainingParams,
) -> Result<TrainedModel, ModelError> {
    let started = Instant::now();
    params.validate()?;
    let names: Vec<String> = FEATURES.iter().map(|name| name.to_string()).collect();
    let inputs = batches
        .iter()
        .map(|batch| BatchColumns::new(batch, &names))
        .collect::<Result<Vec<_>, _>>()?;

    let mut counts = count_rows(&inputs, params)?;
    let scaling = feature_scaling(&inputs, &names)?;
    counts.imputed = scaling
        .iter()
        .map(|scale| (scale.name.clone(), scale.missing))
        .collect();
    let (matrix_values, labels) = standardised_matrix(&inputs, &scaling, counts.rows_used);
    let x = DenseMatrix::new(counts.rows_used, names.len(), matrix_values, false)
        .map_err(|e| ModelError::Solver(e.to_string()))?;
    let prepared = Instant::now();

    let (coefficients, intercept) = fit_with_smartcore(&x, &labels, params.alpha)?;
    let solved = Instant::now();
    let diagnostics = check_fit(&x, &labels, &coefficients, intercept, params.alpha)?;
    let checked = Instant::now();

    let features = scaling
        .into_iter()
        .zip(coefficients)
        .map(|(scale, coefficient)| ModelFeature {
            name: scale.name,
            mean: scale.mean,
            std: scale.std,
            impute_value: scale.mean,
            coefficient_standardized: coefficient,
        })
        .collect();
    let model = TrainedModel {
        format_version: MODEL_FORMAT_VERSION,
        features,
        intercept_standardized: intercept,
        params: params.clone(),
        diagnostics,
        rows: counts,
        metadata: ModelMetadata {
            training_data_location: None,
            training_data_version: None,
            crate_version: env!("CARGO_PKG_VERSION").to_string(),
            trained_at: Utc::now(),
        },
    };
    tracing::info!(
        rows_used = model.rows.rows_used,
        excluded_missing_target = model.rows.excluded_missing_target,
        objective = model.diagnostics.objective,
        gradient_norm = model.diagnostics.gradient_norm,
        prepare_seconds = (prepared - started).as_secs_f64(),
        solver_seconds = (solved - prepared).as_secs_f64(),
        check_seconds = (checked - solved).as_secs_f64(),
        "trained logistic regression"
    );
    Ok(model)
}

/// Runs smartcore's solver and returns the coefficients and the intercept. smartcore panics
/// (instead of returning an error) when its line search does not converge; where panics unwind
/// that becomes a [`ModelError::Solver`] instead of a crash.
fn fit_with_smartcore(
    x: &DenseMatrix<f64>,
    labels: &Vec<u8>,
    alpha: f64,
) -> Result<(Vec<f64>, f64), ModelError> {
    let parameters = LogisticRegressionParameters::default().with_alpha(alpha);
    let fitted = std::panic::catch_unwind(AssertUnwindSafe(|| {
        LogisticRegression::<f64, u8, DenseMatrix<f64>, Vec<u8>>::fit(x, labels, parameters)
    }))
    .map_err(|panic| {
        let reason = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_string());
        ModelError::Solver(format!("smartcore panicked: {reason}"))
    })?
    .map_err(|e| ModelError::Solver(e.to_string()))?;
    let width = x.shape().1;
    let coefficients = (0..width)
        .map(|j| *fitted.coefficients().get((0, j)))
        .collect();
    Ok((coefficients, *fitted.intercept().get((0, 0))))
}

/// The columns of one batch that training reads.
struct BatchColumns<'a> {
    target: &'a Int8Array,
    features: Vec<&'a Int64Array>,
    rows: usize,
}

impl<'a> BatchColumns<'a> {
    fn new(batch: &'a RecordBatch, names: &[String]) -> Result<Self, ModelError> {
        let features = names
            .iter()
            .map(|name| feature_column(batch, name, names))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            target: target_column(batch)?,
            features,
            rows: batch.num_rows(),
        })
    }

    /// Whether the row is used for training (its `exited` is known).
    #[inline]
    fn used(&self, row: usize) -> bool {
        is_present(self.target, row)
    }
}

/// Counts rows per outcome, validates labels and enforces the row minimums.
fn count_rows(
    inputs: &[BatchColumns<'_>],
    params: &ValidTrainingParams,
) -> Result<RowCounts, ModelError> {
    let (mut rows_seen, mut missing_target, mut stayed, mut exited) = (0, 0, 0, 0);
    for input in inputs {
        for row in 0..input.rows {
            match label_at(input.target, row, rows_seen + row)? {
                Some(0) => stayed += 1,
                Some(_) => exited += 1,
                None => missing_target += 1,
            }
        }
        rows_seen += input.rows;
    }
    let rows_used = stayed + exited;
    if rows_used == 0 {
        return Err(ModelError::NoUsableRows {
            rows_seen,
            missing_target,
        });
    }
    if rows_used < params.min_rows {
        return Err(ModelError::TooFewRows {
            rows: rows_used,
            min_rows: params.min_rows,
        });
    }
    for (class, rows, other) in [(0u8, stayed, exited), (1u8, exited, stayed)] {
        if rows == 0 {
            return Err(ModelError::OneClassOnly {
                class: 1 - class,
                rows: other,
            });
        }
        if rows < params.min_rows_per_class {
            return Err(ModelError::TooFewRowsInClass {
                class,
                rows,
                min_rows_per_class: params.min_rows_per_class,
            });
        }
    }
    Ok(RowCounts {
        rows_seen,
        rows_used,
        excluded_missing_target: missing_target,
        imputed: BTreeMap::new(),
        stayed,
        exited,
    })
}

struct Scaling {
    name: String,
    mean: f64,
    std: f64,
    missing: usize,
}

/// Mean and population std of each feature over the observed values of the used rows. Two
/// passes (mean, then squared deviations) keep the variance accurate for large raw values.
fn feature_scaling(
    inputs: &[BatchColumns<'_>],
    names: &[String],
) -> Result<Vec<Scaling>, ModelError> {
    let mut scaling = Vec::with_capacity(names.len());
    for (j, name) in names.iter().enumerate() {
        let (mut sum, mut observed, mut missing) = (0.0f64, 0usize, 0usize);
        for_each_used_value(inputs, j, |value| match value {
            Some(x) => {
                sum += x;
                observed += 1;
            }
            None => missing += 1,
        });
        if observed == 0 {
            return Err(ModelError::FeatureAllMissing {
                feature: name.clone(),
            });
        }
        let mean = sum / observed as f64;
        let mut squared_deviations = 0.0f64;
        for_each_used_value(inputs, j, |value| {
            if let Some(x) = value {
                squared_deviations += (x - mean) * (x - mean);
            }
        });
        let std = (squared_deviations / observed as f64).sqrt();
        let std = if std.is_finite() && std > MIN_STD {
            std
        } else {
            tracing::warn!(
                feature = name.as_str(),
                "feature is constant in the training rows; it cannot inform the model"
            );
            1.0
        };
        scaling.push(Scaling {
            name: name.clone(),
            mean,
            std,
            missing,
        });
    }
    Ok(scaling)
}

/// Calls `visit` with feature `j` of every used row, in row order (`None` when missing).
#[inline]
fn for_each_used_value(inputs: &[BatchColumns<'_>], j: usize, mut visit: impl FnMut(Option<f64>)) {
    for input in inputs {
        let column = input.features[j];
        let values = column.values();
        let all_used = input.target.null_count() == 0;
        match (column.nulls(), all_used) {
            (None, true) => values.iter().for_each(|&x| visit(Some(x as f64))),
            (nulls, _) => {
                for (row, &x) in values.iter().enumerate() {
                    if input.used(row) {
                        let present = nulls.is_none_or(|n| n.is_valid(row));
                        visit(present.then_some(x as f64));
                    }
                }
            }
        }
    }
}

/// The row-major standardised matrix (missing values at the mean, i.e. 0) and the labels of the
/// used rows.
fn standardised_matrix(
    inputs: &[BatchColumns<'_>],
    scaling: &[Scaling],
    rows_used: usize,
) -> (Vec<f64>, Vec<u8>) {
    let width = scaling.len();
    let mut values = vec![0.0f64; rows_used * width];
    for (j, scale) in scaling.iter().enumerate() {
        let inverse_std = 1.0 / scale.std;
        let mut cells = values.iter_mut().skip(j).step_by(width);
        for_each_used_value(inputs, j, |value| {
            if let Some(cell) = cells.next() {
                *cell = value.map_or(0.0, |x| (x - scale.mean) * inverse_std);
            }
        });
    }
    let mut labels = Vec::with_capacity(rows_used);
    for input in inputs {
        let targets = input.target.values();
        for (row, &label) in targets.iter().enumerate() {
            if input.used(row) {
                labels.push(u8::from(label == 1));
            }
        }
    }
    (values, labels)
}

/// Recomputes the objective and its gradient at the fitted coefficients, because smartcore
/// reports nothing about convergence.
fn check_fit(
    x: &DenseMatrix<f64>,
    labels: &[u8],
    coefficients: &[f64],
    intercept: f64,
    alpha: f64,
) -> Result<FitDiagnostics, ModelError> {
    let width = coefficients.len();
    let mut log_loss = 0.0f64;
    let mut gradient = vec![0.0f64; width + 1];
    // The matrix was built row-major, so its storage order is row by row.
    let values = x.iter().as_slice();
    for (row, &label) in values.chunks_exact(width).zip(labels) {
        let z = intercept
            + row
                .iter()
                .zip(coefficients)
                .map(|(x, w)| x * w)
                .sum::<f64>();
        let y = f64::from(label);
        log_loss += softplus(z) - y * z;
        let residual = sigmoid(z) - y;
        for (g, x) in gradient.iter_mut().zip(row) {
            *g += residual * x;
        }
        gradient[width] += residual;
    }
    let penalty: f64 = coefficients.iter().map(|w| w * w).sum::<f64>() * 0.5 * alpha;
    for (g, w) in gradient.iter_mut().zip(coefficients) {
        *g += alpha * w;
    }
    let objective = log_loss + penalty;
    let gradient_norm = gradient.iter().map(|g| g * g).sum::<f64>().sqrt();
    if !(objective.is_finite() && gradient_norm.is_finite()) {
        return Err(ModelError::NonFiniteFit {
            loss: objective,
            gradient_norm,
        });
    }
    let rows = labels.len().max(1) as f64;
    let gradient_norm_per_row = gradient_norm / rows;
    if gradient_norm_per_row > GRADIENT_WARN_PER_ROW {
        tracing::warn!(
            gradient_norm,
            gradient_norm_per_row,
            "the solver stopped away from the optimum; the coefficients may be imprecise"
        );
    }
    Ok(FitDiagnostics {
        solver: SOLVER.to_string(),
        objective,
        mean_log_loss: log_loss / rows,
        gradient_norm,
        gradient_norm_per_row,
    })
}

/// `ln(1 + e^z)` without overflow for large `z`.
#[inline]
fn softplus(z: f64) -> f64 {
    z.max(0.0) + (-z.abs()).exp().ln_1p()
}
