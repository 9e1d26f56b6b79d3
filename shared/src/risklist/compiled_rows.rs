//! Where the list's rows come from: the compiled data set, read by row position. The only two
//! reads the list needs are "the rows at positions `first..`" (an incremental build: only the
//! row groups that overlap, the first one sliced) and "every row group, newest first" (a full
//! build), so how the compiled data is laid out is known here and nowhere else in the risk list.
//! The compiled data is a list of Parquet parts (the ingestion record's manifest), in ingestion
//! order, each with its row groups in ingestion order: one sequence of row groups.

use arrow::array::RecordBatch;
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::RiskListError;
use crate::data::DataError;
use crate::data::parquet::read_parquet_row_groups;
use crate::steps::compiled::FetchedPart;

/// One Parquet file of the compiled rows and the rows of each of its row groups.
struct Part {
    name: String,
    data: Bytes,
    group_rows: Vec<u64>,
}

/// The compiled rows: every part from the one at row position `start` on, in compiled order
/// (`name`s are used in messages).
pub struct CompiledRows {
    parts: Vec<Part>,
    /// Position of the first part's first row: 0 unless only the newest parts were fetched.
    start: u64,
}

impl CompiledRows {
    /// One Parquet file as the whole compiled data; refuses bytes that are not Parquet.
    pub fn open(name: &str, data: Bytes) -> Result<Self, DataError> {
        Ok(CompiledRows {
            parts: vec![open_part(name, data)?],
            start: 0,
        })
    }

    /// The compiled data's parts fetched for the rows at positions `from_row..` (the parts of
    /// the ingestion record's manifest that hold them, in order; every part when `from_row` is
    /// 0): enough for [`CompiledRows::rows_from`] that position, a full pass only when 0.
    pub fn of_parts(parts: &[FetchedPart], from_row: u64) -> Result<Self, DataError> {
        let start = parts
            .first()
            .map_or(from_row, |p| p.part.first_row.min(from_row));
        let parts = parts
            .iter()
            .map(|p| open_part(&p.part.key, p.bytes.clone()))
            .collect::<Result<_, _>>()?;
        Ok(CompiledRows { parts, start })
    }

    /// Rows in the whole data set.
    pub fn row_count(&self) -> u64 {
        self.start + self.parts.iter().flat_map(|p| &p.group_rows).sum::<u64>()
    }

    /// Every row group as (part, group within it, position of its first row), in order.
    fn groups(&self) -> Vec<(usize, usize, u64)> {
        let mut groups = Vec::new();
        let mut start = self.start;
        for (part, p) in self.parts.iter().enumerate() {
            for (group, &rows) in p.group_rows.iter().enumerate() {
                groups.push((part, group, start));
                start += rows;
            }
        }
        groups
    }

    fn decode(&self, part: usize, groups: Vec<usize>) -> Result<Vec<RecordBatch>, DataError> {
        let p = &self.parts[part];
        read_parquet_row_groups(&p.name, p.data.clone(), Some(groups))?.collect()
    }

    /// The rows at positions `first..`, in compiled order: only the row groups that hold them
    /// are decoded (only the parts that hold them are touched), and the first of them is sliced.
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
        let mut wanted: Vec<(usize, Vec<usize>)> = Vec::new();
        let mut skip = None;
        for (part, group, start) in self.groups() {
            if start + self.parts[part].group_rows[group] <= first {
                continue;
            }
            skip.get_or_insert(first.saturating_sub(start));
            match wanted.last_mut() {
                Some((last, groups)) if *last == part => groups.push(group),
                _ => wanted.push((part, vec![group])),
            }
        }
        let mut skip = skip.unwrap_or(0);
        let mut batches = Vec::new();
        for (part, groups) in wanted {
            for batch in self.decode(part, groups)? {
                let rows = batch.num_rows() as u64;
                if skip >= rows {
                    skip -= rows;
                    continue;
                }
                let offset = usize::try_from(skip).unwrap_or(usize::MAX);
                batches.push(batch.slice(offset, batch.num_rows() - offset));
                skip = 0;
            }
        }
        Ok(batches)
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
            if decoder.join().is_err() {
                return Err(RiskListError::Encode {
                    format: "a worker thread",
                    detail: "it panicked".to_string(),
                });
            }
            outcome
        })
    }
}

/// A part's footer: the rows of each row group; refuses bytes that are not Parquet.
fn open_part(name: &str, data: Bytes) -> Result<Part, DataError> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(data.clone()).map_err(|source| {
        DataError::NotParquet {
            file: name.to_string(),
            source,
        }
    })?;
    let group_rows = builder
        .metadata()
        .row_groups()
        .iter()
        .map(|g| u64::try_from(g.num_rows()).unwrap_or(0))
        .collect();
    Ok(Part {
        name: name.to_string(),
        data,
        group_rows,
    })
}
