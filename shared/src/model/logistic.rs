//! The trained model as data: per-feature scaling, imputation values and coefficients, the
//! hyper-parameters, fit diagnostics, row counts and provenance, all serialisable to JSON. It
//! predicts with `sigmoid(w·z + b)` on standardised features `z` using only these numbers, so an
//! artifact written by one release can be reloaded and used without any solver (which is only
//! used to fit). Loading re-validates the artifact, because a JSON file can be edited by hand.

use std::collections::BTreeMap;

use arrow::array::Array;
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::ModelError;
use super::columns::{feature_column, label_at, target_column};
use super::metrics::{ClassificationMetrics, classification_metrics};
use super::params::ValidTrainingParams;
use crate::drift::threshold::ThresholdChoice;
use crate::lifecycle::profile::ReferenceProfile;
use crate::lifecycle::window::TrainingWindow;

/// Bumped whenever the JSON layout of [`TrainedModel`] changes incompatibly.
pub const MODEL_FORMAT_VERSION: u32 = 1;

/// A fitted attrition model. Coefficients and intercept are in **standardised space**: the
/// probability for raw features `x` is `sigmoid(b + Σ w_j·(x_j − mean_j)/std_j)`, with a missing
/// `x_j` replaced by `impute_value_j`. [`TrainedModel::coefficients_in_original_units`] gives the
/// equivalent raw-unit coefficients for reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainedModel {
    /// [`MODEL_FORMAT_VERSION`] of the code that wrote this artifact.
    pub format_version: u32,
    /// The features in model order, with their scaling, imputation value and coefficient.
    pub features: Vec<ModelFeature>,
    /// Intercept in standardised space (not regularised).
    pub intercept_standardized: f64,
    /// The hyper-parameters the model was fitted with; `threshold` is used by prediction.
    pub params: ValidTrainingParams,
    /// How well the solver did, as checked independently after the fit.
    pub diagnostics: FitDiagnostics,
    /// Which rows the fit used and what was done to them.
    pub rows: RowCounts,
    /// Where the model came from; the caller fills the training-data fields.
    pub metadata: ModelMetadata,
    /// The decision threshold chosen on validation rows, when one was chosen; prediction uses
    /// it instead of `params.threshold`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision_threshold: Option<ThresholdChoice>,
    /// What drift checks compare new rows with (training distributions, validation performance).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<ReferenceProfile>,
    /// The compiled rows the model was trained and validated on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<TrainingWindow>,
}

/// One feature of the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelFeature {
    /// Column name in the client schema.
    pub name: String,
    /// Mean of the observed (non-null) values in the training rows.
    pub mean: f64,
    /// Population standard deviation (ddof 0) of the observed values; 1.0 for a constant feature.
    pub std: f64,
    /// Raw value that replaces a missing value (the training mean).
    pub impute_value: f64,
    /// Coefficient on the standardised feature `(x − mean)/std`.
    pub coefficient_standardized: f64,
}

/// The fit as checked after the solver returned: the objective smartcore and scikit-learn
/// minimise, `Σ log-loss + ½·alpha·‖w‖²`, and its gradient (coefficients and intercept).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitDiagnostics {
    /// Name of the solver that produced the coefficients.
    pub solver: String,
    /// The regularised objective at the fitted coefficients (summed over rows).
    pub objective: f64,
    /// Unregularised log-loss averaged over the training rows.
    pub mean_log_loss: f64,
    /// Euclidean norm of the objective's gradient; 0 at the exact optimum.
    pub gradient_norm: f64,
    /// `gradient_norm` divided by the number of training rows, comparable across data sizes.
    pub gradient_norm_per_row: f64,
}

/// What happened to the training rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RowCounts {
    /// Rows in the input batches.
    pub rows_seen: usize,
    /// Rows the model was fitted on (those with a known `exited`).
    pub rows_used: usize,
    /// Rows left out because `exited` was null.
    pub excluded_missing_target: usize,
    /// Per feature, how many used rows had the value missing and imputed.
    pub imputed: BTreeMap<String, usize>,
    /// Used rows with `exited = 0`.
    pub stayed: usize,
    /// Used rows with `exited = 1`.
    pub exited: usize,
}

