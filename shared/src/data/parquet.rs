//! Parquet at rest: writing a stream of client-schema batches (snappy-compressed) to any
//! `Write + Send`, and reading Parquet bytes back as batches of the client schema. It owns the
//! storage format of the compiled data set and refuses batches or files whose columns are not
//! exactly the client schema's (names and types, in canonical order), so nothing downstream has
//! to check again.

use std::io::Write;

use arrow::datatypes::Schema;
use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::arrow::{ArrowWriter, ProjectionMask};
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;

use super::error::DataError;
use super::schema::{FEATURES, client_schema};

/// Rows per row group. A row group is buffered in memory (encoded and compressed, a few tens of
/// megabytes at most for this schema) before it is written, and it is the unit a reader can
/// skip; a million rows keeps both the memory on Lambda and the per-group overhead small.
pub const PARQUET_ROW_GROUP_ROWS: usize = 1024 * 1024;

/// Rows per batch when reading.
pub const PARQUET_READ_BATCH_ROWS: usize = 64 * 1024;

/// Writes client-schema batches as one Parquet file.
pub struct ParquetBatchWriter<W: Write + Send> {
    name: String,
    writer: ArrowWriter<W>,
    rows: u64,
}

impl<W: Write + Send> ParquetBatchWriter<W> {
    /// Starts a Parquet file on `sink`; `name` is used in messages.
    pub fn new(name: impl Into<String>, sink: W) -> Result<Self, DataError> {
        let name = name.into();
        // Dictionary encoding pays for the corporation codes (a few thousand clients repeated
        // every month) and the 0/1 target, not for the activity counts and sizes, which have too
        // many distinct values: it cost a hash-table insert per value and then fell back.
        let mut properties = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(PARQUET_ROW_GROUP_ROWS));
        for column in FEATURES {
            properties = properties.set_column_dictionary_enabled(ColumnPath::from(column), false);
        }
        let properties = properties.build();
        let writer =
            ArrowWriter::try_new(sink, client_schema(), Some(properties)).map_err(|source| {
                DataError::Parquet {
                    file: name.clone(),
                    source,
                }
            })?;
        Ok(ParquetBatchWriter {
            name,
            writer,
            rows: 0,
        })
    }

    /// Appends a batch; refuses one that is not of the client schema.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), DataError> {
        let batch = conform_to_client_schema(&self.name, batch)?;
        self.writer
            .write(&batch)
            .map_err(|source| DataError::Parquet {
                file: self.name.clone(),
                source,
            })?;
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    /// Writes the footer and returns the number of rows written.
    pub fn finish(self) -> Result<u64, DataError> {
        self.finish_into_inner().map(|(_, rows)| rows)
    }

    /// Writes the footer and hands back the sink (e.g. the buffer the file was written to)
    /// with the number of rows written.
    pub fn finish_into_inner(self) -> Result<(W, u64), DataError> {
        let sink = self
            .writer
            .into_inner()
            .map_err(|source| DataError::Parquet {
                file: self.name,
                source,
            })?;
        Ok((sink, self.rows))
    }
}

/// Writes all `batches` as one Parquet file on `sink` and returns the number of rows written.
pub fn write_parquet<W: Write + Send>(
    name: impl Into<String>,
    sink: W,
    batches: impl IntoIterator<Item = RecordBatch>,
) -> Result<u64, DataError> {
    let mut writer = ParquetBatchWriter::new(name, sink)?;
    for batch in batches {
        writer.write(&batch)?;
    }
    writer.finish()
}

/// Batches of a Parquet file, each of the client schema.
pub struct ParquetBatchReader {
    name: String,
    reader: ParquetRecordBatchReader,
}

impl Iterator for ParquetBatchReader {
    type Item = Result<RecordBatch, DataError>;

    fn next(&mut self) -> Option<Self::Item> {
        let batch = self.reader.next()?;
        Some(
            batch
                .map_err(|source| DataError::Arrow {
                    file: self.name.clone(),
                    source,
                })
                .and_then(|batch| conform_to_client_schema(&self.name, &batch)),
        )
    }
}

/// Opens Parquet `data` (a whole file in memory) for reading; refuses data that is not Parquet
/// or whose columns are not the client schema's.
pub fn read_parquet(name: impl Into<String>, data: Bytes) -> Result<ParquetBatchReader, DataError> {
    read_parquet_row_groups(name, data, None)
}

