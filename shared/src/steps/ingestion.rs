//! Ingestion: finds the source CSV objects not ingested yet (by key, version id and ETag, so a
//! file uploaded again with new content is new data), validates them with the data layer, drops
//! exact duplicates of any row compiled before, writes the new rows as a new Parquet part of
//! the compiled data (one per million rows; create-only, Hive-style by ingestion month), quarantines rejected rows
//! with their reasons, and commits the ingestion record, whose manifest lists the parts, last
//! with a conditional put, so two concurrent ingestions can never both win (the loser's part is
//! an orphan no record names). Source objects are only read, never moved, rewritten or deleted.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, SyncSender};
use std::time::Instant;

use arrow::array::{Array, AsArray, BooleanArray, RecordBatch};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{Int8Type, Int64Type};
use bytes::Bytes;
use chrono::Utc;
use tokio_util::io::SyncIoBridge;

use super::compiled::{
    FetchedPart, encode_fingerprints, fingerprint_key, for_each_batch, part_key,
};
use super::statistics::write_part_statistics;
use super::{Pipeline, StepError};
use crate::data::Prehashed;
use crate::data::csv::CsvBatchReader;
use crate::data::error::DataError;
use crate::data::parquet::ParquetBatchWriter;
use crate::data::rejected::{RejectedRow, write_rejected_csv};
use crate::data::schema::COLUMNS;
use crate::location::Location;
use crate::records::{
    CompiledData, CompiledPart, FileOutcome, FingerprintIndex, IngestedFile, IngestionRecord,
    ObjectRef, names,
};
use crate::stats::{DataStatistics, SummaryBuilder};
use crate::store::{ByteReader, ObjectMeta, PutMode, StoreError};

/// What one ingestion did (the default: nothing, as an idle tick that never ingests).
#[derive(Debug, Clone, Default)]
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
    let candidates = list_candidates(&pipeline.locations.source_data, scope).await?;
    ingest_candidates(pipeline, compiled, candidates, run_id).await
}

/// Ingests the new objects among `candidates` (source objects listed or named) into the
/// compiled data set at `compiled`.
pub async fn ingest_candidates(
    pipeline: &Pipeline,
    compiled: &Location,
    candidates: Vec<ObjectMeta>,
    run_id: &str,
) -> Result<IngestionOutcome, StepError> {
    ingest_in_parts_of(pipeline, compiled, candidates, run_id, PART_ROWS).await
}

/// Rows after which the part being written is closed and the next begun: a large ingestion
/// (the first one, over years of files) then holds one part's bytes and index at a time, not the
/// whole run's, and writes each while it reads on; engines get files of a useful size (about
/// 15 MB of Parquet).
const PART_ROWS: u64 = 1_000_000;

/// [`ingest_candidates`], closing a part every `part_rows` rows.
async fn ingest_in_parts_of(
    pipeline: &Pipeline,
    compiled: &Location,
    candidates: Vec<ObjectMeta>,
    run_id: &str,
    part_rows: u64,
) -> Result<IngestionOutcome, StepError> {
    let started = Instant::now();
    let source = &pipeline.locations.source_data;
    let (record_etag, mut record) = read_ingestion_record(compiled, source).await?;
    let (new_objects, skipped_non_csv) = select_new_objects(candidates, &record);
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

    // With history, the new rows wait in memory until they are checked against it (the new
    // data's size, not the history's); a first ingestion writes them as they come.
    let first_row = record.compiled.as_ref().map_or(0, |c| c.rows);
    let (closed_parts, part_writer) = spawn_part_writer(compiled, run_id, first_row);
    let compiler = Compiler::new(record.compiled.is_some(), part_rows, closed_parts)?;
    let duplicates_before = record.compiled.as_ref().map_or(0, |c| c.duplicates_dropped);
    let (parsed, compiler) = parse_and_compile(source, &new_objects, compiler).await?;
    let (compiler, unindexed) =
        check_against_history(compiled, record.compiled.as_ref(), compiler).await?;
    let new_files = record_new_files(compiled, &new_objects, parsed, run_id).await?;

    let mut written: Vec<ObjectRef> = new_files
        .iter()
        .filter_map(|f| f.quarantine.clone())
        .collect();
    let rows_added = compiler.rows;
    let duplicates_dropped =
        duplicates_before + new_files.iter().map(|f| f.rows_duplicate).sum::<u64>();
    written.extend(
        write_compiled_part(
            compiled,
            (compiler, part_writer),
            unindexed,
            duplicates_dropped,
            &mut record,
        )
        .await?,
    );

    record.files.extend(new_files.iter().cloned());
    record.updated_at = Some(Utc::now());
    let (record_version, text) = commit_ingestion_record(compiled, &record, record_etag).await?;
    written.extend([record_version.clone(), text]);

    Ok(IngestionOutcome {
        new_files,
        skipped_non_csv,
        rows_added,
        record_version: Some(record_version),
        written,
        record,
        elapsed_ms: super::millis(started.elapsed()),
    })
}

/// The ingestion record in `compiled` and its ETag (for the conditional commit), or a fresh
/// record before the first ingestion.
async fn read_ingestion_record(
    compiled: &Location,
    source: &Location,
) -> Result<(Option<String>, IngestionRecord), StepError> {
    let previous = compiled
        .get_json_if_exists::<IngestionRecord>(names::INGESTION_RECORD, "ingestion record")
        .await?;
    let (etag, mut record) = match previous {
        Some((meta, record)) => (Some(meta.etag), record),
        None => (None, IngestionRecord::default()),
    };
    record.source = source.url().to_string();
    Ok((etag, record))
}

/// The source objects `scope` names that still exist (every object, for [`IngestScope::All`]).
async fn list_candidates(
    source: &Location,
    scope: &IngestScope,
) -> Result<Vec<ObjectMeta>, StepError> {
    match scope {
        IngestScope::All => Ok(source.list("").await?),
        IngestScope::Keys(keys) => {
            let objects: Vec<SourceObject> = keys
                .iter()
                .map(|key| SourceObject {
                    key: key.clone(),
                    version_id: None,
                })
                .collect();
            head_each(source, &objects).await
        }
        IngestScope::Objects(objects) => head_each(source, objects).await,
    }
}

/// The CSV object versions the record has not seen, each once, in key and version order; and
/// the keys left alone because they are not CSV files.
fn select_new_objects(
    candidates: Vec<ObjectMeta>,
    record: &IngestionRecord,
) -> (Vec<ObjectMeta>, Vec<String>) {
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
    let skipped_non_csv = skipped_non_csv.into_iter().map(|m| m.key).collect();
    (new_objects, skipped_non_csv)
}

