//! Summary statistics of a client data set, as the diagnostics and the API report them: for every
//! numeric column the mean, median and standard deviation (sample, `ddof = 1`, as pandas
//! computes it) of the values present, and for every column the count and percentage of missing
//! values. Fed one record batch at a time; what is kept is each numeric column's value counts
//! ([`DataStatistics`]), exact and mergeable, so statistics of parts add up to the whole's.

use std::collections::BTreeMap;

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

/// Values below this are counted in a dense table indexed by value (counts and activities are
/// small non-negative integers: at XL the largest is about 400,000, 3 MB of counters); others
/// in a map.
const DENSE_VALUES: i64 = 1 << 20;

/// How often each value of one column occurs: the exact, mergeable form of everything the
/// summary reports (the median needs the whole distribution; integers make it small, a few
/// thousand distinct values in a 100,000-row monthly file).
#[derive(Debug, Default)]
struct ValueCounter {
    dense: Vec<u64>,
    sparse: foldhash::HashMap<i64, u64>,
}

impl ValueCounter {
    #[inline]
    fn push(&mut self, value: i64) {
        if (0..DENSE_VALUES).contains(&value) {
            let index = value as usize;
            if index >= self.dense.len() {
                self.dense.resize((index + 1).next_power_of_two(), 0);
            }
            self.dense[index] += 1;
        } else {
            *self.sparse.entry(value).or_default() += 1;
        }
    }

    fn into_counts(self) -> ValueCounts {
        let mut pairs: Vec<(i64, u64)> = self.sparse.into_iter().collect();
        pairs.extend(
            self.dense
                .iter()
                .enumerate()
                .filter(|(_, count)| **count > 0)
                .map(|(value, count)| (value as i64, *count)),
        );
        pairs.sort_unstable();
        ValueCounts {
            values: pairs.iter().map(|(value, _)| *value).collect(),
            counts: pairs.iter().map(|(_, count)| *count).collect(),
        }
    }
}

/// The distinct values of one numeric column, ascending, and how often each occurs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValueCounts {
    pub values: Vec<i64>,
    pub counts: Vec<u64>,
}

impl ValueCounts {
    fn merge(&self, other: &ValueCounts) -> ValueCounts {
        let mut merged = ValueCounts::default();
        let (mut i, mut j) = (0, 0);
        while i < self.values.len() || j < other.values.len() {
            let take_left = j >= other.values.len()
                || (i < self.values.len() && self.values[i] <= other.values[j]);
            let take_right = i >= self.values.len()
                || (j < other.values.len() && other.values[j] <= self.values[i]);
            let value = if take_left {
                self.values[i]
            } else {
                other.values[j]
            };
            let mut count = 0;
            if take_left {
                count += self.counts[i];
                i += 1;
            }
            if take_right {
                count += other.counts[j];
                j += 1;
            }
            merged.values.push(value);
            merged.counts.push(count);
        }
        merged
    }

    fn is_well_formed(&self) -> bool {
        self.values.len() == self.counts.len()
            && self.values.windows(2).all(|pair| pair[0] < pair[1])
            && self.counts.iter().all(|&count| count > 0)
    }

    fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The value at sorted position `position` (0-based) of the whole distribution.
    fn value_at(&self, position: u64) -> i64 {
        let mut seen = 0;
        for (value, count) in self.values.iter().zip(&self.counts) {
            seen += count;
            if seen > position {
                return *value;
            }
        }
        self.values.last().copied().unwrap_or(0)
    }

