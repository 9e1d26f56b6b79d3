//! How the deployed model is kept right as data changes: the drift rule that decides a retrain,
//! the recency window a new model is trained on (with the newest rows held out for validation),
//! the decision threshold chosen on those rows, and the champion/challenger gate a new model
//! must pass before it replaces the deployed one. [`LifecycleSettings`] holds every knob with
//! its default and where the default comes from; `config.json`'s optional `lifecycle` object
//! overrides them, and `RISK_DRIFT_RULE=raw_f1` brings back the original system's behaviour.

pub mod gate;
pub mod profile;
pub mod window;

use serde::{Deserialize, Serialize};

use crate::drift::stats::{ConfidenceLevel, Margin, MinRows, SignificanceLevel};
use crate::drift::threshold::{Threshold, ThresholdRule};

/// Environment variable that selects the drift rule (`statistical` or `raw_f1`).
pub const DRIFT_RULE_ENV: &str = "RISK_DRIFT_RULE";

/// Which rule decides that the deployed model has drifted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftRule {
    /// Statistics: a one-sided test that the deployed model's log loss on the new rows is worse
    /// than on its validation rows, with a minimum sample size; per-feature data drift,
    /// prediction drift and the label rate are reported beside it. A retrain uses the recency
    /// window, a tuned threshold and the champion/challenger gate.
    #[default]
    Statistical,
    /// The original system: drift when the F1 on the new rows is below the F1 recorded at
    /// deployment (no allowance for noise); retrain on all compiled data, threshold 0.5, and
    /// deploy whatever comes out.
    RawF1,
}

impl DriftRule {
    pub fn parse(value: &str) -> Option<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "statistical" => Some(DriftRule::Statistical),
            "raw_f1" | "original" => Some(DriftRule::RawF1),
            _ => None,
        }
    }
}

/// Every setting of the model lifecycle. Defaults and their sources are on each field; the
/// quality benchmark (`risk quality`, QUALITY.md) is the evidence for the window and the
/// sample sizes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LifecycleSettings {
    pub drift_rule: DriftRule,
    /// Fewer new labelled rows than this: "too few rows to tell", never drift. Default 200: the
    /// standard error of a mean log loss (per-row s.d. ≈ 0.5 at a 30 % exit rate) is then
    /// ≈ 0.035, small beside the loss increases a real drift causes (0.2 and more in the
    /// benchmark); NannyML likewise warns below a few hundred rows a chunk.
    pub min_rows: MinRows,
    /// One-sided significance of the performance test. Default 0.01: at most about one false
    /// alarm in a hundred stable batches (Evidently's data-drift default is 0.05, but a false
    /// alarm here costs a retrain, so the bar is higher).
    pub significance: SignificanceLevel,
    /// The log loss must be worse than the reference by more than this before it counts
    /// (MLflow's `min_absolute_change` idea). Default 0.01 nats.
    pub min_log_loss_increase: Margin,
    /// Significance of the per-feature data-drift tests after Benjamini–Hochberg control across
    /// features (alibi-detect's FDR option). Default 0.05 (Evidently's KS default).
    pub data_drift_significance: SignificanceLevel,
    /// A feature only drifts when, besides being significant, its PSI or normalised Wasserstein
    /// distance reaches this (Evidently's 0.1 for both), so large batches do not flag
    /// negligible shifts.
    pub data_drift_effect: f64,
    /// Confidence of the intervals in the drift report. Default 0.95.
    pub confidence: ConfidenceLevel,
    /// Bootstrap resamples for the AUC and F1 intervals (fixed seed). Default 200.
    pub bootstrap_resamples: usize,
    /// A retrain uses at most the newest this many ingested files. Default 3 (three monthly
    /// snapshots): enough rows for four parameters, recent enough to follow a change.
    pub training_window_files: usize,
    /// After a detected performance drift the window starts at the drifted rows, extended into
    /// older files only until it has this many rows. Default 500.
    pub min_training_rows: usize,
    /// Share of the window held out for validation when the newest file alone cannot be held
    /// out (a window of one file). Default 0.3.
    pub validation_share: f64,
    /// Fewer validation rows than this: no holdout (train on the whole window, threshold from
    /// the fallback rule). Default 50.
    pub min_validation_rows: usize,
    /// How the decision threshold is chosen on the validation rows. Default: best F1.
    pub threshold: ThresholdRule,
    /// Threshold used when there are no validation rows to choose one on. Default 0.5.
    pub fallback_threshold: Threshold,
    /// A challenger replaces the champion when its mean log loss on the validation rows is
    /// below the champion's plus this margin, significantly (one-sided, `gate_significance`).
    /// Default 0.005 nats: a non-inferiority margin, so an equally good, newer model wins.
    pub challenger_margin: Margin,
    /// Default 0.05.
    pub gate_significance: SignificanceLevel,
}

