//! The list at rest, in the reports location: `risk/latest.parquet` and `risk/latest.csv` (new
//! versions each time; every earlier version is kept by the store, and the run record names the
//! versions a run wrote), and a Parquet copy per run, `risk/lists/<run>.parquet`, written
//! create-only so no run's list is ever replaced (versions before `risk/lists/` kept Parquet and
//! CSV copies in `risk/runs/`; those are still read).
//! The Parquet file is self-describing: [`RiskListMeta`] (model version, threshold, data version,
//! bands, counts) is in its key-value metadata under `risk_list`, and each row holds a client
//! with its raw values, standardised values and contributions per feature, so DuckDB, Athena or
//! pandas read it as a table. The CSV carries the same rows for a spreadsheet, its numbers
//! rounded for reading. The per-run copy is written before `latest`, and `latest.parquet` last,
//! so a reader of `latest.parquet` never sees a list whose run copy is missing.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
    StringBuilder, UInt32Array,
};
use arrow::datatypes::{DataType, Field, Float64Type, Int64Type, Schema, UInt32Type};
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;
use serde::{Deserialize, Serialize};

use super::build::{
    BuiltList, PreviousClient, PreviousList, Provenance, build_list, first_row_needed,
    rows_for_new_list, sort_drivers,
};
use super::compiled_rows::CompiledRows;
use super::drivers::Phrases;
use super::{
    Band, ClientStatus, DataLineage, Driver, RiskBands, RiskEntry, RiskList, RiskListError,
    RiskListMeta, joined,
};
use crate::data::schema::FEATURES;
use crate::location::Location;
use crate::records::{ObjectRef, RunRecord};
use crate::steps::compiled::{committed_data, fetch_parts};
use crate::steps::deployment::deployed_model;
use crate::steps::{Pipeline, StepError, spawn_blocking_in_span};
use crate::store::{PutMode, StoreError};

/// Object names in the reports location.
pub const LATEST_PARQUET: &str = "risk/latest.parquet";
pub const LATEST_CSV: &str = "risk/latest.csv";
/// Where versions before [`RUN_LISTS_PREFIX`] put the per-run copies (Parquet and CSV); still
/// read for a client's history.
pub const RUNS_PREFIX: &str = "risk/runs";
/// Per-run Parquet copies, `risk/lists/<run>.parquet`: a prefix holding only Parquet files, so
/// Athena (the Glue table `risk_lists`), DuckDB or pyarrow read it as one table.
pub const RUN_LISTS_PREFIX: &str = "risk/lists";
/// The Parquet key-value metadata key holding [`RiskListMeta`] as JSON.
pub const META_KEY: &str = "risk_list";

/// Earlier lists a client's history reads at most (newest first).
pub const HISTORY_LISTS: usize = 12;

/// The list a run wrote, as the run record names it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RiskListRecord {
    pub latest_parquet: ObjectRef,
    /// The version of `latest.csv` this run wrote (the list's only CSV copy).
    pub latest_csv: ObjectRef,
    pub run_parquet: ObjectRef,
    pub model_version: String,
    pub threshold: f64,
    pub data_version: String,
    pub clients: u64,
    pub ranked: u64,
    pub exited: u64,
    /// Clients who left before the data the list is new for: counted, not listed.
    #[serde(default)]
    pub exited_earlier: u64,
    pub high: u64,
    pub watch: u64,
    pub newly_high: u64,
}

/// A list built from the deployed model and the committed compiled data and encoded, not yet
/// stored ([`draft_risk_list`]; [`store_draft`] writes it). The full process drafts the list
/// while it checks the deployed model for drift, and stores the draft if the run keeps that
/// model.
pub struct RiskListDraft {
    list: BuiltList,
    parquet: Bytes,
    csv: Bytes,
    /// Where the time went, in milliseconds: reading, the rows, scoring, the batch, and the
    /// Parquet and CSV encodings (at once).
    read_ms: f64,
    rows_ms: f64,
    score_ms: f64,
    batch_ms: f64,
    parquet_ms: f64,
    csv_ms: f64,
}

impl RiskListDraft {
    /// The version (in the models location) of the model the list scored with.
    pub fn model_version(&self) -> &str {
        &self.list.meta.model_version
    }
}

fn millis_since(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}

/// Builds the list from the deployed model and the compiled data the ingestion record names,
/// compares it with the latest list, and writes it (per-run copy, then latest).
pub async fn write_risk_list(
    pipeline: &Pipeline,
    run_id: &str,
    bands: &RiskBands,
) -> Result<(RiskListRecord, BuiltList), StepError> {
    let draft = draft_risk_list(pipeline, run_id, bands, None).await?;
    store_draft(pipeline, draft).await
}

/// The latest list as [`load_previous`] read it earlier in the run (`None`: none was written),
/// which a draft then does not read again.
pub struct PreviousRead(pub Option<PreviousList>);