    /// Mean and sample variance numerator (`Σ (x − mean)²`): from exact integer sums when they
    /// fit in 128 bits, else in floating point over the distinct values.
    fn mean_and_m2(&self, n: u64) -> (f64, f64) {
        let exact = self.values.iter().zip(&self.counts).try_fold(
            (0i128, 0i128),
            |(sum, squares), (&value, &count)| {
                let value = i128::from(value);
                let count = i128::from(count);
                Some((
                    sum.checked_add(value.checked_mul(count)?)?,
                    squares.checked_add(value.checked_mul(value)?.checked_mul(count)?)?,
                ))
            },
        );
        let n_wide = i128::from(n);
        if let Some((sum, squares)) = exact
            && let Some(numerator) = n_wide
                .checked_mul(squares)
                .and_then(|scaled| scaled.checked_sub(sum.checked_mul(sum)?))
        {
            // Σ (x − mean)² = (n Σx² − (Σx)²) / n, exact up to the last division.
            return (sum as f64 / n as f64, numerator as f64 / n as f64);
        }
        let mean = self
            .values
            .iter()
            .zip(&self.counts)
            .map(|(&value, &count)| value as f64 * count as f64)
            .sum::<f64>()
            / n as f64;
        let m2 = self
            .values
            .iter()
            .zip(&self.counts)
            .map(|(&value, &count)| count as f64 * (value as f64 - mean).powi(2))
            .sum();
        (mean, m2)
    }
}

/// The exact, mergeable statistics of a set of client rows: the row count, missing values per
/// column and every numeric column's value counts. The summary is a function of these alone,
/// so statistics kept per compiled part and merged give exactly the numbers of one pass over
/// all rows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataStatistics {
    pub rows: u64,
    /// Per column of the client schema.
    pub missing: BTreeMap<String, u64>,
    /// Per numeric column.
    pub values: BTreeMap<String, ValueCounts>,
}

impl DataStatistics {
    /// Adds `other`'s rows to these.
    pub fn merge(&mut self, other: &DataStatistics) {
        self.rows += other.rows;
        for (column, missing) in &other.missing {
            *self.missing.entry(column.clone()).or_default() += missing;
        }
        for (column, counts) in &other.values {
            let merged = match self.values.get(column) {
                Some(mine) => mine.merge(counts),
                None => counts.clone(),
            };
            self.values.insert(column.clone(), merged);
        }
    }

    /// Whether these are statistics of `rows` rows of the client schema (what a stored copy must
    /// be before it is used).
    pub fn describes(&self, rows: u64) -> bool {
        self.rows == rows
            && COLUMNS.iter().all(|column| {
                self.missing
                    .get(*column)
                    .is_some_and(|&missing| missing <= rows)
            })
            && NUMERIC_COLUMNS.iter().all(|column| {
                let present = self
                    .missing
                    .get(*column)
                    .and_then(|&missing| rows.checked_sub(missing));
                self.values.get(*column).is_some_and(|counts| {
                    counts.is_well_formed() && Some(counts.total()) == present
                })
            })
    }

    /// The summary the diagnostics report.
    pub fn summary(&self) -> DataSummary {
        let rows = self.rows;
        let columns = COLUMNS
            .iter()
            .map(|column| {
                let missing = self.missing.get(*column).copied().unwrap_or(0);
                let mut summary = ColumnSummary {
                    column: column.to_string(),
                    count: rows.saturating_sub(missing),
                    missing,
                    missing_percent: if rows == 0 {
                        0.0
                    } else {
                        missing as f64 * 100.0 / rows as f64
                    },
                    mean: None,
                    median: None,
                    std: None,
                    min: None,
                    max: None,
                };
                if let Some(counts) = self.values.get(*column) {
                    let n = counts.total();
                    if n > 0 {
                        let (mean, m2) = counts.mean_and_m2(n);
                        let lower_middle = counts.value_at((n - 1) / 2) as f64;
                        let upper_middle = counts.value_at(n / 2) as f64;
                        summary.mean = Some(mean);
                        summary.median = Some(if n % 2 == 1 {
                            upper_middle
                        } else {
                            (lower_middle + upper_middle) / 2.0
                        });
                        summary.min = counts.values.first().map(|&v| v as f64);
                        summary.max = counts.values.last().map(|&v| v as f64);
                        if n > 1 {
                            summary.std = Some((m2 / (n - 1) as f64).sqrt());
                        }
                    }
                }
                summary
            })
            .collect();
        DataSummary { rows, columns }
    }
}

