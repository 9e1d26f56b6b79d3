//! Summary statistics of a client data set, as the diagnostics and the API report them: for every
//! numeric column the mean, median and standard deviation (sample, `ddof = 1`, as pandas
//! computes it) of the values present, and for every column the count and percentage of missing
//! values. Fed one record batch at a time, so a data set is never needed whole in memory beyond
//! the values the exact median requires.

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Int8Type, Int64Type};
use serde::{Deserialize, Serialize};

use crate::data::schema::{COLUMNS, NUMERIC_COLUMNS};

/// The statistics of one column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnSummary {
    pub column: String,
    /// Values present (not missing).
    pub count: u64,
    pub missing: u64,
    /// `missing / rows * 100`; 0 for an empty data set.
    pub missing_percent: f64,
    /// `None` for non-numeric columns, and when no value is present.
    pub mean: Option<f64>,
    pub median: Option<f64>,
    /// Sample standard deviation; `None` with fewer than two values.
    pub std: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

/// The statistics of a whole data set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataSummary {
    pub rows: u64,
    pub columns: Vec<ColumnSummary>,
}

impl DataSummary {
    /// The summary of `column`, if the data set has it.
    pub fn column(&self, column: &str) -> Option<&ColumnSummary> {
        self.columns.iter().find(|c| c.column == column)
    }
}

/// Errors summarising a data set.
#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    #[error("column '{column}' is missing from the data set; expected the client schema")]
    MissingColumn { column: &'static str },
    #[error("column '{column}' has type {found}, expected {expected}")]
    WrongType {
        column: &'static str,
        found: DataType,
        expected: &'static str,
    },
}

/// The values of one column, kept for the exact median: as `u32` while every value fits (the
/// usual case for counts, which are never negative), else as `i64`. Halving the bytes per value
/// matters at ten million rows, where four columns of `i64` would be 320 MB.
#[derive(Debug)]
enum Values {
    Small(Vec<u32>),
    Large(Vec<i64>),
}

impl Default for Values {
    fn default() -> Self {
        Values::Small(Vec::new())
    }
}

impl Values {
    fn len(&self) -> usize {
        match self {
            Values::Small(values) => values.len(),
            Values::Large(values) => values.len(),
        }
    }

    fn reserve(&mut self, more: usize) {
        match self {
            Values::Small(values) => values.reserve(more),
            Values::Large(values) => values.reserve(more),
        }
    }

    #[inline]
    fn push(&mut self, value: i64) {
        match self {
            Values::Small(values) => match u32::try_from(value) {
                Ok(small) => values.push(small),
                Err(_) => {
                    let mut large: Vec<i64> = values.iter().map(|&v| i64::from(v)).collect();
                    large.push(value);
                    *self = Values::Large(large);
                }
            },
            Values::Large(values) => values.push(value),
        }
    }

    /// Median, minimum and maximum of a non-empty set; reorders the values.
    fn median_min_max(&mut self) -> (f64, f64, f64) {
        match self {
            Values::Small(values) => median_min_max(values, f64::from),
            Values::Large(values) => median_min_max(values, |v| v as f64),
        }
    }
}

#[derive(Debug, Default)]
struct NumericAccumulator {
    values: Values,
    // Welford's running mean and squared deviations: stable for large activity counts.
    mean: f64,
    m2: f64,
}

impl NumericAccumulator {
    #[inline]
    fn push(&mut self, value: i64) {
        self.values.push(value);
        let n = self.values.len() as f64;
        let x = value as f64;
        let delta = x - self.mean;
        self.mean += delta / n;
        self.m2 += delta * (x - self.mean);
    }
}

/// Accumulates batches of the client schema into a [`DataSummary`].
#[derive(Debug)]
pub struct SummaryBuilder {
    rows: u64,
    missing: [u64; COLUMNS.len()],
    numeric: Vec<NumericAccumulator>,
}