/// The sorted fingerprints of the parts that had no usable index, by manifest position: the
/// next part written also writes their indexes.
type Unindexed = Vec<(usize, Vec<u128>)>;

/// Parts whose indexes are read at a time while checking the new rows against the history.
const INDEXES_AT_ONCE: usize = 8;

/// How much of an index is read at a time: memory per index read, whatever the part's size (a
/// 10-million-row part's index is 160 MB); small enough that the buffers of the indexes read at
/// once stay in the processor's cache.
const INDEX_READ_BYTES: usize = 256 << 10;

/// Drops the new rows that were compiled before and writes the others (see [`Compiler::settle`]).
/// The history is read from each part's fingerprint index (16 bytes a row, nothing decoded),
/// streamed a buffer at a time and merged with the new rows' sorted fingerprints, a few parts at
/// once, so memory follows the new data, not the history; a part without a usable index is
/// decoded and hashed instead.
async fn check_against_history(
    compiled: &Location,
    previous: Option<&CompiledData>,
    mut compiler: Compiler,
) -> Result<(Compiler, Unindexed), StepError> {
    let Some(previous) = previous else {
        return Ok((compiler, Vec::new()));
    };
    if compiler.seen.is_empty() {
        // No new row to check (every file rejected or empty): nothing is written.
        return Ok((compiler, Vec::new()));
    }
    let parts = previous.parts();
    let mut in_history: HashSet<u128, Prehashed> = HashSet::default();
    let mut missing: Vec<(usize, CompiledPart)> = Vec::new();
    let mut indexed: Vec<(usize, CompiledPart)> = Vec::new();
    for (position, part) in parts.into_iter().enumerate() {
        match part.fingerprints {
            Some(_) => indexed.push((position, part)),
            None => missing.push((position, part)),
        }
    }
    let new_sorted = Arc::new(compiler.sorted_fingerprints());
    let found = find_in_indexes(compiled, &indexed, new_sorted).await?;
    for ((position, part), found) in indexed.into_iter().zip(found) {
        match found {
            Some(found) => in_history.extend(found),
            None => {
                tracing::warn!(
                    part = %part.object.url,
                    rows = part.rows,
                    "fingerprint index does not match its part; reading the part instead"
                );
                missing.push((position, part));
            }
        }
    }
    missing.sort_by_key(|(position, _)| *position);
    let mut unindexed = Vec::new();
    for (position, part) in missing {
        let (_, bytes) = compiled
            .get(&part.key, Some(&part.object.version_id))
            .await?;
        let fetched = [FetchedPart { part, bytes }];
        let (back, found, fingerprints) = run_blocking(move || {
            let mut found = HashSet::default();
            let mut fingerprints = Vec::new();
            for_each_batch::<StepError>(&fetched, None, 0, |batch| {
                fingerprints.extend(row_fingerprints(&batch));
                Ok(())
            })?;
            compiler.find_in_history(&fingerprints, &mut found);
            fingerprints.sort_unstable();
            Ok((compiler, found, fingerprints))
        })
        .await?;
        compiler = back;
        in_history.extend(found);
        unindexed.push((position, fingerprints));
    }
    let compiler = run_blocking(move || compiler.settle(&in_history)).await?;
    Ok((compiler, unindexed))
}

/// For each of `parts` (which all have an index), the fingerprints of `new_sorted` its index
/// holds, or `None` when the index does not fit its part; [`INDEXES_AT_ONCE`] read at a time.
async fn find_in_indexes(
    compiled: &Location,
    parts: &[(usize, CompiledPart)],
    new_sorted: Arc<Vec<u128>>,
) -> Result<Vec<Option<Vec<u128>>>, StepError> {
    let permits = Arc::new(tokio::sync::Semaphore::new(INDEXES_AT_ONCE));
    let mut reads = tokio::task::JoinSet::new();
    for (order, (_, part)) in parts.iter().enumerate() {
        let Some(index) = part.fingerprints.clone() else {
            continue;
        };
        let (compiled, permits, new_sorted, rows) = (
            compiled.clone(),
            permits.clone(),
            new_sorted.clone(),
            part.rows,
        );
        reads.spawn(async move {
            let _permit = permits.acquire_owned().await;
            (
                order,
                find_in_index(&compiled, &index, rows, &new_sorted).await,
            )
        });
    }
    let mut results = reads.join_all().await;
    results.sort_unstable_by_key(|(order, _)| *order);
    results.into_iter().map(|(_, found)| found).collect()
}

/// The fingerprints of `new_sorted` that `index` (of a part of `rows` rows) holds, read as a
/// stream and merged (both are sorted); `None` when the index is not 16 bytes a row or not
/// sorted, so it cannot be the index of its part.
async fn find_in_index(
    compiled: &Location,
    index: &FingerprintIndex,
    rows: u64,
    new_sorted: &[u128],
) -> Result<Option<Vec<u128>>, StepError> {
    use tokio::io::AsyncReadExt;

    let (meta, mut reader) = compiled
        .get_reader(&index.key, Some(&index.object.version_id))
        .await?;
    if rows.checked_mul(16) != Some(meta.size) {
        return Ok(None);
    }
    let read_error = |source| StoreError::Io {
        path: compiled.object_url(&index.key).into(),
        source,
    };
    let mut merge = SortedMerge::new(new_sorted);
    let mut buffer = vec![0u8; INDEX_READ_BYTES];
    let mut total = 0u64;
    loop {
        // Fill the buffer (a read may return less), so entries never straddle two reads.
        let mut filled = 0;
        while filled < buffer.len() {
            match reader
                .read(&mut buffer[filled..])
                .await
                .map_err(read_error)?
            {
                0 => break,
                read => filled += read,
            }
        }
        if filled == 0 {
            break;
        }
        total += filled as u64;
        if filled % 16 != 0 || total > meta.size {
            return Ok(None);
        }
        if !merge.next_run(&buffer[..filled]) {
            return Ok(None);
        }
    }
    Ok((total == meta.size).then_some(merge.found))
}

/// A merge of a sorted stream of history fingerprints, taken a run at a time, with the new
/// rows' sorted fingerprints, collecting the new ones the history holds (each once).
struct SortedMerge<'a> {
    new_sorted: &'a [u128],
    next_new: usize,
    previous: Option<u128>,
    found: Vec<u128>,
}

