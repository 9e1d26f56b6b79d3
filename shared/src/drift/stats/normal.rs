//! The standard normal distribution: CDF and survival function through `erfc` (libm's port of
//! musl), so tail probabilities keep full relative precision far out (`normal_sf(10)` ≈ 7.6e-24
//! instead of `1 - cdf` = 0), and the quantile function (Acklam's rational approximation,
//! polished by one Halley step to double precision). Pinned against `scipy.stats.norm`.

use std::f64::consts::{FRAC_1_SQRT_2, PI};

/// P(Z ≤ z).
pub fn normal_cdf(z: f64) -> f64 {
    0.5 * libm::erfc(-z * FRAC_1_SQRT_2)
}

/// P(Z > z), accurate in the upper tail (scipy's `norm.sf`).
pub fn normal_sf(z: f64) -> f64 {
    0.5 * libm::erfc(z * FRAC_1_SQRT_2)
}

/// The z with P(Z ≤ z) = `p`, for `p` strictly between 0 and 1 (scipy's `norm.ppf`); NaN
/// outside. Used for analytic interval half-widths, e.g. `normal_quantile(0.975)` ≈ 1.96.
pub fn normal_quantile(p: f64) -> f64 {
    if !(p > 0.0 && p < 1.0) {
        return f64::NAN;
    }
    // Computed in the lower half and mirrored: 1 - p is exact for p ≥ 0.5, and the lower tail
    // is where erfc keeps the refinement precise.
    if p > 0.5 {
        -lower_quantile(1.0 - p)
    } else {
        lower_quantile(p)
    }
}

/// Quantile for 0 < p ≤ 0.5.
fn lower_quantile(p: f64) -> f64 {
    // P. J. Acklam's approximation (relative error < 1.15e-9), central and tail pieces.
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let approximation = if p < 0.024_25 {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    };
    // One Halley step on cdf(x) = p brings the error to rounding level.
    let x = approximation;
    let error = normal_cdf(x) - p;
    let u = error * (2.0 * PI).sqrt() * (x * x / 2.0).exp();
    x - u / (1.0 + x * u / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drift::stats::test_data::assert_relative;

    /// scipy.stats.norm.sf / norm.cdf (tests/reference/drift_reference.py, "normal").
    #[test]
    fn tails_match_scipy() {
        let sf = [
            (0.0, 0.5),
            (1.959963984540054, 0.025),
            (-1.5, 0.9331927987311419),
            (5.0, 2.866515718791933e-07),
            (10.0, 7.61985302416047e-24),
            (20.0, 2.7536241186061556e-89),
            (37.0, 5.7255712225239266e-300),
        ];
        for (z, expected) in sf {
            assert_relative(normal_sf(z), expected, 1e-13);
        }
        assert_relative(normal_cdf(-8.0), 6.22096057427174e-16, 1e-13);
        assert_relative(normal_cdf(1.0), 0.8413447460685429, 1e-15);
    }

    /// scipy.stats.norm.ppf (same script).
    #[test]
    fn quantiles_match_scipy() {
        let ppf = [
            (1e-10, -6.361340902404056),
            (0.001, -3.090232306167813),
            (0.025, -1.9599639845400545),
            (0.3, -0.5244005127080409),
            (0.5, 0.0),
            (0.8, 0.8416212335729143),
            (0.975, 1.959963984540054),
            (0.999999, 4.753424308817087),
        ];
        for (p, expected) in ppf {
            let z = normal_quantile(p);
            if expected == 0.0 {
                assert!(z.abs() < 1e-15, "{z}");
            } else {
                assert_relative(z, expected, 1e-13);
            }
        }
        assert!(normal_quantile(0.0).is_nan());
        assert!(normal_quantile(1.0).is_nan());
        assert!(normal_quantile(f64::NAN).is_nan());
    }
}