impl Default for SummaryBuilder {
    fn default() -> Self {
        SummaryBuilder {
            rows: 0,
            missing: [0; COLUMNS.len()],
            numeric: NUMERIC_COLUMNS
                .iter()
                .map(|_| NumericAccumulator::default())
                .collect(),
        }
    }
}

impl SummaryBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one batch; columns are found by name.
    pub fn add(&mut self, batch: &RecordBatch) -> Result<(), StatsError> {
        for (i, column) in COLUMNS.iter().enumerate() {
            let array = batch
                .column_by_name(column)
                .ok_or(StatsError::MissingColumn { column })?;
            self.missing[i] += array.null_count() as u64;
        }
        for (accumulator, column) in self.numeric.iter_mut().zip(NUMERIC_COLUMNS) {
            let array = batch
                .column_by_name(column)
                .ok_or(StatsError::MissingColumn { column })?;
            accumulator.values.reserve(array.len() - array.null_count());
            match array.data_type() {
                DataType::Int64 => array
                    .as_primitive::<Int64Type>()
                    .iter()
                    .flatten()
                    .for_each(|v| accumulator.push(v)),
                DataType::Int8 => array
                    .as_primitive::<Int8Type>()
                    .iter()
                    .flatten()
                    .for_each(|v| accumulator.push(i64::from(v))),
                other => {
                    return Err(StatsError::WrongType {
                        column,
                        found: other.clone(),
                        expected: "Int64 or Int8",
                    });
                }
            }
        }
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    pub fn finish(self) -> DataSummary {
        let rows = self.rows;
        let percent = |missing: u64| {
            if rows == 0 {
                0.0
            } else {
                missing as f64 * 100.0 / rows as f64
            }
        };
        let mut numeric = self.numeric.into_iter();
        let columns = COLUMNS
            .iter()
            .zip(self.missing)
            .map(|(column, missing)| {
                let mut summary = ColumnSummary {
                    column: column.to_string(),
                    count: rows - missing,
                    missing,
                    missing_percent: percent(missing),
                    mean: None,
                    median: None,
                    std: None,
                    min: None,
                    max: None,
                };
                if NUMERIC_COLUMNS.contains(column)
                    && let Some(mut accumulator) = numeric.next()
                {
                    let n = accumulator.values.len();
                    if n > 0 {
                        let (median, min, max) = accumulator.values.median_min_max();
                        summary.mean = Some(accumulator.mean);
                        summary.median = Some(median);
                        summary.min = Some(min);
                        summary.max = Some(max);
                    }
                    if n > 1 {
                        summary.std = Some((accumulator.m2 / (n - 1) as f64).sqrt());
                    }
                }
                summary
            })
            .collect();
        DataSummary { rows, columns }
    }
}

