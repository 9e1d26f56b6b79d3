//! Where the list's rows come from: the compiled data set, read by row position. The only two
//! reads the list needs are "the rows at positions `first..`" (an incremental build: only the
//! row groups that overlap, the first one sliced) and "every row group, newest first" (a full
//! build), so how the compiled data is laid out is known here and nowhere else in the risk list.
//! The compiled data is a list of Parquet parts (the ingestion record's manifest), in ingestion
//! order, each with its row groups in ingestion order: one sequence of row groups.

use arrow::array::RecordBatch;

use super::{RiskListError, joined};
use crate::data::DataError;
use crate::data::parquet::{parquet_row_group_rows, read_parquet_row_groups};
use crate::steps::compiled::{FetchedPart, decode_rows};

/// The compiled rows: every part from the one at row position `start` on, in compiled order,
/// with the rows of each of its row groups.
pub struct CompiledRows {
    parts: Vec<FetchedPart>,
    group_rows: Vec<Vec<u64>>,
    /// Position of the first part's first row: 0 unless only the newest parts were fetched.
    start: u64,
}

impl CompiledRows {
    /// The compiled data's parts fetched for the rows at positions `from_row..` (the parts of
    /// the ingestion record's manifest that hold them, in order; every part when `from_row` is
    /// 0): enough for [`CompiledRows::rows_from`] that position, a full pass only when 0.
    /// Refuses parts that are not Parquet.
    pub fn of_parts(parts: &[FetchedPart], from_row: u64) -> Result<Self, DataError> {
        let start = parts
            .first()
            .map_or(from_row, |p| p.part.first_row.min(from_row));
        let group_rows = parts
            .iter()
            .map(|p| parquet_row_group_rows(&p.part.key, p.bytes.clone()))
            .collect::<Result<_, _>>()?;
        Ok(CompiledRows {
            parts: parts.to_vec(),
            group_rows,
            start,
        })
    }

    /// Rows in the whole data set.
    pub fn row_count(&self) -> u64 {
        self.start + self.group_rows.iter().flatten().sum::<u64>()
    }

    /// Every row group as (part, group within it, position of its first row), in order.
    fn groups(&self) -> Vec<(usize, usize, u64)> {
        let mut groups = Vec::new();
        let mut start = self.start;
        for (part, rows_of) in self.group_rows.iter().enumerate() {
            for (group, &rows) in rows_of.iter().enumerate() {
                groups.push((part, group, start));
                start += rows;
            }
        }
        groups
    }

    fn decode(&self, part: usize, groups: Vec<usize>) -> Result<Vec<RecordBatch>, DataError> {
        let p = &self.parts[part];
        read_parquet_row_groups(&p.part.key, p.bytes.clone(), Some(groups))?.collect()
    }

    /// The rows at positions `first..`, in compiled order (through the compiled data's own
    /// reader: only the row groups that hold them are decoded, the first one sliced).
    pub fn rows_from(&self, first: u64) -> Result<Vec<RecordBatch>, RiskListError> {
        if first < self.start {
            return Err(RiskListError::Encode {
                format: "the compiled rows",
                detail: format!(
                    "rows from {first} were asked for, but only the parts from row {} were read",
                    self.start
                ),
            });
        }
        Ok(decode_rows(&self.parts, None, first)?)
    }

    /// Calls `visit` with every row group, newest first: the position of its first row and its
    /// batches in file order. The next group is decoded on a second thread while `visit` works
    /// on one, so at most two decoded groups are held at a time.
    pub fn visit_groups_newest_first(
        &self,
        mut visit: impl FnMut(u64, Vec<RecordBatch>) -> Result<(), RiskListError>,
    ) -> Result<(), RiskListError> {
        if self.start > 0 {
            return Err(RiskListError::Encode {
                format: "the compiled rows",
                detail: format!(
                    "a full pass needs every part, but only those from row {} were read",
                    self.start
                ),
            });
        }
        let groups = self.groups();
        std::thread::scope(|scope| {
            // A rendezvous channel: the decoder waits until the group before is taken.
            let (sender, receiver) = std::sync::mpsc::sync_channel(0);
            let decoder = scope.spawn(move || {
                for &(part, group, start) in groups.iter().rev() {
                    let decoded = self.decode(part, vec![group]);
                    let failed = decoded.is_err();
                    if sender.send((start, decoded)).is_err() || failed {
                        return;
                    }
                }
            });
            let mut outcome = Ok(());
            for (start, decoded) in receiver.iter() {
                outcome = decoded
                    .map_err(RiskListError::from)
                    .and_then(|batches| visit(start, batches));
                if outcome.is_err() {
                    break;
                }
            }
            // Dropping the receiver ends the decoder at its next send.
            drop(receiver);
            joined(decoder, "the row-group decoder")?;
            outcome
        })
    }
}
