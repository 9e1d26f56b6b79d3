//! How well probabilities predict the labels, and how sure we are of it: log loss (with
//! scikit-learn's clipping) and the Brier score as proper scoring rules, ROC AUC and F1 through
//! the model's own [`classification_metrics`] (one implementation of those in the project),
//! percentile-bootstrap intervals for any statistic, deterministic by seed, and the analytic
//! normal interval for a mean of per-row values, which is O(n) where a bootstrap is
//! O(resamples · n).

use serde::{Deserialize, Serialize};

use super::normal::normal_quantile;
use super::{
    ConfidenceLevel, DriftStatsError, check_count, check_finite, check_labelled_probabilities,
    check_labels, check_same_length, invalid, mean_and_sample_variance,
};
use crate::drift::threshold::Threshold;
use crate::model::{ClassificationMetrics, ConfusionMatrix, classification_metrics};

/// Per-row log loss −ln P(observed label), the probability clipped to [ε, 1 − ε] with
/// ε = `f64::EPSILON`, as scikit-learn's `log_loss` does (1.9: the dtype's machine epsilon),
/// so a confident miss costs about 36 instead of infinity.
pub fn log_loss_per_row(labels: &[u8], probabilities: &[f64]) -> Result<Vec<f64>, DriftStatsError> {
    check_labelled_probabilities(labels, probabilities)?;
    Ok(labels
        .iter()
        .zip(probabilities)
        .map(|(&label, &p)| {
            let observed = if label == 1 { p } else { 1.0 - p };
            -observed.clamp(f64::EPSILON, 1.0 - f64::EPSILON).ln()
        })
        .collect())
}

/// Mean log loss, scikit-learn's `log_loss(labels, probabilities)`.
pub fn log_loss(labels: &[u8], probabilities: &[f64]) -> Result<f64, DriftStatsError> {
    let per_row = log_loss_per_row(labels, probabilities)?;
    Ok(per_row.iter().sum::<f64>() / per_row.len() as f64)
}

/// Mean squared difference between probability and label, scikit-learn's `brier_score_loss`.
pub fn brier(labels: &[u8], probabilities: &[f64]) -> Result<f64, DriftStatsError> {
    check_labelled_probabilities(labels, probabilities)?;
    let sum: f64 = labels
        .iter()
        .zip(probabilities)
        .map(|(&label, &p)| (p - f64::from(label)) * (p - f64::from(label)))
        .sum();
    Ok(sum / labels.len() as f64)
}

/// ROC AUC of any scores (higher = more likely to exit), ties counted one half as
/// scikit-learn's `roc_auc_score`; `None` when the labels hold one class only.
///
/// Computed by the model's [`classification_metrics`] (its rank AUC is not public on its own);
/// the all-"stayed" predicted classes passed with it only feed a confusion matrix that is
/// dropped.
pub fn roc_auc(labels: &[u8], scores: &[f64]) -> Result<Option<f64>, DriftStatsError> {
    check_count("labels", labels.len(), 1)?;
    check_same_length("scores", labels.len(), scores.len())?;
    check_labels(labels)?;
    check_finite("scores", scores)?;
    let stayed = vec![0u8; labels.len()];
    Ok(classification_metrics(labels, &stayed, scores)?.roc_auc)
}

/// Precision, recall, F1, accuracy and AUC when a row is predicted to exit at a probability of
/// at least `threshold` (the model's own rule).
pub fn metrics_at_threshold(
    labels: &[u8],
    probabilities: &[f64],
    threshold: Threshold,
) -> Result<ClassificationMetrics, DriftStatsError> {
    check_labelled_probabilities(labels, probabilities)?;
    let predicted: Vec<u8> = probabilities
        .iter()
        .map(|&p| u8::from(p >= threshold.get()))
        .collect();
    Ok(classification_metrics(labels, &predicted, probabilities)?)
}

