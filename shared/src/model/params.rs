//! Training hyper-parameters in the linfa style: [`TrainingParams`] is a builder that accepts any
//! value, and [`TrainingParams::check`] turns it into [`ValidTrainingParams`], the only type
//! training accepts, or refuses it with a [`ModelError::InvalidParameter`] naming the parameter
//! and the allowed range. [`ValidTrainingParams`] has no other constructor: its fields are
//! private and deserialising one (from a model artifact) goes through the same check, so holding
//! one proves the values are valid. The validated values are stored in the model so a prediction
//! uses the same decision threshold the model was trained and scored with.

use serde::{Deserialize, Serialize};

use super::ModelError;

/// Hyper-parameters as requested, not yet validated. Start from [`TrainingParams::default`]
/// (scikit-learn's `LogisticRegression()` defaults) and change what you need. Its serialised
/// form is the one a model artifact stores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingParams {
    alpha: f64,
    threshold: f64,
    min_rows: usize,
    min_rows_per_class: usize,
}

/// Hyper-parameters that passed [`TrainingParams::check`]; see the getters for their meaning.
/// Serialised with the same field names as before the fields became private, so existing
/// artifacts load, and validated when deserialised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "TrainingParams", into = "TrainingParams")]
pub struct ValidTrainingParams {
    alpha: f64,
    threshold: f64,
    min_rows: usize,
    min_rows_per_class: usize,
}

impl Default for TrainingParams {
    fn default() -> Self {
        Self {
            alpha: 1.0,
            threshold: 0.5,
            min_rows: 10,
            min_rows_per_class: 2,
        }
    }
}

impl TrainingParams {
    /// L2 regularisation strength, `1/C`; 0 disables regularisation.
    pub fn alpha(mut self, alpha: f64) -> Self {
        self.alpha = alpha;
        self
    }

    /// Decision threshold on the exit probability, strictly between 0 and 1.
    pub fn threshold(mut self, threshold: f64) -> Self {
        self.threshold = threshold;
        self
    }

    /// Minimum number of usable training rows (at least 2).
    pub fn min_rows(mut self, min_rows: usize) -> Self {
        self.min_rows = min_rows;
        self
    }

    /// Minimum number of usable training rows in each class (at least 1).
    pub fn min_rows_per_class(mut self, min_rows_per_class: usize) -> Self {
        self.min_rows_per_class = min_rows_per_class;
        self
    }

    /// Validates every value and returns the parameters training accepts.
    pub fn check(self) -> Result<ValidTrainingParams, ModelError> {
        if !(self.alpha.is_finite() && self.alpha >= 0.0) {
            return Err(invalid(
                "alpha",
                self.alpha,
                "must be a finite number ≥ 0 (it is 1/C; 1.0 matches scikit-learn's default)",
            ));
        }
        if !(self.threshold.is_finite() && self.threshold > 0.0 && self.threshold < 1.0) {
            return Err(invalid(
                "threshold",
                self.threshold,
                "must be strictly between 0 and 1 (0.5 is the usual choice)",
            ));
        }
        if self.min_rows < 2 {
            return Err(invalid(
                "min_rows",
                self.min_rows,
                "must be at least 2: a fit needs one row of each outcome",
            ));
        }
        if self.min_rows_per_class < 1 {
            return Err(invalid(
                "min_rows_per_class",
                self.min_rows_per_class,
                "must be at least 1: a fit needs both outcomes",
            ));
        }
        Ok(ValidTrainingParams {
            alpha: self.alpha,
            threshold: self.threshold,
            min_rows: self.min_rows,
            min_rows_per_class: self.min_rows_per_class,
        })
    }
}

impl ValidTrainingParams {
    /// L2 regularisation strength on the coefficients (not the intercept), `1/C` in
    /// scikit-learn's terms; the objective is `Σ log-loss + ½·alpha·‖w‖²`.
    pub fn alpha(&self) -> f64 {
        self.alpha
    }

    /// A client is predicted to exit when its probability is at least this.
    pub fn threshold(&self) -> f64 {
        self.threshold
    }

    /// Training refuses fewer usable rows (rows with a known `exited`).
    pub fn min_rows(&self) -> usize {
        self.min_rows
    }

    /// Training refuses fewer usable rows than this in either class.
    pub fn min_rows_per_class(&self) -> usize {
        self.min_rows_per_class
    }
}

impl TryFrom<TrainingParams> for ValidTrainingParams {
    type Error = ModelError;

    fn try_from(params: TrainingParams) -> Result<Self, ModelError> {
        params.check()
    }
}

impl From<ValidTrainingParams> for TrainingParams {
    fn from(valid: ValidTrainingParams) -> Self {
        TrainingParams {
            alpha: valid.alpha,
            threshold: valid.threshold,
            min_rows: valid.min_rows,
            min_rows_per_class: valid.min_rows_per_class,
        }
    }
}

fn invalid(name: &'static str, value: impl ToString, requirement: &'static str) -> ModelError {
    ModelError::InvalidParameter {
        name,
        value: value.to_string(),
        requirement,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_scikit_learn_and_pass() {
        let params = TrainingParams::default().check().unwrap();
        assert_eq!(params.alpha(), 1.0);
        assert_eq!(params.threshold(), 0.5);
        assert_eq!(params.min_rows(), 10);
        assert_eq!(params.min_rows_per_class(), 2);
    }

    #[test]
    fn refuses_bad_values_naming_the_parameter() {
        let cases = [
            (TrainingParams::default().alpha(-1.0), "alpha"),
            (TrainingParams::default().alpha(f64::NAN), "alpha"),
            (TrainingParams::default().alpha(f64::INFINITY), "alpha"),
            (TrainingParams::default().threshold(0.0), "threshold"),
            (TrainingParams::default().threshold(1.0), "threshold"),
            (TrainingParams::default().threshold(f64::NAN), "threshold"),
            (TrainingParams::default().min_rows(1), "min_rows"),
            (
                TrainingParams::default().min_rows_per_class(0),
                "min_rows_per_class",
            ),
        ];
        for (params, expected) in cases {
            match params.clone().check() {
                Err(ModelError::InvalidParameter { name, .. }) => {
                    assert_eq!(name, expected, "{params:?}")
                }
                other => panic!("{params:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn zero_alpha_is_allowed() {
        assert_eq!(
            TrainingParams::default()
                .alpha(0.0)
                .check()
                .unwrap()
                .alpha(),
            0.0
        );
    }

    #[test]
    fn deserialising_validates_and_keeps_the_artifact_field_names() {
        let json = r#"{"alpha":1.0,"threshold":0.5,"min_rows":10,"min_rows_per_class":2}"#;
        let params: ValidTrainingParams = serde_json::from_str(json).unwrap();
        assert_eq!(params, TrainingParams::default().check().unwrap());
        assert_eq!(serde_json::to_string(&params).unwrap(), json);

        let forged = r#"{"alpha":1.0,"threshold":1.5,"min_rows":10,"min_rows_per_class":2}"#;
        let error = serde_json::from_str::<ValidTrainingParams>(forged).unwrap_err();
        assert!(error.to_string().contains("`threshold` = 1.5"), "{error}");
        let missing = r#"{"alpha":1.0,"threshold":0.5,"min_rows":10}"#;
        assert!(serde_json::from_str::<ValidTrainingParams>(missing).is_err());
    }
}