/// The list [`write_risk_list`] would write now, built and encoded but not stored; from the
/// `previous` list when the caller read it already.
pub async fn draft_risk_list(
    pipeline: &Pipeline,
    run_id: &str,
    bands: &RiskBands,
    previous: Option<PreviousRead>,
) -> Result<RiskListDraft, StepError> {
    let ms = millis_since;
    let started = Instant::now();
    let compiled_data = &pipeline.locations.compiled_data;
    let reports = &pipeline.locations.reports;
    let ((deployment, model), (ingestion, compiled), previous) = tokio::try_join!(
        deployed_model(pipeline),
        committed_data(pipeline, compiled_data),
        async {
            match previous {
                Some(PreviousRead(previous)) => Ok(previous),
                None => Ok(load_previous(reports).await?),
            }
        },
    )?;
    let data = compiled.object.clone();
    // An incremental build reads only the parts holding the rows added since the previous list.
    let first_row = first_row_needed(previous.as_ref(), &ingestion, compiled.rows, &model);
    let parts = fetch_parts(compiled_data, &compiled, first_row).await?;
    let mut provenance = Provenance {
        run_id: run_id.to_string(),
        model_version: deployment.model.version_id.clone(),
        model_deployed_by: deployment.run_id.clone(),
        data_version: data.version_id.clone(),
        lineage: None,
    };
    let bands = *bands;
    let read_ms = ms(started);
    let (list, batch, timings) = spawn_blocking_in_span(move || {
        let step = Instant::now();
        let compiled = CompiledRows::of_parts(&parts, first_row)?;
        let rows = rows_for_new_list(&compiled, &ingestion, previous.as_ref(), &model)?;
        provenance.lineage = DataLineage::of(&ingestion, compiled.row_count(), rows.recent_from);
        drop(compiled);
        let rows_ms = ms(step);
        let step = Instant::now();
        let list = build_list(&model, rows, previous.as_ref(), &bands, provenance)?;
        drop(previous);
        let score_ms = ms(step);
        let step = Instant::now();
        let batch = to_batch(&list)?;
        Ok::<_, RiskListError>((list, Arc::new(batch), [rows_ms, score_ms, ms(step)]))
    })
    .await??;
    let [rows_ms, score_ms, batch_ms] = timings;
    // The one batch encoded twice at once (the CSV, the larger, on two threads).
    let encoded = |encode: Box<dyn FnOnce(&RecordBatch) -> EncodeResult + Send>| {
        let batch = Arc::clone(&batch);
        async move {
            let started = Instant::now();
            let bytes = spawn_blocking_in_span(move || encode(&batch)).await??;
            Ok::<_, StepError>((Bytes::from(bytes), ms(started)))
        }
    };
    let meta = list.meta.clone();
    let to_parquet = move |batch: &RecordBatch| batch_to_parquet(&meta, batch);
    let ((parquet, parquet_ms), (csv, csv_ms)) = tokio::try_join!(
        encoded(Box::new(to_parquet)),
        encoded(Box::new(batch_to_csv)),
    )?;
    Ok(RiskListDraft {
        list,
        parquet,
        csv,
        read_ms,
        rows_ms,
        score_ms,
        batch_ms,
        parquet_ms,
        csv_ms,
    })
}

/// Writes a drafted list: the run's Parquet copy and the new version of `latest.csv` at once,
/// then `latest.parquet` as a copy of the run's copy (on S3, server-side: the bytes are
/// uploaded once). The CSV is written once, as a new version of `latest.csv` (the run record
/// names that version): a per-run copy of a file ten times the Parquet file's size was a third
/// of the step's time.
pub async fn store_draft(
    pipeline: &Pipeline,
    draft: RiskListDraft,
) -> Result<(RiskListRecord, BuiltList), StepError> {
    let reports = &pipeline.locations.reports;
    let put = |name: String, body: Bytes, mode: PutMode| async move {
        let meta = reports.put(&name, body, mode).await?;
        Ok::<_, StoreError>(ObjectRef::new(reports, &meta))
    };
    let run_key = format!("{RUN_LISTS_PREFIX}/{}.parquet", draft.list.meta.run_id);
    let writing = Instant::now();
    let (run_parquet, latest_csv) = tokio::try_join!(
        put(run_key.clone(), draft.parquet, PutMode::CreateOnly),
        put(LATEST_CSV.to_string(), draft.csv, PutMode::Overwrite),
    )?;
    // Only this run writes its run key (create-only), so its latest version is the one above.
    let latest_parquet = reports
        .copy_to(&run_key, None, reports, LATEST_PARQUET)
        .await
        .map(|meta| ObjectRef::new(reports, &meta))?;
    let list = draft.list;
    let meta = &list.meta;
    tracing::info!(
        clients = meta.clients,
        high = meta.high,
        watch = meta.watch,
        newly_high = meta.newly_high,
        exited = meta.exited,
        exited_earlier = meta.exited_earlier,
        incremental = meta.incremental,
        model_version = %meta.model_version,
        read_ms = draft.read_ms,
        rows_ms = draft.rows_ms,
        score_ms = draft.score_ms,
        batch_ms = draft.batch_ms,
        parquet_ms = draft.parquet_ms,
        csv_ms = draft.csv_ms,
        write_ms = millis_since(writing),
        "risk list written"
    );
    let record = RiskListRecord {
        latest_parquet,
        latest_csv,
        run_parquet,
        model_version: meta.model_version.clone(),
        threshold: meta.threshold,
        data_version: meta.data_version.clone(),
        clients: meta.clients,
        ranked: meta.ranked,
        exited: meta.exited,
        exited_earlier: meta.exited_earlier,
        high: meta.high,
        watch: meta.watch,
        newly_high: meta.newly_high,
    };
    Ok((record, list))
}

