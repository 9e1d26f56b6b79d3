//! The decision threshold on the exit probability, chosen on validation rows: by default the
//! one with the best F1 (the argmax of F1 over scikit-learn's `precision_recall_curve`), or a
//! fixed value, or the one with the lowest expected cost for a given ratio of the cost of a
//! missed exit to the cost of a false alarm. A row is predicted to exit when its probability is
//! at least the threshold, the model's own rule; the metrics at the customary 0.5 are reported
//! beside the choice. One sort of the rows, then a sweep over the distinct probabilities.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use crate::drift::stats::performance::metrics_at_threshold;
use crate::drift::stats::{DriftStatsError, check_labelled_probabilities};
use crate::model::ClassificationMetrics;

/// A probability threshold in [0, 1].
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct Threshold(f64);

impl Threshold {
    /// 0.5, the threshold of scikit-learn's `predict` and the model's default.
    pub const DEFAULT: Self = Self(0.5);

    pub fn new(threshold: f64) -> Result<Self, DriftStatsError> {
        if (0.0..=1.0).contains(&threshold) {
            Ok(Self(threshold))
        } else {
            Err(DriftStatsError::InvalidParameter {
                name: "threshold",
                value: threshold.to_string(),
                requirement: "a probability threshold lies in [0, 1]",
            })
        }
    }

    pub fn get(self) -> f64 {
        self.0
    }
}

impl Default for Threshold {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl TryFrom<f64> for Threshold {
    type Error = DriftStatsError;
    fn try_from(threshold: f64) -> Result<Self, Self::Error> {
        Self::new(threshold)
    }
}

impl From<Threshold> for f64 {
    fn from(threshold: Threshold) -> f64 {
        threshold.0
    }
}

/// Cost of a missed exit divided by the cost of a false alarm; finite and above 0 (5 means a
/// client who leaves unflagged costs five needless retention calls).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct CostRatio(f64);

impl CostRatio {
    pub fn new(ratio: f64) -> Result<Self, DriftStatsError> {
        if ratio.is_finite() && ratio > 0.0 {
            Ok(Self(ratio))
        } else {
            Err(DriftStatsError::InvalidParameter {
                name: "missed_exit_cost_ratio",
                value: ratio.to_string(),
                requirement: "the cost ratio of a missed exit to a false alarm is a finite number above 0",
            })
        }
    }

    pub fn get(self) -> f64 {
        self.0
    }
}

impl TryFrom<f64> for CostRatio {
    type Error = DriftStatsError;
    fn try_from(ratio: f64) -> Result<Self, Self::Error> {
        Self::new(ratio)
    }
}

impl From<CostRatio> for f64 {
    fn from(ratio: CostRatio) -> f64 {
        ratio.0
    }
}

/// How to choose the threshold.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum ThresholdRule {
    /// The distinct validation probability with the highest F1; among equal F1 (compared
    /// exactly, as fractions) the lowest threshold, which is what `np.argmax` returns over
    /// `precision_recall_curve`'s ascending thresholds.
    #[default]
    BestF1,
    /// Always this threshold.
    Fixed { threshold: Threshold },
    /// The threshold minimising ratio·(missed exits) + (false alarms) on the validation rows,
    /// over the distinct probabilities and 1.0 (flag nobody) when no probability reaches it;
    /// among equal costs the lowest threshold.
    Cost { missed_exit_cost_ratio: CostRatio },
}

/// The chosen threshold and what it does on the validation rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThresholdChoice {
    pub rule: ThresholdRule,
    pub threshold: Threshold,
    /// Metrics at the chosen threshold.
    pub metrics: ClassificationMetrics,
    /// Metrics at 0.5, for comparison.
    pub metrics_at_default: ClassificationMetrics,
    /// For [`ThresholdRule::Cost`]: (ratio·missed exits + false alarms) / rows, in units of
    /// one false alarm.
    pub expected_cost_per_row: Option<f64>,
}

/// Chooses the threshold on validation `labels` (0/1) and model `probabilities` by `rule`.
/// `BestF1` and `Cost` need both outcomes among the labels.
pub fn choose_threshold(
    labels: &[u8],
    probabilities: &[f64],
    rule: ThresholdRule,
) -> Result<ThresholdChoice, DriftStatsError> {
    check_labelled_probabilities(labels, probabilities)?;
    let (threshold, expected_cost_per_row) = match rule {
        ThresholdRule::Fixed { threshold } => (threshold, None),
        ThresholdRule::BestF1 => {
            let sweep = Sweep::new("the best-F1 threshold", labels, probabilities)?;
            (Threshold::new(sweep.best_f1())?, None)
        }
        ThresholdRule::Cost {
            missed_exit_cost_ratio,
        } => {
            let sweep = Sweep::new("the cost-based threshold", labels, probabilities)?;
            let (threshold, cost) = sweep.lowest_cost(missed_exit_cost_ratio.get());
            (Threshold::new(threshold)?, Some(cost / labels.len() as f64))
        }
    };
    Ok(ThresholdChoice {
        rule,
        threshold,
        metrics: metrics_at_threshold(labels, probabilities, threshold)?,
        metrics_at_default: metrics_at_threshold(labels, probabilities, Threshold::DEFAULT)?,
        expected_cost_per_row,
    })
}

