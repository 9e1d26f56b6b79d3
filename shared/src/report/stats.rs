//! The figures the HTML report draws and tabulates: Wilson intervals for proportions, the ROC
//! and precision–recall curves, the calibration curve and the score histograms by class. Pure
//! functions over labels and probabilities, pinned in the tests against scikit-learn and scipy
//! (`tests/reference/report_reference.py`).

use crate::drift::stats::{ConfidenceLevel, normal_quantile};

/// A proportion with its Wilson score interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Proportion {
    pub successes: u64,
    pub trials: u64,
    pub estimate: f64,
    pub lower: f64,
    pub upper: f64,
}

/// The Wilson score interval of `successes` out of `trials` (scipy's
/// `binomtest(k, n).proportion_ci(confidence, method="wilson")`); `None` with no trials. It
/// stays inside [0, 1] and is honest at 0 and n, where the normal interval collapses.
pub fn wilson(successes: u64, trials: u64, confidence: ConfidenceLevel) -> Option<Proportion> {
    if trials == 0 || successes > trials {
        return None;
    }
    let n = trials as f64;
    let p = successes as f64 / n;
    let z = normal_quantile(0.5 + confidence.get() / 2.0);
    let z2 = z * z;
    let denominator = 1.0 + z2 / n;
    let center = (p + z2 / (2.0 * n)) / denominator;
    let half = z / denominator * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    Some(Proportion {
        successes,
        trials,
        estimate: p,
        lower: (center - half).max(0.0),
        upper: (center + half).min(1.0),
    })
}

/// Cumulative counts at each distinct score, highest score first: (score, true positives,
/// false positives) with every row scoring at least `score` predicted positive.
fn cumulative_counts(labels: &[u8], scores: &[f64]) -> Vec<(f64, u64, u64)> {
    let mut pairs: Vec<(f64, u8)> = scores.iter().copied().zip(labels.iter().copied()).collect();
    pairs.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
    let mut out = Vec::new();
    let (mut tp, mut fp) = (0u64, 0u64);
    for (index, &(score, label)) in pairs.iter().enumerate() {
        if label == 1 {
            tp += 1;
        } else {
            fp += 1;
        }
        let last_of_tie = pairs.get(index + 1).is_none_or(|next| next.0 != score);
        if last_of_tie {
            out.push((score, tp, fp));
        }
    }
    out
}

/// The ROC curve as (false positive rate, true positive rate) points from (0, 0) to (1, 1),
/// one per distinct score (scikit-learn's `roc_curve(drop_intermediate=False)`). `None` when
/// one class is absent.
pub fn roc_curve(labels: &[u8], scores: &[f64]) -> Option<Vec<(f64, f64)>> {
    let positives = labels.iter().filter(|&&l| l == 1).count() as f64;
    let negatives = labels.len() as f64 - positives;
    if positives == 0.0 || negatives == 0.0 || labels.len() != scores.len() {
        return None;
    }
    let mut points = vec![(0.0, 0.0)];
    points.extend(
        cumulative_counts(labels, scores)
            .into_iter()
            .map(|(_, tp, fp)| (fp as f64 / negatives, tp as f64 / positives)),
    );
    Some(points)
}

/// The precision–recall curve as (recall, precision) points, one per distinct score from the
/// highest down, and the average precision Σ (Rₙ − Rₙ₋₁)·Pₙ (scikit-learn's
/// `precision_recall_curve` and `average_precision_score`). `None` without a positive row.
pub fn precision_recall_curve(labels: &[u8], scores: &[f64]) -> Option<(Vec<(f64, f64)>, f64)> {
    let positives = labels.iter().filter(|&&l| l == 1).count() as f64;
    if positives == 0.0 || labels.len() != scores.len() {
        return None;
    }
    let mut points = Vec::new();
    let mut average_precision = 0.0;
    let mut previous_recall = 0.0;
    for (_, tp, fp) in cumulative_counts(labels, scores) {
        let recall = tp as f64 / positives;
        let precision = tp as f64 / (tp + fp) as f64;
        average_precision += (recall - previous_recall) * precision;
        previous_recall = recall;
        points.push((recall, precision));
    }
    Some((points, average_precision))
}

/// One bin of the calibration curve.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CalibrationBin {
    pub lower: f64,
    pub upper: f64,
    pub rows: u64,
    /// Mean predicted probability of the rows in the bin.
    pub mean_predicted: f64,
    /// Share of them that exited.
    pub observed_rate: f64,
}