/// Accumulates batches of the client schema into [`DataStatistics`] and a [`DataSummary`].
#[derive(Debug)]
pub struct SummaryBuilder {
    rows: u64,
    missing: [u64; COLUMNS.len()],
    numeric: Vec<ValueCounter>,
}

impl Default for SummaryBuilder {
    fn default() -> Self {
        SummaryBuilder {
            rows: 0,
            missing: [0; COLUMNS.len()],
            numeric: NUMERIC_COLUMNS
                .iter()
                .map(|_| ValueCounter::default())
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
        for (counter, column) in self.numeric.iter_mut().zip(NUMERIC_COLUMNS) {
            let array = batch
                .column_by_name(column)
                .ok_or(StatsError::MissingColumn { column })?;
            match array.data_type() {
                DataType::Int64 => array
                    .as_primitive::<Int64Type>()
                    .iter()
                    .flatten()
                    .for_each(|v| counter.push(v)),
                DataType::Int8 => array
                    .as_primitive::<Int8Type>()
                    .iter()
                    .flatten()
                    .for_each(|v| counter.push(i64::from(v))),
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

    /// The statistics of every row added.
    pub fn statistics(self) -> DataStatistics {
        DataStatistics {
            rows: self.rows,
            missing: COLUMNS
                .iter()
                .zip(self.missing)
                .map(|(column, missing)| (column.to_string(), missing))
                .collect(),
            values: NUMERIC_COLUMNS
                .iter()
                .zip(self.numeric)
                .map(|(column, counter)| (column.to_string(), counter.into_counts()))
                .collect(),
        }
    }

    pub fn finish(self) -> DataSummary {
        self.statistics().summary()
    }
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
    fn values_beyond_the_dense_table_are_counted_alike() {
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

        // Negative values, and sums beyond 128 bits (the floating-point fallback).
        let mut builder = SummaryBuilder::new();
        let huge = 5_000_000_000_000_000_000i64;
        builder
            .add(&batch(&[
                (Some("a"), Some(-3), Some(huge), Some(1), Some(0)),
                (Some("b"), Some(-1), Some(huge), Some(1), Some(0)),
                (Some("c"), Some(-2), Some(huge), Some(1), Some(0)),
            ]))
            .unwrap();
        let summary = builder.finish();
        let activity = summary.column("lastmonth_activity").unwrap();
        assert_eq!(
            (activity.mean, activity.median, activity.std),
            (Some(-2.0), Some(-2.0), Some(1.0))
        );
        let yearly = summary.column("lastyear_activity").unwrap();
        assert_eq!(
            (yearly.mean, yearly.median, yearly.std),
            (Some(huge as f64), Some(huge as f64), Some(0.0))
        );
    }

    #[test]
    fn statistics_of_parts_merge_into_those_of_the_whole() {
        let rows: Vec<Row> = (0..40i64)
            .map(|i| {
                (
                    (i % 7 != 0).then_some("c"),
                    (i % 5 != 0).then_some((i * 37) % 11),
                    Some(i * i - 300),
                    (i % 3 != 0).then_some(2_000_000 + i % 4),
                    Some((i % 2) as i8),
                )
            })
            .collect();
        let mut whole = SummaryBuilder::new();
        whole.add(&batch(&rows)).unwrap();
        let whole = whole.statistics();
        assert!(whole.describes(40));
        let mut merged = DataStatistics::default();
        // Parts in another order than the rows': merging is order-free.
        for part in [&rows[25..], &rows[..10], &rows[10..25]] {
            let mut builder = SummaryBuilder::new();
            builder.add(&batch(part)).unwrap();
            merged.merge(&builder.statistics());
        }
        assert_eq!(merged, whole);
        assert_eq!(merged.summary(), whole.summary());
        // A copy that does not add up is not taken for the part's statistics.
        let mut broken = whole.clone();
        broken.values.get_mut("exited").unwrap().counts[0] += 1;
        assert!(!broken.describes(40));
        assert!(!whole.describes(41));
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