/// A percentile-bootstrap confidence interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BootstrapInterval {
    /// The statistic on all rows.
    pub estimate: f64,
    pub lower: f64,
    pub upper: f64,
    pub confidence: ConfidenceLevel,
    pub resamples: usize,
    /// Resamples whose statistic was not finite (e.g. an AUC drawn with one class only); they
    /// are left out of the interval.
    pub undefined_resamples: usize,
    /// Standard deviation of the bootstrap distribution (ddof = 1), as scipy reports it.
    pub standard_error: f64,
}

/// Percentile bootstrap interval of `statistic` over `rows` rows: `resamples` times, draw
/// `rows` row indices with replacement and evaluate `statistic` on them; the interval runs
/// between the (1 − confidence)/2 and 1 − (1 − confidence)/2 quantiles (linear interpolation)
/// of those values — scipy's `bootstrap(method="percentile")`. The indices come from a small
/// generator seeded by `seed`, so a seed always gives the same interval. Cost: `resamples`
/// calls of `statistic` on `rows` indices; for the mean of per-row values use
/// [`bootstrap_mean_interval`] or the O(n) [`mean_interval`].
pub fn bootstrap_interval(
    rows: usize,
    resamples: usize,
    confidence: ConfidenceLevel,
    seed: u64,
    mut statistic: impl FnMut(&[usize]) -> f64,
) -> Result<BootstrapInterval, DriftStatsError> {
    check_count("rows", rows, 1)?;
    check_resamples(resamples)?;
    let all: Vec<usize> = (0..rows).collect();
    let estimate = statistic(&all);
    let mut generator = Wyrand(seed);
    let mut indices = vec![0usize; rows];
    let distribution = (0..resamples).map(|_| {
        for index in &mut indices {
            *index = generator.below(rows);
        }
        statistic(&indices)
    });
    percentile_interval(estimate, distribution, resamples, confidence)
}

/// [`bootstrap_interval`] of the mean of `values`, without materialising index lists. Gives
/// exactly the interval `bootstrap_interval` gives for a mean over the same seed.
pub fn bootstrap_mean_interval(
    values: &[f64],
    resamples: usize,
    confidence: ConfidenceLevel,
    seed: u64,
) -> Result<BootstrapInterval, DriftStatsError> {
    check_count("values", values.len(), 1)?;
    check_finite("values", values)?;
    check_resamples(resamples)?;
    let rows = values.len();
    let estimate = values.iter().sum::<f64>() / rows as f64;
    let mut generator = Wyrand(seed);
    let distribution = (0..resamples).map(|_| {
        let mut sum = 0.0;
        for _ in 0..rows {
            sum += values[generator.below(rows)];
        }
        sum / rows as f64
    });
    percentile_interval(estimate, distribution, resamples, confidence)
}

