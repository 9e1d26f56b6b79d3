//! Model drift: whether the deployed model still does well enough on the rows a run added to the
//! compiled data (rows it has never seen) to stay deployed. The full process measures the model
//! on those rows and asks a [`DriftRule`] for the verdict, which comes back as the run's
//! [`Decision`] with the reason in words and the figures behind it. Today there is one rule, the
//! original system's raw comparison of F1 scores; other rules (statistical tests, other metrics)
//! go here as further variants, so the full process never changes when the rule does.

pub mod stats;
pub mod threshold;

use crate::model::Evaluation;
use crate::records::{Decision, DeploymentRecord, ObjectRef};

/// How drift is decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DriftRule {
    /// Drift when the model's F1 on the new rows is lower than the F1 recorded when it was
    /// deployed (on the test data), by any margin: the original system's rule. It has no
    /// tolerance and no notion of sample size, so a handful of new rows can trigger a retrain.
    #[default]
    RawF1,
}

/// The deployed model measured on the rows this run added.
#[derive(Debug, Clone, Copy)]
pub struct NewRows<'a> {
    /// The deployed model's evaluation on exactly those rows.
    pub evaluation: &'a Evaluation,
    /// The compiled data set they were read from (the version this run wrote).
    pub compiled_data: &'a ObjectRef,
}

/// A drift rule's verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct DriftCheck {
    /// [`Decision::Drift`] or [`Decision::NoDrift`].
    pub decision: Decision,
    /// Why, in words, with the figures (for the run record and the log).
    pub reason: String,
    /// F1 recorded when the deployed model was deployed.
    pub deployed_f1: f64,
    /// F1 of the deployed model on the new rows.
    pub new_data_f1: f64,
}

impl DriftCheck {
    /// Whether the model must be retrained and redeployed.
    pub fn drifted(&self) -> bool {
        self.decision == Decision::Drift
    }
}

impl DriftRule {
    /// Judges the deployed model (`deployed`, with the F1 recorded at deployment) on the new rows.
    pub fn check(self, deployed: &DeploymentRecord, new_rows: NewRows<'_>) -> DriftCheck {
        match self {
            DriftRule::RawF1 => raw_f1(deployed, new_rows),
        }
    }
}

fn raw_f1(deployed: &DeploymentRecord, new_rows: NewRows<'_>) -> DriftCheck {
    let metrics = &new_rows.evaluation.metrics;
    let (new_f1, recorded_f1) = (metrics.f1, deployed.f1);
    let (decision, reason) = if new_f1 < recorded_f1 {
        (
            Decision::Drift,
            format!(
                "model drift: the deployed model's F1 on the {} rows this run added to the compiled data (version {}) is {new_f1:.4}, lower than its recorded F1 ({recorded_f1:.4}); retraining",
                metrics.rows, new_rows.compiled_data.version_id
            ),
        )
    } else {
        (
            Decision::NoDrift,
            format!(
                "no drift: the deployed model's F1 on the {} rows this run added ({new_f1:.4}) is not lower than its recorded F1 ({recorded_f1:.4}); keeping it",
                metrics.rows
            ),
        )
    };
    DriftCheck {
        decision,
        reason,
        deployed_f1: recorded_f1,
        new_data_f1: new_f1,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::Utc;

    use super::*;
    use crate::model::{ClassificationMetrics, ConfusionMatrix};

    fn object(version_id: &str) -> ObjectRef {
        ObjectRef {
            url: "memory://risk/production/trainedmodel.json".into(),
            version_id: version_id.into(),
            etag: "\"etag\"".into(),
            size: 1,
        }
    }

    fn deployed_with_f1(f1: f64) -> DeploymentRecord {
        DeploymentRecord {
            model: object("m2"),
            model_source: object("m1"),
            score: object("s2"),
            score_source: object("s1"),
            ingestion_record: object("i2"),
            ingestion_record_source: object("i1"),
            f1,
            deployed_at: Utc::now(),
            run_id: "run-1".into(),
        }
    }

    /// Only `f1` and `rows` matter to the rule; the other figures are placeholders.
    fn evaluation_with_f1(f1: f64, rows: u64) -> Evaluation {
        Evaluation {
            metrics: ClassificationMetrics {
                rows,
                actual_positives: 0,
                actual_negatives: 0,
                predicted_positives: 0,
                confusion: ConfusionMatrix::default(),
                precision: f1,
                recall: f1,
                f1,
                accuracy: f1,
                roc_auc: None,
            },
            excluded_missing_target: 0,
            imputed: BTreeMap::new(),
        }
    }

    fn check(recorded: f64, new: f64) -> DriftCheck {
        let evaluation = evaluation_with_f1(new, 36);
        let compiled = object("c7");
        DriftRule::RawF1.check(
            &deployed_with_f1(recorded),
            NewRows {
                evaluation: &evaluation,
                compiled_data: &compiled,
            },
        )
    }

    #[test]
    fn raw_f1_drifts_when_the_new_rows_score_lower_by_any_margin() {
        let verdict = check(0.8, 0.8 - 1e-9);
        assert_eq!(verdict.decision, Decision::Drift);
        assert!(verdict.drifted());
        assert_eq!(
            (verdict.deployed_f1, verdict.new_data_f1),
            (0.8, 0.8 - 1e-9)
        );

        let verdict = check(2.0 / 3.0, 0.5);
        assert_eq!(
            verdict.reason,
            "model drift: the deployed model's F1 on the 36 rows this run added to the compiled data (version c7) is 0.5000, lower than its recorded F1 (0.6667); retraining"
        );
    }

    #[test]
    fn raw_f1_keeps_the_model_at_an_equal_or_higher_score() {
        for new in [0.6, 0.8] {
            let verdict = check(0.6, new);
            assert_eq!(verdict.decision, Decision::NoDrift, "{new}");
            assert!(!verdict.drifted());
        }
        assert_eq!(
            check(2.0 / 3.0, 0.8).reason,
            "no drift: the deployed model's F1 on the 36 rows this run added (0.8000) is not lower than its recorded F1 (0.6667); keeping it"
        );
    }
}