/// After a full-process run: writes the list when a model is deployed and the run deployed one
/// or finished new compiled data (`checked_new_data`: rows it added, or rows a crashed run left
/// unchecked); otherwise nothing. Bands are the pipeline's. A `draft` made earlier in the run
/// is stored instead of building the list again when the run kept the model it scored with.
pub async fn write_after_run(
    pipeline: &Pipeline,
    run_id: &str,
    record: &RunRecord,
    checked_new_data: bool,
    draft: Option<RiskListDraft>,
) -> Result<Option<(RiskListRecord, BuiltList)>, StepError> {
    let deployed_now = record.model_after.is_some() && record.model_after != record.model_before;
    if record.model_after.is_none() || !(deployed_now || checked_new_data) {
        return Ok(None);
    }
    let scored_with_deployed = |draft: &RiskListDraft| {
        record
            .model_after
            .as_ref()
            .is_some_and(|model| model.version_id == draft.model_version())
    };
    let written = match draft.filter(|draft| !deployed_now && scored_with_deployed(draft)) {
        Some(draft) => store_draft(pipeline, draft).await?,
        None => write_risk_list(pipeline, run_id, &pipeline.risk_bands).await?,
    };
    Ok(Some(written))
}

/// The latest list in the reports location, or `None` when none was written yet. The function
/// other readers (the API, the HTML report) use.
pub async fn load_latest(reports: &Location) -> Result<Option<RiskList>, RiskListError> {
    read_latest(reports, from_parquet).await
}

/// What a new list needs of the latest one ([`PreviousList`]), or `None` when none was written.
pub async fn load_previous(reports: &Location) -> Result<Option<PreviousList>, RiskListError> {
    read_latest(reports, previous_from_parquet).await
}

/// `latest.parquet` read by `decode` (bytes, URL, version) on a blocking thread; `None` when
/// none was written yet.
async fn read_latest<T: Send + 'static>(
    reports: &Location,
    decode: fn(Bytes, &str, &str) -> Result<T, RiskListError>,
) -> Result<Option<T>, RiskListError> {
    let Some((meta, bytes)) = reports.get_if_exists(LATEST_PARQUET).await? else {
        return Ok(None);
    };
    let url = reports.object_url(LATEST_PARQUET);
    let read = tokio::task::spawn_blocking(move || decode(bytes, &url, &meta.version_id))
        .await
        .map_err(|e| RiskListError::Encode {
            format: "a worker thread",
            detail: e.to_string(),
        })??;
    Ok(Some(read))
}

/// A client in one earlier list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryPoint {
    pub run_id: String,
    pub generated_at: chrono::DateTime<chrono::Utc>,
    pub model_version: String,
    pub status: ClientStatus,
    pub rank: Option<u32>,
    pub probability: Option<f64>,
    pub band: Option<Band>,
}

/// `corporation` in the newest [`HISTORY_LISTS`] per-run lists other than `except_run` (the
/// current one), newest first; lists it is not in are left out.
pub async fn client_history(
    reports: &Location,
    corporation: &str,
    except_run: Option<&str>,
) -> Result<Vec<HistoryPoint>, RiskListError> {
    let mut listed = reports.list(&format!("{RUN_LISTS_PREFIX}/")).await?;
    listed.extend(reports.list(&format!("{RUNS_PREFIX}/")).await?);
    let mut keys: Vec<String> = listed
        .into_iter()
        .map(|meta| meta.key)
        .filter(|key| key.ends_with(".parquet"))
        .filter(|key| except_run.is_none_or(|run| !key.ends_with(&format!("/{run}.parquet"))))
        .collect();
    // Run ids start with their time, so the newest sort last (by file name: older lists are in
    // the other folder).
    let file_name = |key: &String| key.rsplit('/').next().unwrap_or_default().to_string();
    keys.sort_unstable_by_key(|key| std::cmp::Reverse(file_name(key)));
    keys.truncate(HISTORY_LISTS);
    let mut history = Vec::new();
    for key in keys {
        let (meta, bytes) = reports.get(&key, None).await?;
        let url = reports.object_url(&key);
        let wanted = corporation.to_string();
        let point = tokio::task::spawn_blocking(move || {
            find_in_parquet(bytes, &url, &meta.version_id, &wanted)
        })
        .await
        .map_err(|e| RiskListError::Encode {
            format: "a worker thread",
            detail: e.to_string(),
        })??;
        history.extend(point);
    }
    Ok(history)
}