/// Counts when flagging every row with probability ≥ `threshold`.
#[derive(Debug, Clone, Copy)]
struct Cut {
    threshold: f64,
    true_positives: u64,
    false_positives: u64,
}

/// Every distinct probability as a cut, highest first, and the number of exits.
struct Sweep {
    cuts: Vec<Cut>,
    positives: u64,
}

impl Sweep {
    fn new(
        what: &'static str,
        labels: &[u8],
        probabilities: &[f64],
    ) -> Result<Self, DriftStatsError> {
        let positives = labels.iter().filter(|&&l| l == 1).count() as u64;
        if positives == 0 || positives == labels.len() as u64 {
            return Err(DriftStatsError::OneClassOnly {
                what,
                class: u8::from(positives > 0),
                rows: labels.len(),
            });
        }
        let mut rows: Vec<(f64, u8)> = probabilities
            .iter()
            .copied()
            .zip(labels.iter().copied())
            .collect();
        rows.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
        let mut cuts = Vec::new();
        let (mut true_positives, mut false_positives) = (0u64, 0u64);
        let mut start = 0;
        while start < rows.len() {
            let threshold = rows[start].0;
            let mut end = start;
            while end < rows.len() && rows[end].0 == threshold {
                if rows[end].1 == 1 {
                    true_positives += 1;
                } else {
                    false_positives += 1;
                }
                end += 1;
            }
            cuts.push(Cut {
                threshold,
                true_positives,
                false_positives,
            });
            start = end;
        }
        Ok(Self { cuts, positives })
    }

    /// F1 = 2·tp / (2·tp + fp + fn) compared exactly by cross-multiplying, so equal F1 values
    /// tie however they would round; later cuts (lower thresholds) win ties.
    fn best_f1(&self) -> f64 {
        let f1 = |cut: &Cut| {
            let numerator = 2 * u128::from(cut.true_positives);
            let missed = u128::from(self.positives - cut.true_positives);
            (
                numerator,
                numerator + u128::from(cut.false_positives) + missed,
            )
        };
        let mut best = self.cuts[0];
        for cut in &self.cuts[1..] {
            let (n_new, d_new) = f1(cut);
            let (n_best, d_best) = f1(&best);
            if (n_new * d_best).cmp(&(n_best * d_new)) != Ordering::Less {
                best = *cut;
            }
        }
        best.threshold
    }

