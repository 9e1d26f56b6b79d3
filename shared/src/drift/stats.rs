//! The statistics drift and retraining decisions are made with: pure functions over slices (no
//! I/O, no Arrow), sort-based and O(n log n), each pinned in its tests against values computed
//! once with scipy, scikit-learn and statsmodels (`tests/reference/drift_reference.py`).
//! [`ks`] and [`distribution`] compare a feature's or the scores' distribution with the
//! training one (Kolmogorov–Smirnov; PSI and normalised Wasserstein); [`performance`] scores
//! predictions (log loss, Brier, ROC AUC) and puts confidence intervals on them (percentile
//! bootstrap with a seed, or the normal approximation); [`hypothesis`] holds the one- and
//! two-sided z-tests and the false-alarm control across features; [`normal`] the normal
//! distribution they rest on. Parameters are validated newtypes, so a function never sees an
//! out-of-range level, row minimum or bin count.

pub mod distribution;
pub mod hypothesis;
pub mod ks;
pub mod normal;
pub mod performance;
#[cfg(test)]
pub(crate) mod test_data;

use serde::{Deserialize, Serialize};

use crate::model::ModelError;

pub use distribution::{
    PSI_EMPTY_BIN_SHARE, Psi, PsiBin, PsiBins, WASSERSTEIN_MIN_SCALE, Wasserstein, psi,
    wasserstein_normed,
};
pub use hypothesis::{
    DegradationTest, LabelRateTest, MeanComparison, PairedComparison, PairedTest,
    ProportionComparison, benjamini_hochberg, benjamini_hochberg_adjusted, bonferroni,
    label_rate_test, loss_degradation_test, paired_comparison,
};
pub use ks::{KS_EXACT_MAX_ROWS, KsMethod, KsTest, ks_two_sample, ks_two_sample_with};
pub use normal::{normal_cdf, normal_quantile, normal_sf};
pub use performance::{
    BootstrapInterval, MeanInterval, bootstrap_f1_interval, bootstrap_interval,
    bootstrap_mean_interval, bootstrap_roc_auc_interval, brier, log_loss, log_loss_per_row,
    mean_interval, metrics_at_threshold, roc_auc,
};

/// What is wrong with the input of a drift statistic, and what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum DriftStatsError {
    #[error("{what} has {found} values, at least {needed} are needed")]
    TooFewValues {
        what: &'static str,
        found: usize,
        needed: usize,
    },

    #[error(
        "{what}[{index}] = {value}; values must be finite numbers (drop or impute missing values first)"
    )]
    NonFinite {
        what: &'static str,
        index: usize,
        value: f64,
    },

    #[error("{what}[{index}] = {value}; probabilities must lie in [0, 1]")]
    ProbabilityOutOfRange {
        what: &'static str,
        index: usize,
        value: f64,
    },

    #[error("labels[{index}] = {value}; labels must be 0 (stayed) or 1 (exited)")]
    InvalidLabel { index: usize, value: u8 },

    #[error("{what}: expected {expected} values (one per label or row), got {found}")]
    LengthMismatch {
        what: &'static str,
        expected: usize,
        found: usize,
    },

    #[error("invalid `{name}` = {value}: {requirement}")]
    InvalidParameter {
        name: &'static str,
        value: String,
        requirement: &'static str,
    },

    #[error(
        "{what} needs both outcomes among the labels, but all {rows} rows have `exited` = {class}"
    )]
    OneClassOnly {
        what: &'static str,
        class: u8,
        rows: usize,
    },

    #[error(
        "the statistic was undefined (not finite) in all {resamples} bootstrap resamples; use more rows (e.g. both classes for an AUC)"
    )]
    UndefinedBootstrap { resamples: usize },

    #[error(transparent)]
    Metrics(#[from] ModelError),
}

fn invalid(name: &'static str, value: impl ToString, requirement: &'static str) -> DriftStatsError {
    DriftStatsError::InvalidParameter {
        name,
        value: value.to_string(),
        requirement,
    }
}

/// Confidence level of an interval, strictly between 0 and 1 (0.95 for a 95 % interval).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct ConfidenceLevel(f64);

impl ConfidenceLevel {
    /// The customary 95 %.
    pub const NINETY_FIVE_PERCENT: Self = Self(0.95);

