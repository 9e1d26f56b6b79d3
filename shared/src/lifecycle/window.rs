//! Which compiled rows a new model is trained and validated on. Ingestion appends each file's
//! new rows after everything compiled before, so the ingestion record's per-file counts map every
//! file to a contiguous range of compiled rows. A window is the newest files (or, after a
//! detected drift, the drifted rows, extended into older files only as far as needed for enough
//! rows); its newest file is held out for validation when the window spans several files
//! (held out by time), otherwise a fixed, row-index-hashed share of it (a monthly snapshot has
//! no time order inside it).

use std::ops::Range;

use arrow::array::{BooleanArray, RecordBatch};
use arrow::compute::filter_record_batch;
use serde::{Deserialize, Serialize};

use super::LifecycleSettings;
use crate::records::{FileOutcome, IngestionRecord};

/// The compiled rows one ingested file contributed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRows {
    pub key: String,
    pub version_id: String,
    /// Row range in the compiled data.
    pub rows: Range<u64>,
}

/// Every ingested file's row range, in compiled order. `None` when the counts do not add up to
/// the compiled rows (a record from another layout): then the caller treats the compiled data
/// as one block.
pub fn file_rows(record: &IngestionRecord) -> Option<Vec<FileRows>> {
    let compiled = record.compiled.as_ref()?;
    let mut start = 0u64;
    let mut files = Vec::new();
    for file in record
        .files
        .iter()
        .filter(|f| f.outcome == FileOutcome::Ingested)
    {
        let added = file.rows_accepted.checked_sub(file.rows_duplicate)?;
        if added == 0 {
            continue;
        }
        files.push(FileRows {
            key: file.key.clone(),
            version_id: file.version_id.clone(),
            rows: start..start + added,
        });
        start += added;
    }
    (start == compiled.rows).then_some(files)
}

/// How the validation rows are taken from the window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Validation {
    /// The newest rows of the window (its newest file): validation by time.
    Newest { rows: Range<u64> },
    /// A fixed share of the window's rows, chosen by a hash of the row index (deterministic).
    Sampled { share: f64 },
    /// No validation rows: the window is too small to spare any.
    None { reason: String },
}

/// The rows a model is trained and validated on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingWindow {
    /// Compiled rows in the window (training and validation).
    pub rows: Range<u64>,
    /// The files the window covers, oldest first (empty when the compiled data is one block).
    pub files: Vec<String>,
    pub validation: Validation,
    /// Why this window, in words.
    pub reason: String,
}

impl TrainingWindow {
    /// All compiled rows, no validation: the original system's training set.
    pub fn everything(total_rows: u64) -> Self {
        TrainingWindow {
            rows: 0..total_rows,
            files: Vec::new(),
            validation: Validation::None {
                reason: "the original rule trains on all compiled data".into(),
            },
            reason: "all compiled data (original rule)".into(),
        }
    }

    /// Chooses the window over `files` (see the module documentation). `since_row`: the first
    /// row of a detected drift, where the window starts unless that leaves too few rows.
    pub fn choose(
        files: Option<&[FileRows]>,
        total_rows: u64,
        since_row: Option<u64>,
        settings: &LifecycleSettings,
    ) -> Self {
        let min_rows = settings.min_training_rows as u64;
        let Some(files) = files.filter(|f| !f.is_empty()) else {
            let start = since_row
                .filter(|&row| total_rows - row.min(total_rows) >= min_rows)
                .unwrap_or(0);
            return Self::with_validation(
                start..total_rows,
                Vec::new(),
                format!("compiled rows {start}..{total_rows} (no per-file row counts)"),
                settings,
            );
        };
        let rows_from = |index: usize| total_rows - files[index].rows.start;
        let cap = settings.training_window_files;
        let mut first = match since_row {
            // The file holding the first drifted row; older files only to reach the minimum.
            Some(row) => files
                .iter()
                .position(|f| f.rows.end > row)
                .unwrap_or(files.len() - 1),
            None => files.len().saturating_sub(cap),
        };
        while first > 0
            && rows_from(first) < min_rows
            && (since_row.is_none() || files.len() - first < cap)
        {
            first -= 1;
        }
        let chosen = &files[first..];
        let keys: Vec<String> = chosen.iter().map(|f| f.key.clone()).collect();
        let reason = match since_row {
            Some(_) => format!(
                "the {} newest file(s) from the drift on ({} rows): rows from before the change are left out",
                keys.len(),
                rows_from(first)
            ),
            None => format!(
                "the {} newest file(s) ({} rows; at most {cap})",
                keys.len(),
                rows_from(first)
            ),
        };
        let window_start = files[first].rows.start;
        let mut window = Self::with_validation(window_start..total_rows, keys, reason, settings);
        // Several files: the newest is held out by time when both sides have enough rows.
        if let [_, .., newest] = chosen {
            let min = settings.min_validation_rows as u64;
            let newest_rows = newest.rows.end - newest.rows.start;
            if newest_rows >= min && newest.rows.start - window_start >= min {
                window.validation = Validation::Newest {
                    rows: newest.rows.clone(),
                };
            }
        }
        window
    }