/// The rows of each row group of Parquet `data`, in file order (the unit a reader can skip or
/// split the file on), from its footer.
pub fn parquet_row_group_rows(name: &str, data: Bytes) -> Result<Vec<u64>, DataError> {
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(data).map_err(|source| DataError::NotParquet {
            file: name.to_string(),
            source,
        })?;
    Ok(builder
        .metadata()
        .row_groups()
        .iter()
        .map(|group| u64::try_from(group.num_rows()).unwrap_or(0))
        .collect())
}

/// [`read_parquet`] of only the row groups `row_groups` (all with `None`), in file order: two
/// threads can each read part of one file.
pub fn read_parquet_row_groups(
    name: impl Into<String>,
    data: Bytes,
    row_groups: Option<Vec<usize>>,
) -> Result<ParquetBatchReader, DataError> {
    let name = name.into();
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(data).map_err(|source| DataError::NotParquet {
            file: name.clone(),
            source,
        })?;
    if let Some(detail) = schema_mismatch(builder.schema()) {
        return Err(DataError::SchemaMismatch { file: name, detail });
    }
    let builder = match row_groups {
        Some(groups) => builder.with_row_groups(groups),
        None => builder,
    };
    let reader = builder
        .with_batch_size(PARQUET_READ_BATCH_ROWS)
        .build()
        .map_err(|source| DataError::Parquet {
            file: name.clone(),
            source,
        })?;
    Ok(ParquetBatchReader { name, reader })
}

