//! Fitting: Arrow batches → standardised, imputed features → a Newton (IRLS) solver for the four
//! parameters written here → a checked [`TrainedModel`]. The objective is the one smartcore and
//! scikit-learn minimise (`Σ log-loss + ½·alpha·‖w‖²`, intercept not penalised). Newton's method
//! needs only the gradient and the 4×4 Hessian, which one pass over the rows accumulates, and it
//! converges in a handful of passes (quadratically near the optimum), where smartcore's L-BFGS
//! takes hundreds of passes and exposes neither a tolerance nor a starting point; each pass reads
//! the Arrow value buffers directly, standardising on the fly, so no feature matrix is ever
//! materialised (at ten million rows that matrix alone would be 240 MB). smartcore's fit of the
//! same objective is the reference the tests hold the solver to (`super::reference`, test-only).

use std::collections::BTreeMap;
use std::time::Instant;

use arrow::array::{Array as _, Int8Array, Int64Array};
use arrow::record_batch::RecordBatch;
use chrono::Utc;

use super::ModelError;
use super::columns::{feature_column, is_present, label_at, target_column};
use super::logistic::{
    FitDiagnostics, MODEL_FORMAT_VERSION, ModelFeature, ModelMetadata, RowCounts, TrainedModel,
};
use super::params::ValidTrainingParams;
use crate::data::schema::FEATURES;

/// Above this gradient norm per training row the solver stopped short of the optimum: it is
/// several times what scikit-learn's default lbfgs fit leaves on the seed data (1.5e-5), so a
/// larger value means a fit less precise than the reference implementation's. smartcore (the
/// test reference) normally ends orders of magnitude below it (3e-12 on the seed data, 3e-10 on 1M synthetic rows).
const GRADIENT_WARN_PER_ROW: f64 = 1e-4;

/// Standard deviations below this are treated as zero (a constant feature): dividing by them
/// would blow rounding noise up into huge standardised values.
const MIN_STD: f64 = 1e-12;

const NEWTON_SOLVER: &str = "Newton (IRLS) with backtracking line search";

/// Features per row, and parameters (coefficients and the intercept, last).
const WIDTH: usize = FEATURES.len();
const PARAMS: usize = WIDTH + 1;

/// Newton stops once the gradient norm per training row is below this (scikit-learn's lbfgs
/// stops around 1e-5 to 1e-7 on the same objective), or when a step no longer changes the
/// parameters; a couple of passes past the first stop criterion cost nothing at this size.
const NEWTON_GRADIENT_PER_ROW: f64 = 1e-11;
const NEWTON_MAX_ITERATIONS: usize = 100;

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
    train_with(
        batches,
        params,
        NEWTON_SOLVER,
        |inputs, scaling, counts, alpha| {
            let prior = counts.exited as f64 / counts.rows_used as f64;
            fit_newton(inputs, scaling, prior, alpha)
        },
    )
}