fn value_column(feature: &str) -> String {
    feature.to_string()
}

fn standardized_column(feature: &str) -> String {
    format!("{feature}_standardized")
}

fn contribution_column(feature: &str) -> String {
    format!("{feature}_contribution")
}

/// The drivers' phrases, largest first, as one text field per client (`"; "` between them;
/// empty for a client that left).
fn drivers_column(list: &BuiltList) -> StringArray {
    let positions = 0..list.len();
    let bytes = positions
        .clone()
        .flat_map(|p| list.phrases(p))
        .map(|phrase| phrase.len() + 2)
        .sum();
    let mut column = StringBuilder::with_capacity(list.len(), bytes);
    let mut text = String::new();
    for position in positions {
        text.clear();
        for (index, phrase) in list.phrases(position).enumerate() {
            if index > 0 {
                text.push_str("; ");
            }
            text.push_str(phrase);
        }
        column.append_value(&text);
    }
    column.finish()
}

/// The list as one record batch: fixed columns, then value, standardised value and
/// contribution per model feature; made from the list's columns, not from entries.
fn to_batch(list: &BuiltList) -> Result<RecordBatch, RiskListError> {
    // The drivers' text, the largest column (a copy of every phrase), on a second core.
    std::thread::scope(|scope| {
        let drivers = scope.spawn(|| drivers_column(list));
        let (fields, mut columns, features) = other_columns(list);
        let drivers = drivers
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        columns.push(Arc::new(drivers));
        columns.extend(features);
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(|e| {
            RiskListError::Encode {
                format: "Arrow",
                detail: e.to_string(),
            }
        })
    })
}

/// Every field of [`to_batch`], its columns before the drivers, and the feature columns after.
fn other_columns(list: &BuiltList) -> (Vec<Field>, Vec<ArrayRef>, Vec<ArrayRef>) {
    let clients = list.len();
    let positions = || 0..clients;
    let mut fields = vec![
        Field::new("rank", DataType::UInt32, true),
        Field::new("corporation", DataType::Utf8, false),
        Field::new("status", DataType::Utf8, false),
        Field::new("probability", DataType::Float64, true),
        Field::new("band", DataType::Utf8, true),
        Field::new("previous_probability", DataType::Float64, true),
        Field::new("probability_change", DataType::Float64, true),
        Field::new("newly_high", DataType::Boolean, false),
        Field::new("drivers", DataType::Utf8, false),
    ];
    let code_bytes = positions().map(|p| list.corporation(p).len()).sum();
    let mut corporations = StringBuilder::with_capacity(clients, code_bytes);
    for position in positions() {
        corporations.append_value(list.corporation(position));
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(positions().map(|p| list.rank(p)).collect::<UInt32Array>()),
        Arc::new(corporations.finish()),
        Arc::new(
            positions()
                .map(|p| Some(list.status(p).name()))
                .collect::<StringArray>(),
        ),
        Arc::new(
            positions()
                .map(|p| list.probability(p))
                .collect::<Float64Array>(),
        ),
        Arc::new(
            positions()
                .map(|p| list.band(p).map(Band::name))
                .collect::<StringArray>(),
        ),
        Arc::new(
            positions()
                .map(|p| list.previous_probability(p))
                .collect::<Float64Array>(),
        ),
        Arc::new(
            positions()
                .map(|p| list.probability_change(p))
                .collect::<Float64Array>(),
        ),
        Arc::new(
            positions()
                .map(|p| Some(list.newly_high(p)))
                .collect::<BooleanArray>(),
        ),
    ];
    let mut features: Vec<ArrayRef> = Vec::new();
    for (index, feature) in list.meta.features.iter().enumerate() {
        let name = feature.name.as_str();
        let (values, standardized, contributions) = list.feature_columns(index);
        fields.push(Field::new(value_column(name), DataType::Int64, true));
        fields.push(Field::new(
            standardized_column(name),
            DataType::Float64,
            true,
        ));
        fields.push(Field::new(
            contribution_column(name),
            DataType::Float64,
            true,
        ));
        // A client that left (the positions after the ranked ones) has none of the three.
        let exited = clients - values.len();
        let values: Int64Array = values
            .into_iter()
            .chain(std::iter::repeat_n(None, exited))
            .collect();
        let standardized: Float64Array = (standardized.iter().map(|&v| Some(v)))
            .chain(std::iter::repeat_n(None, exited))
            .collect();
        let contributions: Float64Array = (contributions.iter().map(|&v| Some(v)))
            .chain(std::iter::repeat_n(None, exited))
            .collect();
        features.push(Arc::new(values));
        features.push(Arc::new(standardized));
        features.push(Arc::new(contributions));
    }
    (fields, columns, features)
}

/// What encoding the list's batch into one file gives.
type EncodeResult = Result<Vec<u8>, RiskListError>;