/// Batches of only `columns` (names of client-schema columns, in file order) of Parquet `data`,
/// of only the row groups `row_groups` (all with `None`): readers that need a few columns skip
/// decoding the rest (training never reads the corporation codes, the largest column). Refuses
/// files that are not of the client schema.
pub fn read_parquet_columns(
    name: &str,
    data: Bytes,
    columns: &[&str],
    row_groups: Option<Vec<usize>>,
) -> Result<impl Iterator<Item = Result<RecordBatch, DataError>> + use<>, DataError> {
    let name = name.to_string();
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(data).map_err(|source| DataError::NotParquet {
            file: name.clone(),
            source,
        })?;
    if let Some(detail) = schema_mismatch(builder.schema()) {
        return Err(DataError::SchemaMismatch { file: name, detail });
    }
    let schema = client_schema();
    let indices = columns
        .iter()
        .map(|column| {
            schema
                .index_of(column)
                .map_err(|_| DataError::SchemaMismatch {
                    file: name.clone(),
                    detail: format!("there is no column '{column}' in the client schema"),
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mask = ProjectionMask::roots(builder.parquet_schema(), indices);
    let builder = match row_groups {
        Some(groups) => builder.with_row_groups(groups),
        None => builder,
    };
    let reader = builder
        .with_projection(mask)
        .with_batch_size(PARQUET_READ_BATCH_ROWS)
        .build()
        .map_err(|source| DataError::Parquet {
            file: name.clone(),
            source,
        })?;
    Ok(reader.map(move |batch| {
        batch.map_err(|source| DataError::Arrow {
            file: name.clone(),
            source,
        })
    }))
}

/// The batch with exactly the client schema (same columns; nullability and metadata of the
/// source schema dropped), or a schema-mismatch error.
fn conform_to_client_schema(name: &str, batch: &RecordBatch) -> Result<RecordBatch, DataError> {
    let schema = client_schema();
    if batch.schema() == schema {
        return Ok(batch.clone());
    }
    if let Some(detail) = schema_mismatch(&batch.schema()) {
        return Err(DataError::SchemaMismatch {
            file: name.to_string(),
            detail,
        });
    }
    RecordBatch::try_new(schema, batch.columns().to_vec()).map_err(|source| DataError::Arrow {
        file: name.to_string(),
        source,
    })
}

/// What differs between `schema` and the client schema (column names and types, in order).
fn schema_mismatch(schema: &Schema) -> Option<String> {
    let expected = client_schema();
    let matches = schema.fields().len() == expected.fields().len()
        && schema
            .fields()
            .iter()
            .zip(expected.fields())
            .all(|(found, wanted)| {
                found.name() == wanted.name() && found.data_type() == wanted.data_type()
            });
    if matches {
        return None;
    }
    let found = schema
        .fields()
        .iter()
        .map(|field| format!("{}: {}", field.name(), field.data_type()))
        .collect::<Vec<_>>()
        .join(", ");
    Some(format!("the columns are ({found})"))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int8Array, Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field};

    use super::*;

    fn sample_batch() -> RecordBatch {
        RecordBatch::try_new(
            client_schema(),
            vec![
                Arc::new(StringArray::from(vec![Some("acme"), None, Some("zxcv")])),
                Arc::new(Int64Array::from(vec![Some(1), Some(2), None])),
                Arc::new(Int64Array::from(vec![None, Some(20), Some(30)])),
                Arc::new(Int64Array::from(vec![Some(100), None, Some(i64::MAX)])),
                Arc::new(Int8Array::from(vec![Some(0), Some(1), None])),
            ],
        )
        .unwrap()
    }

    #[test]
    fn round_trip_keeps_values_and_nulls() {
        let batch = sample_batch();
        let mut buffer = Vec::new();
        let rows = write_parquet(
            "compiled.parquet",
            &mut buffer,
            [batch.clone(), batch.clone()],
        )
        .unwrap();
        assert_eq!(rows, 6);

        let batches: Vec<RecordBatch> = read_parquet("compiled.parquet", Bytes::from(buffer))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let read = arrow::compute::concat_batches(&client_schema(), &batches).unwrap();
        let expected =
            arrow::compute::concat_batches(&client_schema(), &[batch.clone(), batch]).unwrap();
        assert_eq!(read, expected);
        assert_eq!(read.column(0).null_count(), 2);
        assert_eq!(read.column(4).null_count(), 2);
    }

    #[test]
    fn projected_read_returns_only_the_columns_asked_for() {
        let mut buffer = Vec::new();
        write_parquet("compiled.parquet", &mut buffer, [sample_batch()]).unwrap();
        let batches: Vec<RecordBatch> = read_parquet_columns(
            "compiled.parquet",
            Bytes::from(buffer.clone()),
            &["lastyear_activity", "exited"],
            None,
        )
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
        let batch = &batches[0];
        assert_eq!(batch.num_columns(), 2);
        assert_eq!(batch.schema().field(0).name(), "lastyear_activity");
        assert_eq!(batch.column(1), sample_batch().column(4));
        assert!(
            read_parquet_columns("compiled.parquet", Bytes::from(buffer), &["x"], None).is_err()
        );
    }

    #[test]
    fn empty_stream_writes_a_readable_file_with_no_rows() {
        let mut buffer = Vec::new();
        assert_eq!(write_parquet("empty.parquet", &mut buffer, []).unwrap(), 0);
        let rows: usize = read_parquet("empty.parquet", Bytes::from(buffer))
            .unwrap()
            .map(|batch| batch.unwrap().num_rows())
            .sum();
        assert_eq!(rows, 0);
    }

    #[test]
    fn writing_a_batch_of_another_schema_is_refused() {
        let other = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, true)])),
            vec![Arc::new(Int64Array::from(vec![1]))],
        )
        .unwrap();
        let mut writer = ParquetBatchWriter::new("out.parquet", Vec::new()).unwrap();
        let error = writer.write(&other).unwrap_err().to_string();
        assert!(
            error.starts_with("out.parquet: the columns are (x: Int64)"),
            "{error}"
        );
        assert!(
            error.contains("expected the client schema (corporation: Utf8"),
            "{error}"
        );
    }

    #[test]
    fn reading_a_file_of_another_schema_is_refused() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("corporation", DataType::Utf8, true),
            Field::new("lastmonth_activity", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(vec!["a"])),
                Arc::new(StringArray::from(vec!["1"])),
            ],
        )
        .unwrap();
        let mut buffer = Vec::new();
        let mut writer = ArrowWriter::try_new(&mut buffer, schema, None).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();

        let error = read_parquet("old.parquet", Bytes::from(buffer))
            .err()
            .unwrap();
        assert!(matches!(error, DataError::SchemaMismatch { .. }));
        let message = error.to_string();
        assert!(
            message.contains(
                "old.parquet: the columns are (corporation: Utf8, lastmonth_activity: Utf8)"
            ),
            "{message}"
        );
    }

    #[test]
    fn bytes_that_are_not_parquet_are_refused() {
        let error = read_parquet("data.csv", Bytes::from_static(b"corporation,exited\na,1\n"))
            .err()
            .unwrap();
        assert!(matches!(error, DataError::NotParquet { .. }));
        assert!(
            error
                .to_string()
                .starts_with("data.csv: not a readable Parquet file")
        );
    }
}
