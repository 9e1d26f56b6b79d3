//! Binary classification metrics with scikit-learn's conventions: class 1 (`exited`) is the
//! positive class; precision, recall and F1 are 0.0 when their denominator is zero (scikit-learn's
//! `zero_division=0.0`, which is also what its default `"warn"` returns); ROC AUC is the
//! rank-based (Mann–Whitney) statistic with tied scores given their average rank, identical to
//! `roc_auc_score`, and `None` — not NaN — when only one class is present, where it is undefined.
//! The result structs serialise with stable field names for reports and the scoring API.

use serde::{Deserialize, Serialize};

use super::ModelError;

/// Counts of the four outcomes, positive class = exited (1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfusionMatrix {
    /// Stayed, predicted to stay.
    pub true_negatives: u64,
    /// Stayed, predicted to exit.
    pub false_positives: u64,
    /// Exited, predicted to stay.
    pub false_negatives: u64,
    /// Exited, predicted to exit.
    pub true_positives: u64,
}

impl ConfusionMatrix {
    /// Counts the outcomes of equally long 0/1 label slices.
    pub fn from_labels(actual: &[u8], predicted: &[u8]) -> Result<Self, ModelError> {
        check_lengths("predicted classes", actual.len(), predicted.len())?;
        let mut matrix = Self::default();
        for (index, (&truth, &guess)) in actual.iter().zip(predicted).enumerate() {
            match (
                check_label("actual", index, truth)?,
                check_label("predicted", index, guess)?,
            ) {
                (0, 0) => matrix.true_negatives += 1,
                (0, _) => matrix.false_positives += 1,
                (_, 0) => matrix.false_negatives += 1,
                _ => matrix.true_positives += 1,
            }
        }
        Ok(matrix)
    }

    /// Number of rows counted.
    pub fn total(&self) -> u64 {
        self.true_negatives + self.false_positives + self.false_negatives + self.true_positives
    }

    /// 2·tp / (2·tp + fp + fn); 0.0 when that denominator is zero.
    pub fn f1(&self) -> f64 {
        let tp = self.true_positives;
        ratio_or_zero(2 * tp, 2 * tp + self.false_positives + self.false_negatives)
    }
}

/// Metrics of one set of predictions against the truth.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassificationMetrics {
    /// Rows scored.
    pub rows: u64,
    /// Rows that actually exited.
    pub actual_positives: u64,
    /// Rows that actually stayed.
    pub actual_negatives: u64,
    /// Rows predicted to exit.
    pub predicted_positives: u64,
    pub confusion: ConfusionMatrix,
    /// tp / (tp + fp); 0.0 when nothing is predicted positive.
    pub precision: f64,
    /// tp / (tp + fn); 0.0 when nothing is actually positive.
    pub recall: f64,
    /// 2·tp / (2·tp + fp + fn); 0.0 when that denominator is zero.
    pub f1: f64,
    /// (tp + tn) / rows.
    pub accuracy: f64,
    /// Area under the ROC curve of the scores; `None` when only one class is present.
    pub roc_auc: Option<f64>,
}

/// Scores `predicted` classes and `scores` (probabilities, or any score where higher means more
/// likely to exit) against the `actual` labels. All three must have the same length; labels and
/// classes must be 0 or 1, scores finite.
pub fn classification_metrics(
    actual: &[u8],
    predicted: &[u8],
    scores: &[f64],
) -> Result<ClassificationMetrics, ModelError> {
    check_lengths("scores", actual.len(), scores.len())?;
    let confusion = ConfusionMatrix::from_labels(actual, predicted)?;
    let rows = confusion.total();
    if rows == 0 {
        return Err(ModelError::EmptyEvaluation);
    }
    let ConfusionMatrix {
        true_negatives: tn,
        false_positives: fp,
        false_negatives: fn_,
        true_positives: tp,
    } = confusion;
    Ok(ClassificationMetrics {
        rows,
        actual_positives: tp + fn_,
        actual_negatives: tn + fp,
        predicted_positives: tp + fp,
        confusion,
        precision: ratio_or_zero(tp, tp + fp),
        recall: ratio_or_zero(tp, tp + fn_),
        f1: confusion.f1(),
        accuracy: ratio_or_zero(tp + tn, rows),
        roc_auc: roc_auc(actual, scores)?,
    })
}

