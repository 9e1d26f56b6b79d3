//! Ingestion: finds the source CSV objects not ingested yet (by key, version id and ETag, so a
//! file uploaded again with new content is new data), validates them with the data layer, adds
//! their good rows to everything ingested before with exact duplicate rows dropped, writes the
//! compiled data set (Parquet), quarantines rejected rows with their reasons, and commits the
//! ingestion record last with a conditional put, so two concurrent ingestions can never both
//! win. Source objects are only read, never moved, rewritten or deleted.

use std::collections::HashSet;
use std::hash::{BuildHasher, Hash, Hasher};
use std::time::Instant;

use arrow::array::{Array, AsArray, BooleanArray, RecordBatch};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{Int8Type, Int64Type};
use bytes::Bytes;
use chrono::Utc;
use tokio_util::io::SyncIoBridge;

use super::{Pipeline, StepError};
use crate::data::csv::CsvBatchReader;
use crate::data::parquet::{ParquetBatchWriter, read_parquet};
use crate::data::rejected::{RejectedRow, write_rejected_csv};
use crate::data::schema::COLUMNS;
use crate::location::Location;
use crate::records::{CompiledData, FileOutcome, IngestedFile, IngestionRecord, ObjectRef, names};
use crate::store::{ObjectMeta, PutMode, StoreError};

/// What one ingestion did.
#[derive(Debug, Clone)]
pub struct IngestionOutcome {
    /// The files (object versions) this run looked at for the first time.
    pub new_files: Vec<IngestedFile>,
    /// Keys in the source location that are not CSV files, left alone.
    pub skipped_non_csv: Vec<String>,
    /// Rows added to the compiled data set by this run.
    pub rows_added: u64,
    /// The ingestion record after this run, and the version it was written as (`None` when
    /// there was nothing new and nothing was written).
    pub record: IngestionRecord,
    pub record_version: Option<ObjectRef>,
    /// Every object this run wrote, with its version.
    pub written: Vec<ObjectRef>,
    pub elapsed_ms: f64,
}

impl IngestionOutcome {
    /// Whether this run found source files it had not seen before.
    pub fn found_new_files(&self) -> bool {
        !self.new_files.is_empty()
    }

    /// Whether the compiled data set changed (new rows that were not duplicates).
    pub fn compiled_data_changed(&self) -> bool {
        self.rows_added > 0
    }
}

/// Which source objects an ingestion considers.
#[derive(Debug, Clone, Default)]
pub enum IngestScope {
    /// Every object in the source location (the schedule and the command line).
    #[default]
    All,
    /// Only these keys, relative to the source location (an S3 event names them). Objects
    /// already ingested are still skipped, so a redelivered event changes nothing.
    Keys(Vec<String>),
    /// Only these object versions (what an S3 event names: the version it reports, not
    /// whatever is latest when the event is handled, so two quick uploads of one key are two
    /// snapshots). Versions already ingested are skipped, so a redelivered event changes
    /// nothing; a version deleted since the event is skipped with a warning.
    Objects(Vec<SourceObject>),
}

/// One source object version, relative to the source location; `version_id: None` means the
/// latest (an unversioned bucket, whose events carry no version).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct SourceObject {
    pub key: String,
    pub version_id: Option<String>,
}

/// Whether a key names a CSV file (case-insensitively), the only kind ingestion reads.
pub fn is_csv_key(key: &str) -> bool {
    key.rsplit('.')
        .next()
        .is_some_and(|ext| ext.eq_ignore_ascii_case("csv") && key.contains('.'))
}

