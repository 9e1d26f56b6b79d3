//! Tests that turn a change into a p-value, and the false-alarm control across many of them.
//! All are z-tests: below a minimum number of rows (30 by default) a test answers "too few
//! rows to tell" instead of a p-value, so a quiet week is never read as drift. Each z equals
//! the matching t statistic of scipy (`ttest_ind(equal_var=False)`, `ttest_1samp`); the
//! p-values are normal tail areas (`scipy.stats.norm`), slightly smaller than the t ones at
//! small sizes (two-sided 5 % sits at |t| = 2.05 with 29 degrees of freedom, |z| = 1.96).

use serde::{Deserialize, Serialize};

use super::normal::{normal_cdf, normal_sf};
use super::{
    DriftStatsError, Margin, MinRows, SignificanceLevel, check_finite, check_same_length, invalid,
    mean_and_sample_variance,
};

/// Welch comparison of the mean per-row loss of new rows with the reference rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeanComparison {
    pub reference_rows: usize,
    pub current_rows: usize,
    pub reference_mean: f64,
    pub current_mean: f64,
    /// current_mean − reference_mean (positive: the loss grew).
    pub difference: f64,
    /// Degradation tolerated before it counts.
    pub margin: f64,
    /// √(s²_ref/n_ref + s²_cur/n_cur), sample variances.
    pub standard_error: f64,
    /// (difference − margin) / standard_error; ±∞ when the standard error is 0.
    pub z: f64,
    /// P(Z > z): small when the loss grew by more than the margin.
    pub p_value: f64,
}

/// Outcome of [`loss_degradation_test`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum DegradationTest {
    /// Fewer rows than the minimum on one side: no conclusion, and not drift.
    TooFewRows {
        reference_rows: usize,
        current_rows: usize,
        min_rows: usize,
    },
    Tested(MeanComparison),
}

impl DegradationTest {
    /// Whether the loss grew significantly beyond the margin at `alpha`; `None` with too few
    /// rows.
    pub fn degraded(&self, alpha: SignificanceLevel) -> Option<bool> {
        match self {
            Self::TooFewRows { .. } => None,
            Self::Tested(test) => Some(test.p_value < alpha.get()),
        }
    }
}

/// One-sided Welch z-test that the mean per-row loss (e.g. [`log_loss_per_row`]) on the
/// current rows exceeds the reference rows' by more than `margin`:
/// z = (mean_cur − mean_ref − margin) / √(s²_ref/n_ref + s²_cur/n_cur), p = P(Z > z).
///
/// [`log_loss_per_row`]: super::performance::log_loss_per_row
pub fn loss_degradation_test(
    reference_losses: &[f64],
    current_losses: &[f64],
    margin: Margin,
    min_rows: MinRows,
) -> Result<DegradationTest, DriftStatsError> {
    check_finite("reference losses", reference_losses)?;
    check_finite("current losses", current_losses)?;
    let (reference_rows, current_rows) = (reference_losses.len(), current_losses.len());
    if reference_rows.min(current_rows) < min_rows.get() {
        return Ok(DegradationTest::TooFewRows {
            reference_rows,
            current_rows,
            min_rows: min_rows.get(),
        });
    }
    let (reference_mean, reference_variance) = mean_and_sample_variance(reference_losses);
    let (current_mean, current_variance) = mean_and_sample_variance(current_losses);
    let standard_error = (reference_variance / reference_rows as f64
        + current_variance / current_rows as f64)
        .sqrt();
    let difference = current_mean - reference_mean;
    let z = z_score(difference - margin.get(), standard_error);
    Ok(DegradationTest::Tested(MeanComparison {
        reference_rows,
        current_rows,
        reference_mean,
        current_mean,
        difference,
        margin: margin.get(),
        standard_error,
        z,
        p_value: normal_sf(z),
    }))
}

/// Two-proportion comparison of the label (exit) rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProportionComparison {
    pub reference_positives: u64,
    pub reference_rows: u64,
    pub current_positives: u64,
    pub current_rows: u64,
    pub reference_rate: f64,
    pub current_rate: f64,
    /// current_rate − reference_rate.
    pub difference: f64,
    /// Pooled: √(p̂(1 − p̂)(1/n_ref + 1/n_cur)).
    pub standard_error: f64,
    pub z: f64,
    /// Two-sided, 2·P(Z > |z|).
    pub p_value: f64,
}

