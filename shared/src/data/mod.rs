//! The data layer: the client-data schema, a streaming validating CSV reader that turns source
//! files into Arrow record batches (keeping every rejected row with its reason), and Parquet
//! reading and writing for the compiled data set.

pub mod csv;
pub mod error;
pub mod parquet;
pub mod rejected;
pub mod schema;

mod records;

pub use self::csv::{
    CsvBatch, CsvBatchReader, CsvCounts, CsvFileContents, CsvReadOptions, CsvWarning,
    DEFAULT_BATCH_ROWS, MissingValues, read_csv_file,
};
pub use self::error::DataError;
pub use self::parquet::{
    ParquetBatchReader, ParquetBatchWriter, read_parquet, read_parquet_columns, write_parquet,
};
pub use self::rejected::{
    RejectedRow, RowProblem, rejected_rows_to_batch, rejected_schema, write_rejected_csv,
};