/// The calibration (reliability) curve over `bins` equal-width probability bins, empty bins
/// left out (scikit-learn's `calibration_curve(strategy="uniform")`).
pub fn calibration_curve(labels: &[u8], probabilities: &[f64], bins: usize) -> Vec<CalibrationBin> {
    let bins = bins.max(1);
    let mut rows = vec![0u64; bins];
    let mut predicted = vec![0.0f64; bins];
    let mut exited = vec![0u64; bins];
    for (&label, &p) in labels.iter().zip(probabilities) {
        if !p.is_finite() {
            continue;
        }
        let bin = bin_of(p, bins);
        rows[bin] += 1;
        predicted[bin] += p;
        exited[bin] += u64::from(label == 1);
    }
    (0..bins)
        .filter(|&bin| rows[bin] > 0)
        .map(|bin| CalibrationBin {
            lower: bin as f64 / bins as f64,
            upper: (bin + 1) as f64 / bins as f64,
            rows: rows[bin],
            mean_predicted: predicted[bin] / rows[bin] as f64,
            observed_rate: exited[bin] as f64 / rows[bin] as f64,
        })
        .collect()
}

/// The bin of a probability among `bins` equal bins of [0, 1], as scikit-learn's
/// `calibration_curve` finds it: `np.searchsorted(np.linspace(0, 1, bins + 1)[1:-1], p)`, so a
/// value on an inner edge goes down, and the edges are numpy's (`k · (1/bins)`, where 3 · 0.2 is
/// just above 0.6).
fn bin_of(p: f64, bins: usize) -> usize {
    let p = p.clamp(0.0, 1.0);
    let step = 1.0 / bins as f64;
    let mut bin = ((p * bins as f64) as usize).min(bins - 1);
    while bin > 0 && p <= bin as f64 * step {
        bin -= 1;
    }
    while bin + 1 < bins && p > (bin + 1) as f64 * step {
        bin += 1;
    }
    bin
}

/// Counts of the probabilities of each class in `bins` equal bins of [0, 1]: (stayed, exited).
pub fn score_histograms(labels: &[u8], probabilities: &[f64], bins: usize) -> (Vec<u64>, Vec<u64>) {
    let bins = bins.max(1);
    let mut stayed = vec![0u64; bins];
    let mut exited = vec![0u64; bins];
    for (&label, &p) in labels.iter().zip(probabilities) {
        if !p.is_finite() {
            continue;
        }
        let bin = bin_of(p, bins);
        if label == 1 {
            exited[bin] += 1;
        } else {
            stayed[bin] += 1;
        }
    }
    (stayed, exited)
}