    /// The threshold with the lowest ratio·fn + fp, and that cost; ties go to the lower
    /// threshold. 1.0 flags nobody when every probability is below it.
    fn lowest_cost(&self, ratio: f64) -> (f64, f64) {
        let cost = |cut: &Cut| {
            ratio * (self.positives - cut.true_positives) as f64 + cut.false_positives as f64
        };
        let mut best = (1.0, ratio * self.positives as f64);
        if self.cuts[0].threshold >= 1.0 {
            best = (self.cuts[0].threshold, cost(&self.cuts[0]));
        }
        for cut in &self.cuts {
            let candidate = cost(cut);
            if candidate <= best.1 {
                best = (cut.threshold, candidate);
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drift::stats::test_data::scored_rows;

    const LABELS: [u8; 12] = [0, 1, 0, 1, 1, 0, 0, 1, 0, 0, 1, 0];
    const PROBABILITIES: [f64; 12] = [
        0.2, 0.8, 0.6, 0.6, 0.35, 0.1, 0.35, 0.9, 0.7, 0.05, 0.35, 0.4,
    ];

    fn cost_rule(ratio: f64) -> ThresholdRule {
        ThresholdRule::Cost {
            missed_exit_cost_ratio: CostRatio::new(ratio).unwrap(),
        }
    }

    /// Best F1 as the argmax over scikit-learn's `precision_recall_curve`, and the cost rule as
    /// a numpy argmin over the same candidates (tests/reference/drift_reference.py,
    /// "threshold choice").
    #[test]
    fn choices_match_scikit_learn() {
        let choice = choose_threshold(&LABELS, &PROBABILITIES, ThresholdRule::BestF1).unwrap();
        assert_eq!(choice.threshold.get(), 0.35);
        assert!((choice.metrics.f1 - 0.7142857142857143).abs() < 1e-15);
        assert_eq!(choice.expected_cost_per_row, None);
        for (ratio, threshold, cost) in [
            (1.0, 0.8, 3.0),
            (5.0, 0.35, 4.0),
            (0.2, 0.8, 0.6000000000000001),
        ] {
            let choice = choose_threshold(&LABELS, &PROBABILITIES, cost_rule(ratio)).unwrap();
            assert_eq!(choice.threshold.get(), threshold, "ratio {ratio}");
            assert_eq!(
                choice.expected_cost_per_row,
                Some(cost / 12.0),
                "ratio {ratio}"
            );
        }

        let (labels, probabilities) = scored_rows(1000);
        let choice = choose_threshold(&labels, &probabilities, ThresholdRule::BestF1).unwrap();
        assert_eq!(choice.threshold.get(), 0.47);
        assert!((choice.metrics.f1 - 0.7223427331887201).abs() < 1e-15);
        for (ratio, threshold, cost) in [(5.0, 0.33, 435.0), (0.25, 0.85, 83.25)] {
            let choice = choose_threshold(&labels, &probabilities, cost_rule(ratio)).unwrap();
            assert_eq!(choice.threshold.get(), threshold, "ratio {ratio}");
            assert_eq!(
                choice.expected_cost_per_row,
                Some(cost / 1000.0),
                "ratio {ratio}"
            );
        }
    }

    #[test]
    fn metrics_at_the_default_are_reported_beside_the_choice() {
        let choice = choose_threshold(&LABELS, &PROBABILITIES, ThresholdRule::BestF1).unwrap();
        // At 0.35: 5 of 5 exits flagged and 4 false alarms; at 0.5: 3 exits and 2 false alarms.
        assert_eq!(choice.metrics.confusion.true_positives, 5);
        assert_eq!(choice.metrics.confusion.false_positives, 4);
        assert_eq!(choice.metrics_at_default.confusion.true_positives, 3);
        assert_eq!(choice.metrics_at_default.confusion.false_positives, 2);
        let fixed = ThresholdRule::Fixed {
            threshold: Threshold::new(0.5).unwrap(),
        };
        let choice = choose_threshold(&LABELS, &PROBABILITIES, fixed).unwrap();
        assert_eq!(choice.metrics, choice.metrics_at_default);
    }

    #[test]
    fn f1_ties_go_to_the_lowest_threshold() {
        // Cut at 0.9: tp 1, fp 0, fn 1 → F1 = 2/3. Cut at 0.5: tp 2, fp 2, fn 0 → F1 = 4/6.
        let choice =
            choose_threshold(&[1, 0, 0, 1], &[0.9, 0.7, 0.5, 0.5], ThresholdRule::BestF1).unwrap();
        assert_eq!(choice.threshold.get(), 0.5);
    }

    #[test]
    fn cost_rule_can_flag_nobody() {
        // False alarms cost 100 times a missed exit and the top score is no exit: flagging
        // nobody (cost 0.02) beats every cut (at least 1).
        let choice =
            choose_threshold(&[0, 1, 0, 1], &[0.9, 0.6, 0.4, 0.2], cost_rule(0.01)).unwrap();
        assert_eq!(choice.threshold.get(), 1.0);
        assert_eq!(choice.metrics.predicted_positives, 0);
        // A probability of exactly 1 leaves no threshold that flags nobody.
        let choice = choose_threshold(&[0, 0, 1], &[1.0, 0.5, 0.2], cost_rule(0.01)).unwrap();
        assert_eq!(choice.threshold.get(), 1.0);
        assert_eq!(choice.metrics.predicted_positives, 1);
        assert_eq!(choice.expected_cost_per_row, Some((0.01 + 1.0) / 3.0));
    }

    #[test]
    fn bad_inputs_and_parameters_are_refused() {
        assert!(Threshold::new(1.5).is_err());
        assert!(Threshold::new(f64::NAN).is_err());
        assert!(CostRatio::new(0.0).is_err());
        assert!(CostRatio::new(f64::INFINITY).is_err());
        assert!(matches!(
            choose_threshold(&[0, 0], &[0.1, 0.7], ThresholdRule::BestF1),
            Err(DriftStatsError::OneClassOnly {
                class: 0,
                rows: 2,
                ..
            })
        ));
        assert!(matches!(
            choose_threshold(&[1, 1], &[0.1, 0.7], cost_rule(2.0)),
            Err(DriftStatsError::OneClassOnly { class: 1, .. })
        ));
        // A fixed threshold works with one class.
        assert!(
            choose_threshold(
                &[1, 1],
                &[0.1, 0.7],
                ThresholdRule::Fixed {
                    threshold: Threshold::DEFAULT
                }
            )
            .is_ok()
        );
        assert!(matches!(
            choose_threshold(&[0, 1], &[0.1, -0.2], ThresholdRule::BestF1),
            Err(DriftStatsError::ProbabilityOutOfRange { index: 1, .. })
        ));
    }

    #[test]
    fn rules_serialise_with_a_tag() {
        let rule = cost_rule(5.0);
        let json = serde_json::to_value(rule).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"rule": "cost", "missed_exit_cost_ratio": 5.0})
        );
        let back: ThresholdRule = serde_json::from_value(json).unwrap();
        assert_eq!(back, rule);
        assert_eq!(
            serde_json::to_value(ThresholdRule::BestF1).unwrap(),
            serde_json::json!({"rule": "best_f1"})
        );
        assert!(
            serde_json::from_str::<ThresholdRule>(r#"{"rule": "fixed", "threshold": 2.0}"#)
                .is_err()
        );
    }
}
