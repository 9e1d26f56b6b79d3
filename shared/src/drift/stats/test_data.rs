//! Inputs shared by the drift tests and `tests/reference/drift_reference.py`, which computes
//! the pinned values from the same data. The larger sets come from additive recurrences
//! `(i·a) mod 1` and correctly rounded operations only, so Rust and numpy produce the same
//! floats bit for bit.

/// Relative closeness: the pinned values span many orders of magnitude (KS p-values from 1e-59
/// to 1), so absolute tolerances would not do.
pub fn assert_relative(actual: f64, expected: f64, tolerance: f64) {
    let scale = expected.abs().max(f64::MIN_POSITIVE);
    assert!(
        ((actual - expected) / scale).abs() <= tolerance,
        "{actual} vs {expected} (relative tolerance {tolerance})"
    );
}

pub const A1: f64 = 0.6180339887498949;
pub const A2: f64 = 0.7548776662466927;
pub const A3: f64 = 0.5698402909980532;
pub const A4: f64 = 0.41421356237309515;

pub const SMALL_REF: [f64; 8] = [1.2, 3.4, 0.5, 2.2, 5.1, 3.3, 0.9, 4.4];
pub const SMALL_CUR: [f64; 11] = [2.5, 3.9, 6.1, 4.8, 5.5, 3.0, 7.2, 4.1, 5.9, 6.6, 2.9];
pub const TIED_REF: [f64; 14] = [
    0.0, 0.0, 1.0, 1.0, 1.0, 2.0, 2.0, 3.0, 0.0, 1.0, 2.0, 1.0, 0.0, 1.0,
];
pub const TIED_CUR: [f64; 12] = [1.0, 2.0, 2.0, 3.0, 3.0, 1.0, 2.0, 4.0, 2.0, 3.0, 1.0, 2.0];

/// `np.fmod(np.arange(start, start + rows) * a, 1.0)`.
pub fn recurrence(start: usize, rows: usize, a: f64) -> Vec<f64> {
    (start..start + rows)
        .map(|i| (i as f64 * a) % 1.0)
        .collect()
}

fn product(rows: usize, a: f64, b: f64, scale: f64, shift: f64) -> Vec<f64> {
    recurrence(0, rows, a)
        .iter()
        .zip(recurrence(0, rows, b))
        .map(|(x, y)| x * y * scale + shift)
        .collect()
}

/// 1,000 rows in [0, 10).
pub fn continuous_reference() -> Vec<f64> {
    product(1000, A1, A2, 10.0, 0.0)
}

/// 1,200 rows, shifted up by 0.8.
pub fn continuous_current() -> Vec<f64> {
    product(1200, A3, A4, 10.0, 0.8)
}

/// 1,000 rows of 0..=3, heavy ties.
pub fn integer_reference() -> Vec<f64> {
    recurrence(0, 1000, A1)
        .iter()
        .map(|v| (v * 4.0).floor())
        .collect()
}

/// 800 rows of 0..=4, weighted to the upper values.
pub fn integer_current() -> Vec<f64> {
    recurrence(0, 800, A2)
        .iter()
        .map(|v| (v.sqrt() * 5.0).floor())
        .collect()
}

/// Probabilities on a 0.01 grid (many ties) and labels drawn with P(exit) = p^1.5.
pub fn scored_rows(rows: usize) -> (Vec<u8>, Vec<f64>) {
    let probabilities: Vec<f64> = recurrence(0, rows, A2)
        .iter()
        .map(|v| ((v * 98.0).floor() + 1.0) / 100.0)
        .collect();
    let labels = recurrence(0, rows, A3)
        .iter()
        .zip(&probabilities)
        .map(|(draw, p)| u8::from(*draw < p * p.sqrt()))
        .collect();
    (labels, probabilities)
}