    fn with_validation(
        rows: Range<u64>,
        files: Vec<String>,
        reason: String,
        settings: &LifecycleSettings,
    ) -> Self {
        let count = rows.end - rows.start;
        let sampled = (count as f64 * settings.validation_share).floor() as u64;
        let validation = if sampled >= settings.min_validation_rows as u64 {
            Validation::Sampled {
                share: settings.validation_share,
            }
        } else {
            Validation::None {
                reason: format!(
                    "{count} rows in the window: too few to hold out {} for validation",
                    settings.min_validation_rows
                ),
            }
        };
        TrainingWindow {
            rows,
            files,
            validation,
            reason,
        }
    }

    /// Splits `batches` (the compiled rows from position `first_row` on, in order: all of them
    /// from 0, or only the window's from `self.rows.start`) into training and validation
    /// batches; rows outside the window are left out.
    pub fn split(
        &self,
        batches: &[RecordBatch],
        first_row: u64,
    ) -> (Vec<RecordBatch>, Vec<RecordBatch>) {
        let mut train = Vec::new();
        let mut validation = Vec::new();
        let mut offset = first_row;
        for batch in batches {
            let len = batch.num_rows() as u64;
            let (start, end) = (offset, offset + len);
            offset = end;
            let lo = start.max(self.rows.start);
            let hi = end.min(self.rows.end);
            if lo >= hi {
                continue;
            }
            let slice = batch.slice((lo - start) as usize, (hi - lo) as usize);
            match &self.validation {
                Validation::None { .. } => train.push(slice),
                Validation::Newest { rows } => {
                    let cut = rows.start.clamp(lo, hi);
                    if cut > lo {
                        train.push(slice.slice(0, (cut - lo) as usize));
                    }
                    if hi > cut {
                        validation.push(slice.slice((cut - lo) as usize, (hi - cut) as usize));
                    }
                }
                Validation::Sampled { share } => {
                    let held: Vec<bool> = (lo..hi).map(|row| held_out(row, *share)).collect();
                    let kept: Vec<bool> = held.iter().map(|h| !h).collect();
                    // Filtering with a mask of the slice's length cannot fail.
                    if let Ok(part) = filter_record_batch(&slice, &BooleanArray::from(kept)) {
                        train.push(part);
                    }
                    if let Ok(part) = filter_record_batch(&slice, &BooleanArray::from(held)) {
                        validation.push(part);
                    }
                }
            }
        }
        (train, validation)
    }
}

/// Whether compiled row `row` is held out at `share`: a SplitMix64 hash of the index, so the
/// split is the same in every run and independent of batch boundaries.
fn held_out(row: u64, share: f64) -> bool {
    let mut z = row.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    ((z >> 11) as f64 / (1u64 << 53) as f64) < share
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(sizes: &[u64]) -> Vec<FileRows> {
        let mut start = 0;
        sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                let f = FileRows {
                    key: format!("m{i}.csv"),
                    version_id: "v".into(),
                    rows: start..start + n,
                };
                start += n;
                f
            })
            .collect()
    }

    #[test]
    fn newest_files_with_the_newest_held_out_by_time() {
        let files = files(&[1000, 1000, 1000, 1000, 1000, 1000]);
        let window =
            TrainingWindow::choose(Some(&files), 6000, None, &LifecycleSettings::default());
        assert_eq!(window.rows, 3000..6000);
        assert_eq!(window.files, ["m3.csv", "m4.csv", "m5.csv"]);
        assert_eq!(window.validation, Validation::Newest { rows: 5000..6000 });
    }

    #[test]
    fn after_a_drift_the_window_starts_at_the_drifted_rows() {
        let files = files(&[1000, 1000, 1000, 1000]);
        let settings = LifecycleSettings::default();
        let window = TrainingWindow::choose(Some(&files), 4000, Some(3000), &settings);
        assert_eq!(window.rows, 3000..4000);
        assert_eq!(window.validation, Validation::Sampled { share: 0.3 });
        // Too few drifted rows: older files are added until the minimum is met.
        let small = self::files(&[300, 300, 300, 300]);
        let window = TrainingWindow::choose(Some(&small), 1200, Some(900), &settings);
        assert_eq!(window.rows, 600..1200);
        assert_eq!(window.validation, Validation::Newest { rows: 900..1200 });
    }

    #[test]
    fn a_tiny_window_has_no_validation() {
        let files = files(&[12, 14]);
        let window = TrainingWindow::choose(Some(&files), 26, None, &LifecycleSettings::default());
        assert_eq!(window.rows, 0..26);
        assert!(matches!(window.validation, Validation::None { .. }));
    }

    #[test]
    fn sampled_split_is_deterministic_and_near_its_share() {
        let held = (0..10_000u64).filter(|&r| held_out(r, 0.3)).count();
        assert!((2800..3200).contains(&held), "{held}");
        assert_eq!(held, (0..10_000u64).filter(|&r| held_out(r, 0.3)).count());
    }
}