/// The list's [`to_batch`] as a Parquet file with its [`RiskListMeta`] in the key-value
/// metadata.
fn batch_to_parquet(meta: &RiskListMeta, batch: &RecordBatch) -> Result<Vec<u8>, RiskListError> {
    let encode = |detail: String| RiskListError::Encode {
        format: "Parquet",
        detail,
    };
    let meta = serde_json::to_string(meta).map_err(|e| encode(e.to_string()))?;
    // Dictionaries only where values repeat: numbers and codes are nearly all distinct, and a
    // dictionary of 100,000 distinct values per column cost time and space for nothing.
    let mut properties = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_dictionary_enabled(false)
        .set_key_value_metadata(Some(vec![KeyValue::new(META_KEY.to_string(), meta)]));
    for repeated in ["status", "band", "drivers"] {
        properties = properties.set_column_dictionary_enabled(ColumnPath::from(repeated), true);
    }
    let properties = properties.build();
    let mut buffer = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut buffer, batch.schema(), Some(properties))
        .map_err(|e| encode(e.to_string()))?;
    writer.write(batch).map_err(|e| encode(e.to_string()))?;
    writer.close().map_err(|e| encode(e.to_string()))?;
    Ok(buffer)
}

/// The first characters that make a spreadsheet read a cell as a formula.
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// A text cell a spreadsheet will not run as a formula: a corporation code is client data, and
/// one starting with `=`, `+`, `-`, `@`, a tab or a carriage return is prefixed with `'` (OWASP's
/// advice for CSV injection). The Parquet file keeps the code as it is.
fn spreadsheet_safe(text: &str) -> Cow<'_, str> {
    if text.starts_with(FORMULA_STARTS) {
        Cow::Owned(format!("'{text}"))
    } else {
        Cow::Borrowed(text)
    }
}

/// Decimals of the probabilities (and their change) in the CSV: a person reads 0.348675, not
/// 0.34867534238099133; the Parquet file keeps every digit.
pub const CSV_PROBABILITY_DECIMALS: u32 = 6;
/// Decimals of the standardised values and contributions in the CSV.
pub const CSV_SCALE_DECIMALS: u32 = 4;

/// The list's [`to_batch`] as CSV with a header row: the same columns as the Parquet file (text
/// cells made [spreadsheet-safe](spreadsheet_safe); probabilities with
/// [`CSV_PROBABILITY_DECIMALS`] decimals, standardised values and contributions with
/// [`CSV_SCALE_DECIMALS`]), written field by field into one buffer.
fn batch_to_csv(batch: &RecordBatch) -> Result<Vec<u8>, RiskListError> {
    // Two halves on two threads (the CSV takes twice the Parquet file's time), joined in order.
    let half = batch.num_rows() / 2;
    let (mut first, second) = std::thread::scope(|scope| {
        let second = scope.spawn(|| csv_rows(&batch.slice(half, batch.num_rows() - half), false));
        let first = csv_rows(&batch.slice(0, half), true)?;
        Ok::<_, RiskListError>((first, joined(second, "CSV")??))
    })?;
    first.extend_from_slice(&second);
    Ok(first)
}