/// [`bootstrap_interval`] of [`roc_auc`] over `labels` and `scores`, exactly (the same
/// resamples from the same seed, the same values to the last bit), without a sort per resample:
/// the rows are sorted by score once, and a resample only counts how often it drew each row, then
/// walks the tie groups in order with those counts. O(resamples · n) instead of
/// O(resamples · n log n); the drift check's AUC interval was most of its time.
pub fn bootstrap_roc_auc_interval(
    labels: &[u8],
    scores: &[f64],
    resamples: usize,
    confidence: ConfidenceLevel,
    seed: u64,
) -> Result<BootstrapInterval, DriftStatsError> {
    let estimate = roc_auc(labels, scores)?.unwrap_or(f64::NAN);
    check_resamples(resamples)?;
    let rows = labels.len();
    let mut order: Vec<usize> = (0..rows).collect();
    order.sort_unstable_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    // Where each group of tied scores ends in `order`.
    let group_ends: Vec<usize> = (1..=rows)
        .filter(|&end| end == rows || scores[order[end]] != scores[order[end - 1]])
        .collect();
    let mut generator = Wyrand(seed);
    let mut drawn = vec![0u32; rows];
    let distribution = (0..resamples).map(|_| {
        drawn.fill(0);
        for _ in 0..rows {
            drawn[generator.below(rows)] += 1;
        }
        // The same arithmetic as the model's rank AUC on the resample sorted by score.
        let positives = labels
            .iter()
            .zip(&drawn)
            .filter(|(label, _)| **label == 1)
            .map(|(_, &times)| u64::from(times))
            .sum::<u64>() as f64;
        let negatives = rows as f64 - positives;
        if positives == 0.0 || negatives == 0.0 {
            return f64::NAN;
        }
        let (mut positive_rank_sum, mut before, mut start) = (0.0f64, 0usize, 0usize);
        for &end in &group_ends {
            let (mut tied, mut tied_positives) = (0usize, 0u64);
            for &row in &order[start..end] {
                tied += drawn[row] as usize;
                tied_positives += u64::from(drawn[row]) * u64::from(labels[row]);
            }
            if tied > 0 {
                let average_rank = (before + 1 + before + tied) as f64 / 2.0;
                positive_rank_sum += average_rank * tied_positives as f64;
                before += tied;
            }
            start = end;
        }
        (positive_rank_sum - positives * (positives + 1.0) / 2.0) / (positives * negatives)
    });
    percentile_interval(estimate, distribution, resamples, confidence)
}

/// [`bootstrap_interval`] of the F1 score at `threshold` over `labels` and `scores`, exactly
/// (the same resamples from the same seed): each row's cell of the confusion matrix is worked
/// out once, and a resample only counts its draws' cells.
pub fn bootstrap_f1_interval(
    labels: &[u8],
    scores: &[f64],
    threshold: f64,
    resamples: usize,
    confidence: ConfidenceLevel,
    seed: u64,
) -> Result<BootstrapInterval, DriftStatsError> {
    // 2 × exited + predicted to exit.
    let cell: Vec<u8> = labels
        .iter()
        .zip(scores)
        .map(|(&label, &score)| (u8::from(label != 0) << 1) | u8::from(score >= threshold))
        .collect();
    bootstrap_interval(labels.len(), resamples, confidence, seed, |idx| {
        let mut counts = [0u64; 4];
        for &i in idx {
            counts[usize::from(cell[i])] += 1;
        }
        ConfusionMatrix {
            true_negatives: counts[0],
            false_positives: counts[1],
            false_negatives: counts[2],
            true_positives: counts[3],
        }
        .f1()
    })
}

fn check_resamples(resamples: usize) -> Result<(), DriftStatsError> {
    if resamples >= 2 {
        Ok(())
    } else {
        Err(invalid(
            "resamples",
            resamples,
            "a bootstrap needs at least 2 resamples; 1,000 to 10,000 are usual",
        ))
    }
}

fn percentile_interval(
    estimate: f64,
    distribution: impl Iterator<Item = f64>,
    resamples: usize,
    confidence: ConfidenceLevel,
) -> Result<BootstrapInterval, DriftStatsError> {
    let mut values: Vec<f64> = Vec::with_capacity(resamples);
    let mut undefined_resamples = 0;
    for value in distribution {
        if value.is_finite() {
            values.push(value);
        } else {
            undefined_resamples += 1;
        }
    }
    if values.is_empty() {
        return Err(DriftStatsError::UndefinedBootstrap { resamples });
    }
    values.sort_unstable_by(f64::total_cmp);
    let alpha = (1.0 - confidence.get()) / 2.0;
    let standard_error = if values.len() > 1 {
        mean_and_sample_variance(&values).1.sqrt()
    } else {
        0.0
    };
    Ok(BootstrapInterval {
        estimate,
        lower: linear_quantile(&values, alpha),
        upper: linear_quantile(&values, 1.0 - alpha),
        confidence,
        resamples,
        undefined_resamples,
        standard_error,
    })
}