/// Ingests new source files into the compiled data set at `compiled` (the pipeline's
/// `compiled_data`, or a scratch location when timing).
pub async fn ingest_into(
    pipeline: &Pipeline,
    compiled: &Location,
    scope: &IngestScope,
    run_id: &str,
) -> Result<IngestionOutcome, StepError> {
    let started = Instant::now();
    let source = &pipeline.locations.source_data;
    let previous = compiled
        .get_json_if_exists::<IngestionRecord>(names::INGESTION_RECORD, "ingestion record")
        .await?;
    let (record_etag, mut record) = match previous {
        Some((meta, record)) => (Some(meta.etag), record),
        None => (None, IngestionRecord::default()),
    };
    record.source = source.url().to_string();

    let candidates: Vec<ObjectMeta> = match scope {
        IngestScope::All => source.list("").await?,
        IngestScope::Keys(keys) => {
            let objects: Vec<SourceObject> = keys
                .iter()
                .map(|key| SourceObject {
                    key: key.clone(),
                    version_id: None,
                })
                .collect();
            head_each(source, &objects).await?
        }
        IngestScope::Objects(objects) => head_each(source, objects).await?,
    };
    let (csv, skipped_non_csv): (Vec<ObjectMeta>, Vec<ObjectMeta>) = candidates
        .into_iter()
        .partition(|meta| is_csv_key(&meta.key));
    for meta in &skipped_non_csv {
        tracing::info!(key = %meta.key, "not a .csv file; left alone");
    }
    let mut new_objects: Vec<ObjectMeta> = csv
        .into_iter()
        .filter(|meta| !record.files.iter().any(|seen| seen.is_same_object(meta)))
        .collect();
    new_objects.sort_by(|a, b| a.key.cmp(&b.key).then(a.version_id.cmp(&b.version_id)));
    // One version named twice (by key and by version, or twice in one event) is read once.
    new_objects.dedup_by(|a, b| a.key == b.key && a.version_id == b.version_id);
    let skipped_non_csv: Vec<String> = skipped_non_csv.into_iter().map(|m| m.key).collect();

    if new_objects.is_empty() {
        tracing::info!(source = %source.url(), "no new source files");
        return Ok(IngestionOutcome {
            new_files: Vec::new(),
            skipped_non_csv,
            rows_added: 0,
            record,
            record_version: None,
            written: Vec::new(),
            elapsed_ms: super::millis(started.elapsed()),
        });
    }
    tracing::info!(count = new_objects.len(), source = %source.url(), "new source files to ingest");

    // Start the new compiled data set from the previous one, remembering every row seen.
    let mut compiler = Compiler::new()?;
    if let Some(previous) = &record.compiled {
        let (_, bytes) = compiled
            .get(names::COMPILED_DATA, Some(&previous.object.version_id))
            .await?;
        compiler = run_blocking(move || {
            for batch in read_parquet(names::COMPILED_DATA, bytes)? {
                compiler.add(&batch?)?;
            }
            Ok(compiler)
        })
        .await?;
    }
    let rows_before = compiler.rows;
    let duplicates_before = record.compiled.as_ref().map_or(0, |c| c.duplicates_dropped);

    let mut written_objects = Vec::new();
    let mut new_files = Vec::with_capacity(new_objects.len());
    let total = new_objects.len();
    for (position, meta) in new_objects.into_iter().enumerate() {
        let file_started = Instant::now();
        let (_, reader) = source.get_reader(&meta.key, Some(&meta.version_id)).await?;
        let bridge = SyncIoBridge::new(reader);
        let display_name = meta.key.clone();
        let (returned, result) = run_blocking(move || {
            let mut compiler = compiler;
            let result = compiler.add_csv(&display_name, bridge);
            Ok((compiler, result))
        })
        .await?;
        compiler = returned;
        let mut entry = IngestedFile {
            key: meta.key.clone(),
            version_id: meta.version_id.clone(),
            etag: meta.etag.clone(),
            size: meta.size,
            outcome: FileOutcome::Ingested,
            rows_read: 0,
            rows_accepted: 0,
            rows_rejected: 0,
            rows_duplicate: 0,
            missing_values: Default::default(),
            error: None,
            warnings: Vec::new(),
            quarantine: None,
            ingested_at: Utc::now(),
            run_id: run_id.to_string(),
        };
        match result {
            Ok(read) => {
                entry.rows_read = read.counts.rows_read;
                entry.rows_accepted = read.counts.rows_accepted;
                entry.rows_rejected = read.counts.rows_rejected;
                entry.rows_duplicate = read.duplicates;
                entry.missing_values = COLUMNS
                    .iter()
                    .zip(read.counts.missing_values.in_canonical_order())
                    .map(|(column, missing)| (column.to_string(), missing))
                    .collect();
                entry.warnings = read.warnings;
                for warning in &entry.warnings {
                    tracing::warn!(file = %meta.key, "{warning}");
                }
                if !read.rejected.is_empty() {
                    for row in read.rejected.iter().take(20) {
                        tracing::warn!(file = %meta.key, "rejected row: {row}");
                    }
                    let mut csv = Vec::new();
                    write_rejected_csv(&read.rejected, &mut csv).map_err(|e| {
                        StepError::Task(format!("cannot encode rejected rows of {}: {e}", meta.key))
                    })?;
                    let name = quarantine_name(run_id, &meta.key);
                    let written = compiled
                        .put(&name, Bytes::from(csv), PutMode::Overwrite)
                        .await?;
                    entry.quarantine = Some(ObjectRef::new(compiled, &written));
                }
                tracing::info!(
                    file = %meta.key,
                    progress = %format!("{}/{total}", position + 1),
                    rows = entry.rows_read,
                    accepted = entry.rows_accepted,
                    rejected = entry.rows_rejected,
                    duplicates = entry.rows_duplicate,
                    rows_per_second = %format!("{:.0}", entry.rows_read as f64 / file_started.elapsed().as_secs_f64().max(1e-9)),
                    "ingested"
                );
            }
            Err(e) => {
                tracing::error!(file = %meta.key, "file rejected: {e}");
                entry.outcome = FileOutcome::Rejected;
                entry.error = Some(e.to_string());
            }
        }
        new_files.push(entry);
    }

    let rows_added = compiler.rows - rows_before;
    let duplicates_dropped =
        duplicates_before + new_files.iter().map(|f| f.rows_duplicate).sum::<u64>();
    if rows_added > 0 || record.compiled.is_none() && compiler.rows > 0 {
        let (bytes, rows) = run_blocking(move || compiler.finish()).await?;
        let written = compiled
            .put(names::COMPILED_DATA, Bytes::from(bytes), PutMode::Overwrite)
            .await?;
        written_objects.push(ObjectRef::new(compiled, &written));
        record.compiled = Some(CompiledData {
            object: ObjectRef::new(compiled, &written),
            rows,
            duplicates_dropped,
        });
    } else if let Some(existing) = &mut record.compiled {
        existing.duplicates_dropped = duplicates_dropped;
    }

    record.files.extend(new_files.iter().cloned());
    record.updated_at = Some(Utc::now());
    let mode = match record_etag {
        Some(etag) => PutMode::ReplaceIfMatch(etag),
        None => PutMode::CreateOnly,
    };
    let written = compiled
        .put_json(names::INGESTION_RECORD, "ingestion record", &record, mode)
        .await
        .map_err(|e| match e {
            crate::location::RecordError::Store(StoreError::PreconditionFailed {
                detail, ..
            }) => StepError::ConcurrentUpdate {
                what: compiled.object_url(names::INGESTION_RECORD),
                detail,
            },
            other => other.into(),
        })?;
    let record_version = ObjectRef::new(compiled, &written);
    let text = compiled
        .put(
            names::INGESTED_FILES_TXT,
            Bytes::from(record.ingested_files_text()),
            PutMode::Overwrite,
        )
        .await?;
    written_objects.extend(new_files.iter().filter_map(|f| f.quarantine.clone()));
    written_objects.push(record_version.clone());
    written_objects.push(ObjectRef::new(compiled, &text));

    Ok(IngestionOutcome {
        new_files,
        skipped_non_csv,
        rows_added,
        record_version: Some(record_version),
        written: written_objects,
        record,
        elapsed_ms: super::millis(started.elapsed()),
    })
}