    pub fn new(level: f64) -> Result<Self, DriftStatsError> {
        if level > 0.0 && level < 1.0 {
            Ok(Self(level))
        } else {
            Err(invalid(
                "confidence",
                level,
                "a confidence level lies strictly between 0 and 1, e.g. 0.95",
            ))
        }
    }

    pub fn get(self) -> f64 {
        self.0
    }
}

impl TryFrom<f64> for ConfidenceLevel {
    type Error = DriftStatsError;
    fn try_from(level: f64) -> Result<Self, Self::Error> {
        Self::new(level)
    }
}

impl From<ConfidenceLevel> for f64 {
    fn from(level: ConfidenceLevel) -> f64 {
        level.0
    }
}

/// A test's false-alarm rate: the significance level α of one test, or the false-discovery
/// rate q of Benjamini–Hochberg; strictly between 0 and 1.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct SignificanceLevel(f64);

impl SignificanceLevel {
    /// 0.05: the KS p-value threshold of Evidently's default numerical drift test
    /// (`evidently` `ks_stat_test`, `default_threshold=0.05`), and alibi-detect's `p_val` default.
    pub const FIVE_PERCENT: Self = Self(0.05);

    pub fn new(level: f64) -> Result<Self, DriftStatsError> {
        if level > 0.0 && level < 1.0 {
            Ok(Self(level))
        } else {
            Err(invalid(
                "significance level",
                level,
                "a significance level lies strictly between 0 and 1, e.g. 0.05",
            ))
        }
    }

    pub fn get(self) -> f64 {
        self.0
    }
}

impl TryFrom<f64> for SignificanceLevel {
    type Error = DriftStatsError;
    fn try_from(level: f64) -> Result<Self, Self::Error> {
        Self::new(level)
    }
}

impl From<SignificanceLevel> for f64 {
    fn from(level: SignificanceLevel) -> f64 {
        level.0
    }
}

/// The fewest rows a test accepts before it says "too few rows to tell" instead of giving a
/// p-value: at least 2, since a standard error needs two values. The normal approximation the
/// z-tests rest on wants more; [`MinRows::DEFAULT`] is 30.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "usize", into = "usize")]
pub struct MinRows(usize);

impl MinRows {
    /// 30 rows: the textbook point where the sample mean's distribution is close enough to
    /// normal for a z-test of a bounded per-row loss.
    pub const DEFAULT: Self = Self(30);

    pub fn new(rows: usize) -> Result<Self, DriftStatsError> {
        if rows >= 2 {
            Ok(Self(rows))
        } else {
            Err(invalid(
                "min_rows",
                rows,
                "at least 2 rows are needed to estimate a standard error",
            ))
        }
    }

    pub fn get(self) -> usize {
        self.0
    }
}

impl TryFrom<usize> for MinRows {
    type Error = DriftStatsError;
    fn try_from(rows: usize) -> Result<Self, Self::Error> {
        Self::new(rows)
    }
}

impl From<MinRows> for usize {
    fn from(rows: MinRows) -> usize {
        rows.0
    }
}

/// A non-negative, finite allowance in the units of the compared statistic: how much worse a
/// per-row loss may get before it counts as degradation, or how much worse a challenger may be
/// than the champion and still replace it (MLflow's `MetricThreshold(min_absolute_change=…)`
/// plays the same role in its model validation).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct Margin(f64);

impl Margin {
    pub const ZERO: Self = Self(0.0);

    pub fn new(margin: f64) -> Result<Self, DriftStatsError> {
        if margin.is_finite() && margin >= 0.0 {
            Ok(Self(margin))
        } else {
            Err(invalid(
                "margin",
                margin,
                "a margin is a finite number of at least 0",
            ))
        }
    }

    pub fn get(self) -> f64 {
        self.0
    }
}

impl TryFrom<f64> for Margin {
    type Error = DriftStatsError;
    fn try_from(margin: f64) -> Result<Self, Self::Error> {
        Self::new(margin)
    }
}

impl From<Margin> for f64 {
    fn from(margin: Margin) -> f64 {
        margin.0
    }
}

/// Refuses fewer than `needed` values.
fn check_count(what: &'static str, values: usize, needed: usize) -> Result<(), DriftStatsError> {
    if values >= needed {
        Ok(())
    } else {
        Err(DriftStatsError::TooFewValues {
            what,
            found: values,
            needed,
        })
    }
}

