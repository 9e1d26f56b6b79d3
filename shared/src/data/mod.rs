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

/// The hasher of a set or map whose keys are 128-bit hashes already (row fingerprints, client
/// code keys): the table uses a key's low 64 bits as they are instead of hashing it again
/// (SipHash on every insert was a third of ingestion).
pub type Prehashed = std::hash::BuildHasherDefault<PrehashedKey>;

/// The [`Hasher`](std::hash::Hasher) of [`Prehashed`].
#[derive(Default)]
pub struct PrehashedKey(u64);

impl std::hash::Hasher for PrehashedKey {
    fn write(&mut self, bytes: &[u8]) {
        // Only u128 keys are hashed here; any other input still gets a sound (if slow) hash.
        for &byte in bytes {
            self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01B3);
        }
    }

    fn write_u128(&mut self, key: u128) {
        self.0 = key as u64;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}