/// Outcome of [`label_rate_test`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum LabelRateTest {
    TooFewRows {
        reference_rows: u64,
        current_rows: u64,
        min_rows: usize,
    },
    Tested(ProportionComparison),
}

impl LabelRateTest {
    /// Whether the rate changed significantly at `alpha`; `None` with too few rows.
    pub fn changed(&self, alpha: SignificanceLevel) -> Option<bool> {
        match self {
            Self::TooFewRows { .. } => None,
            Self::Tested(test) => Some(test.p_value < alpha.get()),
        }
    }
}

/// Two-sided pooled two-proportion z-test of the exit rate, statsmodels'
/// `proportions_ztest([current_positives, reference_positives], [current_rows, reference_rows])`.
pub fn label_rate_test(
    reference_positives: u64,
    reference_rows: u64,
    current_positives: u64,
    current_rows: u64,
    min_rows: MinRows,
) -> Result<LabelRateTest, DriftStatsError> {
    for (name, positives, rows) in [
        ("reference_positives", reference_positives, reference_rows),
        ("current_positives", current_positives, current_rows),
    ] {
        if positives > rows {
            return Err(invalid(
                name,
                positives,
                "there cannot be more positive rows than rows",
            ));
        }
    }
    if reference_rows.min(current_rows) < min_rows.get() as u64 {
        return Ok(LabelRateTest::TooFewRows {
            reference_rows,
            current_rows,
            min_rows: min_rows.get(),
        });
    }
    let (n1, n2) = (reference_rows as f64, current_rows as f64);
    let reference_rate = reference_positives as f64 / n1;
    let current_rate = current_positives as f64 / n2;
    let pooled = (reference_positives + current_positives) as f64 / (n1 + n2);
    let standard_error = (pooled * (1.0 - pooled) * (1.0 / n2 + 1.0 / n1)).sqrt();
    let difference = current_rate - reference_rate;
    let z = z_score(difference, standard_error);
    Ok(LabelRateTest::Tested(ProportionComparison {
        reference_positives,
        reference_rows,
        current_positives,
        current_rows,
        reference_rate,
        current_rate,
        difference,
        standard_error,
        z,
        p_value: (2.0 * normal_sf(z.abs())).min(1.0),
    }))
}

/// Champion and challenger scored on the same rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairedComparison {
    pub rows: usize,
    pub champion_mean: f64,
    pub challenger_mean: f64,
    /// Mean of challenger − champion per-row losses (negative: the challenger is better).
    pub mean_difference: f64,
    /// How much worse the challenger may be and still replace the champion.
    pub margin: f64,
    /// Sample standard deviation of the differences over √rows.
    pub standard_error: f64,
    /// (mean_difference − margin) / standard_error; ±∞ when the standard error is 0.
    pub z: f64,
    /// P(Z < z): small when the challenger's loss is credibly below champion's + margin.
    pub p_value: f64,
}

/// Outcome of [`paired_comparison`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum PairedTest {
    TooFewRows { rows: usize, min_rows: usize },
    Tested(PairedComparison),
}

impl PairedTest {
    /// Whether the challenger is shown at least as good as the champion minus the margin at
    /// `alpha`; `None` with too few rows (keep the champion).
    pub fn challenger_at_least_as_good(&self, alpha: SignificanceLevel) -> Option<bool> {
        match self {
            Self::TooFewRows { .. } => None,
            Self::Tested(test) => Some(test.p_value < alpha.get()),
        }
    }
}

/// Non-inferiority test of a challenger against the champion on the same held-out rows, from
/// their per-row losses (lower is better). The null hypothesis is that the challenger's mean
/// loss exceeds the champion's by `margin` or more; z = (mean(d) − margin)/(s_d/√n) with
/// d = challenger − champion, p = P(Z < z). Pairing removes the row-to-row variation both
/// models share, so far fewer rows are needed than for two independent samples. z equals
/// scipy's `ttest_1samp(d, popmean=margin).statistic`.
pub fn paired_comparison(
    champion_losses: &[f64],
    challenger_losses: &[f64],
    margin: Margin,
    min_rows: MinRows,
) -> Result<PairedTest, DriftStatsError> {
    check_same_length(
        "challenger losses",
        champion_losses.len(),
        challenger_losses.len(),
    )?;
    check_finite("champion losses", champion_losses)?;
    check_finite("challenger losses", challenger_losses)?;
    let rows = champion_losses.len();
    if rows < min_rows.get() {
        return Ok(PairedTest::TooFewRows {
            rows,
            min_rows: min_rows.get(),
        });
    }
    let differences: Vec<f64> = challenger_losses
        .iter()
        .zip(champion_losses)
        .map(|(challenger, champion)| challenger - champion)
        .collect();
    let (mean_difference, variance) = mean_and_sample_variance(&differences);
    let standard_error = (variance / rows as f64).sqrt();
    let z = z_score(mean_difference - margin.get(), standard_error);
    let mean = |values: &[f64]| values.iter().sum::<f64>() / rows as f64;
    Ok(PairedTest::Tested(PairedComparison {
        rows,
        champion_mean: mean(champion_losses),
        challenger_mean: mean(challenger_losses),
        mean_difference,
        margin: margin.get(),
        standard_error,
        z,
        p_value: normal_cdf(z),
    }))
}