/// The median (mean of the two middle values for an even count), minimum and maximum of a
/// non-empty slice, in linear time; reorders the slice.
fn median_min_max<T: Copy + Ord>(values: &mut [T], to_f64: impl Fn(T) -> f64) -> (f64, f64, f64) {
    let n = values.len();
    let mid = n / 2;
    let (below, upper_middle, above) = values.select_nth_unstable(mid);
    let upper_middle = *upper_middle;
    let min = below.iter().copied().min().unwrap_or(upper_middle);
    let max = above.iter().copied().max().unwrap_or(upper_middle);
    let median = if n % 2 == 1 {
        to_f64(upper_middle)
    } else {
        let lower_middle = below.iter().copied().max().unwrap_or(upper_middle);
        (to_f64(lower_middle) + to_f64(upper_middle)) / 2.0
    };
    (median, to_f64(min), to_f64(max))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int8Array, Int64Array, StringArray};

    use super::*;
    use crate::data::schema::client_schema;

    type Row<'a> = (
        Option<&'a str>,
        Option<i64>,
        Option<i64>,
        Option<i64>,
        Option<i8>,
    );

    fn batch(rows: &[Row]) -> RecordBatch {
        RecordBatch::try_new(
            client_schema(),
            vec![
                Arc::new(StringArray::from(
                    rows.iter().map(|r| r.0).collect::<Vec<_>>(),
                )),
                Arc::new(Int64Array::from(
                    rows.iter().map(|r| r.1).collect::<Vec<_>>(),
                )),
                Arc::new(Int64Array::from(
                    rows.iter().map(|r| r.2).collect::<Vec<_>>(),
                )),
                Arc::new(Int64Array::from(
                    rows.iter().map(|r| r.3).collect::<Vec<_>>(),
                )),
                Arc::new(Int8Array::from(
                    rows.iter().map(|r| r.4).collect::<Vec<_>>(),
                )),
            ],
        )
        .unwrap()
    }

    #[test]
    fn matches_pandas_on_a_small_set_split_across_batches() {
        // pandas: df.mean() / df.median() / df.std() on lastmonth_activity = [1, 2, 3, 10]
        // -> 4.0, 2.5, 4.082483 ; number_of_employees = [5, NaN, 7, 9] -> 7.0, 7.0, 2.0
        let mut builder = SummaryBuilder::new();
        builder
            .add(&batch(&[
                (Some("a"), Some(1), Some(10), Some(5), Some(0)),
                (Some("b"), Some(2), None, None, Some(1)),
            ]))
            .unwrap();
        builder
            .add(&batch(&[
                (None, Some(3), Some(30), Some(7), Some(0)),
                (Some("d"), Some(10), Some(40), Some(9), None),
            ]))
            .unwrap();
        let summary = builder.finish();
        assert_eq!(summary.rows, 4);

        let activity = summary.column("lastmonth_activity").unwrap();
        assert_eq!(activity.mean, Some(4.0));
        assert_eq!(activity.median, Some(2.5));
        assert!((activity.std.unwrap() - 4.082_482_904_638_63).abs() < 1e-12);
        assert_eq!((activity.min, activity.max), (Some(1.0), Some(10.0)));

        let employees = summary.column("number_of_employees").unwrap();
        assert_eq!(
            (employees.mean, employees.median, employees.std),
            (Some(7.0), Some(7.0), Some(2.0))
        );
        assert_eq!(employees.missing, 1);
        assert_eq!(employees.missing_percent, 25.0);

        let corporation = summary.column("corporation").unwrap();
        assert_eq!((corporation.missing, corporation.mean), (1, None));
        assert_eq!(summary.column("exited").unwrap().missing_percent, 25.0);
    }

    #[test]
    fn values_beyond_u32_switch_to_wide_storage_without_changing_results() {
        let big = 5_000_000_000i64;
        let mut builder = SummaryBuilder::new();
        builder
            .add(&batch(&[
                (Some("a"), Some(3), Some(1), Some(1), Some(0)),
                (Some("b"), Some(1), Some(1), Some(1), Some(0)),
            ]))
            .unwrap();
        builder
            .add(&batch(&[
                (Some("c"), Some(big), Some(1), Some(1), Some(1)),
                (Some("d"), Some(2), Some(1), Some(1), Some(1)),
            ]))
            .unwrap();
        let summary = builder.finish();
        let activity = summary.column("lastmonth_activity").unwrap();
        assert_eq!(activity.median, Some(2.5));
        assert_eq!((activity.min, activity.max), (Some(1.0), Some(big as f64)));
        assert_eq!(summary.column("exited").unwrap().median, Some(0.5));
    }

    #[test]
    fn empty_and_single_value_sets_have_no_undefined_numbers() {
        let summary = SummaryBuilder::new().finish();
        assert_eq!(summary.rows, 0);
        assert!(
            summary
                .columns
                .iter()
                .all(|c| c.missing_percent == 0.0 && c.mean.is_none())
        );

        let mut builder = SummaryBuilder::new();
        builder
            .add(&batch(&[(Some("a"), Some(4), Some(1), Some(1), Some(1))]))
            .unwrap();
        let summary = builder.finish();
        let activity = summary.column("lastmonth_activity").unwrap();
        assert_eq!(
            (activity.mean, activity.median, activity.std),
            (Some(4.0), Some(4.0), None)
        );
    }
}