/// The rows of `batch` as CSV, after the header row if `header`.
fn csv_rows(batch: &RecordBatch, header: bool) -> Result<Vec<u8>, RiskListError> {
    let encode = |detail: String| RiskListError::Encode {
        format: "CSV",
        detail,
    };
    // About 300 bytes a client.
    let mut writer = csv::Writer::from_writer(Vec::with_capacity(batch.num_rows() * 320));
    let schema = batch.schema();
    if header {
        writer
            .write_record(schema.fields().iter().map(|f| f.name().as_bytes()))
            .map_err(|e| encode(e.to_string()))?;
    }
    enum Cells<'a> {
        Ranks(&'a UInt32Array),
        Integers(&'a Int64Array),
        /// With this many decimals.
        Floats(&'a Float64Array, u32),
        Flags(&'a BooleanArray),
        Text(&'a StringArray),
    }
    let cells = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(column, field)| {
            if let Some(c) = column.as_primitive_opt::<UInt32Type>() {
                Ok(Cells::Ranks(c))
            } else if let Some(c) = column.as_primitive_opt::<Int64Type>() {
                Ok(Cells::Integers(c))
            } else if let Some(c) = column.as_primitive_opt::<Float64Type>() {
                let probability = field.name().starts_with("probability")
                    || field.name() == "previous_probability";
                let decimals = if probability {
                    CSV_PROBABILITY_DECIMALS
                } else {
                    CSV_SCALE_DECIMALS
                };
                Ok(Cells::Floats(c, decimals))
            } else if let Some(c) = column.as_boolean_opt() {
                Ok(Cells::Flags(c))
            } else if let Some(c) = column.as_string_opt::<i32>() {
                Ok(Cells::Text(c))
            } else {
                Err(encode(format!("no CSV form for {}", column.data_type())))
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut integers = itoa::Buffer::new();
    let mut number = String::with_capacity(32);
    for row in 0..batch.num_rows() {
        for cell in &cells {
            let written = match cell {
                Cells::Ranks(c) if c.is_valid(row) => {
                    writer.write_field(integers.format(c.value(row)))
                }
                Cells::Integers(c) if c.is_valid(row) => {
                    writer.write_field(integers.format(c.value(row)))
                }
                Cells::Floats(c, decimals) if c.is_valid(row) => {
                    number.clear();
                    write_fixed(&mut number, c.value(row), *decimals);
                    writer.write_field(&number)
                }
                Cells::Flags(c) if c.is_valid(row) => {
                    writer.write_field(if c.value(row) { "true" } else { "false" })
                }
                Cells::Text(c) if c.is_valid(row) => {
                    writer.write_field(spreadsheet_safe(c.value(row)).as_bytes())
                }
                _ => writer.write_field(""),
            };
            written.map_err(|e| encode(e.to_string()))?;
        }
        writer
            .write_record(None::<&[u8]>)
            .map_err(|e| encode(e.to_string()))?;
    }
    writer.into_inner().map_err(|e| encode(e.to_string()))
}

/// `value` with `decimals` decimals, rounded (half away from zero) — what
/// `format!("{value:.decimals$}")` writes, up to how a tie in the last digit is broken, at a
/// fraction of its cost (that exact formatter was most of the CSV's time). A zero is written
/// without a sign.
fn write_fixed(out: &mut String, value: f64, decimals: u32) {
    let scaled = (value * 10f64.powi(decimals as i32)).round();
    // Beyond 2^53 the scaled value is no longer an exact integer: the exact formatter then.
    if !scaled.is_finite() || scaled.abs() >= 9.0e15 {
        let _ = write!(out, "{value:.*}", decimals as usize);
        return;
    }
    let scaled = scaled as i64;
    if scaled < 0 {
        out.push('-');
    }
    let magnitude = scaled.unsigned_abs();
    let unit = 10u64.pow(decimals);
    let mut digits = itoa::Buffer::new();
    out.push_str(digits.format(magnitude / unit));
    if decimals > 0 {
        out.push('.');
        let fraction = digits.format(magnitude % unit);
        out.extend(std::iter::repeat_n('0', decimals as usize - fraction.len()));
        out.push_str(fraction);
    }
}

/// Opens a list's Parquet bytes: its metadata and a reader builder.
fn open(
    bytes: Bytes,
    url: &str,
    version: &str,
) -> Result<(RiskListMeta, ParquetRecordBatchReaderBuilder<Bytes>), RiskListError> {
    let unreadable = |detail: String| RiskListError::Unreadable {
        url: url.to_string(),
        version: version.to_string(),
        detail,
    };
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(|e| unreadable(e.to_string()))?;
    let meta = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|kv| kv.key == META_KEY))
        .and_then(|kv| kv.value.clone())
        .ok_or_else(|| unreadable(format!("no `{META_KEY}` metadata")))?;
    let meta: RiskListMeta =
        serde_json::from_str(&meta).map_err(|e| unreadable(format!("its metadata: {e}")))?;
    Ok((meta, builder))
}

/// Typed access to a list batch's columns by name.
struct Columns<'a> {
    batch: &'a RecordBatch,
    url: &'a str,
    version: &'a str,
}

impl<'a> Columns<'a> {
    fn missing(&self, name: &str) -> RiskListError {
        RiskListError::Unreadable {
            url: self.url.to_string(),
            version: self.version.to_string(),
            detail: format!("column `{name}` is missing or of the wrong type"),
        }
    }

    fn strings(&self, name: &str) -> Result<&'a StringArray, RiskListError> {
        self.batch
            .column_by_name(name)
            .and_then(|c| c.as_string_opt::<i32>())
            .ok_or_else(|| self.missing(name))
    }

    fn floats(&self, name: &str) -> Result<&'a Float64Array, RiskListError> {
        self.batch
            .column_by_name(name)
            .and_then(|c| c.as_primitive_opt::<Float64Type>())
            .ok_or_else(|| self.missing(name))
    }

    fn ints(&self, name: &str) -> Result<&'a Int64Array, RiskListError> {
        self.batch
            .column_by_name(name)
            .and_then(|c| c.as_primitive_opt::<Int64Type>())
            .ok_or_else(|| self.missing(name))
    }

    fn ranks(&self) -> Result<&'a UInt32Array, RiskListError> {
        self.batch
            .column_by_name("rank")
            .and_then(|c| c.as_primitive_opt::<UInt32Type>())
            .ok_or_else(|| self.missing("rank"))
    }

    fn booleans(&self, name: &str) -> Result<&'a BooleanArray, RiskListError> {
        self.batch
            .column_by_name(name)
            .and_then(|c| c.as_boolean_opt())
            .ok_or_else(|| self.missing(name))
    }

    /// The status in `row` of the `status` column (`statuses`, fetched once per batch).
    fn status(&self, statuses: &StringArray, row: usize) -> Result<ClientStatus, RiskListError> {
        match statuses.value(row) {
            "active" => Ok(ClientStatus::Active),
            "exited" => Ok(ClientStatus::Exited),
            other => Err(self.missing(&format!("status (value {other:?})"))),
        }
    }

    /// The band in `row` of the `band` column (`bands`, fetched once per batch).
    fn band(&self, bands: &StringArray, row: usize) -> Result<Option<Band>, RiskListError> {
        if bands.is_null(row) {
            return Ok(None);
        }
        Band::parse(bands.value(row))
            .map(Some)
            .ok_or_else(|| self.missing(&format!("band (value {:?})", bands.value(row))))
    }
}