/// A sorted copy of non-empty, finite values.
fn sorted_finite(what: &'static str, values: &[f64]) -> Result<Vec<f64>, DriftStatsError> {
    check_count(what, values.len(), 1)?;
    check_finite(what, values)?;
    let mut sorted = values.to_vec();
    sorted.sort_unstable_by(f64::total_cmp);
    Ok(sorted)
}

/// Refuses NaN and infinities, naming the first offender.
fn check_finite(what: &'static str, values: &[f64]) -> Result<(), DriftStatsError> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(DriftStatsError::NonFinite {
            what,
            index,
            value: values[index],
        }),
        None => Ok(()),
    }
}

fn check_same_length(
    what: &'static str,
    expected: usize,
    found: usize,
) -> Result<(), DriftStatsError> {
    if expected == found {
        Ok(())
    } else {
        Err(DriftStatsError::LengthMismatch {
            what,
            expected,
            found,
        })
    }
}

fn check_labels(labels: &[u8]) -> Result<(), DriftStatsError> {
    match labels.iter().position(|&l| l > 1) {
        Some(index) => Err(DriftStatsError::InvalidLabel {
            index,
            value: labels[index],
        }),
        None => Ok(()),
    }
}

/// Labels 0/1 and, as long, probabilities in [0, 1]; at least one row.
pub(crate) fn check_labelled_probabilities(
    labels: &[u8],
    probabilities: &[f64],
) -> Result<(), DriftStatsError> {
    check_count("labels", labels.len(), 1)?;
    check_same_length("probabilities", labels.len(), probabilities.len())?;
    check_labels(labels)?;
    match probabilities.iter().position(|p| !(0.0..=1.0).contains(p)) {
        Some(index) => Err(DriftStatsError::ProbabilityOutOfRange {
            what: "probabilities",
            index,
            value: probabilities[index],
        }),
        None => Ok(()),
    }
}

/// Mean and sample variance (`ddof = 1`) by two passes, the way numpy computes them.
fn mean_and_sample_variance(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let squares: f64 = values.iter().map(|v| (v - mean) * (v - mean)).sum();
    (mean, squares / (n - 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_validated() {
        assert!(ConfidenceLevel::new(0.95).is_ok());
        for bad in [0.0, 1.0, -0.1, f64::NAN] {
            assert!(ConfidenceLevel::new(bad).is_err(), "{bad}");
            assert!(SignificanceLevel::new(bad).is_err(), "{bad}");
        }
        assert!(MinRows::new(1).is_err());
        assert_eq!(MinRows::new(2).unwrap().get(), 2);
        assert!(Margin::new(-0.01).is_err());
        assert!(Margin::new(f64::INFINITY).is_err());
        assert_eq!(Margin::new(0.0).unwrap(), Margin::ZERO);
    }

    #[test]
    fn parameters_deserialise_only_when_valid() {
        let level: ConfidenceLevel = serde_json::from_str("0.9").unwrap();
        assert_eq!(level.get(), 0.9);
        assert!(serde_json::from_str::<ConfidenceLevel>("1.5").is_err());
        assert!(serde_json::from_str::<SignificanceLevel>("0").is_err());
        assert!(serde_json::from_str::<MinRows>("1").is_err());
        assert!(serde_json::from_str::<Margin>("-1").is_err());
        assert_eq!(serde_json::to_string(&MinRows::DEFAULT).unwrap(), "30");
    }

    #[test]
    fn input_checks_name_the_offender() {
        let err = check_finite("reference", &[1.0, f64::NAN]).unwrap_err();
        assert!(matches!(err, DriftStatsError::NonFinite { index: 1, .. }));
        assert!(err.to_string().contains("reference[1]"));
        assert!(matches!(
            check_labelled_probabilities(&[0, 1], &[0.5, 1.5]),
            Err(DriftStatsError::ProbabilityOutOfRange { index: 1, .. })
        ));
        assert!(matches!(
            check_labelled_probabilities(&[0, 2], &[0.5, 0.5]),
            Err(DriftStatsError::InvalidLabel { index: 1, value: 2 })
        ));
        assert!(matches!(
            check_labelled_probabilities(&[0, 1], &[0.5]),
            Err(DriftStatsError::LengthMismatch { .. })
        ));
        assert!(matches!(
            check_labelled_probabilities(&[], &[]),
            Err(DriftStatsError::TooFewValues { .. })
        ));
    }
}