/// Ingests into the configured `compiled_data` location.
pub async fn ingest(
    pipeline: &Pipeline,
    scope: &IngestScope,
    run_id: &str,
) -> Result<IngestionOutcome, StepError> {
    ingest_into(pipeline, &pipeline.locations.compiled_data, scope, run_id).await
}

/// The metadata of each named object version that still exists.
async fn head_each(
    source: &Location,
    objects: &[SourceObject],
) -> Result<Vec<ObjectMeta>, StepError> {
    let mut found = Vec::with_capacity(objects.len());
    for object in objects {
        match source.head(&object.key, object.version_id.as_deref()).await {
            Ok(meta) => found.push(meta),
            // Deleted (or renamed) between the event and now: nothing to ingest.
            Err(StoreError::NotFound { .. }) => tracing::warn!(
                key = %object.key,
                version_id = object.version_id.as_deref().unwrap_or("latest"),
                "source object named by the event no longer exists; skipped"
            ),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(found)
}

/// Where the rejected rows of one source file go: one folder per run keeps names unique and
/// groups what one run quarantined.
fn quarantine_name(run_id: &str, key: &str) -> String {
    format!("{}/{run_id}/{key}.rejected.csv", names::QUARANTINE_PREFIX)
}

async fn run_blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StepError> + Send + 'static,
) -> Result<T, StepError> {
    super::spawn_blocking_in_span(work)
        .await
        .map_err(|e| StepError::Task(e.to_string()))?
}

/// What reading one CSV file into the compiled data set produced.
struct FileRead {
    counts: crate::data::csv::CsvCounts,
    warnings: Vec<String>,
    rejected: Vec<RejectedRow>,
    duplicates: u64,
}

/// Builds the compiled data set: writes each row once, in first-seen order, and drops exact
/// duplicates of any row seen before (in earlier ingestions or earlier in this one).
struct Compiler {
    writer: ParquetBatchWriter<Vec<u8>>,
    // 128-bit row fingerprints: two independent 64-bit hashes. Holding fingerprints instead of
    // rows keeps memory at 16 bytes a row; a false "duplicate" needs a 128-bit collision.
    seen: HashSet<u128>,
    hash_keys: (std::hash::RandomState, std::hash::RandomState),
    rows: u64,
}

impl Compiler {
    fn new() -> Result<Self, StepError> {
        Ok(Compiler {
            writer: ParquetBatchWriter::new(names::COMPILED_DATA, Vec::new())?,
            seen: HashSet::new(),
            hash_keys: (std::hash::RandomState::new(), std::hash::RandomState::new()),
            rows: 0,
        })
    }

    /// Adds the rows of `batch` not seen before; returns how many were duplicates.
    fn add(&mut self, batch: &RecordBatch) -> Result<u64, StepError> {
        let fingerprints = self.fingerprints(batch);
        let keep: BooleanArray = fingerprints
            .iter()
            .map(|fingerprint| Some(self.seen.insert(*fingerprint)))
            .collect();
        let kept = keep.true_count();
        let duplicates = (batch.num_rows() - kept) as u64;
        if kept == batch.num_rows() {
            self.writer.write(batch)?;
        } else if kept > 0 {
            let filtered =
                filter_record_batch(batch, &keep).map_err(|e| StepError::Task(e.to_string()))?;
            self.writer.write(&filtered)?;
        }
        self.rows += kept as u64;
        Ok(duplicates)
    }

    fn add_csv(
        &mut self,
        display_name: &str,
        input: impl std::io::Read,
    ) -> Result<FileRead, StepError> {
        let mut reader = CsvBatchReader::open(display_name, input)?;
        let mut rejected = Vec::new();
        let mut duplicates = 0;
        for batch in &mut reader {
            let batch = batch?;
            duplicates += self.add(&batch.accepted)?;
            rejected.extend(batch.rejected);
        }
        Ok(FileRead {
            counts: reader.counts(),
            warnings: reader.warnings().iter().map(ToString::to_string).collect(),
            rejected,
            duplicates,
        })
    }

    fn fingerprints(&self, batch: &RecordBatch) -> Vec<u128> {
        let corporation = batch.column(0).as_string::<i32>();
        let ints: Vec<_> = (1..4)
            .map(|i| batch.column(i).as_primitive::<Int64Type>())
            .collect();
        let exited = batch.column(4).as_primitive::<Int8Type>();
        (0..batch.num_rows())
            .map(|row| {
                let hash_with = |keys: &std::hash::RandomState| {
                    let mut hasher = keys.build_hasher();
                    corporation
                        .is_valid(row)
                        .then(|| corporation.value(row))
                        .hash(&mut hasher);
                    for column in &ints {
                        column
                            .is_valid(row)
                            .then(|| column.value(row))
                            .hash(&mut hasher);
                    }
                    exited
                        .is_valid(row)
                        .then(|| exited.value(row))
                        .hash(&mut hasher);
                    hasher.finish()
                };
                (u128::from(hash_with(&self.hash_keys.0)) << 64)
                    | u128::from(hash_with(&self.hash_keys.1))
            })
            .collect()
    }

    fn finish(self) -> Result<(Vec<u8>, u64), StepError> {
        Ok(self.writer.finish_into_inner()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_keys_are_recognised_case_insensitively() {
        assert!(is_csv_key("dataset3.csv"));
        assert!(is_csv_key("2026/11/Client Data.CSV"));
        assert!(!is_csv_key("notes.txt"));
        assert!(!is_csv_key("csv"));
        assert!(!is_csv_key("archive.csv.gz"));
    }
}