/// numerator / standard_error, with a zero standard error read as certainty: ±∞ by the sign
/// of the numerator, 0 when that is 0 too.
fn z_score(numerator: f64, standard_error: f64) -> f64 {
    if standard_error > 0.0 {
        numerator / standard_error
    } else if numerator == 0.0 {
        0.0
    } else {
        numerator.signum() * f64::INFINITY
    }
}

fn check_p_values(p_values: &[f64]) -> Result<(), DriftStatsError> {
    match p_values.iter().position(|p| !(0.0..=1.0).contains(p)) {
        Some(index) => Err(DriftStatsError::ProbabilityOutOfRange {
            what: "p_values",
            index,
            value: p_values[index],
        }),
        None => Ok(()),
    }
}

/// Bonferroni: reject where p ≤ α/m, m the number of tests (statsmodels `multipletests(...,
/// method="bonferroni")`). Controls the chance of any false alarm across the features;
/// alibi-detect's default correction for its feature-wise KS detector.
pub fn bonferroni(
    p_values: &[f64],
    alpha: SignificanceLevel,
) -> Result<Vec<bool>, DriftStatsError> {
    check_p_values(p_values)?;
    let level = alpha.get() / p_values.len() as f64;
    Ok(p_values.iter().map(|&p| p <= level).collect())
}

/// Benjamini–Hochberg: with the p-values sorted, find the largest rank k with
/// p_(k) ≤ (k/m)·q and reject the k smallest (statsmodels `multipletests(...,
/// method="fdr_bh")`). Controls the expected share of false alarms among the features flagged,
/// so it keeps more power than Bonferroni when several features drift; alibi-detect's `"fdr"`.
pub fn benjamini_hochberg(
    p_values: &[f64],
    q: SignificanceLevel,
) -> Result<Vec<bool>, DriftStatsError> {
    check_p_values(p_values)?;
    let order = ascending_order(p_values);
    let m = p_values.len() as f64;
    let rejected_ranks = order
        .iter()
        .enumerate()
        .filter(|&(rank, &index)| p_values[index] <= (rank + 1) as f64 / m * q.get())
        .map(|(rank, _)| rank + 1)
        .next_back()
        .unwrap_or(0);
    let mut rejected = vec![false; p_values.len()];
    for &index in &order[..rejected_ranks] {
        rejected[index] = true;
    }
    Ok(rejected)
}

/// Benjamini–Hochberg adjusted p-values (reject where adjusted ≤ q), for reports:
/// min over ranks j ≥ k of p_(j)·m/j, capped at 1 (statsmodels' `pvals_corrected`).
pub fn benjamini_hochberg_adjusted(p_values: &[f64]) -> Result<Vec<f64>, DriftStatsError> {
    check_p_values(p_values)?;
    let order = ascending_order(p_values);
    let m = p_values.len() as f64;
    let mut adjusted = vec![0.0; p_values.len()];
    let mut running_min = f64::INFINITY;
    for (rank, &index) in order.iter().enumerate().rev() {
        running_min = running_min.min(p_values[index] / ((rank + 1) as f64 / m));
        adjusted[index] = running_min.min(1.0);
    }
    Ok(adjusted)
}