/// Rank-based ROC AUC: the probability that a random exited row scores higher than a random
/// stayed row, ties counting one half (average ranks). O(n log n).
fn roc_auc(actual: &[u8], scores: &[f64]) -> Result<Option<f64>, ModelError> {
    if let Some((index, &value)) = scores.iter().enumerate().find(|(_, s)| !s.is_finite()) {
        return Err(ModelError::NonFiniteScore { index, value });
    }
    let mut pairs: Vec<(f64, u8)> = scores.iter().copied().zip(actual.iter().copied()).collect();
    pairs.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    let positives = pairs.iter().filter(|(_, label)| *label == 1).count() as f64;
    let negatives = pairs.len() as f64 - positives;
    if positives == 0.0 || negatives == 0.0 {
        return Ok(None);
    }
    let mut positive_rank_sum = 0.0f64;
    let mut start = 0;
    while start < pairs.len() {
        let mut end = start;
        while end < pairs.len() && pairs[end].0 == pairs[start].0 {
            end += 1;
        }
        // Ranks start..end (0-based) share their average, 1-based.
        let average_rank = (start + 1 + end) as f64 / 2.0;
        let tied_positives = pairs[start..end].iter().filter(|(_, l)| *l == 1).count() as f64;
        positive_rank_sum += average_rank * tied_positives;
        start = end;
    }
    let auc = (positive_rank_sum - positives * (positives + 1.0) / 2.0) / (positives * negatives);
    Ok(Some(auc))
}

fn ratio_or_zero(numerator: u64, denominator: u64) -> f64 {
    if denominator == 0 {
        0.0
    } else {
        numerator as f64 / denominator as f64
    }
}

fn check_lengths(what: &'static str, expected: usize, found: usize) -> Result<(), ModelError> {
    if expected == found {
        Ok(())
    } else {
        Err(ModelError::LengthMismatch {
            what,
            expected,
            found,
        })
    }
}

