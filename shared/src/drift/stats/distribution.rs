//! Distances between a numeric feature's (or the scores') distribution and the training one:
//! the population stability index over the training deciles, and the Wasserstein distance
//! scaled by the training standard deviation. Each sorts its inputs once. Evidently's
//! thresholds: normalised Wasserstein ≥ 0.1 (its default test for a numerical column with more
//! than 5 distinct values and more than 1,000 reference rows, `_get_default_stattest`), and
//! PSI ≥ 0.1 when PSI is chosen.

use serde::{Deserialize, Serialize};

use super::{DriftStatsError, check_count, check_finite, invalid, sorted_finite};

/// Number of PSI bins, from 2 to 100 (more leaves too few reference rows per bin to estimate
/// its share).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "usize", into = "usize")]
pub struct PsiBins(usize);

impl PsiBins {
    /// Deciles, the credit-scoring convention PSI comes from.
    pub const DECILES: Self = Self(10);

    pub fn new(bins: usize) -> Result<Self, DriftStatsError> {
        if (2..=100).contains(&bins) {
            Ok(Self(bins))
        } else {
            Err(invalid(
                "psi bins",
                bins,
                "PSI needs 2 to 100 bins, e.g. 10",
            ))
        }
    }

    pub fn get(self) -> usize {
        self.0
    }
}

impl Default for PsiBins {
    fn default() -> Self {
        Self::DECILES
    }
}

impl TryFrom<usize> for PsiBins {
    type Error = DriftStatsError;
    fn try_from(bins: usize) -> Result<Self, Self::Error> {
        Self::new(bins)
    }
}

impl From<PsiBins> for usize {
    fn from(bins: PsiBins) -> usize {
        bins.0
    }
}

/// Share given to an empty bin before taking logarithms: Evidently's `0.0001`
/// (`get_binned_data(..., feel_zeroes=True)`; later Evidently versions shrink it further only
/// when a non-empty bin is already below it).
pub const PSI_EMPTY_BIN_SHARE: f64 = 1e-4;

/// One PSI bin: values in (`lower`, `upper`]; `None` is an open end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PsiBin {
    pub lower: Option<f64>,
    pub upper: Option<f64>,
    /// Share of reference rows in the bin, as counted (0 when empty).
    pub reference_share: f64,
    pub current_share: f64,
    /// (current − reference)·ln(current / reference), with empty shares raised to
    /// [`PSI_EMPTY_BIN_SHARE`].
    pub contribution: f64,
}

/// Population stability index and its bins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Psi {
    pub value: f64,
    pub bins: Vec<PsiBin>,
}

/// PSI of `current` against `reference` over bins cut at the reference's quantiles.
///
/// Edges are the reference's `k/bins` quantiles (k = 1 … bins−1) by the inverted empirical
/// CDF (numpy's `quantile(method="inverted_cdf")`), so every edge is a reference value;
/// repeated edges (heavy ties) are merged, bins are right-closed (`(lower, upper]`), and the
/// outer bins are open so current values beyond the training range still count. With integer
/// data this gives each frequent value its own bin and never an empty interior one.
pub fn psi(reference: &[f64], current: &[f64], bins: PsiBins) -> Result<Psi, DriftStatsError> {
    let sorted_reference = sorted_finite("reference", reference)?;
    check_count("current", current.len(), 1)?;
    check_finite("current", current)?;
    let rows = sorted_reference.len();
    let mut edges: Vec<f64> = (1..bins.get())
        .map(|k| sorted_reference[inverted_cdf_index(rows, k as f64 / bins.get() as f64)])
        .collect();
    edges.dedup();

    let reference_counts = bin_counts(&edges, &sorted_reference);
    let current_counts = bin_counts(&edges, current);
    let mut value = 0.0;
    let bins = (0..=edges.len())
        .map(|k| {
            let reference_share = reference_counts[k] as f64 / rows as f64;
            let current_share = current_counts[k] as f64 / current.len() as f64;
            let floored = |share: f64| {
                if share == 0.0 {
                    PSI_EMPTY_BIN_SHARE
                } else {
                    share
                }
            };
            let (r, c) = (floored(reference_share), floored(current_share));
            let contribution = (c - r) * (c / r).ln();
            value += contribution;
            PsiBin {
                lower: k.checked_sub(1).map(|below| edges[below]),
                upper: edges.get(k).copied(),
                reference_share,
                current_share,
                contribution,
            }
        })
        .collect();
    Ok(Psi { value, bins })
}