fn ascending_order(p_values: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..p_values.len()).collect();
    order.sort_by(|&a, &b| p_values[a].total_cmp(&p_values[b]));
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drift::stats::performance::log_loss_per_row;
    use crate::drift::stats::test_data::{A4, assert_relative, recurrence, scored_rows};

    fn per_row_losses() -> Vec<f64> {
        let (labels, probabilities) = scored_rows(1000);
        log_loss_per_row(&labels, &probabilities).unwrap()
    }

    fn tested(test: DegradationTest) -> MeanComparison {
        match test {
            DegradationTest::Tested(comparison) => comparison,
            other => panic!("expected a test, got {other:?}"),
        }
    }

    /// Manual Welch z and `norm.sf`, cross-checked with `ttest_ind(equal_var=False).statistic`
    /// (tests/reference/drift_reference.py, "one-sided z-tests").
    #[test]
    fn degradation_test_matches_scipy() {
        let losses = per_row_losses();
        let reference = &losses[..600];
        let current: Vec<f64> = losses[600..].iter().map(|l| l * 1.15).collect();
        let test = tested(
            loss_degradation_test(reference, &current, Margin::ZERO, MinRows::DEFAULT).unwrap(),
        );
        assert_relative(test.reference_mean, 0.5085180420140236, 1e-13);
        assert_relative(test.current_mean, 0.5712484485282064, 1e-13);
        assert_relative(test.standard_error, 0.034613849891739566, 1e-12);
        assert_relative(test.z, 1.8122920943605623, 1e-11);
        assert_relative(test.p_value, 0.03497053772622407, 1e-11);
        let outcome =
            loss_degradation_test(reference, &current, Margin::ZERO, MinRows::DEFAULT).unwrap();
        assert_eq!(
            outcome.degraded(SignificanceLevel::FIVE_PERCENT),
            Some(true)
        );

        let margin = Margin::new(0.02).unwrap();
        let outcome = loss_degradation_test(reference, &current, margin, MinRows::DEFAULT).unwrap();
        assert_eq!(
            outcome.degraded(SignificanceLevel::FIVE_PERCENT),
            Some(false)
        );
        let test = tested(outcome);
        assert_relative(test.z, 1.2344886988251553, 1e-11);
        assert_relative(test.p_value, 0.10851042765664354, 1e-11);
    }

    #[test]
    fn too_few_rows_is_not_a_p_value() {
        let reference = [0.5; 40];
        let current = [0.9; 29];
        let outcome =
            loss_degradation_test(&reference, &current, Margin::ZERO, MinRows::DEFAULT).unwrap();
        assert_eq!(
            outcome,
            DegradationTest::TooFewRows {
                reference_rows: 40,
                current_rows: 29,
                min_rows: 30
            }
        );
        assert_eq!(outcome.degraded(SignificanceLevel::FIVE_PERCENT), None);
        let json = serde_json::to_value(&outcome).unwrap();
        assert_eq!(json["outcome"], "too_few_rows");
        assert!(
            label_rate_test(1, 10, 2, 1000, MinRows::DEFAULT)
                .unwrap()
                .changed(SignificanceLevel::FIVE_PERCENT)
                .is_none()
        );
        let paired = paired_comparison(&[0.1; 5], &[0.1; 5], Margin::ZERO, MinRows::DEFAULT);
        assert_eq!(
            paired.unwrap(),
            PairedTest::TooFewRows {
                rows: 5,
                min_rows: 30
            }
        );
    }

    #[test]
    fn zero_variance_reads_as_certainty() {
        let test = tested(
            loss_degradation_test(&[0.5; 30], &[0.6; 30], Margin::ZERO, MinRows::DEFAULT).unwrap(),
        );
        assert_eq!((test.z, test.p_value), (f64::INFINITY, 0.0));
        let test = tested(
            loss_degradation_test(&[0.5; 30], &[0.5; 30], Margin::ZERO, MinRows::DEFAULT).unwrap(),
        );
        assert_eq!((test.z, test.p_value), (0.0, 0.5));
        // Both rates 0: no evidence of change.
        let LabelRateTest::Tested(rate) =
            label_rate_test(0, 100, 0, 100, MinRows::DEFAULT).unwrap()
        else {
            panic!("expected a test")
        };
        assert_eq!((rate.z, rate.p_value), (0.0, 1.0));
    }

    /// statsmodels `proportions_ztest([130, 90], [1100, 1000])`.
    #[test]
    fn label_rate_test_matches_statsmodels() {
        let outcome = label_rate_test(90, 1000, 130, 1100, MinRows::DEFAULT).unwrap();
        assert_eq!(outcome.changed(SignificanceLevel::FIVE_PERCENT), Some(true));
        let LabelRateTest::Tested(test) = outcome else {
            panic!("expected a test")
        };
        assert_relative(test.z, 2.106127862592603, 1e-13);
        assert_relative(test.p_value, 0.03519324716302703, 1e-12);
        assert!(matches!(
            label_rate_test(11, 10, 0, 10, MinRows::DEFAULT),
            Err(DriftStatsError::InvalidParameter { .. })
        ));
    }

    /// Manual paired z and `norm.cdf`, cross-checked with `ttest_1samp(d, popmean=margin)`.
    #[test]
    fn paired_comparison_matches_scipy() {
        let losses = per_row_losses();
        let champion = &losses[..400];
        let challenger: Vec<f64> = champion
            .iter()
            .zip(recurrence(0, 400, A4))
            .map(|(loss, draw)| loss + 0.02 * (draw - 0.5) + 0.001)
            .collect();
        let alpha = SignificanceLevel::FIVE_PERCENT;
        // Slightly worse on average: not shown at least as good without a margin ...
        let outcome =
            paired_comparison(champion, &challenger, Margin::ZERO, MinRows::DEFAULT).unwrap();
        assert_eq!(outcome.challenger_at_least_as_good(alpha), Some(false));
        let PairedTest::Tested(test) = outcome else {
            panic!("expected a test")
        };
        assert_relative(test.mean_difference, 0.0009621138686496191, 1e-10);
        assert_relative(test.standard_error, 0.00028938914908341687, 1e-10);
        assert_relative(test.z, 3.324636986897834, 1e-10);
        assert_relative(test.p_value, 0.9995573313599448, 1e-13);
        // ... but well within a margin of 0.002.
        let margin = Margin::new(0.002).unwrap();
        let outcome = paired_comparison(champion, &challenger, margin, MinRows::DEFAULT).unwrap();
        assert_eq!(outcome.challenger_at_least_as_good(alpha), Some(true));
        let PairedTest::Tested(test) = outcome else {
            panic!("expected a test")
        };
        assert_relative(test.z, -3.586472176436749, 1e-10);
        assert_relative(test.p_value, 0.00016759090462123942, 1e-9);
        assert!(matches!(
            paired_comparison(&[0.1; 3], &[0.1; 2], Margin::ZERO, MinRows::DEFAULT),
            Err(DriftStatsError::LengthMismatch { .. })
        ));
    }

    const P_VALUES: [f64; 10] = [
        0.01, 0.04, 0.03, 0.005, 0.20, 0.0001, 0.045, 0.6, 0.012, 0.03,
    ];

    fn flags(bits: [u8; 10]) -> Vec<bool> {
        bits.iter().map(|&b| b == 1).collect()
    }

    /// statsmodels `multipletests` (tests/reference/drift_reference.py, "multiple testing").
    #[test]
    fn multiple_testing_matches_statsmodels() {
        let level = |a| SignificanceLevel::new(a).unwrap();
        assert_eq!(
            bonferroni(&P_VALUES, level(0.05)).unwrap(),
            flags([0, 0, 0, 1, 0, 1, 0, 0, 0, 0])
        );
        assert_eq!(
            bonferroni(&P_VALUES, level(0.1)).unwrap(),
            flags([1, 0, 0, 1, 0, 1, 0, 0, 0, 0])
        );
        assert_eq!(
            benjamini_hochberg(&P_VALUES, level(0.05)).unwrap(),
            flags([1, 0, 1, 1, 0, 1, 0, 0, 1, 1])
        );
        assert_eq!(
            benjamini_hochberg(&P_VALUES, level(0.1)).unwrap(),
            flags([1, 1, 1, 1, 0, 1, 1, 0, 1, 1])
        );
        let expected = [
            0.03,
            0.056249999999999994,
            0.05,
            0.024999999999999998,
            0.22222222222222224,
            0.001,
            0.056249999999999994,
            0.6,
            0.03,
            0.05,
        ];
        for (adjusted, expected) in benjamini_hochberg_adjusted(&P_VALUES)
            .unwrap()
            .into_iter()
            .zip(expected)
        {
            assert_relative(adjusted, expected, 1e-15);
        }
        assert!(benjamini_hochberg(&[], level(0.05)).unwrap().is_empty());
        assert!(matches!(
            bonferroni(&[0.1, f64::NAN], level(0.05)),
            Err(DriftStatsError::ProbabilityOutOfRange { index: 1, .. })
        ));
    }
}