/// numpy's default (`method="linear"`) quantile of sorted, non-empty values.
fn linear_quantile(sorted: &[f64], q: f64) -> f64 {
    let position = (sorted.len() - 1) as f64 * q;
    let below = position.floor();
    let index = below as usize;
    let fraction = position - below;
    match sorted.get(index + 1) {
        Some(&next) if fraction > 0.0 => {
            let here = sorted[index];
            here + (next - here) * fraction
        }
        _ => sorted[index],
    }
}

/// A normal-approximation interval for a mean.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeanInterval {
    pub rows: usize,
    pub mean: f64,
    /// Sample standard deviation (ddof = 1) over √rows.
    pub standard_error: f64,
    pub lower: f64,
    pub upper: f64,
    pub confidence: ConfidenceLevel,
}

/// mean ± z·s/√n with z the normal quantile at (1 + confidence)/2: the standard error shrinks
/// with the batch size, which is how NannyML sizes its alert bands for a metric on a chunk.
pub fn mean_interval(
    values: &[f64],
    confidence: ConfidenceLevel,
) -> Result<MeanInterval, DriftStatsError> {
    check_count("values", values.len(), 2)?;
    check_finite("values", values)?;
    let (mean, variance) = mean_and_sample_variance(values);
    let standard_error = (variance / values.len() as f64).sqrt();
    let half_width = normal_quantile(0.5 + confidence.get() / 2.0) * standard_error;
    Ok(MeanInterval {
        rows: values.len(),
        mean,
        standard_error,
        lower: mean - half_width,
        upper: mean + half_width,
        confidence,
    })
}

/// wyrand (Wang Yi): 64 bits of state, one 128-bit multiply per number, passes BigCrush and
/// PractRand — plenty to draw bootstrap rows, and no RNG crate to carry.
struct Wyrand(u64);