fn optional(column: &Float64Array, row: usize) -> Option<f64> {
    column.is_valid(row).then(|| column.value(row))
}

/// Reads a whole list back.
pub fn from_parquet(bytes: Bytes, url: &str, version: &str) -> Result<RiskList, RiskListError> {
    let (meta, builder) = open(bytes, url, version)?;
    let reader = builder.build().map_err(|e| RiskListError::Unreadable {
        url: url.to_string(),
        version: version.to_string(),
        detail: e.to_string(),
    })?;
    let mut entries = Vec::with_capacity(usize::try_from(meta.clients).unwrap_or(0));
    for batch in reader {
        let batch = batch.map_err(|e| RiskListError::Unreadable {
            url: url.to_string(),
            version: version.to_string(),
            detail: e.to_string(),
        })?;
        let columns = Columns {
            batch: &batch,
            url,
            version,
        };
        let ranks = columns.ranks()?;
        let corporations = columns.strings("corporation")?;
        let (statuses, bands) = (columns.strings("status")?, columns.strings("band")?);
        let probabilities = columns.floats("probability")?;
        let previous = columns.floats("previous_probability")?;
        let changes = columns.floats("probability_change")?;
        let newly_high = columns.booleans("newly_high")?;
        let per_feature = meta
            .features
            .iter()
            .map(|f| {
                Ok((
                    Arc::<str>::from(f.name.as_str()),
                    Phrases::new(&f.name),
                    columns.ints(&value_column(&f.name))?,
                    columns.floats(&standardized_column(&f.name))?,
                    columns.floats(&contribution_column(&f.name))?,
                ))
            })
            .collect::<Result<Vec<_>, RiskListError>>()?;
        for row in 0..batch.num_rows() {
            let status = columns.status(statuses, row)?;
            let mut drivers = Vec::new();
            if status == ClientStatus::Active {
                for (feature, phrases, values, standardized, contributions) in &per_feature {
                    let value = values.is_valid(row).then(|| values.value(row));
                    let z = standardized.value(row);
                    let contribution = contributions.value(row);
                    drivers.push(Driver {
                        feature: feature.clone(),
                        value,
                        standardized: z,
                        contribution,
                        phrase: phrases.of(value, z, contribution).clone(),
                    });
                }
                sort_drivers(&mut drivers);
            }
            entries.push(RiskEntry {
                corporation: corporations.value(row).to_string(),
                status,
                rank: ranks.is_valid(row).then(|| ranks.value(row)),
                probability: optional(probabilities, row),
                band: columns.band(bands, row)?,
                previous_probability: optional(previous, row),
                probability_change: optional(changes, row),
                newly_high: newly_high.value(row),
                drivers,
            });
        }
    }
    Ok(RiskList { meta, entries })
}

/// A list's [`PreviousList`]: only the columns a new list needs (no drivers' text, standardised
/// values or contributions).
pub fn previous_from_parquet(
    bytes: Bytes,
    url: &str,
    version: &str,
) -> Result<PreviousList, RiskListError> {
    let unreadable = |detail: String| RiskListError::Unreadable {
        url: url.to_string(),
        version: version.to_string(),
        detail,
    };
    let (meta, builder) = open(bytes, url, version)?;
    // The raw values of the features the list holds, in FEATURES order.
    let stored: [Option<&str>; 3] = FEATURES.map(|feature| {
        meta.features
            .iter()
            .any(|f| f.name == feature)
            .then_some(feature)
    });
    let schema = builder.schema().clone();
    let mut wanted = vec!["corporation", "status", "probability", "band"];
    wanted.extend(stored.iter().flatten());
    let indices = wanted
        .iter()
        .map(|name| {
            schema
                .index_of(name)
                .map_err(|_| unreadable(format!("column `{name}` is missing")))
        })
        .collect::<Result<Vec<usize>, RiskListError>>()?;
    let mask = ProjectionMask::roots(builder.parquet_schema(), indices);
    let reader = builder
        .with_projection(mask)
        .build()
        .map_err(|e| unreadable(e.to_string()))?;
    let mut clients = Vec::with_capacity(usize::try_from(meta.ranked + meta.exited).unwrap_or(0));
    for batch in reader {
        let batch = batch.map_err(|e| unreadable(e.to_string()))?;
        let columns = Columns {
            batch: &batch,
            url,
            version,
        };
        let corporations = columns.strings("corporation")?;
        let (statuses, bands) = (columns.strings("status")?, columns.strings("band")?);
        let probabilities = columns.floats("probability")?;
        let values = stored.map(|feature| {
            feature
                .map(|name| columns.ints(&value_column(name)))
                .transpose()
        });
        let values = match values {
            [Ok(a), Ok(b), Ok(c)] => [a, b, c],
            [Err(e), ..] | [_, Err(e), _] | [.., Err(e)] => return Err(e),
        };
        for row in 0..batch.num_rows() {
            clients.push(PreviousClient {
                corporation: corporations.value(row).into(),
                status: columns.status(statuses, row)?,
                probability: optional(probabilities, row),
                band: columns.band(bands, row)?,
                values: values.map(|column| {
                    column.and_then(|column| column.is_valid(row).then(|| column.value(row)))
                }),
            });
        }
    }
    Ok(PreviousList { meta, clients })
}

