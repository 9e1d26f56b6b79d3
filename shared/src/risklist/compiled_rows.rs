//! Where the list's rows come from: the compiled data set, read by row position. The only two
//! reads the list needs are "the rows at positions `first..`" (an incremental build: only the
//! row groups that overlap, the first one sliced) and "every row group, newest first" (a full
//! build), so the storage layout of the compiled data is known here and nowhere else in the
//! risk list. Today the compiled data is one Parquet file whose row groups are in ingestion
//! order.

use arrow::array::RecordBatch;
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::RiskListError;
use crate::data::DataError;
use crate::data::parquet::read_parquet_row_groups;

/// The compiled rows of one Parquet file (`name` is used in messages).
pub struct CompiledRows {
    name: String,
    data: Bytes,
    /// Rows in each row group, in file order.
    group_rows: Vec<u64>,
}

impl CompiledRows {
    /// Opens the file's footer; refuses bytes that are not Parquet.
    pub fn open(name: &str, data: Bytes) -> Result<Self, DataError> {
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
        Ok(CompiledRows {
            name: name.to_string(),
            data,
            group_rows,
        })
    }

    /// Rows in the whole data set.
    pub fn row_count(&self) -> u64 {
        self.group_rows.iter().sum()
    }

    /// The rows at positions `first..`, in compiled order: only the row groups that hold them
    /// are decoded, and the first of them is sliced.
    pub fn rows_from(&self, first: u64) -> Result<Vec<RecordBatch>, DataError> {
        let mut start = 0;
        let mut groups = Vec::new();
        let mut skip = 0;
        for (group, &rows) in self.group_rows.iter().enumerate() {
            if start + rows > first {
                if groups.is_empty() {
                    skip = first.saturating_sub(start);
                }
                groups.push(group);
            }
            start += rows;
        }
        if groups.is_empty() {
            return Ok(Vec::new());
        }
        let mut batches = Vec::new();
        for batch in read_parquet_row_groups(&self.name, self.data.clone(), Some(groups))? {
            let batch = batch?;
            let rows = batch.num_rows() as u64;
            if skip >= rows {
                skip -= rows;
                continue;
            }
            let offset = usize::try_from(skip).unwrap_or(usize::MAX);
            batches.push(batch.slice(offset, batch.num_rows() - offset));
            skip = 0;
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
        let mut starts = Vec::with_capacity(self.group_rows.len());
        let mut start = 0;
        for rows in &self.group_rows {
            starts.push(start);
            start += rows;
        }
        std::thread::scope(|scope| {
            // A rendezvous channel: the decoder waits until the group before is taken.
            let (sender, receiver) = std::sync::mpsc::sync_channel(0);
            let decoder = scope.spawn(move || {
                for group in (0..self.group_rows.len()).rev() {
                    let decoded =
                        read_parquet_row_groups(&self.name, self.data.clone(), Some(vec![group]))
                            .and_then(|reader| reader.collect::<Result<Vec<_>, _>>());
                    let failed = decoded.is_err();
                    if sender.send((starts[group], decoded)).is_err() || failed {
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