impl<'a> SortedMerge<'a> {
    fn new(new_sorted: &'a [u128]) -> Self {
        SortedMerge {
            new_sorted,
            next_new: 0,
            previous: None,
            found: Vec::new(),
        }
    }

    /// Takes the next run of history fingerprints (index bytes, 16 a fingerprint); `false`
    /// when the history is not sorted (a fingerprint smaller than the one before), since the
    /// merge would then miss rows. One pass over the run, which also checks its order.
    fn next_run(&mut self, run: &[u8]) -> bool {
        let (mut previous, mut next_new) = (self.previous, self.next_new);
        for entry in run.chunks_exact(16) {
            let fingerprint = index_entry(entry);
            if previous.is_some_and(|previous| previous > fingerprint) {
                return false;
            }
            previous = Some(fingerprint);
            while self
                .new_sorted
                .get(next_new)
                .is_some_and(|&new| new < fingerprint)
            {
                next_new += 1;
            }
            if self.new_sorted.get(next_new) == Some(&fingerprint) {
                self.found.push(fingerprint);
                next_new += 1;
            }
        }
        (self.previous, self.next_new) = (previous, next_new);
        true
    }
}

/// One fingerprint of an index: 16 bytes, little-endian.
fn index_entry(bytes: &[u8]) -> u128 {
    let mut word = [0u8; 16];
    word.copy_from_slice(&bytes[..16]);
    u128::from_le_bytes(word)
}

/// One file's parse result, and where the compiler answers how many of its rows were
/// duplicates.
type ParsedFile = (Result<FileRead, ParseError>, Receiver<u64>);

/// Reads every new object through the compiler, on two threads: one parses the CSV files and
/// fingerprints their rows while a second one drops duplicates and encodes the Parquet output,
/// connected by a short queue of batches (so memory stays a few batches, whatever the file
/// sizes). Returns each file's result, in `new_objects` order, and the compiler with every row.
async fn parse_and_compile(
    source: &Location,
    new_objects: &[ObjectMeta],
    compiler: Compiler,
) -> Result<(Vec<ParsedFile>, Compiler), StepError> {
    let (to_compiler, inbox) = std::sync::mpsc::sync_channel::<ToCompiler>(4);
    let compiler_thread = super::spawn_blocking_in_span(move || compiler.run(inbox));
    let total_bytes: u64 = new_objects.iter().map(|meta| meta.size).sum();
    let (opened, parser) = spawn_parser(to_compiler, total_bytes);
    // This task opens the next objects ahead of the parser (opening costs a few metadata reads:
    // on a slow filesystem, or on S3, that latency would otherwise sit between every two files).
    for meta in new_objects {
        let (_, reader) = source.get_reader(&meta.key, Some(&meta.version_id)).await?;
        if opened.send((meta.clone(), reader)).await.is_err() {
            // The parser stopped early (the compiler failed): its result says why.
            break;
        }
    }
    drop(opened);
    let parsed = parser.await?;
    let compiler = compiler_thread.await??;
    Ok((parsed, compiler))
}

/// The parser thread: parses every opened file in turn, feeding the compiler, until the
/// opened files run out or the compiler stops.
fn spawn_parser(
    to_compiler: SyncSender<ToCompiler>,
    total_bytes: u64,
) -> (
    tokio::sync::mpsc::Sender<(ObjectMeta, ByteReader)>,
    tokio::task::JoinHandle<Vec<ParsedFile>>,
) {
    let (opened, mut to_parse) = tokio::sync::mpsc::channel::<(ObjectMeta, ByteReader)>(2);
    let parser = super::spawn_blocking_in_span(move || {
        let mut parsed = Vec::new();
        while let Some((meta, reader)) = to_parse.blocking_recv() {
            let position = parsed.len();
            let bridge = SyncIoBridge::new(reader);
            let result = parse_csv(&meta.key, bridge, &to_compiler);
            // After the first file, the bytes per row it showed estimate the rows to come.
            if let Ok(read) = &result
                && position == 0
                && read.counts.rows_read > 0
                && meta.size > 0
            {
                let remaining = total_bytes.saturating_sub(meta.size) as f64;
                let rows = remaining * read.counts.rows_read as f64 / meta.size as f64;
                let _ = to_compiler.send(ToCompiler::Reserve(rows as usize));
            }
            // Every file ends with a marker, even a failed one, so counts never run together.
            let (reply, duplicates) = std::sync::mpsc::channel();
            let _ = to_compiler.send(ToCompiler::EndOfFile(reply));
            let stop = matches!(result, Err(ParseError::CompilerStopped));
            parsed.push((result, duplicates));
            if stop {
                break;
            }
        }
        parsed
    });
    (opened, parser)
}