/// Provenance. `crate_version` and `trained_at` are set by training; the training-data fields are
/// set by the caller, who knows where the data came from (see [`TrainedModel::with_training_data`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelMetadata {
    /// Location of the compiled training data set (`s3://…` or a local path).
    pub training_data_location: Option<String>,
    /// Object version (or other version tag) of that data set.
    pub training_data_version: Option<String>,
    /// Version of the `shared` crate that trained the model.
    pub crate_version: String,
    /// When training finished.
    pub trained_at: DateTime<Utc>,
}

/// Predictions for the rows of one batch, in row order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Predictions {
    /// Probability that the client exits.
    pub probabilities: Vec<f64>,
    /// 1 when the probability is at least the model's threshold, else 0.
    pub classes: Vec<u8>,
    /// Per feature, how many rows had the value missing and imputed.
    pub imputed: BTreeMap<String, usize>,
}

/// The model scored on labelled data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Metrics over the rows with a known `exited`.
    pub metrics: ClassificationMetrics,
    /// Rows left out because `exited` was null.
    pub excluded_missing_target: usize,
    /// Per feature, how many evaluated rows had the value missing and imputed.
    pub imputed: BTreeMap<String, usize>,
}

/// The logistic function, computed so that neither branch overflows: for large |z| it returns
/// exactly 0 or 1 (never NaN), and for moderate negative z it keeps full relative precision.
#[inline]
pub fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

impl TrainedModel {
    /// Records where the training data came from.
    pub fn with_training_data(
        mut self,
        location: impl Into<String>,
        version: Option<String>,
    ) -> Self {
        self.metadata.training_data_location = Some(location.into());
        self.metadata.training_data_version = version;
        self
    }

    /// The decision threshold: the one chosen on validation rows, else the hyper-parameter.
    pub fn threshold(&self) -> f64 {
        self.decision_threshold
            .as_ref()
            .map(|choice| choice.threshold.get())
            .unwrap_or(self.params.threshold())
    }

    /// Feature names in model order.
    pub fn feature_names(&self) -> Vec<String> {
        self.features.iter().map(|f| f.name.clone()).collect()
    }

    /// Coefficients and intercept for raw (unstandardised) feature values, for reports:
    /// `b − Σ w_j·mean_j/std_j` and `w_j/std_j`.
    pub fn coefficients_in_original_units(&self) -> (Vec<f64>, f64) {
        let coefficients: Vec<f64> = self
            .features
            .iter()
            .map(|f| f.coefficient_standardized / f.std)
            .collect();
        let intercept = self.intercept_standardized
            - self
                .features
                .iter()
                .map(|f| f.coefficient_standardized * f.mean / f.std)
                .sum::<f64>();
        (coefficients, intercept)
    }

    /// The model as pretty-printed JSON.
    pub fn to_json(&self) -> Result<Vec<u8>, ModelError> {
        Ok(serde_json::to_vec_pretty(self)?)
    }

