//! The attrition model: a logistic regression on the three client [`FEATURES`] predicting
//! `exited`, fitted by a Newton solver written for its four parameters (smartcore's L-BFGS fit
//! of the same objective is the reference it is tested against, in test builds only) and stored as a
//! self-contained, serde-serialisable [`TrainedModel`] that predicts with plain arithmetic (no
//! solver state). Features are
//! standardised with the training rows' mean and population standard deviation (a constant
//! feature keeps scale 1, as scikit-learn does, so it never produces NaN). A missing feature value
//! (null) is imputed with the training mean of that feature — 0 in standardised space — both in
//! training and in prediction, and every imputation is counted; a row whose `exited` is null is
//! left out of training and of evaluation, and counted. Regularisation is L2 with `alpha = 1/C`
//! on the coefficients only (not the intercept), exactly scikit-learn's
//! `LogisticRegression(C)` objective, so the default `alpha = 1.0` matches its default. Whatever
//! the solver, training recomputes the regularised log-loss and its gradient at the fitted
//! coefficients and refuses a non-finite fit. [`metrics`] scores
//! predictions (scikit-learn's zero-division conventions) and [`plot`] draws the confusion matrix
//! as PNG bytes with an embedded font.
//!
//! [`FEATURES`]: crate::data::schema::FEATURES

pub(crate) mod columns;
pub mod logistic;
pub mod metrics;
pub mod params;
pub mod plot;
#[cfg(test)]
mod reference;
mod train;

#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;

pub use logistic::{
    Evaluation, FitDiagnostics, MODEL_FORMAT_VERSION, ModelFeature, ModelMetadata, Predictions,
    RowCounts, TrainedModel, sigmoid,
};
pub use metrics::{ClassificationMetrics, ConfusionMatrix, classification_metrics};
pub use params::{TrainingParams, ValidTrainingParams};
pub use plot::confusion_matrix_png;
pub use train::train;

/// Everything that can go wrong in training, prediction, scoring and plotting. Each message says
/// what is wrong and what to change.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("invalid hyper-parameter `{name}` = {value}: {requirement}")]
    InvalidParameter {
        name: &'static str,
        value: String,
        requirement: &'static str,
    },

    #[error(
        "column `{column}` is missing from the data; the model needs the columns {expected:?} (check the input schema)"
    )]
    MissingColumn {
        column: String,
        expected: Vec<String>,
    },

    #[error("column `{column}` has type {found}, expected {expected} (check the input schema)")]
    WrongColumnType {
        column: String,
        expected: &'static str,
        found: String,
    },

    #[error(
        "row {row} has `exited` = {value}; the target must be 0 (stayed) or 1 (exited) — fix or drop that row"
    )]
    InvalidTarget { row: usize, value: i64 },

    #[error(
        "no usable training rows: {rows_seen} rows seen, {missing_target} without an `exited` value; provide rows with a known outcome"
    )]
    NoUsableRows {
        rows_seen: usize,
        missing_target: usize,
    },

    #[error(
        "only {rows} usable training rows, at least {min_rows} are required (add data or lower `min_rows`)"
    )]
    TooFewRows { rows: usize, min_rows: usize },

    #[error(
        "all {rows} usable training rows have `exited` = {class}; logistic regression needs examples of both outcomes"
    )]
    OneClassOnly { class: u8, rows: usize },

    #[error(
        "only {rows} training rows have `exited` = {class}, at least {min_rows_per_class} are required (add data or lower `min_rows_per_class`)"
    )]
    TooFewRowsInClass {
        class: u8,
        rows: usize,
        min_rows_per_class: usize,
    },

    #[error(
        "feature `{feature}` has no values in any usable training row, so it cannot be scaled or imputed; fill it in the source data"
    )]
    FeatureAllMissing { feature: String },

    #[error("the solver failed: {0}; check the data for extreme values or raise `alpha`")]
    Solver(String),

    #[error(
        "the fit is not usable: regularised log-loss {loss}, gradient norm {gradient_norm} (not finite); check the data for extreme values or raise `alpha`"
    )]
    NonFiniteFit { loss: f64, gradient_norm: f64 },

    #[error("the stored model is inconsistent: {0}; retrain it or restore a valid artifact")]
    InvalidModel(String),

    #[error("the model artifact is not valid JSON for this model format: {0}")]
    ModelJson(#[from] serde_json::Error),

    #[error("{what}: expected {expected} values, got {found}; pass equally long inputs")]
    LengthMismatch {
        what: &'static str,
        expected: usize,
        found: usize,
    },

    #[error("{what}[{index}] = {value}; labels and predicted classes must be 0 or 1")]
    InvalidLabel {
        what: &'static str,
        index: usize,
        value: u8,
    },

    #[error("score[{index}] = {value}; scores must be finite numbers")]
    NonFiniteScore { index: usize, value: f64 },

    #[error("nothing to evaluate: no rows with a known `exited` value")]
    EmptyEvaluation,

    #[error("could not draw the confusion-matrix plot: {0}")]
    Plot(String),
}