/// Training around any solver: prepares the rows (counts, scaling, imputation), calls `fit` with
/// them and `alpha` for the standardised coefficients and the intercept, checks its result
/// independently and builds the model.
pub(super) fn train_with(
    batches: &[RecordBatch],
    params: &ValidTrainingParams,
    solver_name: &str,
    fit: impl FnOnce(
        &[BatchColumns<'_>],
        &[Scaling],
        &RowCounts,
        f64,
    ) -> Result<(Vec<f64>, f64), ModelError>,
) -> Result<TrainedModel, ModelError> {
    let started = Instant::now();
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
    let prepared = Instant::now();

    let (coefficients, intercept) = fit(&inputs, &scaling, &counts, params.alpha())?;
    let solved = Instant::now();
    let diagnostics = check_fit(
        &inputs,
        &scaling,
        &coefficients,
        intercept,
        params.alpha(),
        solver_name,
    )?;
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

/// The columns of one batch that training reads.
pub(super) struct BatchColumns<'a> {
    pub(super) target: &'a Int8Array,
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
    pub(super) fn used(&self, row: usize) -> bool {
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
    if rows_used < params.min_rows() {
        return Err(ModelError::TooFewRows {
            rows: rows_used,
            min_rows: params.min_rows(),
        });
    }
    for (class, rows, other) in [(0u8, stayed, exited), (1u8, exited, stayed)] {
        if rows == 0 {
            return Err(ModelError::OneClassOnly {
                class: 1 - class,
                rows: other,
            });
        }
        if rows < params.min_rows_per_class() {
            return Err(ModelError::TooFewRowsInClass {
                class,
                rows,
                min_rows_per_class: params.min_rows_per_class(),
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

/// How one feature is standardised: `(x − mean)/std`, a missing value counting as the mean.
pub(super) struct Scaling {
    name: String,
    pub(super) mean: f64,
    pub(super) std: f64,
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
pub(super) fn for_each_used_value(
    inputs: &[BatchColumns<'_>],
    j: usize,
    mut visit: impl FnMut(Option<f64>),
) {
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

/// Recomputes the objective and its gradient at the fitted coefficients in a pass of its own,
/// independently of the solver (smartcore reports nothing about convergence), because a solver
/// bug must not ship a model.
fn check_fit(
    inputs: &[BatchColumns<'_>],
    scaling: &[Scaling],
    coefficients: &[f64],
    intercept: f64,
    alpha: f64,
    solver: &str,
) -> Result<FitDiagnostics, ModelError> {
    let mut theta = [0.0; PARAMS];
    theta[..WIDTH].copy_from_slice(&coefficients[..WIDTH.min(coefficients.len())]);
    theta[WIDTH] = intercept;
    let pass = evaluate_parallel(inputs, scaling, &theta, alpha, false);
    let objective = pass.objective;
    let gradient_norm = norm(&pass.gradient);
    if !(objective.is_finite() && gradient_norm.is_finite()) {
        return Err(ModelError::NonFiniteFit {
            loss: objective,
            gradient_norm,
        });
    }
    let rows = pass.rows.max(1) as f64;
    let gradient_norm_per_row = gradient_norm / rows;
    if gradient_norm_per_row > GRADIENT_WARN_PER_ROW {
        tracing::warn!(
            gradient_norm,
            gradient_norm_per_row,
            "the solver stopped away from the optimum; the coefficients may be imprecise"
        );
    }
    Ok(FitDiagnostics {
        solver: solver.to_string(),
        objective,
        mean_log_loss: pass.log_loss / rows,
        gradient_norm,
        gradient_norm_per_row,
    })
}

fn norm(vector: &[f64]) -> f64 {
    vector.iter().map(|g| g * g).sum::<f64>().sqrt()
}

/// Calls `visit` with the standardised features (missing values at the mean, i.e. 0) and the
/// 0/1 label of every used row, in row order. Batches without nulls take a branch-free loop.
#[inline]
fn for_each_row(
    inputs: &[BatchColumns<'_>],
    scaling: &[Scaling],
    mut visit: impl FnMut(&[f64; WIDTH], f64),
) {
    let mean: [f64; WIDTH] = std::array::from_fn(|j| scaling[j].mean);
    let inverse_std: [f64; WIDTH] = std::array::from_fn(|j| 1.0 / scaling[j].std);
    for input in inputs {
        let values: [&[i64]; WIDTH] = std::array::from_fn(|j| input.features[j].values().as_ref());
        let targets: &[i8] = input.target.values();
        let has_nulls = input.target.null_count() > 0
            || input.features.iter().any(|column| column.null_count() > 0);
        if !has_nulls {
            for row in 0..input.rows {
                let x = std::array::from_fn(|j| (values[j][row] as f64 - mean[j]) * inverse_std[j]);
                visit(&x, f64::from(u8::from(targets[row] == 1)));
            }
        } else {
            for row in 0..input.rows {
                if !input.used(row) {
                    continue;
                }
                let x = std::array::from_fn(|j| {
                    if is_present(input.features[j], row) {
                        (values[j][row] as f64 - mean[j]) * inverse_std[j]
                    } else {
                        0.0
                    }
                });
                visit(&x, f64::from(u8::from(targets[row] == 1)));
            }
        }
    }
}

/// The objective, its gradient and (optionally) its Hessian at `theta`, in one pass.
struct Pass {
    objective: f64,
    log_loss: f64,
    gradient: [f64; PARAMS],
    /// Upper triangle filled, then mirrored.
    hessian: [[f64; PARAMS]; PARAMS],
    rows: usize,
}

// Index loops over a 4×4 system read more plainly than iterator chains.
#[allow(clippy::needless_range_loop)]
fn evaluate(
    inputs: &[BatchColumns<'_>],
    scaling: &[Scaling],
    theta: &[f64; PARAMS],
    alpha: f64,
    with_hessian: bool,
) -> Pass {
    let mut log_loss = 0.0f64;
    let mut gradient = [0.0f64; PARAMS];
    let mut hessian = [[0.0f64; PARAMS]; PARAMS];
    let mut rows = 0usize;
    for_each_row(inputs, scaling, |x, y| {
        let mut z = theta[WIDTH];
        for j in 0..WIDTH {
            z += theta[j] * x[j];
        }
        // One exponential serves both the loss and the probability, stably for any z.
        let e = (-z.abs()).exp();
        log_loss += z.max(0.0) + e.ln_1p() - y * z;
        let p = if z >= 0.0 {
            1.0 / (1.0 + e)
        } else {
            e / (1.0 + e)
        };
        let residual = p - y;
        for j in 0..WIDTH {
            gradient[j] += residual * x[j];
        }
        gradient[WIDTH] += residual;
        if with_hessian {
            let weight = p * (1.0 - p);
            let extended: [f64; PARAMS] =
                std::array::from_fn(|j| if j < WIDTH { x[j] } else { 1.0 });
            for a in 0..PARAMS {
                let wa = weight * extended[a];
                for b in a..PARAMS {
                    hessian[a][b] += wa * extended[b];
                }
            }
        }
        rows += 1;
    });
    let mut penalty = 0.0;
    for j in 0..WIDTH {
        penalty += 0.5 * alpha * theta[j] * theta[j];
        gradient[j] += alpha * theta[j];
        hessian[j][j] += alpha;
    }
    for a in 0..PARAMS {
        for b in 0..a {
            hessian[a][b] = hessian[b][a];
        }
    }
    Pass {
        objective: log_loss + penalty,
        log_loss,
        gradient,
        hessian,
        rows,
    }
}

/// Rows below which a pass stays on one thread (a thread costs more than it saves).
const PARALLEL_MIN_ROWS: usize = 200_000;

/// [`evaluate`] with the batches split between two threads when there are enough rows and
/// cores (each Newton pass is independent sums over rows, so the halves just add up).
// Index loops over a 4×4 system read more plainly than iterator chains.
#[allow(clippy::needless_range_loop)]
fn evaluate_parallel(
    inputs: &[BatchColumns<'_>],
    scaling: &[Scaling],
    theta: &[f64; PARAMS],
    alpha: f64,
    with_hessian: bool,
) -> Pass {
    let rows: usize = inputs.iter().map(|input| input.rows).sum();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if rows < PARALLEL_MIN_ROWS || cores < 2 || inputs.len() < 2 {
        return evaluate(inputs, scaling, theta, alpha, with_hessian);
    }
    let mut seen = 0;
    let split = inputs
        .iter()
        .position(|input| {
            seen += input.rows;
            seen * 2 >= rows
        })
        .map_or(inputs.len() / 2, |i| (i + 1).min(inputs.len() - 1));
    let (first, second) = inputs.split_at(split);
    let (a, b) = std::thread::scope(|scope| {
        let handle = scope.spawn(|| evaluate(first, scaling, theta, 0.0, with_hessian));
        let b = evaluate(second, scaling, theta, 0.0, with_hessian);
        // A panic in the helper thread is a bug; evaluate the half again here rather than abort.
        let a = handle
            .join()
            .unwrap_or_else(|_| evaluate(first, scaling, theta, 0.0, with_hessian));
        (a, b)
    });
    let mut pass = Pass {
        objective: 0.0,
        log_loss: a.log_loss + b.log_loss,
        gradient: std::array::from_fn(|j| a.gradient[j] + b.gradient[j]),
        hessian: std::array::from_fn(|i| {
            std::array::from_fn(|j| a.hessian[i][j] + b.hessian[i][j])
        }),
        rows: a.rows + b.rows,
    };
    let mut penalty = 0.0;
    for j in 0..WIDTH {
        penalty += 0.5 * alpha * theta[j] * theta[j];
        pass.gradient[j] += alpha * theta[j];
        pass.hessian[j][j] += alpha;
    }
    pass.objective = pass.log_loss + penalty;
    pass
}

/// Solves `matrix · x = rhs` by Gaussian elimination with partial pivoting; `None` when the
/// matrix is singular to working precision.
// Index loops over a 4×4 system read more plainly than iterator chains.
#[allow(clippy::needless_range_loop)]
fn solve(mut matrix: [[f64; PARAMS]; PARAMS], mut rhs: [f64; PARAMS]) -> Option<[f64; PARAMS]> {
    let scale = matrix
        .iter()
        .flatten()
        .fold(0.0f64, |m, v| m.max(v.abs()))
        .max(f64::MIN_POSITIVE);
    for column in 0..PARAMS {
        let pivot = (column..PARAMS)
            .max_by(|&a, &b| matrix[a][column].abs().total_cmp(&matrix[b][column].abs()))?;
        let pivot_size = matrix[pivot][column].abs();
        if pivot_size.is_nan() || pivot_size <= scale * 1e-13 {
            return None;
        }
        matrix.swap(column, pivot);
        rhs.swap(column, pivot);
        for row in column + 1..PARAMS {
            let factor = matrix[row][column] / matrix[column][column];
            for k in column..PARAMS {
                matrix[row][k] -= factor * matrix[column][k];
            }
            rhs[row] -= factor * rhs[column];
        }
    }
    let mut x = [0.0; PARAMS];
    for row in (0..PARAMS).rev() {
        let tail: f64 = (row + 1..PARAMS).map(|k| matrix[row][k] * x[k]).sum();
        x[row] = (rhs[row] - tail) / matrix[row][row];
    }
    x.iter().all(|v| v.is_finite()).then_some(x)
}

/// Minimises the objective by Newton's method from `w = 0`, `b = logit(prior)` (the optimum
/// of the intercept alone), with a backtracking (Armijo) line search so every step decreases
/// the objective even far from the optimum or on separable data. A Hessian singular to working
/// precision (alpha = 0 with a constant feature) gets a small ridge for that step only.
fn fit_newton(
    inputs: &[BatchColumns<'_>],
    scaling: &[Scaling],
    prior: f64,
    alpha: f64,
) -> Result<(Vec<f64>, f64), ModelError> {
    let mut theta = [0.0; PARAMS];
    let prior = prior.clamp(1e-12, 1.0 - 1e-12);
    theta[WIDTH] = (prior / (1.0 - prior)).ln();
    let mut pass = evaluate_parallel(inputs, scaling, &theta, alpha, true);
    let tolerance = NEWTON_GRADIENT_PER_ROW * pass.rows.max(1) as f64;
    let mut passes = 1;
    for _ in 0..NEWTON_MAX_ITERATIONS {
        if !pass.objective.is_finite() {
            return Err(ModelError::Solver(format!(
                "the objective became {} during the Newton iterations",
                pass.objective
            )));
        }
        if norm(&pass.gradient) <= tolerance {
            break;
        }
        let mut hessian = pass.hessian;
        let mut step = solve(hessian, pass.gradient);
        let mut ridge = 1e-10 * (1.0 + hessian[WIDTH][WIDTH]);
        while step.is_none() && ridge < 1e10 {
            for (j, row) in hessian.iter_mut().enumerate() {
                row[j] += ridge;
            }
            step = solve(hessian, pass.gradient);
            ridge *= 100.0;
        }
        let step = step.ok_or_else(|| {
            ModelError::Solver("the Hessian of the objective is not invertible".into())
        })?;
        let slope: f64 = step.iter().zip(&pass.gradient).map(|(s, g)| s * g).sum();
        // Changes of the objective below this are rounding: summed over millions of rows, the
        // objective is only known to about 1e-13 of its size.
        let rounding = 1e-12 * pass.objective.abs().max(1.0);
        let mut size = 1.0;
        let accepted = loop {
            let candidate: [f64; PARAMS] = std::array::from_fn(|j| theta[j] - size * step[j]);
            let next = evaluate_parallel(inputs, scaling, &candidate, alpha, true);
            passes += 1;
            let decreased = next.objective <= pass.objective - 1e-4 * size * slope;
            // Near the optimum the decrease drowns in rounding; the full Newton step is still
            // right there, and the gradient shows it (it shrinks quadratically).
            let converging = size == 1.0
                && next.objective <= pass.objective + rounding
                && norm(&next.gradient) < norm(&pass.gradient);
            if decreased || converging {
                break Some((candidate, next));
            }
            size *= 0.5;
            if size < 1e-4 {
                break None;
            }
        };
        let Some((candidate, next)) = accepted else {
            // No decrease is possible along the Newton direction: at the optimum to rounding.
            break;
        };
        let moved = candidate
            .iter()
            .zip(&theta)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        theta = candidate;
        pass = next;
        if moved <= 1e-14 * (1.0 + theta.iter().map(|t| t.abs()).fold(0.0, f64::max)) {
            break;
        }
    }
    tracing::debug!(
        passes,
        gradient_norm = norm(&pass.gradient),
        "Newton solver finished"
    );
    Ok((theta[..WIDTH].to_vec(), theta[WIDTH]))
}