impl Wyrand {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0xa076_1d64_78bd_642f);
        let product = u128::from(self.0) * u128::from(self.0 ^ 0xe703_7ed1_a0b4_28db);
        ((product >> 64) as u64) ^ (product as u64)
    }

    /// Uniform in `0..bound` by Lemire's multiply-shift; its bias, under bound/2^64, is far
    /// below anything a bootstrap can show.
    fn below(&mut self, bound: usize) -> usize {
        ((u128::from(self.next_u64()) * bound as u128) >> 64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drift::stats::test_data::scored_rows;

    fn assert_close(actual: f64, expected: f64, tolerance: f64) {
        assert!(
            (actual - expected).abs() <= tolerance,
            "{actual} vs {expected} (tolerance {tolerance})"
        );
    }

    #[test]
    fn the_counting_auc_bootstrap_is_the_sorting_one_exactly() {
        let level = ConfidenceLevel::new(0.95).unwrap();
        // Scores with many ties (two decimals), a balanced and a rare class, and a batch so
        // small that some resamples draw one class only (undefined, left out).
        let (labels, scores) = scored_rows(2000);
        let rare: Vec<u8> = labels
            .iter()
            .enumerate()
            .map(|(i, &l)| u8::from(l == 1 && i % 9 == 0))
            .collect();
        let tiny_labels = [0u8, 1, 0, 0, 0, 0];
        let tiny_scores = [0.2, 0.9, 0.2, 0.4, 0.1, 0.9];
        let cases: [(&[u8], &[f64]); 3] = [
            (&labels, &scores),
            (&rare, &scores),
            (&tiny_labels, &tiny_scores),
        ];
        for (labels, scores) in cases {
            for seed in [1, 20_261_201] {
                let sorting = bootstrap_interval(labels.len(), 300, level, seed, |idx| {
                    let l: Vec<u8> = idx.iter().map(|&i| labels[i]).collect();
                    let p: Vec<f64> = idx.iter().map(|&i| scores[i]).collect();
                    roc_auc(&l, &p).unwrap().unwrap_or(f64::NAN)
                })
                .unwrap();
                let counting =
                    bootstrap_roc_auc_interval(labels, scores, 300, level, seed).unwrap();
                assert_eq!(counting, sorting);
            }
        }
        let tiny = bootstrap_roc_auc_interval(&tiny_labels, &tiny_scores, 300, level, 1).unwrap();
        assert!(tiny.undefined_resamples > 0);
    }

    #[test]
    fn the_counting_f1_bootstrap_is_the_one_over_resampled_rows_exactly() {
        let level = ConfidenceLevel::new(0.95).unwrap();
        let (labels, scores) = scored_rows(2000);
        let rare: Vec<u8> = labels
            .iter()
            .enumerate()
            .map(|(i, &l)| u8::from(l == 1 && i % 9 == 0))
            .collect();
        for labels in [&labels, &rare] {
            for (threshold, seed) in [(0.5, 1), (0.31, 20_261_202)] {
                let resampled = bootstrap_interval(labels.len(), 300, level, seed, |idx| {
                    let l: Vec<u8> = idx.iter().map(|&i| labels[i]).collect();
                    let p: Vec<f64> = idx.iter().map(|&i| scores[i]).collect();
                    let predicted: Vec<u8> = p.iter().map(|&s| u8::from(s >= threshold)).collect();
                    classification_metrics(&l, &predicted, &p).unwrap().f1
                })
                .unwrap();
                let counting =
                    bootstrap_f1_interval(labels, &scores, threshold, 300, level, seed).unwrap();
                assert_eq!(counting, resampled);
            }
        }
    }

    const SMALL_LABELS: [u8; 10] = [0, 0, 1, 1, 0, 1, 0, 1, 1, 0];
    const SMALL_PROBABILITIES: [f64; 10] = [0.1, 0.4, 0.4, 0.8, 0.0, 1.0, 0.55, 0.3, 0.9, 1.0];

    /// scikit-learn `roc_auc_score`, `log_loss` (clipping the 0.0 and 1.0 misses),
    /// `brier_score_loss` (tests/reference/drift_reference.py, "scores").
    #[test]
    fn scores_match_scikit_learn() {
        let (labels, probabilities) = (SMALL_LABELS, SMALL_PROBABILITIES);
        assert_close(
            roc_auc(&labels, &probabilities).unwrap().unwrap(),
            0.6799999999999999,
            1e-15,
        );
        assert_close(
            log_loss(&labels, &probabilities).unwrap(),
            3.990711482793087,
            1e-13,
        );
        assert_close(
            brier(&labels, &probabilities).unwrap(),
            0.23725000000000002,
            1e-15,
        );

        let (labels, probabilities) = scored_rows(1000);
        assert_eq!(labels.iter().filter(|&&l| l == 1).count(), 393);
        assert_close(
            roc_auc(&labels, &probabilities).unwrap().unwrap(),
            0.845456527115795,
            1e-14,
        );
        assert_close(
            log_loss(&labels, &probabilities).unwrap(),
            0.5038059377399642,
            1e-13,
        );
        assert_close(
            brier(&labels, &probabilities).unwrap(),
            0.16712470000000001,
            1e-14,
        );
    }

    #[test]
    fn log_loss_clips_like_scikit_learn() {
        let per_row = log_loss_per_row(&[1, 0, 1, 0], &[0.0, 1.0, 1.0, 0.0]).unwrap();
        let clipped = -f64::EPSILON.ln();
        assert_eq!(per_row[0], clipped);
        assert_eq!(per_row[1], clipped);
        assert!(per_row[2] < 1e-15 && per_row[3] < 1e-15);
    }

    #[test]
    fn scores_refuse_bad_input() {
        assert!(roc_auc(&[0, 0], &[0.1, 0.2]).unwrap().is_none());
        assert!(matches!(
            roc_auc(&[0, 1], &[0.1, f64::NAN]),
            Err(DriftStatsError::NonFinite { index: 1, .. })
        ));
        assert!(matches!(
            log_loss(&[0, 1], &[0.1, 1.2]),
            Err(DriftStatsError::ProbabilityOutOfRange { index: 1, .. })
        ));
        assert!(matches!(
            brier(&[0, 3], &[0.1, 0.2]),
            Err(DriftStatsError::InvalidLabel { index: 1, value: 3 })
        ));
        assert!(matches!(
            brier(&[], &[]),
            Err(DriftStatsError::TooFewValues { .. })
        ));
    }

    fn losses_of_first_200() -> Vec<f64> {
        let (labels, probabilities) = scored_rows(1000);
        log_loss_per_row(&labels[..200], &probabilities[..200]).unwrap()
    }

    /// Our own output is pinned (a change of generator or quantile rule must show), and it is
    /// compared with scipy `bootstrap(method="percentile", n_resamples=4000)`. The two use
    /// different random streams, so they agree only up to Monte Carlo error: each 2.5 %
    /// endpoint from B resamples has a standard error of about √(0.025·0.975/B)/φ(1.96) ≈
    /// 2.67/√B bootstrap standard deviations (0.042 at B = 4,000), so the difference of two
    /// independent runs has about 0.06; 0.25 standard deviations is four of those.
    #[test]
    fn bootstrap_mean_interval_is_pinned_and_agrees_with_scipy() {
        let values = losses_of_first_200();
        let confidence = ConfidenceLevel::NINETY_FIVE_PERCENT;
        let interval = bootstrap_mean_interval(&values, 4000, confidence, 7).unwrap();
        assert_close(interval.estimate, 0.5053189804877835, 1e-14);
        assert_eq!(interval.undefined_resamples, 0);
        assert_eq!(
            (interval.lower, interval.upper, interval.standard_error),
            (PINNED_MEAN_LOWER, PINNED_MEAN_UPPER, PINNED_MEAN_SE)
        );
        let scipy_standard_error = 0.03821421252973062;
        let tolerance = 0.25 * scipy_standard_error;
        assert_close(interval.lower, 0.43606530304457564, tolerance);
        assert_close(interval.upper, 0.5847257747013037, tolerance);
        assert_close(
            interval.standard_error,
            scipy_standard_error,
            0.1 * scipy_standard_error,
        );

        // The general bootstrap over indices gives the same interval for the same seed.
        let general = bootstrap_interval(values.len(), 4000, confidence, 7, |rows| {
            let mut sum = 0.0;
            for &row in rows {
                sum += values[row];
            }
            sum / rows.len() as f64
        })
        .unwrap();
        assert_eq!(general, interval);
        // Another seed gives another interval.
        let other = bootstrap_mean_interval(&values, 4000, confidence, 8).unwrap();
        assert_ne!(other.lower, interval.lower);
    }
    // Our output for seed 7, pinned on first run.
    const PINNED_MEAN_LOWER: f64 = 0.43649466729716935;
    const PINNED_MEAN_UPPER: f64 = 0.5854592803355123;
    const PINNED_MEAN_SE: f64 = 0.03783758184442205;

    /// An AUC interval through the general bootstrap, pinned, and compared with scipy's paired
    /// `bootstrap(method="percentile", n_resamples=2000)` as above: at B = 2,000 the difference
    /// of two runs has about 0.085 bootstrap standard deviations; 0.35 is four of those.
    #[test]
    fn bootstrap_auc_interval_is_pinned_and_agrees_with_scipy() {
        let (labels, probabilities) = scored_rows(1000);
        let (labels, probabilities) = (&labels[..200], &probabilities[..200]);
        let mut sample_labels = Vec::with_capacity(200);
        let mut sample_scores = Vec::with_capacity(200);
        let interval =
            bootstrap_interval(200, 2000, ConfidenceLevel::NINETY_FIVE_PERCENT, 7, |rows| {
                sample_labels.clear();
                sample_scores.clear();
                for &row in rows {
                    sample_labels.push(labels[row]);
                    sample_scores.push(probabilities[row]);
                }
                match roc_auc(&sample_labels, &sample_scores) {
                    Ok(Some(auc)) => auc,
                    _ => f64::NAN,
                }
            })
            .unwrap();
        assert_close(interval.estimate, 0.848203026481715, 1e-14);
        assert_eq!(
            (interval.lower, interval.upper),
            (PINNED_AUC_LOWER, PINNED_AUC_UPPER)
        );
        let scipy_standard_error = 0.028573494433866926;
        let tolerance = 0.35 * scipy_standard_error;
        assert_close(interval.lower, 0.7911616880471585, tolerance);
        assert_close(interval.upper, 0.8995757582417582, tolerance);
    }
    const PINNED_AUC_LOWER: f64 = 0.7885014124723744;
    const PINNED_AUC_UPPER: f64 = 0.8978639786635856;

    #[test]
    fn bootstrap_counts_undefined_resamples() {
        // Two rows, one per class: a resample has both classes only half the time.
        let labels = [0u8, 1];
        let scores = [0.2, 0.8];
        let interval =
            bootstrap_interval(2, 200, ConfidenceLevel::NINETY_FIVE_PERCENT, 1, |rows| {
                let l: Vec<u8> = rows.iter().map(|&r| labels[r]).collect();
                let s: Vec<f64> = rows.iter().map(|&r| scores[r]).collect();
                roc_auc(&l, &s).ok().flatten().unwrap_or(f64::NAN)
            })
            .unwrap();
        assert!(interval.undefined_resamples > 50 && interval.undefined_resamples < 150);
        assert_eq!((interval.lower, interval.upper), (1.0, 1.0));
        let never =
            bootstrap_interval(3, 10, ConfidenceLevel::NINETY_FIVE_PERCENT, 1, |_| f64::NAN);
        assert!(matches!(
            never,
            Err(DriftStatsError::UndefinedBootstrap { resamples: 10 })
        ));
        assert!(
            bootstrap_mean_interval(&[1.0], 1, ConfidenceLevel::NINETY_FIVE_PERCENT, 1).is_err()
        );
    }

    /// mean ± norm.ppf(0.975)·s/√n (tests/reference/drift_reference.py, "normal mean interval").
    #[test]
    fn mean_interval_matches_scipy() {
        let values = losses_of_first_200();
        let interval = mean_interval(&values, ConfidenceLevel::NINETY_FIVE_PERCENT).unwrap();
        assert_close(interval.mean, 0.5053189804877835, 1e-14);
        assert_close(
            interval.standard_error * (200f64).sqrt(),
            0.5343395516475679,
            1e-13,
        );
        assert_close(interval.lower, 0.4312646576748178, 1e-13);
        assert_close(interval.upper, 0.5793733033007491, 1e-13);
        assert!(mean_interval(&[1.0], ConfidenceLevel::NINETY_FIVE_PERCENT).is_err());
    }

    #[test]
    fn quantiles_interpolate_like_numpy() {
        let sorted = [1.0, 2.0, 4.0, 8.0];
        assert_eq!(linear_quantile(&sorted, 0.0), 1.0);
        assert_eq!(linear_quantile(&sorted, 1.0), 8.0);
        assert_eq!(linear_quantile(&sorted, 0.5), 3.0);
        assert_eq!(linear_quantile(&sorted, 0.25), 1.75);
        assert_eq!(linear_quantile(&[5.0], 0.3), 5.0);
    }

    #[test]
    fn generator_is_deterministic_and_uniform_enough() {
        let mut a = Wyrand(42);
        let mut b = Wyrand(42);
        let draws: Vec<usize> = (0..10_000).map(|_| a.below(10)).collect();
        assert!(draws.iter().all(|&d| d == b.below(10)));
        for digit in 0..10 {
            let count = draws.iter().filter(|&&d| d == digit).count();
            // Binomial(10,000, 0.1): sd 30; 150 is five of them.
            assert!((850..=1150).contains(&count), "{digit}: {count}");
        }
    }
}