fn check_label(what: &'static str, index: usize, value: u8) -> Result<u8, ModelError> {
    if value <= 1 {
        Ok(value)
    } else {
        Err(ModelError::InvalidLabel { what, index, value })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn counts_and_ratios() {
        let actual = [1, 1, 1, 0, 0, 0, 0, 1];
        let predicted = [1, 0, 1, 0, 1, 0, 0, 1];
        let scores = [0.9, 0.4, 0.8, 0.1, 0.7, 0.2, 0.3, 0.6];
        let m = classification_metrics(&actual, &predicted, &scores).unwrap();
        assert_eq!(
            m.confusion,
            ConfusionMatrix {
                true_negatives: 3,
                false_positives: 1,
                false_negatives: 1,
                true_positives: 3
            }
        );
        assert_eq!(
            (
                m.rows,
                m.actual_positives,
                m.actual_negatives,
                m.predicted_positives
            ),
            (8, 4, 4, 4)
        );
        assert!(close(m.precision, 0.75));
        assert!(close(m.recall, 0.75));
        assert!(close(m.f1, 0.75));
        assert!(close(m.accuracy, 0.75));
        // Positives 0.9, 0.8, 0.6, 0.4 vs negatives 0.7, 0.3, 0.2, 0.1: 14 of 16 pairs ordered.
        assert!(close(m.roc_auc.unwrap(), 14.0 / 16.0));
    }

    #[test]
    fn no_positive_predictions_give_zero_precision_and_f1() {
        let m = classification_metrics(&[1, 0, 1], &[0, 0, 0], &[0.4, 0.1, 0.3]).unwrap();
        assert_eq!(m.predicted_positives, 0);
        assert_eq!(m.precision, 0.0);
        assert_eq!(m.recall, 0.0);
        assert_eq!(m.f1, 0.0);
        assert!(close(m.accuracy, 1.0 / 3.0));
        assert!(close(m.roc_auc.unwrap(), 1.0));
    }

    #[test]
    fn single_class_truth_has_no_auc_and_zero_recall() {
        let m = classification_metrics(&[0, 0, 0], &[0, 1, 0], &[0.2, 0.9, 0.1]).unwrap();
        assert_eq!(m.roc_auc, None);
        assert_eq!(m.recall, 0.0);
        assert_eq!(m.precision, 0.0);
        assert_eq!(m.f1, 0.0);
        let json = serde_json::to_value(&m).unwrap();
        assert!(json["roc_auc"].is_null());
        let all_exited = classification_metrics(&[1, 1], &[1, 1], &[0.6, 0.7]).unwrap();
        assert_eq!(all_exited.roc_auc, None);
        assert_eq!(all_exited.precision, 1.0);
    }

    #[test]
    fn ties_count_one_half() {
        // Every score equal: no ranking information at all.
        let m = classification_metrics(&[0, 1, 0, 1], &[1, 1, 1, 1], &[0.5; 4]).unwrap();
        assert!(close(m.roc_auc.unwrap(), 0.5));
        // scikit-learn: roc_auc_score([0, 0, 1, 1], [0.1, 0.4, 0.4, 0.8]) == 0.875
        let m =
            classification_metrics(&[0, 0, 1, 1], &[0, 0, 0, 1], &[0.1, 0.4, 0.4, 0.8]).unwrap();
        assert!(close(m.roc_auc.unwrap(), 0.875));
        // Hard labels as scores: AUC = (recall + specificity) / 2 = (0.5 + 1) / 2.
        let m =
            classification_metrics(&[0, 0, 1, 1], &[0, 0, 0, 1], &[0.0, 0.0, 0.0, 1.0]).unwrap();
        assert!(close(m.roc_auc.unwrap(), 0.75));
    }

    #[test]
    fn all_negative_truth_and_predictions_follow_zero_division() {
        let m = classification_metrics(&[0, 0], &[0, 0], &[0.1, 0.2]).unwrap();
        assert_eq!(
            (m.precision, m.recall, m.f1, m.accuracy),
            (0.0, 0.0, 0.0, 1.0)
        );
    }

    #[test]
    fn bad_inputs_are_refused() {
        assert!(matches!(
            classification_metrics(&[0, 1], &[0], &[0.1, 0.2]),
            Err(ModelError::LengthMismatch { .. })
        ));
        assert!(matches!(
            classification_metrics(&[0, 1], &[0, 1], &[0.1]),
            Err(ModelError::LengthMismatch { .. })
        ));
        assert!(matches!(
            classification_metrics(&[0, 2], &[0, 1], &[0.1, 0.2]),
            Err(ModelError::InvalidLabel {
                index: 1,
                value: 2,
                ..
            })
        ));
        assert!(matches!(
            classification_metrics(&[0, 1], &[0, 1], &[0.1, f64::NAN]),
            Err(ModelError::NonFiniteScore { index: 1, .. })
        ));
        assert!(matches!(
            classification_metrics(&[], &[], &[]),
            Err(ModelError::EmptyEvaluation)
        ));
    }

    #[test]
    fn field_names_are_stable() {
        let m = classification_metrics(&[0, 1], &[0, 1], &[0.1, 0.9]).unwrap();
        let json = serde_json::to_value(&m).unwrap();
        for key in [
            "rows",
            "actual_positives",
            "actual_negatives",
            "predicted_positives",
            "confusion",
            "precision",
            "recall",
            "f1",
            "accuracy",
            "roc_auc",
        ] {
            assert!(json.get(key).is_some(), "missing {key}");
        }
        for key in [
            "true_negatives",
            "false_positives",
            "false_negatives",
            "true_positives",
        ] {
            assert!(json["confusion"].get(key).is_some(), "missing {key}");
        }
    }
}