/// At most `max` points of a curve, evenly spaced, first and last kept: a page stays small on a
/// test set of millions of rows while the curve keeps its shape.
pub fn thin(points: &[(f64, f64)], max: usize) -> Vec<(f64, f64)> {
    if points.len() <= max || max < 2 {
        return points.to_vec();
    }
    (0..max)
        .map(|i| points[i * (points.len() - 1) / (max - 1)])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LABELS: [u8; 12] = [0, 0, 1, 1, 0, 1, 0, 1, 1, 0, 0, 1];
    const SCORES: [f64; 12] = [0.1, 0.4, 0.35, 0.8, 0.4, 0.9, 0.05, 0.6, 0.6, 0.7, 0.2, 1.0];

    fn close(a: f64, b: f64, tolerance: f64) -> bool {
        (a - b).abs() <= tolerance
    }

    #[test]
    fn wilson_matches_scipy() {
        // tests/reference/report_reference.py: binomtest(k, n).proportion_ci(level, "wilson")
        let cases = [
            (3, 14, 0.95, 0.07571386712693184, 0.47589230586600295),
            (0, 26, 0.95, 0.0, 0.1287289218592153),
            (26, 26, 0.95, 0.8712710781407847, 1.0),
            (512, 1000, 0.95, 0.48103255440609083, 0.5428756033902556),
            (7, 20, 0.9, 0.20226004005676104, 0.5334873111515284),
        ];
        for (k, n, level, lower, upper) in cases {
            let p = wilson(k, n, ConfidenceLevel::new(level).unwrap()).unwrap();
            assert!(
                close(p.lower, lower, 1e-9),
                "{k}/{n}: {} vs {lower}",
                p.lower
            );
            assert!(
                close(p.upper, upper, 1e-9),
                "{k}/{n}: {} vs {upper}",
                p.upper
            );
            assert!(close(p.estimate, k as f64 / n as f64, 1e-15));
        }
        assert!(wilson(0, 0, ConfidenceLevel::NINETY_FIVE_PERCENT).is_none());
        assert!(wilson(3, 2, ConfidenceLevel::NINETY_FIVE_PERCENT).is_none());
    }

    #[test]
    fn roc_curve_matches_scikit_learn() {
        // roc_curve(LABELS, SCORES, drop_intermediate=False)
        let sixth = 1.0 / 6.0;
        let expected = [
            (0.0, 0.0),
            (0.0, sixth),
            (0.0, 2.0 * sixth),
            (0.0, 0.5),
            (sixth, 0.5),
            (sixth, 5.0 * sixth),
            (0.5, 5.0 * sixth),
            (0.5, 1.0),
            (4.0 * sixth, 1.0),
            (5.0 * sixth, 1.0),
            (1.0, 1.0),
        ];
        let points = roc_curve(&LABELS, &SCORES).unwrap();
        assert_eq!(points.len(), expected.len(), "{points:?}");
        for (i, ((x, y), (ex, ey))) in points.iter().zip(expected).enumerate() {
            assert!(
                close(*x, ex, 1e-12) && close(*y, ey, 1e-12),
                "{i}: {points:?}"
            );
        }
        assert!(roc_curve(&[1, 1], &[0.2, 0.3]).is_none());
    }

    #[test]
    fn precision_recall_matches_scikit_learn() {
        // precision_recall_curve(LABELS, SCORES), reversed, without its (recall 0, precision 1)
        // end point; average_precision_score(LABELS, SCORES).
        let sixth = 1.0 / 6.0;
        let expected = [
            (sixth, 1.0),
            (2.0 * sixth, 1.0),
            (0.5, 1.0),
            (0.5, 0.75),
            (5.0 * sixth, 5.0 * sixth),
            (5.0 * sixth, 0.625),
            (1.0, 2.0 / 3.0),
            (1.0, 0.6),
            (1.0, 6.0 / 11.0),
            (1.0, 0.5),
        ];
        let (points, average_precision) = precision_recall_curve(&LABELS, &SCORES).unwrap();
        assert!(
            close(average_precision, 0.8888888888888888, 1e-12),
            "{average_precision}"
        );
        assert_eq!(points.len(), expected.len(), "{points:?}");
        for (i, ((x, y), (ex, ey))) in points.iter().zip(expected).enumerate() {
            assert!(
                close(*x, ex, 1e-12) && close(*y, ey, 1e-12),
                "{i}: {points:?}"
            );
        }
        assert!(precision_recall_curve(&[0, 0], &[0.2, 0.3]).is_none());
    }

    #[test]
    fn calibration_matches_scikit_learn() {
        // calibration_curve(LABELS, SCORES, n_bins=5, strategy="uniform")
        let prob_true = [0.0, 1.0 / 3.0, 1.0, 0.5, 1.0];
        let prob_pred = [0.11666666666666668, 0.3833333333333333, 0.6, 0.75, 0.95];
        let bins = calibration_curve(&LABELS, &SCORES, 5);
        assert_eq!(bins.len(), 5, "{bins:?}");
        for (i, bin) in bins.iter().enumerate() {
            assert!(
                close(bin.observed_rate, prob_true[i], 1e-12),
                "{i}: {bins:?}"
            );
            assert!(
                close(bin.mean_predicted, prob_pred[i], 1e-12),
                "{i}: {bins:?}"
            );
        }
        assert_eq!(bins.iter().map(|b| b.rows).sum::<u64>(), 12);
    }

    #[test]
    fn histograms_count_every_row_once_by_class() {
        let (stayed, exited) = score_histograms(&LABELS, &SCORES, 10);
        assert_eq!(stayed.iter().sum::<u64>(), 6);
        assert_eq!(exited.iter().sum::<u64>(), 6);
        assert_eq!(
            (exited[8], exited[9]),
            (1, 1),
            "1.0 is in the last bin, 0.9 (an edge) below"
        );
        assert_eq!(
            (stayed[0], stayed[1]),
            (2, 1),
            "0.1 is on an edge: it goes down, as in scikit-learn"
        );
    }

    #[test]
    fn thinning_keeps_the_ends() {
        let points: Vec<(f64, f64)> = (0..1001).map(|i| (i as f64, 0.0)).collect();
        let thinned = thin(&points, 101);
        assert_eq!(thinned.len(), 101);
        assert_eq!(thinned[0], points[0]);
        assert_eq!(thinned[100], points[1000]);
    }
}
