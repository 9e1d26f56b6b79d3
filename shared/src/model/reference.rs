//! smartcore's L-BFGS fit of the model's objective, used only by the tests as the reference the
//! Newton solver is held to (same preparation, same objective, same checks; only the solver
//! differs). It stays out of the production path: smartcore panics when its line search does
//! not converge, which the release profile's `panic = "abort"` turns into a crashed process, and
//! it is slow (BENCHMARKS.md: the training step on 1M rows took 2.44 s with it, 0.17 s with
//! Newton).

use std::panic::AssertUnwindSafe;

use arrow::record_batch::RecordBatch;
use smartcore::linalg::basic::arrays::Array;
use smartcore::linalg::basic::matrix::DenseMatrix;
use smartcore::linear::logistic_regression::{LogisticRegression, LogisticRegressionParameters};

use super::train::{BatchColumns, Scaling, for_each_used_value, train_with};
use super::{ModelError, TrainedModel, ValidTrainingParams};

const SMARTCORE_SOLVER: &str = "smartcore 0.7 LogisticRegression (L-BFGS)";

/// Like [`super::train`], with smartcore's L-BFGS fit instead of the Newton solver.
pub fn train_smartcore(
    batches: &[RecordBatch],
    params: &ValidTrainingParams,
) -> Result<TrainedModel, ModelError> {
    train_with(
        batches,
        params,
        SMARTCORE_SOLVER,
        |inputs, scaling, counts, alpha| {
            let (values, labels) = standardised_matrix(inputs, scaling, counts.rows_used);
            let x = DenseMatrix::new(counts.rows_used, scaling.len(), values, false)
                .map_err(|e| ModelError::Solver(e.to_string()))?;
            fit_with_smartcore(&x, &labels, alpha)
        },
    )
}

/// Runs smartcore's solver and returns the coefficients and the intercept; a panic (where
/// panics unwind, as in tests) becomes a [`ModelError::Solver`].
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