/// Index of the q-quantile by the inverted CDF: the smallest order statistic whose empirical
/// CDF reaches q, computed the way numpy does (`n·q − 1`, rounded up unless exact).
fn inverted_cdf_index(rows: usize, q: f64) -> usize {
    let position = rows as f64 * q - 1.0;
    let below = position.floor();
    let index = if position - below == 0.0 {
        below
    } else {
        below + 1.0
    };
    (index.max(0.0) as usize).min(rows - 1)
}

/// Counts per bin: bin k holds the values above `edges[k−1]` and at most `edges[k]`.
fn bin_counts(edges: &[f64], values: &[f64]) -> Vec<u64> {
    let mut counts = vec![0u64; edges.len() + 1];
    for value in values {
        counts[edges.partition_point(|edge| edge < value)] += 1;
    }
    counts
}

/// Smallest standard deviation the Wasserstein distance is divided by: Evidently's
/// `max(np.std(reference_data), 0.001)` (`wasserstein_distance_norm`), which also decides the
/// constant-reference case (any change is then large, none is 0).
pub const WASSERSTEIN_MIN_SCALE: f64 = 0.001;

/// Wasserstein-1 distance between the samples and its ratio to the reference spread.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Wasserstein {
    /// ∫ |F_reference − F_current| dx, scipy's `stats.wasserstein_distance`.
    pub distance: f64,
    /// Population standard deviation of the reference (`np.std`, ddof = 0).
    pub reference_std: f64,
    /// `distance / max(reference_std, WASSERSTEIN_MIN_SCALE)`.
    pub normed: f64,
}