/// The ingestion record's entry for each new file, with its rejected rows quarantined.
async fn record_new_files(
    compiled: &Location,
    new_objects: &[ObjectMeta],
    parsed: Vec<ParsedFile>,
    run_id: &str,
) -> Result<Vec<IngestedFile>, StepError> {
    let total = new_objects.len();
    let mut new_files = Vec::with_capacity(total);
    for (position, (meta, (result, duplicates))) in new_objects.iter().zip(parsed).enumerate() {
        // The compiler answered every end-of-file marker before it finished.
        let rows_duplicate = duplicates.recv().unwrap_or(0);
        let mut entry = new_file_entry(meta, rows_duplicate, run_id);
        match result {
            Ok(read) => {
                entry.rows_read = read.counts.rows_read;
                entry.rows_accepted = read.counts.rows_accepted;
                entry.rows_rejected = read.counts.rows_rejected;
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
                    entry.quarantine = Some(
                        quarantine_rejected_rows(compiled, run_id, &meta.key, &read.rejected)
                            .await?,
                    );
                }
                tracing::info!(
                    file = %meta.key,
                    progress = %format!("{}/{total}", position + 1),
                    rows = entry.rows_read,
                    accepted = entry.rows_accepted,
                    rejected = entry.rows_rejected,
                    duplicates = entry.rows_duplicate,
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
    Ok(new_files)
}

/// An ingested file's entry before its read counts are filled in.
fn new_file_entry(meta: &ObjectMeta, rows_duplicate: u64, run_id: &str) -> IngestedFile {
    IngestedFile {
        key: meta.key.clone(),
        version_id: meta.version_id.clone(),
        etag: meta.etag.clone(),
        size: meta.size,
        outcome: FileOutcome::Ingested,
        rows_read: 0,
        rows_accepted: 0,
        rows_rejected: 0,
        rows_duplicate,
        missing_values: Default::default(),
        error: None,
        warnings: Vec::new(),
        quarantine: None,
        ingested_at: Utc::now(),
        run_id: run_id.to_string(),
    }
}

/// Logs the first rejected rows of a file and writes all of them, with their reasons, to the
/// quarantine in `compiled`.
async fn quarantine_rejected_rows(
    compiled: &Location,
    run_id: &str,
    key: &str,
    rejected: &[RejectedRow],
) -> Result<ObjectRef, StepError> {
    for row in rejected.iter().take(20) {
        tracing::warn!(file = %key, "rejected row: {row}");
    }
    let mut csv = Vec::new();
    write_rejected_csv(rejected, &mut csv).map_err(|source| StepError::EncodeRejectedRows {
        file: key.to_string(),
        source,
    })?;
    let written = compiled
        .put(
            &quarantine_name(run_id, key),
            Bytes::from(csv),
            PutMode::Overwrite,
        )
        .await?;
    Ok(ObjectRef::new(compiled, &written))
}

/// Writes the indexes of earlier parts that had none, closes this run's last part (each part
/// is written create-only, never rewritten, with its fingerprint index, by the part writer)
/// and appends this run's parts to the record's manifest; with no new rows, only updates the
/// duplicate count. Returns what it wrote.
async fn write_compiled_part(
    compiled: &Location,
    (compiler, part_writer): (Compiler, PartWriter),
    unindexed: Unindexed,
    duplicates_dropped: u64,
    record: &mut IngestionRecord,
) -> Result<Vec<ObjectRef>, StepError> {
    if compiler.rows == 0 {
        drop(compiler);
        part_writer.await??;
        if let Some(existing) = &mut record.compiled {
            existing.duplicates_dropped = duplicates_dropped;
        }
        return Ok(Vec::new());
    }
    let mut written = Vec::new();
    let (mut parts, first_row) = match &record.compiled {
        // Written before parts: its single file becomes part 0, copied under `parts/`.
        Some(previous) if previous.parts.is_empty() => {
            let adopted = adopt_single_file(compiled, previous, record.updated_at).await?;
            written.push(adopted.object.clone());
            (vec![adopted], previous.rows)
        }
        Some(previous) => (previous.parts.clone(), previous.rows),
        None => (Vec::new(), 0),
    };
    for (position, fingerprints) in unindexed {
        if let Some(part) = parts.get_mut(position) {
            let index = write_fingerprint_index(compiled, &part.key, &fingerprints).await?;
            written.push(index.object.clone());
            part.fingerprints = Some(index);
        }
    }
    // Closing the compiler closes its last part and ends the part writer's queue.
    let closed = run_blocking(move || compiler.finish()).await?;
    let new_parts = part_writer.await??;
    if new_parts.len() != closed {
        return Err(StepError::PartsMissing {
            closed,
            written: new_parts.len(),
        });
    }
    let mut next_row = first_row;
    for part in new_parts {
        written.push(part.object.clone());
        written.extend(part.fingerprints.iter().map(|index| index.object.clone()));
        written.extend(part.statistics.iter().map(|stats| stats.object.clone()));
        next_row += part.rows;
        parts.push(part);
    }
    let newest = parts.last().map(|part| part.object.clone());
    record.compiled = newest.map(|object| CompiledData {
        object,
        rows: next_row,
        duplicates_dropped,
        parts,
    });
    Ok(written)
}

/// A part the compiler closed: its Parquet bytes, rows and sorted fingerprints (its index).
struct ClosedPart {
    bytes: Vec<u8>,
    rows: u64,
    fingerprints: Vec<u128>,
    statistics: DataStatistics,
}

/// The task writing the parts the compiler closes; it answers every part written, in order.
type PartWriter = tokio::task::JoinHandle<Result<Vec<CompiledPart>, StepError>>;

/// Starts the task that writes each part the compiler closes, with its index and statistics,
/// while the compiler goes on (its first row at `first_row`, the compiled rows before this run) (a queue of one part, so at most three parts are in memory: one building,
/// one queued, one being written). The run's first part is `part-<run>`, the next ones
/// `part-<run>-2`, `part-<run>-3`, … (all create-only: a part is never rewritten).
fn spawn_part_writer(
    compiled: &Location,
    run_id: &str,
    first_row: u64,
) -> (tokio::sync::mpsc::Sender<ClosedPart>, PartWriter) {
    use tracing::Instrument;

    let (closed_parts, mut to_write) = tokio::sync::mpsc::channel::<ClosedPart>(1);
    let (compiled, run_id) = (compiled.clone(), run_id.to_string());
    let writer = async move {
        let month = Utc::now().format("%Y-%m").to_string();
        let (mut written, mut next_row) = (Vec::new(), first_row);
        while let Some(ClosedPart {
            bytes,
            rows,
            fingerprints,
            statistics,
        }) = to_write.recv().await
        {
            let name = match written.len() {
                0 => run_id.clone(),
                earlier => format!("{run_id}-{}", earlier + 1),
            };
            let key = part_key(&month, &name);
            let bytes = Bytes::from(bytes);
            // The part and its two sidecars at once: the sidecars follow from the part's
            // content, and nothing names any of them until the ingestion record is committed.
            let (put, index, statistics) = tokio::try_join!(
                async { Ok::<_, StepError>(compiled.put(&key, bytes, PutMode::CreateOnly).await?) },
                write_fingerprint_index(&compiled, &key, &fingerprints),
                write_part_statistics(&compiled, &key, &statistics),
            )?;
            drop(fingerprints);
            let part = CompiledPart {
                key,
                object: ObjectRef::new(&compiled, &put),
                rows,
                first_row: next_row,
                fingerprints: Some(index),
                statistics: Some(statistics),
            };
            next_row += rows;
            written.push(part);
        }
        Ok(written)
    };
    let writer = tokio::spawn(writer.instrument(tracing::Span::current()));
    (closed_parts, writer)
}

/// Writes the fingerprint index of the part at `part_key` (its rows' sorted fingerprints). Its
/// content follows from the part's, so a run that writes it again writes the same bytes.
async fn write_fingerprint_index(
    compiled: &Location,
    part_key: &str,
    sorted: &[u128],
) -> Result<FingerprintIndex, StepError> {
    let key = fingerprint_key(part_key);
    let put = compiled
        .put(
            &key,
            Bytes::from(encode_fingerprints(sorted)),
            PutMode::Overwrite,
        )
        .await?;
    Ok(FingerprintIndex {
        object: ObjectRef::new(compiled, &put),
        key,
    })
}

/// The single compiled file of a record written before parts, copied (server-side on S3) to
/// part 0 under `parts/`, so engines that read the parts see its rows too. The copy's name is
/// fixed and its content is that one version, so a run that dies after it and the run after
/// write the same part.
async fn adopt_single_file(
    compiled: &Location,
    previous: &CompiledData,
    ingested_at: Option<chrono::DateTime<Utc>>,
) -> Result<CompiledPart, StepError> {
    let month = ingested_at
        .unwrap_or_else(Utc::now)
        .format("%Y-%m")
        .to_string();
    let key = part_key(&month, "0-finaldata");
    let copied = compiled
        .copy_to(
            names::COMPILED_DATA,
            Some(&previous.object.version_id),
            compiled,
            &key,
        )
        .await?;
    Ok(CompiledPart {
        key,
        object: ObjectRef::new(compiled, &copied),
        rows: previous.rows,
        first_row: 0,
        fingerprints: None,
        statistics: None,
    })
}

/// Commits the ingestion record, conditional on the version this run started from (so two
/// concurrent ingestions can never both win), then the seed-compatible `ingestedfiles.txt`.
/// Returns both as written.
async fn commit_ingestion_record(
    compiled: &Location,
    record: &IngestionRecord,
    started_from: Option<String>,
) -> Result<(ObjectRef, ObjectRef), StepError> {
    let mode = match started_from {
        Some(etag) => PutMode::ReplaceIfMatch(etag),
        None => PutMode::CreateOnly,
    };
    let written = compiled
        .put_json(names::INGESTION_RECORD, "ingestion record", record, mode)
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
    let text = compiled
        .put(
            names::INGESTED_FILES_TXT,
            Bytes::from(record.ingested_files_text()),
            PutMode::Overwrite,
        )
        .await?;
    Ok((
        ObjectRef::new(compiled, &written),
        ObjectRef::new(compiled, &text),
    ))
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

/// Ingests into the configured `compiled_data` location.
pub async fn ingest(
    pipeline: &Pipeline,
    scope: &IngestScope,
    run_id: &str,
) -> Result<IngestionOutcome, StepError> {
    ingest_into(pipeline, &pipeline.locations.compiled_data, scope, run_id).await
}

/// Where the rejected rows of one source file go: one folder per run keeps names unique and
/// groups what one run quarantined.
fn quarantine_name(run_id: &str, key: &str) -> String {
    format!("{}/{run_id}/{key}.rejected.csv", names::QUARANTINE_PREFIX)
}

async fn run_blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StepError> + Send + 'static,
) -> Result<T, StepError> {
    super::spawn_blocking_in_span(work).await?
}

/// What reading one CSV file produced (its duplicates are counted by the compiler).
struct FileRead {
    counts: crate::data::csv::CsvCounts,
    warnings: Vec<String>,
    rejected: Vec<RejectedRow>,
}

/// Work for the compiler thread.
enum ToCompiler {
    /// Accepted rows and their fingerprints.
    Rows(RecordBatch, Vec<u128>),
    /// Room for this many more rows.
    Reserve(usize),
    /// The current file is done: send back how many of its rows were duplicates.
    EndOfFile(Sender<u64>),
}

/// Why one file could not be read through the compiler.
#[derive(Debug, thiserror::Error)]
enum ParseError {
    /// The file is not usable client data; it is rejected and the others go on.
    #[error(transparent)]
    Data(#[from] DataError),
    /// The compiler thread stopped first; it reports its own error, which ends the ingestion.
    #[error("the compiler thread stopped before this file was read")]
    CompilerStopped,
}

/// Parses one CSV file, fingerprints its accepted rows and queues them for the compiler.
fn parse_csv(
    display_name: &str,
    input: impl std::io::Read,
    compiler: &SyncSender<ToCompiler>,
) -> Result<FileRead, ParseError> {
    let mut reader = CsvBatchReader::open(display_name, input)?;
    let mut rejected = Vec::new();
    for batch in &mut reader {
        let batch = batch?;
        let fingerprints = row_fingerprints(&batch.accepted);
        compiler
            .send(ToCompiler::Rows(batch.accepted, fingerprints))
            .map_err(|_| ParseError::CompilerStopped)?;
        rejected.extend(batch.rejected);
    }
    Ok(FileRead {
        counts: reader.counts(),
        warnings: reader.warnings().iter().map(ToString::to_string).collect(),
        rejected,
    })
}

/// Builds this run's parts of the compiled data set: writes each new row once, in first-seen
/// order, and drops exact duplicates of any row seen before (earlier in this run, as rows come;
/// in earlier ingestions, by [`check_against_history`] before anything is written). Every
/// `part_rows` rows it closes the part and hands it to the part writer.
struct Compiler {
    /// Encodes the kept rows into the open part, on a thread of its own.
    encoder: PartEncoder,
    // 128-bit row fingerprints (two independent 64-bit hashes of every field) of this run's
    // rows. Holding fingerprints instead of rows keeps memory at 16 bytes a row (about 29 with
    // the table's spare capacity); a false "duplicate" needs a 128-bit collision, about 1 in
    // 10^23 for ten million rows.
    seen: HashSet<u128, Prehashed>,
    /// Rows written by this run.
    rows: u64,
    /// The fingerprints of the rows in the open part (its index, once sorted).
    part_fingerprints: Vec<u128>,
    /// Rows after which the open part is closed.
    part_rows: u64,
    /// How many parts were closed.
    closed: usize,
    /// The rows held until they are checked against the history (`None`: written as they come).
    pending: Option<Pending>,
}

/// New rows (without this run's own duplicates) held for the check against the history.
#[derive(Default)]
struct Pending {
    /// Each batch, its rows' fingerprints and the file it came from (its position).
    batches: Vec<(RecordBatch, Vec<u128>, usize)>,
    /// Each finished file's answer channel and its duplicates within this run.
    replies: Vec<(Sender<u64>, u64)>,
}

/// Multiplies and folds the 128-bit product: the mixing step of wyhash and foldhash, a few
/// cycles, and every input bit affects every output bit after two rounds.
#[inline(always)]
fn fold_multiply(a: u64, b: u64) -> u64 {
    let product = u128::from(a) * u128::from(b);
    (product as u64) ^ ((product >> 64) as u64)
}

/// The per-lane constants: odd, high-entropy (the fractional digits of pi and e).
const LANE_KEYS: [[u64; 4]; 2] = [
    [
        0x243F_6A88_85A3_08D3,
        0x1319_8A2E_0370_7345,
        0xA409_3822_299F_31D1,
        0x082E_FA98_EC4E_6C89,
    ],
    [
        0xB7E1_5162_8AED_2A6B,
        0xBF71_5880_9CF4_F3C7,
        0x62E7_160F_38B4_DA57,
        0xA784_D905_5A9F_1C3B,
    ],
];
const NULL_SALT: u64 = 0x9E37_79B9_7F4A_7C15;

/// Two independent 64-bit hash lanes over every field of every row, column by column (so each
/// pass is a tight loop over one Arrow buffer).
fn row_fingerprints(batch: &RecordBatch) -> Vec<u128> {
    let rows = batch.num_rows();
    let mut lanes = [vec![LANE_KEYS[0][0]; rows], vec![LANE_KEYS[1][0]; rows]];
    let mix = |lanes: &mut [Vec<u64>; 2], row: usize, field: usize, value: Option<u64>| {
        for (lane, keys) in lanes.iter_mut().zip(&LANE_KEYS) {
            let key = keys[1] ^ (field as u64).wrapping_mul(keys[2]);
            lane[row] = match value {
                Some(value) => fold_multiply(lane[row] ^ value, key),
                None => fold_multiply(lane[row] ^ NULL_SALT, key ^ keys[3]),
            };
        }
    };
    let corporation = batch.column(0).as_string::<i32>();
    for row in 0..rows {
        if corporation.is_null(row) {
            mix(&mut lanes, row, 0, None);
            continue;
        }
        let bytes = corporation.value(row).as_bytes();
        // The length first, so "ab" and "ab\0" differ; then 8 bytes at a time, zero-padded.
        mix(&mut lanes, row, 0, Some(bytes.len() as u64));
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            mix(&mut lanes, row, 0, Some(u64::from_le_bytes(word)));
        }
    }
    for field in 1..4 {
        let column = batch.column(field).as_primitive::<Int64Type>();
        let values = column.values();
        match column.nulls() {
            None => {
                for (row, &value) in values.iter().enumerate() {
                    mix(&mut lanes, row, field, Some(value as u64));
                }
            }
            Some(nulls) => {
                for (row, &value) in values.iter().enumerate() {
                    mix(
                        &mut lanes,
                        row,
                        field,
                        nulls.is_valid(row).then_some(value as u64),
                    );
                }
            }
        }
    }
    let exited = batch.column(4).as_primitive::<Int8Type>();
    for row in 0..rows {
        let value = exited.is_valid(row).then(|| exited.value(row) as u8 as u64);
        mix(&mut lanes, row, 4, value);
    }
    let [first, second] = lanes;
    first
        .into_iter()
        .zip(second)
        // One more round per lane so the last field is as well mixed as the first.
        .map(|(a, b)| {
            let a = fold_multiply(a, LANE_KEYS[0][3]);
            let b = fold_multiply(b, LANE_KEYS[1][3]);
            (u128::from(a) << 64) | u128::from(b)
        })
        .collect()
}

impl Compiler {
    /// A compiler that writes rows as they come, or (`defer`) holds them until
    /// [`Compiler::settle`] knows which were compiled before.
    fn new(
        defer: bool,
        part_rows: u64,
        closed_parts: tokio::sync::mpsc::Sender<ClosedPart>,
    ) -> Result<Self, StepError> {
        Ok(Compiler {
            encoder: PartEncoder::spawn(closed_parts)?,
            seen: HashSet::default(),
            rows: 0,
            part_fingerprints: Vec::new(),
            part_rows: part_rows.max(1),
            closed: 0,
            pending: defer.then(Pending::default),
        })
    }

    /// Makes room for `more` rows at once: growing a table of millions of fingerprints step by
    /// step holds the old and the new table together at every doubling.
    fn reserve(&mut self, more: usize) {
        self.seen.reserve(more);
    }

    /// This run's rows' fingerprints, sorted.
    fn sorted_fingerprints(&self) -> Vec<u128> {
        let mut sorted: Vec<u128> = self.seen.iter().copied().collect();
        sorted.sort_unstable();
        sorted
    }

    /// Adds to `found` the fingerprints of `history` that are among this run's rows.
    fn find_in_history(&self, history: &[u128], found: &mut HashSet<u128, Prehashed>) {
        found.extend(history.iter().filter(|f| self.seen.contains(f)));
    }

    /// Writes the held rows but those `in_history` (compiled before), in order, and answers
    /// each file with its duplicates (within this run and of the history).
    fn settle(mut self, in_history: &HashSet<u128, Prehashed>) -> Result<Compiler, StepError> {
        let Some(pending) = self.pending.take() else {
            return Ok(self);
        };
        let mut duplicates: Vec<u64> = pending.replies.iter().map(|(_, d)| *d).collect();
        for (batch, fingerprints, file) in pending.batches {
            let keep: BooleanArray = fingerprints
                .iter()
                .map(|f| Some(!in_history.contains(f)))
                .collect();
            let kept = keep.true_count();
            if let Some(count) = duplicates.get_mut(file) {
                *count += (batch.num_rows() - kept) as u64;
            }
            self.write_kept(&batch, &keep, &fingerprints)?;
        }
        for ((reply, _), count) in pending.replies.into_iter().zip(duplicates) {
            let _ = reply.send(count);
        }
        Ok(self)
    }

    /// Writes the rows of `batch` that `keep` marks (`fingerprints` are the batch's), closing
    /// the part when it is full.
    fn write_kept(
        &mut self,
        batch: &RecordBatch,
        keep: &BooleanArray,
        fingerprints: &[u128],
    ) -> Result<(), StepError> {
        let kept = keep.true_count();
        if kept == batch.num_rows() {
            self.encoder.send(ToEncoder::Rows(batch.clone()))?;
            self.part_fingerprints.extend_from_slice(fingerprints);
        } else if kept > 0 {
            let filtered = filter_record_batch(batch, keep).map_err(StepError::DropDuplicates)?;
            self.encoder.send(ToEncoder::Rows(filtered))?;
            self.part_fingerprints.extend(
                fingerprints
                    .iter()
                    .zip(keep.values().iter())
                    .filter_map(|(fingerprint, kept)| kept.then_some(*fingerprint)),
            );
        }
        self.rows += kept as u64;
        if self.part_fingerprints.len() as u64 >= self.part_rows {
            self.close_part()?;
        }
        Ok(())
    }

    /// Closes the open part (if it has rows): the encoder finishes it and hands it to the part
    /// writer.
    fn close_part(&mut self) -> Result<(), StepError> {
        if self.part_fingerprints.is_empty() {
            return Ok(());
        }
        let fingerprints = std::mem::take(&mut self.part_fingerprints);
        self.encoder.send(ToEncoder::Close(fingerprints))?;
        self.closed += 1;
        Ok(())
    }

    fn add_fingerprinted(
        &mut self,
        batch: &RecordBatch,
        fingerprints: &[u128],
    ) -> Result<u64, StepError> {
        let keep: BooleanArray = fingerprints
            .iter()
            .map(|fingerprint| Some(self.seen.insert(*fingerprint)))
            .collect();
        let kept = keep.true_count();
        let duplicates = (batch.num_rows() - kept) as u64;
        match &mut self.pending {
            Some(pending) if kept > 0 => {
                let (batch, fingerprints) = if kept == batch.num_rows() {
                    (batch.clone(), fingerprints.to_vec())
                } else {
                    let filtered =
                        filter_record_batch(batch, &keep).map_err(StepError::DropDuplicates)?;
                    let kept_fingerprints = fingerprints
                        .iter()
                        .zip(keep.values().iter())
                        .filter_map(|(fingerprint, kept)| kept.then_some(*fingerprint))
                        .collect();
                    (filtered, kept_fingerprints)
                };
                pending
                    .batches
                    .push((batch, fingerprints, pending.replies.len()));
            }
            Some(_) => {}
            None => self.write_kept(batch, &keep, fingerprints)?,
        }
        Ok(duplicates)
    }

    /// Adds fingerprinted batches from `inbox` until every sender is gone, answering each
    /// end-of-file marker with the duplicates found since the previous one.
    fn run(mut self, inbox: Receiver<ToCompiler>) -> Result<Compiler, StepError> {
        let mut file_duplicates = 0;
        for message in inbox {
            match message {
                ToCompiler::Rows(batch, fingerprints) => {
                    file_duplicates += self.add_fingerprinted(&batch, &fingerprints)?;
                }
                ToCompiler::Reserve(rows) => self.reserve(rows),
                ToCompiler::EndOfFile(reply) => {
                    match &mut self.pending {
                        // Answered once the history is checked.
                        Some(pending) => pending.replies.push((reply, file_duplicates)),
                        None => {
                            let _ = reply.send(file_duplicates);
                        }
                    }
                    file_duplicates = 0;
                }
            }
        }
        Ok(self)
    }

    /// Closes the last part; returns how many parts this run closed, once the encoder has
    /// handed them all to the part writer.
    fn finish(mut self) -> Result<usize, StepError> {
        self.close_part()?;
        self.encoder.finish()?;
        Ok(self.closed)
    }
}

/// What the compiler sends its part encoder.
enum ToEncoder {
    /// Rows to add to the open part.
    Rows(RecordBatch),
    /// The open part is full: finish it, with its rows' fingerprints (sorted there).
    Close(Vec<u128>),
}

/// The thread that encodes the compiler's kept rows into Parquet parts and hands each closed
/// part to the part writer. Encoding was half of the compiler's time, and the compiler the
/// slowest stage of a first ingestion; on a thread of its own it overlaps parsing and
/// de-duplication.
struct PartEncoder {
    inbox: Option<SyncSender<ToEncoder>>,
    thread: Option<std::thread::JoinHandle<Result<(), StepError>>>,
}

impl PartEncoder {
    fn spawn(closed_parts: tokio::sync::mpsc::Sender<ClosedPart>) -> Result<Self, StepError> {
        let new_part = || ParquetBatchWriter::new(names::COMPILED_DATA, Vec::new());
        let mut part = new_part()?;
        // The part's statistics, from its rows as they are encoded (not decoded again after).
        let mut summary = SummaryBuilder::new();
        // A few batches in flight: enough to keep both threads busy, little memory.
        let (inbox, messages) = std::sync::mpsc::sync_channel::<ToEncoder>(4);
        let span = tracing::Span::current();
        let encode = move || {
            span.in_scope(|| {
                for message in messages {
                    match message {
                        ToEncoder::Rows(batch) => {
                            part.write(&batch)?;
                            summary.add(&batch).map_err(|source| StepError::Summary {
                                url: names::COMPILED_DATA.to_string(),
                                source,
                            })?;
                        }
                        ToEncoder::Close(mut fingerprints) => {
                            let (bytes, rows) =
                                std::mem::replace(&mut part, new_part()?).finish_into_inner()?;
                            fingerprints.sort_unstable();
                            // The vector grew by doubling: up to half of it is spare while the
                            // part waits.
                            fingerprints.shrink_to_fit();
                            let closed = ClosedPart {
                                bytes,
                                rows,
                                fingerprints,
                                statistics: std::mem::take(&mut summary).statistics(),
                            };
                            // Refused only when the part writer stopped on an error, which it
                            // reports itself (the count of closed parts then differs from the
                            // written ones).
                            if closed_parts.blocking_send(closed).is_err() {
                                return Ok(());
                            }
                        }
                    }
                }
                Ok(())
            })
        };
        let thread = std::thread::Builder::new()
            .name("part-encoder".into())
            .spawn(encode)
            .map_err(|_| StepError::WorkerStopped {
                work: "the compiled-part encoder",
            })?;
        Ok(PartEncoder {
            inbox: Some(inbox),
            thread: Some(thread),
        })
    }

    /// Sends `message`; when the encoder has stopped, its error.
    fn send(&mut self, message: ToEncoder) -> Result<(), StepError> {
        let sent = self.inbox.as_ref().map(|inbox| inbox.send(message));
        match sent {
            Some(Ok(())) => Ok(()),
            _ => self.finish(),
        }
    }

    /// Waits until every part sent is handed to the part writer; the encoder's error if it
    /// stopped on one.
    fn finish(&mut self) -> Result<(), StepError> {
        self.inbox = None;
        match self.thread.take().map(std::thread::JoinHandle::join) {
            None | Some(Ok(Ok(()))) => Ok(()),
            Some(Ok(Err(error))) => Err(error),
            Some(Err(_)) => Err(StepError::WorkerStopped {
                work: "the compiled-part encoder",
            }),
        }
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

    /// The compiled rows of the record in `pipeline`'s compiled data, as one batch.
    async fn compiled_rows(pipeline: &Pipeline) -> (CompiledData, RecordBatch) {
        let compiled = &pipeline.locations.compiled_data;
        let (_, data) = super::super::compiled::committed_data(pipeline, compiled)
            .await
            .unwrap();
        let parts = super::super::compiled::fetch_parts(compiled, &data, 0)
            .await
            .unwrap();
        let batches = super::super::compiled::decode_rows(&parts, None, 0).unwrap();
        let rows = arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap();
        (data, rows)
    }

    #[tokio::test]
    async fn a_run_of_many_rows_writes_several_indexed_parts_holding_the_rows_one_part_would() {
        let (whole_dir, split_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (_, whole) = crate::testing::local_pipeline(whole_dir.path());
        let (_, split) = crate::testing::local_pipeline(split_dir.path());
        let add_files = |names: &[(&str, &str)]| {
            for dir in [whole_dir.path(), split_dir.path()] {
                for (from, to) in names {
                    std::fs::copy(crate::testing::repo_path(from), dir.join("source").join(to))
                        .unwrap();
                }
            }
        };
        let run = |pipeline: &Pipeline, part_rows: u64, run_id: &'static str| {
            let pipeline = pipeline.clone();
            async move {
                let compiled = pipeline.locations.compiled_data.clone();
                let candidates =
                    list_candidates(&pipeline.locations.source_data, &IngestScope::All)
                        .await
                        .unwrap();
                ingest_in_parts_of(&pipeline, &compiled, candidates, run_id, part_rows)
                    .await
                    .unwrap()
            }
        };
        // The first run (nothing to check against), then one with history: new rows, rows of
        // the history again, and rows repeated within the run.
        let runs: [&[(&str, &str)]; 2] = [
            &[
                ("data/sourcedata/dataset3.csv", "dataset3.csv"),
                ("data/sourcedata/dataset4.csv", "dataset4.csv"),
            ],
            &[
                ("data/practicedata/dataset1.csv", "dataset1.csv"),
                ("data/sourcedata/dataset4.csv", "dataset4-again.csv"),
                ("data/practicedata/dataset2.csv", "dataset2.csv"),
            ],
        ];
        for (number, names) in runs.into_iter().enumerate() {
            add_files(names);
            let run_id = ["run-1", "run-2"][number];
            let one = run(&whole, 1_000_000, run_id).await;
            let many = run(&split, 4, run_id).await;
            assert_eq!(many.rows_added, one.rows_added);
            assert!(many.rows_added > 4);
            let (one_data, one_rows) = compiled_rows(&whole).await;
            let (many_data, many_rows) = compiled_rows(&split).await;
            assert_eq!(many_rows, one_rows, "run {run_id}");
            assert_eq!(many_data.duplicates_dropped, one_data.duplicates_dropped);
            let new_parts: Vec<&CompiledPart> = many_data
                .parts
                .iter()
                .filter(|part| part.key.contains(run_id))
                .collect();
            // A part is closed at the first batch end after 4 rows (a seed file is one batch).
            assert!(new_parts.len() >= 2, "run {run_id}: {new_parts:?}");
            assert!(
                new_parts
                    .iter()
                    .all(|part| part.rows >= 4 || part.key == new_parts.last().unwrap().key)
            );
            assert!(
                new_parts[0]
                    .key
                    .ends_with(&format!("part-{run_id}.parquet"))
            );
            assert!(
                new_parts[1]
                    .key
                    .ends_with(&format!("part-{run_id}-2.parquet"))
            );
            let mut next_row = 0;
            for part in &many_data.parts {
                assert_eq!(part.first_row, next_row);
                next_row += part.rows;
                // The statistics computed as the part was encoded are those of its rows.
                let stored = part.statistics.as_ref().unwrap();
                let compiled = &split.locations.compiled_data;
                let (_, stats) = compiled
                    .get(&stored.key, Some(&stored.object.version_id))
                    .await
                    .unwrap();
                let stats: crate::stats::DataStatistics = serde_json::from_slice(&stats).unwrap();
                let (_, bytes) = compiled
                    .get(&part.key, Some(&part.object.version_id))
                    .await
                    .unwrap();
                let decoded = super::super::compiled::fetched_part(
                    &part.key,
                    part.first_row,
                    part.rows,
                    bytes,
                );
                let from_rows = super::super::statistics::statistics_of_part(&decoded).unwrap();
                assert_eq!(stats, from_rows, "{}", part.key);
                assert!(stats.describes(part.rows), "{}", part.key);
                let index = part.fingerprints.as_ref().unwrap();
                let (_, bytes) = split
                    .locations
                    .compiled_data
                    .get(&index.key, Some(&index.object.version_id))
                    .await
                    .unwrap();
                let fingerprints =
                    super::super::compiled::decode_fingerprints(&bytes, part.rows).unwrap();
                assert!(fingerprints.windows(2).all(|w| w[0] < w[1]));
            }
            assert_eq!(next_row, many_data.rows);
            assert_eq!(many_data.object, many_data.parts.last().unwrap().object);
        }

        // The seed's rows again: all found in the many small parts' indexes.
        std::fs::copy(
            crate::testing::repo_path("data/sourcedata/dataset3.csv"),
            split_dir.path().join("source/again.csv"),
        )
        .unwrap();
        let again = run(&split, 4, "run-3").await;
        assert_eq!(again.rows_added, 0);
        assert_eq!(
            again.new_files[0].rows_duplicate,
            again.new_files[0].rows_accepted
        );
    }

    #[test]
    fn the_sorted_merge_finds_the_new_fingerprints_in_the_history_and_refuses_disorder() {
        let new_sorted = [2u128, 3, 5, 9, 11, 20, 30];
        let mut merge = SortedMerge::new(&new_sorted);
        // Repeats are allowed (an index rebuilt from a part written before de-duplication),
        // also across runs; a new fingerprint found at a run's end is found once.
        for run in [
            &[1u128, 3, 3][..],
            &[3, 4, 9],
            &[],
            &[10, 11],
            &[11, 12, 21],
        ] {
            assert!(merge.next_run(&encode_fingerprints(run)));
        }
        assert_eq!(merge.found, vec![3, 9, 11]);

        let mut unsorted = SortedMerge::new(&new_sorted);
        assert!(unsorted.next_run(&encode_fingerprints(&[1, 9])));
        assert!(
            !unsorted.next_run(&encode_fingerprints(&[3])),
            "a smaller fingerprint after a larger one"
        );
        let mut unsorted_within = SortedMerge::new(&new_sorted);
        assert!(
            !unsorted_within.next_run(&encode_fingerprints(&[1, 9, 3])),
            "out of order within a run"
        );
    }
}