/// One client's row of a list, reading only the columns a history needs.
fn find_in_parquet(
    bytes: Bytes,
    url: &str,
    version: &str,
    corporation: &str,
) -> Result<Option<HistoryPoint>, RiskListError> {
    let (meta, builder) = open(bytes, url, version)?;
    let schema = builder.schema().clone();
    let indices: Vec<usize> = ["rank", "corporation", "status", "probability", "band"]
        .iter()
        .filter_map(|name| schema.index_of(name).ok())
        .collect();
    let mask = ProjectionMask::roots(builder.parquet_schema(), indices);
    let reader = builder
        .with_projection(mask)
        .build()
        .map_err(|e| RiskListError::Unreadable {
            url: url.to_string(),
            version: version.to_string(),
            detail: e.to_string(),
        })?;
    for batch in reader {
        let batch = batch.map_err(|e| RiskListError::Unreadable {
            url: url.to_string(),
            version: version.to_string(),
            detail: e.to_string(),
        })?;
        let columns = Columns {
            batch: &batch,
            url,
            version,
        };
        let corporations = columns.strings("corporation")?;
        let Some(row) = (0..batch.num_rows()).find(|&row| corporations.value(row) == corporation)
        else {
            continue;
        };
        let ranks = columns.ranks()?;
        return Ok(Some(HistoryPoint {
            run_id: meta.run_id,
            generated_at: meta.generated_at,
            model_version: meta.model_version,
            status: columns.status(columns.strings("status")?, row)?,
            rank: ranks.is_valid(row).then(|| ranks.value(row)),
            probability: optional(columns.floats("probability")?, row),
            band: columns.band(columns.strings("band")?, row)?,
        }));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::{spreadsheet_safe, write_fixed};

    fn fixed(value: f64, decimals: u32) -> String {
        let mut out = String::new();
        write_fixed(&mut out, value, decimals);
        out
    }

    #[test]
    fn fixed_decimals_are_the_standard_formatters_but_for_ties() {
        assert_eq!(fixed(0.5, 6), "0.500000");
        assert_eq!(fixed(0.34867534238099133, 6), "0.348675");
        assert_eq!(fixed(0.9999999999999998, 6), "1.000000");
        assert_eq!(fixed(4.351023248429951e-19, 6), "0.000000");
        assert_eq!(fixed(-1.23456, 4), "-1.2346");
        assert_eq!(fixed(-0.00001, 4), "0.0000");
        assert_eq!(fixed(44.827029288578785, 4), "44.8270");
        assert_eq!(fixed(-7.05, 0), "-7");
        assert_eq!(fixed(1e300, 2), format!("{:.2}", 1e300));
        assert_eq!(fixed(f64::NAN, 4), "NaN");
        // Away from ties, exactly what `format!` writes.
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        for _ in 0..10_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let value = (state as f64 / u64::MAX as f64 - 0.5) * 200.0;
            for decimals in [4, 6] {
                let text = fixed(value, decimals);
                let scaled = value * 10f64.powi(decimals as i32);
                if (scaled.abs().fract() - 0.5).abs() > 1e-6 {
                    let expected = format!("{value:.*}", decimals as usize);
                    // `format!` keeps the sign of a negative value that rounds to zero.
                    let zero = expected
                        .trim_start_matches('-')
                        .trim_matches(['0', '.'])
                        .is_empty();
                    let expected = if zero {
                        expected.trim_start_matches('-')
                    } else {
                        &expected
                    };
                    assert_eq!(text, expected, "{value}");
                }
            }
        }
    }

    #[test]
    fn codes_a_spreadsheet_would_run_as_formulas_are_quoted() {
        for code in [
            "=HYPERLINK(\"http://x\")",
            "+1",
            "-2",
            "@SUM(A1)",
            "\tx",
            "\rx",
        ] {
            assert_eq!(spreadsheet_safe(code), format!("'{code}"));
        }
        for code in ["acme", "a=b", "1-2", "'quoted"] {
            assert_eq!(spreadsheet_safe(code), code);
        }
    }
}