    /// Reads a model written by [`TrainedModel::to_json`] and checks it can predict.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ModelError> {
        let model: Self = serde_json::from_slice(bytes)?;
        model.validate()?;
        Ok(model)
    }

    /// Checks that every number prediction relies on is usable.
    pub fn validate(&self) -> Result<(), ModelError> {
        if self.format_version != MODEL_FORMAT_VERSION {
            return Err(ModelError::InvalidModel(format!(
                "format version {} is not the supported {MODEL_FORMAT_VERSION}",
                self.format_version
            )));
        }
        if self.features.is_empty() {
            return Err(ModelError::InvalidModel("it has no features".into()));
        }
        for feature in &self.features {
            let usable = feature.mean.is_finite()
                && feature.impute_value.is_finite()
                && feature.coefficient_standardized.is_finite()
                && feature.std.is_finite()
                && feature.std > 0.0;
            if !usable {
                return Err(ModelError::InvalidModel(format!(
                    "feature `{}` has a non-finite value or a non-positive std",
                    feature.name
                )));
            }
        }
        if !self.intercept_standardized.is_finite() {
            return Err(ModelError::InvalidModel(
                "the intercept is not finite".into(),
            ));
        }
        // The hyper-parameters were validated when the model was deserialised or trained.
        Ok(())
    }

    /// Exit probabilities and predicted classes for every row of `batch`. The batch needs the
    /// model's feature columns as `Int64`; other columns (including `exited`) are ignored.
    pub fn predict(&self, batch: &RecordBatch) -> Result<Predictions, ModelError> {
        let names = self.feature_names();
        let mut linear = vec![self.intercept_standardized; batch.num_rows()];
        let mut imputed = BTreeMap::new();
        for feature in &self.features {
            let column = feature_column(batch, &feature.name, &names)?;
            let weight = feature.coefficient_standardized;
            let imputed_term = weight * (feature.impute_value - feature.mean) / feature.std;
            let values = column.values();
            match column.nulls() {
                None => {
                    for (z, &x) in linear.iter_mut().zip(values.iter()) {
                        *z += weight * ((x as f64 - feature.mean) / feature.std);
                    }
                }
                Some(nulls) => {
                    for (row, (z, &x)) in linear.iter_mut().zip(values.iter()).enumerate() {
                        *z += if nulls.is_valid(row) {
                            weight * ((x as f64 - feature.mean) / feature.std)
                        } else {
                            imputed_term
                        };
                    }
                }
            }
            imputed.insert(feature.name.clone(), column.null_count());
        }
        let threshold = self.threshold();
        let probabilities: Vec<f64> = linear.into_iter().map(sigmoid).collect();
        let classes = probabilities
            .iter()
            .map(|&p| u8::from(p >= threshold))
            .collect();
        Ok(Predictions {
            probabilities,
            classes,
            imputed,
        })
    }

    /// Predicts every row of `batches` and scores the rows whose `exited` is known, at the
    /// model's own threshold.
    pub fn evaluate(&self, batches: &[RecordBatch]) -> Result<Evaluation, ModelError> {
        self.evaluate_at(batches, self.threshold())
    }

    /// [`TrainedModel::evaluate`] with rows predicted to exit at probability ≥ `threshold`
    /// (e.g. 0.5, to report beside a tuned threshold).
    pub fn evaluate_at(
        &self,
        batches: &[RecordBatch],
        threshold: f64,
    ) -> Result<Evaluation, ModelError> {
        self.evaluate_scored(batches, threshold)
            .map(|(evaluation, _, _)| evaluation)
    }

    /// [`TrainedModel::evaluate`], with the labels and predicted probabilities of the rows it
    /// scored (in order), for statistics drawn over the same rows.
    pub fn evaluate_with_scores(
        &self,
        batches: &[RecordBatch],
    ) -> Result<(Evaluation, Vec<u8>, Vec<f64>), ModelError> {
        self.evaluate_scored(batches, self.threshold())
    }

    fn evaluate_scored(
        &self,
        batches: &[RecordBatch],
        threshold: f64,
    ) -> Result<(Evaluation, Vec<u8>, Vec<f64>), ModelError> {
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        let mut labels = Vec::with_capacity(rows);
        let mut classes = Vec::with_capacity(rows);
        let mut scores = Vec::with_capacity(rows);
        let mut excluded_missing_target = 0;
        let mut imputed: BTreeMap<String, usize> = BTreeMap::new();
        let mut first_row = 0;
        for batch in batches {
            let target = target_column(batch)?;
            let predictions = self.predict(batch)?;
            for row in 0..batch.num_rows() {
                match label_at(target, row, first_row + row)? {
                    Some(label) => {
                        labels.push(label);
                        let probability = predictions.probabilities[row];
                        classes.push(u8::from(probability >= threshold));
                        scores.push(probability);
                    }
                    None => excluded_missing_target += 1,
                }
            }
            // Imputations are counted over the evaluated rows only, like the metrics.
            for feature in &self.features {
                let column = feature_column(batch, &feature.name, &[])?;
                let count = match column.nulls() {
                    None => 0,
                    Some(nulls) => (0..batch.num_rows())
                        .filter(|&row| nulls.is_null(row) && target.is_valid(row))
                        .count(),
                };
                *imputed.entry(feature.name.clone()).or_default() += count;
            }
            first_row += batch.num_rows();
        }
        if labels.is_empty() {
            return Err(ModelError::EmptyEvaluation);
        }
        let metrics = classification_metrics(&labels, &classes, &scores)?;
        let evaluation = Evaluation {
            metrics,
            excluded_missing_target,
            imputed,
        };
        Ok((evaluation, labels, scores))
    }
}