impl Default for LifecycleSettings {
    fn default() -> Self {
        LifecycleSettings {
            drift_rule: DriftRule::Statistical,
            min_rows: MinRows::new(200).expect("valid constant"),
            significance: SignificanceLevel::new(0.01).expect("valid constant"),
            min_log_loss_increase: Margin::new(0.01).expect("valid constant"),
            data_drift_significance: SignificanceLevel::new(0.05).expect("valid constant"),
            data_drift_effect: 0.1,
            confidence: ConfidenceLevel::new(0.95).expect("valid constant"),
            bootstrap_resamples: 200,
            training_window_files: 3,
            min_training_rows: 500,
            validation_share: 0.3,
            min_validation_rows: 50,
            threshold: ThresholdRule::BestF1,
            fallback_threshold: Threshold::DEFAULT,
            challenger_margin: Margin::new(0.005).expect("valid constant"),
            gate_significance: SignificanceLevel::new(0.05).expect("valid constant"),
        }
    }
}

/// Why the lifecycle settings are not usable.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum LifecycleError {
    #[error("lifecycle setting `{name}` = {value}: {requirement}")]
    Invalid {
        name: &'static str,
        value: String,
        requirement: &'static str,
    },
    #[error("{DRIFT_RULE_ENV}={0:?} is not a drift rule: use `statistical` or `raw_f1`")]
    UnknownRule(String),
}

impl LifecycleSettings {
    /// The original system's behaviour (raw F1 comparison, all data, threshold 0.5, no gate).
    pub fn original() -> Self {
        LifecycleSettings {
            drift_rule: DriftRule::RawF1,
            ..Self::default()
        }
    }

    /// Whether this is the original rule, which keeps every other original behaviour too.
    pub fn is_original(&self) -> bool {
        self.drift_rule == DriftRule::RawF1
    }

    /// Applies `RISK_DRIFT_RULE` when set.
    pub fn with_env(
        mut self,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, LifecycleError> {
        if let Some(value) = var(DRIFT_RULE_ENV).filter(|v| !v.trim().is_empty()) {
            self.drift_rule =
                DriftRule::parse(&value).ok_or(LifecycleError::UnknownRule(value.clone()))?;
        }
        Ok(self)
    }

    /// Checks what the newtypes cannot: counts and shares.
    pub fn validate(self) -> Result<Self, LifecycleError> {
        let invalid = |name, value: String, requirement| LifecycleError::Invalid {
            name,
            value,
            requirement,
        };
        if self.training_window_files == 0 {
            return Err(invalid(
                "training_window_files",
                "0".into(),
                "must be at least 1 (the newest file)",
            ));
        }
        if !(self.validation_share > 0.0 && self.validation_share < 1.0) {
            return Err(invalid(
                "validation_share",
                self.validation_share.to_string(),
                "must be strictly between 0 and 1 (0.3 is usual)",
            ));
        }
        if !(self.data_drift_effect.is_finite() && self.data_drift_effect >= 0.0) {
            return Err(invalid(
                "data_drift_effect",
                self.data_drift_effect.to_string(),
                "must be a finite number ≥ 0 (Evidently uses 0.1)",
            ));
        }
        if self.bootstrap_resamples < 2 {
            return Err(invalid(
                "bootstrap_resamples",
                self.bootstrap_resamples.to_string(),
                "must be at least 2 (200 is the default)",
            ));
        }
        if self.min_training_rows < 2 || self.min_validation_rows < 2 {
            return Err(invalid(
                "min_training_rows / min_validation_rows",
                format!("{} / {}", self.min_training_rows, self.min_validation_rows),
                "must be at least 2",
            ));
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let settings = LifecycleSettings::default();
        assert_eq!(settings.min_rows.get(), 200);
        assert_eq!(settings.significance.get(), 0.01);
        assert_eq!(settings.challenger_margin.get(), 0.005);
        assert!(settings.validate().is_ok());
    }

    #[test]
    fn parses_partial_json_and_refuses_typos_and_bad_values() {
        let settings: LifecycleSettings = serde_json::from_str(
            r#"{"training_window_files": 6, "threshold": {"rule": "fixed", "threshold": 0.5}}"#,
        )
        .unwrap();
        assert_eq!(settings.training_window_files, 6);
        assert_eq!(settings.min_rows.get(), 200);
        assert!(serde_json::from_str::<LifecycleSettings>(r#"{"min_row": 5}"#).is_err());
        assert!(serde_json::from_str::<LifecycleSettings>(r#"{"significance": 1.5}"#).is_err());
        let zero: LifecycleSettings =
            serde_json::from_str(r#"{"training_window_files": 0}"#).unwrap();
        assert!(zero.validate().is_err());
    }

    #[test]
    fn environment_selects_the_original_rule() {
        let env = |name: &str| (name == DRIFT_RULE_ENV).then(|| "raw_f1".to_string());
        let settings = LifecycleSettings::default().with_env(env).unwrap();
        assert!(settings.is_original());
        let bad = |name: &str| (name == DRIFT_RULE_ENV).then(|| "magic".to_string());
        assert!(LifecycleSettings::default().with_env(bad).is_err());
    }
}