/// Wasserstein distance normalised by the reference's standard deviation, Evidently's drift
/// measure for numerical columns with more than 1,000 reference rows (drift at ≥ 0.1).
pub fn wasserstein_normed(
    reference: &[f64],
    current: &[f64],
) -> Result<Wasserstein, DriftStatsError> {
    let a = sorted_finite("reference", reference)?;
    let b = sorted_finite("current", current)?;
    let (n1, n2) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j) = (0usize, 0usize);
    let mut area = 0.0;
    let mut previous: Option<f64> = None;
    // Walk the union of values; between two consecutive ones both CDFs are flat.
    while i < a.len() || j < b.len() {
        let value = match (a.get(i), b.get(j)) {
            (Some(&x), Some(&y)) => x.min(y),
            (Some(&x), None) => x,
            (None, Some(&y)) => y,
            (None, None) => break,
        };
        if let Some(previous) = previous {
            area += (i as f64 / n1 - j as f64 / n2).abs() * (value - previous);
        }
        while i < a.len() && a[i] <= value {
            i += 1;
        }
        while j < b.len() && b[j] <= value {
            j += 1;
        }
        previous = Some(value);
    }
    let mean = a.iter().sum::<f64>() / n1;
    let reference_std = (a.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n1).sqrt();
    Ok(Wasserstein {
        distance: area,
        reference_std,
        normed: area / reference_std.max(WASSERSTEIN_MIN_SCALE),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drift::stats::test_data::*;

    fn assert_shares(actual: &[f64], expected: &[f64]) {
        assert_eq!(actual.len(), expected.len(), "{actual:?} vs {expected:?}");
        for (a, e) in actual.iter().zip(expected) {
            assert!((a - e).abs() < 1e-15, "{actual:?} vs {expected:?}");
        }
    }

    /// numpy: `quantile(method="inverted_cdf")` edges, `searchsorted(side="left")` bins
    /// (tests/reference/drift_reference.py, "psi").
    #[test]
    fn psi_matches_numpy() {
        struct Case {
            reference: Vec<f64>,
            current: Vec<f64>,
            bins: usize,
            value: f64,
            edges: Vec<f64>,
            reference_share: Vec<f64>,
            current_share: Vec<f64>,
        }
        let cases = [
            Case {
                reference: continuous_reference(),
                current: continuous_current(),
                bins: 10,
                value: 1.5077476763291968,
                edges: vec![
                    0.21654360963143798,
                    0.49402747958954185,
                    0.8771440572522329,
                    1.2936985034164585,
                    1.8405823411398614,
                    2.50105275443127,
                    3.3031799939033126,
                    4.289992555450802,
                    5.8092753363085965,
                ],
                reference_share: vec![0.1; 10],
                current_share: vec![
                    0.0,
                    0.0,
                    0.04583333333333333,
                    0.15333333333333332,
                    0.13833333333333334,
                    0.13333333333333333,
                    0.12583333333333332,
                    0.12,
                    0.12916666666666668,
                    0.15416666666666667,
                ],
            },
            Case {
                reference: integer_reference(),
                current: integer_current(),
                bins: 10,
                value: 3.382980614852358,
                edges: vec![0.0, 1.0, 2.0, 3.0],
                reference_share: vec![0.251, 0.249, 0.25, 0.25, 0.0],
                current_share: vec![0.04125, 0.12375, 0.19875, 0.28125, 0.355],
            },
            Case {
                reference: SMALL_REF.to_vec(),
                current: SMALL_CUR.to_vec(),
                bins: 5,
                value: 4.6668797410544745,
                edges: vec![0.9, 2.2, 3.3, 4.4],
                reference_share: vec![0.25, 0.25, 0.125, 0.25, 0.125],
                current_share: vec![
                    0.0,
                    0.0,
                    0.2727272727272727,
                    0.18181818181818182,
                    0.5454545454545454,
                ],
            },
            Case {
                reference: vec![2.0; 20],
                current: [vec![2.0; 15], vec![3.0; 5]].concat(),
                bins: 10,
                value: 2.0271496162259326,
                edges: vec![2.0],
                reference_share: vec![1.0, 0.0],
                current_share: vec![0.75, 0.25],
            },
        ];
        for case in cases {
            let result = psi(
                &case.reference,
                &case.current,
                PsiBins::new(case.bins).unwrap(),
            )
            .unwrap();
            assert_relative(result.value, case.value, 1e-13);
            let uppers: Vec<f64> = result.bins.iter().filter_map(|b| b.upper).collect();
            assert_eq!(uppers, case.edges);
            let lowers: Vec<f64> = result.bins.iter().filter_map(|b| b.lower).collect();
            assert_eq!(lowers, case.edges);
            assert_eq!(result.bins[0].lower, None);
            assert_eq!(result.bins.last().unwrap().upper, None);
            let shares: Vec<f64> = result.bins.iter().map(|b| b.reference_share).collect();
            assert_shares(&shares, &case.reference_share);
            let shares: Vec<f64> = result.bins.iter().map(|b| b.current_share).collect();
            assert_shares(&shares, &case.current_share);
            let total: f64 = result.bins.iter().map(|b| b.contribution).sum();
            assert_relative(total, result.value, 1e-15);
        }
        let reference = continuous_reference();
        let same = psi(&reference, &reference, PsiBins::default()).unwrap();
        assert_eq!(same.value, 0.0);
    }

    #[test]
    fn psi_refuses_bad_input() {
        assert!(PsiBins::new(1).is_err());
        assert!(PsiBins::new(101).is_err());
        assert!(serde_json::from_str::<PsiBins>("0").is_err());
        assert!(matches!(
            psi(&[1.0], &[], PsiBins::DECILES),
            Err(DriftStatsError::TooFewValues { .. })
        ));
        assert!(matches!(
            psi(&[1.0], &[f64::INFINITY], PsiBins::DECILES),
            Err(DriftStatsError::NonFinite { .. })
        ));
    }

    /// scipy `wasserstein_distance` and `np.std` (tests/reference/drift_reference.py).
    #[test]
    fn wasserstein_matches_scipy() {
        let cases = [
            (
                SMALL_REF.to_vec(),
                SMALL_CUR.to_vec(),
                2.1477272727272725,
                1.5825217218098462,
                1.357155003389799,
            ),
            (
                TIED_REF.to_vec(),
                TIED_CUR.to_vec(),
                1.0952380952380953,
                0.8835226340609272,
                1.2396265279634797,
            ),
            (
                continuous_reference(),
                continuous_current(),
                0.822759743488553,
                2.195649257734692,
                0.37472275710256897,
            ),
            (
                vec![2.0; 20],
                [vec![2.0; 15], vec![3.0; 5]].concat(),
                0.25,
                0.0,
                250.0,
            ),
        ];
        for (reference, current, distance, std, normed) in cases {
            let result = wasserstein_normed(&reference, &current).unwrap();
            assert_relative(result.distance, distance, 1e-13);
            if std == 0.0 {
                assert_eq!(result.reference_std, 0.0);
            } else {
                assert_relative(result.reference_std, std, 1e-13);
            }
            assert_relative(result.normed, normed, 1e-13);
            // The distance is symmetric.
            let back = wasserstein_normed(&current, &reference).unwrap();
            assert_relative(back.distance, distance, 1e-13);
        }
        let same = wasserstein_normed(&[1.0, 2.0], &[2.0, 1.0]).unwrap();
        assert_eq!(same.distance, 0.0);
    }
}
