//! The streaming, validating CSV reader: it turns one source file, read through any
//! [`std::io::Read`], into Arrow record batches of the client schema, a bounded number of rows at
//! a time, so a file of millions of rows never needs more than one batch in memory. It owns the
//! rules for what a valid source file is. Opening checks the file as a whole (not binary, not
//! empty, a header naming every required column, at least one data row) and refuses it with a
//! [`DataError`]; after that every row either lands in a batch or comes back as a
//! [`RejectedRow`] saying where and what is wrong, so no row is ever dropped silently.
//!
//! Decisions, in one place:
//! - Header names are trimmed and matched to the schema's columns ignoring ASCII case, in any
//!   order; a name matched with different case gives a warning. Other columns are ignored with a
//!   warning. A required column named twice (in any case) rejects the file.
//! - A UTF-8 byte-order mark, CRLF or LF line ends and quoted fields (commas, doubled quotes and
//!   line breaks inside quotes) are accepted. Line numbers are physical lines; the header is on
//!   line 1 unless blank lines precede it.
//! - Blank lines (empty or only spaces/tabs) anywhere are skipped and counted in
//!   [`CsvCounts::blank_lines`]; they are not rows.
//! - An empty or all-blank field is a missing value: an Arrow null in an accepted row, counted
//!   per column. `,,,,` is therefore an accepted row of five nulls.
//! - Numbers: surrounding spaces are ignored and a leading `+` is allowed. A decimal point is
//!   accepted only when the fraction is zero (`12.0`, as pandas writes integer columns that have
//!   missing values); `1.5` is rejected, and so are exponents, thousands separators, negative
//!   numbers and values beyond `i64::MAX`. `exited` must be 0 or 1.
//! - `corporation` is trimmed; any valid UTF-8 text is accepted.
//! - When several fields of a row are wrong, the leftmost one in the file is reported.

use std::io::Read;
use std::sync::Arc;

use arrow::array::{Int8Builder, Int64Builder, StringBuilder};
use arrow::compute::concat_batches;
use arrow::record_batch::RecordBatch;
use serde::{Deserialize, Serialize};

use super::error::DataError;
use super::records::{MAX_RECORD_BYTES, RawRecord, RecordSource, SourceError};
use super::rejected::{RejectedRow, RowProblem, record_text};
use super::schema::{COLUMNS, client_schema};

/// Rows per batch unless [`CsvReadOptions::batch_rows`] says otherwise.
pub const DEFAULT_BATCH_ROWS: usize = 64 * 1024;

/// Most rows a batch's builders are sized for up front; larger batches grow as they fill, so a
/// huge `batch_rows` cannot make one allocation fail.
const MAX_PREALLOCATED_ROWS: usize = 1024 * 1024;

/// How much of the start of a file is checked for binary content before parsing.
const SNIFF_BYTES: usize = 8 * 1024;

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

// Positions in `COLUMNS` (canonical order); the three features sit between these two.
const CORPORATION_INDEX: usize = 0;
const EXITED_INDEX: usize = 4;

const EXPECTED_COUNT: &str = "a non-negative integer";
const EXPECTED_EXITED: &str = "0 (stayed) or 1 (exited)";

/// Options of [`CsvBatchReader`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvReadOptions {
    /// Records per batch (accepted plus rejected), so memory stays bounded even when most rows
    /// are rejected. A batch holds at most this many accepted rows. 0 is treated as 1.
    pub batch_rows: usize,
}

impl Default for CsvReadOptions {
    fn default() -> Self {
        CsvReadOptions {
            batch_rows: DEFAULT_BATCH_ROWS,
        }
    }
}

/// Missing values (nulls) per column among the accepted rows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MissingValues {
    pub corporation: u64,
    pub lastmonth_activity: u64,
    pub lastyear_activity: u64,
    pub number_of_employees: u64,
    pub exited: u64,
}

impl MissingValues {
    fn from_canonical(counts: [u64; 5]) -> Self {
        let [
            corporation,
            lastmonth_activity,
            lastyear_activity,
            number_of_employees,
            exited,
        ] = counts;
        MissingValues {
            corporation,
            lastmonth_activity,
            lastyear_activity,
            number_of_employees,
            exited,
        }
    }

    /// Missing values of the column named `column` (one of [`COLUMNS`]).
    pub fn get(&self, column: &str) -> Option<u64> {
        Some(self.in_canonical_order()[COLUMNS.iter().position(|c| *c == column)?])
    }

    /// The counts in the order of [`COLUMNS`].
    pub fn in_canonical_order(&self) -> [u64; 5] {
        [
            self.corporation,
            self.lastmonth_activity,
            self.lastyear_activity,
            self.number_of_employees,
            self.exited,
        ]
    }

    pub fn total(&self) -> u64 {
        self.in_canonical_order().iter().sum()
    }

    pub fn add(&mut self, other: &MissingValues) {
        self.corporation += other.corporation;
        self.lastmonth_activity += other.lastmonth_activity;
        self.lastyear_activity += other.lastyear_activity;
        self.number_of_employees += other.number_of_employees;
        self.exited += other.exited;
    }
}

/// What reading a file found. Final once the reader is exhausted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CsvCounts {
    /// Data records read (header and blank lines excluded): accepted plus rejected.
    pub rows_read: u64,
    pub rows_accepted: u64,
    pub rows_rejected: u64,
    /// Blank lines skipped.
    pub blank_lines: u64,
    pub missing_values: MissingValues,
}

impl CsvCounts {
    /// Adds another file's counts, for totals over many files.
    pub fn add(&mut self, other: &CsvCounts) {
        self.rows_read += other.rows_read;
        self.rows_accepted += other.rows_accepted;
        self.rows_rejected += other.rows_rejected;
        self.blank_lines += other.blank_lines;
        self.missing_values.add(&other.missing_values);
    }
}

/// Something worth telling the user about a file that was still read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CsvWarning {
    #[error("{file}: column {position} {} is not part of the client schema and is ignored (the schema's columns are {})", describe_column_name(name), COLUMNS.join(", "))]
    ExtraColumn {
        file: String,
        name: String,
        /// 1-based position in the header.
        position: usize,
    },
    #[error(
        "{file}: column {position} '{name}' is read as '{column}' (header names are matched ignoring case)"
    )]
    ColumnNameCase {
        file: String,
        name: String,
        column: String,
        position: usize,
    },
}

fn describe_column_name(name: &str) -> String {
    if name.is_empty() {
        "(no name)".to_string()
    } else {
        format!("'{name}'")
    }
}

/// One stretch of a file: the accepted rows as a batch of the client schema, and the rows of
/// the same stretch that were rejected.
#[derive(Debug, Clone)]
pub struct CsvBatch {
    pub accepted: RecordBatch,
    pub rejected: Vec<RejectedRow>,
}

/// Where each schema column is in the file.
#[derive(Debug, Clone)]
struct HeaderLayout {
    field_count: usize,
    /// File position of each column, in canonical order.
    positions: [usize; 5],
    /// Canonical column indices sorted by file position: fields are checked left to right so
    /// the problem reported is the first one a user reads.
    check_order: [usize; 5],
}

/// Counts blank lines from the line breaks around each record (the tokenizer skips empty lines
/// without reporting them).
#[derive(Debug)]
struct BlankLineTally {
    blank_lines: u64,
    /// `\n` bytes since the end of the last record's content; the start of the file counts as
    /// one so that blank lines before the header are counted.
    newlines_since_content: u64,
}

impl BlankLineTally {
    /// Accounts for a record; returns whether the record itself is a blank line.
    fn observe(&mut self, record: &RawRecord<'_>) -> bool {
        self.blank_lines +=
            (self.newlines_since_content + record.newlines_before).saturating_sub(1);
        self.newlines_since_content = record.newlines_after;
        let blank = record.len() == 1 && record.field(0).trim_ascii().is_empty();
        if blank {
            self.blank_lines += 1;
        }
        blank
    }

    fn observe_end(&mut self, newlines_at_end: u64) {
        self.blank_lines += (self.newlines_since_content + newlines_at_end).saturating_sub(1);
        self.newlines_since_content = 0;
    }
}

/// Streaming reader of one CSV source file; an iterator of [`CsvBatch`]es.
///
/// The iterator ends after the last batch, or after the first error (an I/O error or a record
/// too long to be real), which it yields once.
pub struct CsvBatchReader<R> {
    file: String,
    source: RecordSource<R>,
    layout: HeaderLayout,
    batch_rows: usize,
    warnings: Vec<CsvWarning>,
    tally: BlankLineTally,
    rows_read: u64,
    rows_accepted: u64,
    rows_rejected: u64,
    missing: [u64; 5],
    /// The first data record was read while opening (to tell a header-only file) and still
    /// waits in the source to be parsed.
    pending: bool,
    finished: bool,
}

impl<R: Read> CsvBatchReader<R> {
    /// Opens `input` with default options; `file_name` is used in every message.
    pub fn open(file_name: impl Into<String>, input: R) -> Result<Self, DataError> {
        Self::open_with(file_name, input, CsvReadOptions::default())
    }

    /// Opens `input`: reads and checks the header and looks ahead for a first data row, so a
    /// file that cannot be used is refused here rather than halfway through.
    pub fn open_with(
        file_name: impl Into<String>,
        input: R,
        options: CsvReadOptions,
    ) -> Result<Self, DataError> {
        let file = file_name.into();
        let mut source = RecordSource::new(input);
        let start = source.peek(SNIFF_BYTES).map_err(|source| DataError::Io {
            file: file.clone(),
            source,
        })?;
        if let Some(detail) = binary_content(start) {
            return Err(DataError::NotText { file, detail });
        }
        let bom_len = if start.starts_with(UTF8_BOM) {
            UTF8_BOM.len()
        } else {
            0
        };
        source.skip_start(bom_len);

        let mut tally = BlankLineTally {
            blank_lines: 0,
            newlines_since_content: 1,
        };
        let mut warnings = Vec::new();
        let (layout, header_line) = loop {
            if !next_record(&file, &mut source)? {
                return Err(DataError::EmptyFile { file });
            }
            let record = source.current();
            if !tally.observe(&record) {
                break (read_header(&file, &record, &mut warnings)?, record.line);
            }
        };
        loop {
            if !next_record(&file, &mut source)? {
                return Err(DataError::HeaderOnly { file, header_line });
            }
            if !tally.observe(&source.current()) {
                break;
            }
        }
        for warning in &warnings {
            tracing::warn!("{warning}");
        }
        Ok(CsvBatchReader {
            file,
            source,
            layout,
            batch_rows: options.batch_rows.max(1),
            warnings,
            tally,
            rows_read: 0,
            rows_accepted: 0,
            rows_rejected: 0,
            missing: [0; 5],
            pending: true,
            finished: false,
        })
    }

    /// The display name given when opening.
    pub fn file_name(&self) -> &str {
        &self.file
    }

    /// Warnings about the header (also logged with `tracing::warn!` when the file was opened).
    pub fn warnings(&self) -> &[CsvWarning] {
        &self.warnings
    }

    /// Counts so far; final once the iterator has ended.
    pub fn counts(&self) -> CsvCounts {
        CsvCounts {
            rows_read: self.rows_read,
            rows_accepted: self.rows_accepted,
            rows_rejected: self.rows_rejected,
            blank_lines: self.tally.blank_lines,
            missing_values: MissingValues::from_canonical(self.missing),
        }
    }

    fn read_batch(&mut self) -> Result<Option<CsvBatch>, DataError> {
        let mut builders = BatchBuilders::with_capacity(self.batch_rows.min(MAX_PREALLOCATED_ROWS));
        let mut rejected = Vec::new();
        let mut records = 0;
        while records < self.batch_rows {
            if self.pending {
                self.pending = false;
            } else {
                if !next_record(&self.file, &mut self.source)? {
                    self.tally.observe_end(self.source.newlines_at_end());
                    self.finished = true;
                    self.log_summary();
                    break;
                }
                if self.tally.observe(&self.source.current()) {
                    continue;
                }
            }
            records += 1;
            let record = self.source.current();
            match check_row(&record, &self.layout) {
                Ok(row) => {
                    builders.append(&row, &mut self.missing);
                    self.rows_accepted += 1;
                }
                Err((column, problem)) => {
                    rejected.push(RejectedRow {
                        file: self.file.clone(),
                        line: record.line,
                        column: column.map(|index| COLUMNS[index].to_string()),
                        problem,
                        record: record_text(record.content),
                    });
                    self.rows_rejected += 1;
                }
            }
        }
        self.rows_read += records as u64;
        if records == 0 {
            return Ok(None);
        }
        let accepted = builders.finish().map_err(|source| DataError::Arrow {
            file: self.file.clone(),
            source,
        })?;
        Ok(Some(CsvBatch { accepted, rejected }))
    }

    fn log_summary(&self) {
        tracing::debug!(
            file = %self.file,
            rows_read = self.rows_read,
            rows_accepted = self.rows_accepted,
            rows_rejected = self.rows_rejected,
            blank_lines = self.tally.blank_lines,
            "CSV file read"
        );
    }
}

impl<R: Read> Iterator for CsvBatchReader<R> {
    type Item = Result<CsvBatch, DataError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        match self.read_batch() {
            Ok(batch) => batch.map(Ok),
            Err(error) => {
                self.finished = true;
                Some(Err(error))
            }
        }
    }
}

impl<R: Read> std::iter::FusedIterator for CsvBatchReader<R> {}

/// A whole CSV file in memory: for small inputs such as the test data set.
#[derive(Debug, Clone)]
pub struct CsvFileContents {
    pub file: String,
    /// Every accepted row, in file order, as one batch of the client schema (empty when every
    /// row was rejected).
    pub accepted: RecordBatch,
    pub rejected: Vec<RejectedRow>,
    pub counts: CsvCounts,
    pub warnings: Vec<CsvWarning>,
}

/// Reads a whole CSV file into memory. Use [`CsvBatchReader`] for anything large.
pub fn read_csv_file<R: Read>(
    file_name: impl Into<String>,
    input: R,
) -> Result<CsvFileContents, DataError> {
    let mut reader = CsvBatchReader::open(file_name, input)?;
    let mut batches = Vec::new();
    let mut rejected = Vec::new();
    for batch in &mut reader {
        let batch = batch?;
        batches.push(batch.accepted);
        rejected.extend(batch.rejected);
    }
    let accepted =
        concat_batches(&client_schema(), &batches).map_err(|source| DataError::Arrow {
            file: reader.file.clone(),
            source,
        })?;
    Ok(CsvFileContents {
        counts: reader.counts(),
        warnings: reader.warnings,
        file: reader.file,
        accepted,
        rejected,
    })
}

fn next_record<R: Read>(file: &str, source: &mut RecordSource<R>) -> Result<bool, DataError> {
    source.next_record().map_err(|error| match error {
        SourceError::Io(source) => DataError::Io {
            file: file.to_string(),
            source,
        },
        SourceError::RecordTooLong { line } => DataError::RecordTooLong {
            file: file.to_string(),
            line,
            limit: MAX_RECORD_BYTES,
        },
    })
}

/// Says why the start of a file shows it is not text, if it does.
fn binary_content(start: &[u8]) -> Option<String> {
    const SIGNATURES: [(&[u8], &str); 6] = [
        (b"PAR1", "it is a Parquet file"),
        (b"\x1f\x8b", "it is gzip-compressed"),
        (
            b"PK\x03\x04",
            "it is a ZIP archive (an Excel .xlsx workbook?)",
        ),
        (
            b"\xD0\xCF\x11\xE0",
            "it is an old-style Office document (an Excel .xls workbook?)",
        ),
        (b"\xFF\xFE", "it is UTF-16 text"),
        (b"\xFE\xFF", "it is UTF-16 text"),
    ];
    if let Some((_, what)) = SIGNATURES
        .iter()
        .find(|(magic, _)| start.starts_with(magic))
    {
        return Some(format!("the file is not UTF-8 text: {what}"));
    }
    start.iter().position(|&b| b == 0).map(|offset| {
        format!("the file is binary, not text: it contains a NUL byte at byte offset {offset}")
    })
}

fn read_header(
    file: &str,
    record: &RawRecord<'_>,
    warnings: &mut Vec<CsvWarning>,
) -> Result<HeaderLayout, DataError> {
    let header_text = std::str::from_utf8(record.content).map_err(|error| DataError::NotText {
        file: file.to_string(),
        detail: format!(
            "the header line is not valid UTF-8 (invalid byte at position {})",
            error.valid_up_to()
        ),
    })?;
    let names: Vec<String> = (0..record.len())
        .map(|index| {
            String::from_utf8_lossy(record.field(index))
                .trim()
                .to_string()
        })
        .collect();

    let mut positions: [Option<usize>; 5] = [None; 5];
    for (index, name) in names.iter().enumerate() {
        match COLUMNS
            .iter()
            .position(|column| column.eq_ignore_ascii_case(name))
        {
            Some(column) => {
                if let Some(first) = positions[column] {
                    return Err(DataError::DuplicateColumn {
                        file: file.to_string(),
                        column: COLUMNS[column].to_string(),
                        first: first + 1,
                        second: index + 1,
                    });
                }
                positions[column] = Some(index);
                if name != COLUMNS[column] {
                    warnings.push(CsvWarning::ColumnNameCase {
                        file: file.to_string(),
                        name: name.clone(),
                        column: COLUMNS[column].to_string(),
                        position: index + 1,
                    });
                }
            }
            None => warnings.push(CsvWarning::ExtraColumn {
                file: file.to_string(),
                name: name.clone(),
                position: index + 1,
            }),
        }
    }

    let missing: Vec<String> = COLUMNS
        .iter()
        .zip(positions)
        .filter(|(_, position)| position.is_none())
        .map(|(column, _)| column.to_string())
        .collect();
    if !missing.is_empty() {
        if let Some(detected) = detect_other_delimiter(header_text, names.len()) {
            return Err(DataError::WrongDelimiter {
                file: file.to_string(),
                detected,
            });
        }
        return Err(DataError::MissingColumns {
            file: file.to_string(),
            missing,
            found: names,
        });
    }

    let positions = positions.map(|position| position.unwrap_or_default());
    let mut check_order = [0, 1, 2, 3, 4];
    check_order.sort_by_key(|&column| positions[column]);
    Ok(HeaderLayout {
        field_count: names.len(),
        positions,
        check_order,
    })
}

/// A delimiter other than the comma that the header was evidently written with: one that
/// splits it into every required column, or, when the header is a single field, the most
/// frequent candidate in it.
fn detect_other_delimiter(header: &str, field_count: usize) -> Option<char> {
    const CANDIDATES: [char; 3] = [';', '\t', '|'];
    let splits_into_columns = |delimiter: char| {
        let names: Vec<&str> = header
            .split(delimiter)
            .map(|name| name.trim().trim_matches('"').trim())
            .collect();
        COLUMNS
            .iter()
            .all(|column| names.iter().any(|name| column.eq_ignore_ascii_case(name)))
    };
    if let Some(delimiter) = CANDIDATES.into_iter().find(|&d| splits_into_columns(d)) {
        return Some(delimiter);
    }
    if field_count != 1 {
        return None;
    }
    CANDIDATES
        .into_iter()
        .map(|delimiter| (header.matches(delimiter).count(), delimiter))
        .filter(|(count, _)| *count > 0)
        .max_by_key(|(count, _)| *count)
        .map(|(_, delimiter)| delimiter)
}

/// The values of an accepted row, borrowed from the record.
struct CheckedRow<'a> {
    corporation: Option<&'a str>,
    features: [Option<i64>; 3],
    exited: Option<i8>,
}

/// Why a single field was refused; turned into a [`RowProblem`] (which allocates) only then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FieldFault {
    NotANumber,
    Decimal,
    Negative,
    TooLarge,
    NotZeroOrOne,
    InvalidUtf8 { position: usize },
}

/// Checks one record against the layout; on failure, the canonical index of the column at fault
/// (none when the row as a whole is) and the problem.
fn check_row<'a>(
    record: &RawRecord<'a>,
    layout: &HeaderLayout,
) -> Result<CheckedRow<'a>, (Option<usize>, RowProblem)> {
    if record.len() != layout.field_count {
        let found = record.len();
        let expected = layout.field_count;
        let lines = record.end_line.saturating_sub(record.line) + 1;
        let problem = if found < expected {
            RowProblem::TooFewFields {
                found,
                expected,
                lines,
            }
        } else {
            RowProblem::TooManyFields {
                found,
                expected,
                lines,
            }
        };
        return Err((None, problem));
    }
    let mut row = CheckedRow {
        corporation: None,
        features: [None; 3],
        exited: None,
    };
    for &column in &layout.check_order {
        let field = record.field(layout.positions[column]);
        let checked = match column {
            CORPORATION_INDEX => parse_text(field).map(|value| row.corporation = value),
            EXITED_INDEX => parse_exited(field).map(|value| row.exited = value),
            feature => parse_count(field).map(|value| row.features[feature - 1] = value),
        };
        if let Err(fault) = checked {
            return Err((Some(column), describe_fault(column, fault, field)));
        }
    }
    Ok(row)
}

fn describe_fault(column: usize, fault: FieldFault, field: &[u8]) -> RowProblem {
    let value = String::from_utf8_lossy(field).into_owned();
    let expected = if column == EXITED_INDEX {
        EXPECTED_EXITED
    } else {
        EXPECTED_COUNT
    }
    .to_string();
    match fault {
        FieldFault::NotANumber => RowProblem::NotANumber { value, expected },
        FieldFault::Decimal => RowProblem::Decimal { value, expected },
        FieldFault::Negative => RowProblem::Negative { value, expected },
        FieldFault::TooLarge => RowProblem::TooLarge { value, expected },
        FieldFault::NotZeroOrOne => RowProblem::NotZeroOrOne { value, expected },
        FieldFault::InvalidUtf8 { position } => RowProblem::InvalidUtf8 { value, position },
    }
}

fn parse_text(field: &[u8]) -> Result<Option<&str>, FieldFault> {
    let text = field.trim_ascii();
    if text.is_empty() {
        return Ok(None);
    }
    std::str::from_utf8(text)
        .map(Some)
        .map_err(|error| FieldFault::InvalidUtf8 {
            position: error.valid_up_to() + (text.as_ptr() as usize - field.as_ptr() as usize),
        })
}

/// A non-negative integer, or `None` for a missing value.
#[inline]
fn parse_count(field: &[u8]) -> Result<Option<i64>, FieldFault> {
    // Up to 18 digits cannot overflow an i64, so plain digits need no checks at all.
    if !field.is_empty() && field.len() <= 18 {
        let mut value: i64 = 0;
        let mut plain = true;
        for &byte in field {
            let digit = byte.wrapping_sub(b'0');
            if digit > 9 {
                plain = false;
                break;
            }
            value = value * 10 + i64::from(digit);
        }
        if plain {
            return Ok(Some(value));
        }
    }
    parse_count_slow(field)
}

#[cold]
fn parse_count_slow(field: &[u8]) -> Result<Option<i64>, FieldFault> {
    let text = field.trim_ascii();
    if text.is_empty() {
        return Ok(None);
    }
    let (negative, unsigned) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, text),
    };
    let (whole, fraction) = match unsigned.iter().position(|&b| b == b'.') {
        Some(dot) => (&unsigned[..dot], &unsigned[dot + 1..]),
        None => (unsigned, &[][..]),
    };
    let all_digits = |digits: &[u8]| digits.iter().all(u8::is_ascii_digit);
    if (whole.is_empty() && fraction.is_empty()) || !all_digits(whole) || !all_digits(fraction) {
        return Err(FieldFault::NotANumber);
    }
    let mut value: i64 = 0;
    let mut too_large = false;
    for &byte in whole {
        match value
            .checked_mul(10)
            .and_then(|v| v.checked_add(i64::from(byte - b'0')))
        {
            Some(next) => value = next,
            None => {
                too_large = true;
                break;
            }
        }
    }
    let has_fraction = fraction.iter().any(|&b| b != b'0');
    if negative && (value != 0 || too_large || has_fraction) {
        return Err(FieldFault::Negative);
    }
    if has_fraction {
        return Err(FieldFault::Decimal);
    }
    if too_large {
        return Err(FieldFault::TooLarge);
    }
    Ok(Some(value))
}

#[inline]
fn parse_exited(field: &[u8]) -> Result<Option<i8>, FieldFault> {
    match field {
        b"0" => Ok(Some(0)),
        b"1" => Ok(Some(1)),
        _ => match parse_count_slow(field) {
            Ok(None) => Ok(None),
            Ok(Some(0)) => Ok(Some(0)),
            Ok(Some(1)) => Ok(Some(1)),
            Ok(Some(_)) | Err(FieldFault::Negative | FieldFault::TooLarge) => {
                Err(FieldFault::NotZeroOrOne)
            }
            Err(fault) => Err(fault),
        },
    }
}

/// Column builders of one batch, sized up front so a batch never reallocates on the happy path.
struct BatchBuilders {
    corporation: StringBuilder,
    features: [Int64Builder; 3],
    exited: Int8Builder,
}

impl BatchBuilders {
    fn with_capacity(rows: usize) -> Self {
        BatchBuilders {
            // Corporation codes are short; 8 bytes each is a guess the builder grows past if needed.
            corporation: StringBuilder::with_capacity(rows, rows * 8),
            features: std::array::from_fn(|_| Int64Builder::with_capacity(rows)),
            exited: Int8Builder::with_capacity(rows),
        }
    }

    fn append(&mut self, row: &CheckedRow<'_>, missing: &mut [u64; 5]) {
        self.corporation.append_option(row.corporation);
        missing[CORPORATION_INDEX] += u64::from(row.corporation.is_none());
        for (index, (builder, value)) in self.features.iter_mut().zip(row.features).enumerate() {
            builder.append_option(value);
            missing[index + 1] += u64::from(value.is_none());
        }
        self.exited.append_option(row.exited);
        missing[EXITED_INDEX] += u64::from(row.exited.is_none());
    }

    fn finish(mut self) -> Result<RecordBatch, arrow::error::ArrowError> {
        let [lastmonth, lastyear, employees] = &mut self.features;
        RecordBatch::try_new(
            client_schema(),
            vec![
                Arc::new(self.corporation.finish()),
                Arc::new(lastmonth.finish()),
                Arc::new(lastyear.finish()),
                Arc::new(employees.finish()),
                Arc::new(self.exited.finish()),
            ],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reader_over_a_send_input_can_move_to_a_blocking_thread() {
        fn assert_send<T: Send>() {}
        assert_send::<CsvBatchReader<std::io::Cursor<Vec<u8>>>>();
    }

    #[test]
    fn plain_digits_parse_on_the_fast_path() {
        assert_eq!(parse_count(b"0"), Ok(Some(0)));
        assert_eq!(parse_count(b"98765"), Ok(Some(98765)));
        assert_eq!(
            parse_count(b"999999999999999999"),
            Ok(Some(999_999_999_999_999_999))
        );
    }

    #[test]
    fn integers_at_the_i64_limit() {
        assert_eq!(parse_count(b"9223372036854775807"), Ok(Some(i64::MAX)));
        assert_eq!(
            parse_count(b"9223372036854775808"),
            Err(FieldFault::TooLarge)
        );
        assert_eq!(
            parse_count(b"99999999999999999999999"),
            Err(FieldFault::TooLarge)
        );
        assert_eq!(
            parse_count(b"-99999999999999999999999"),
            Err(FieldFault::Negative)
        );
    }

    #[test]
    fn numbers_that_are_not_plain_digits() {
        assert_eq!(parse_count(b""), Ok(None));
        assert_eq!(parse_count(b"   "), Ok(None));
        assert_eq!(parse_count(b" 42 "), Ok(Some(42)));
        assert_eq!(parse_count(b"+7"), Ok(Some(7)));
        assert_eq!(parse_count(b"12.0"), Ok(Some(12)));
        assert_eq!(parse_count(b"12."), Ok(Some(12)));
        assert_eq!(parse_count(b"-0"), Ok(Some(0)));
        assert_eq!(parse_count(b"1.5"), Err(FieldFault::Decimal));
        assert_eq!(parse_count(b"-3"), Err(FieldFault::Negative));
        assert_eq!(parse_count(b"-1.5"), Err(FieldFault::Negative));
        for not_a_number in [
            &b"12a"[..],
            b"1e3",
            b"1,000",
            b"-",
            b"+",
            b".",
            b"1 2",
            b"0x10",
            b"NaN",
            b"\xff",
        ] {
            assert_eq!(
                parse_count(not_a_number),
                Err(FieldFault::NotANumber),
                "{not_a_number:?}"
            );
        }
    }

    #[test]
    fn exited_is_zero_or_one() {
        assert_eq!(parse_exited(b"0"), Ok(Some(0)));
        assert_eq!(parse_exited(b" 1 "), Ok(Some(1)));
        assert_eq!(parse_exited(b"1.0"), Ok(Some(1)));
        assert_eq!(parse_exited(b""), Ok(None));
        assert_eq!(parse_exited(b"2"), Err(FieldFault::NotZeroOrOne));
        assert_eq!(parse_exited(b"-1"), Err(FieldFault::NotZeroOrOne));
        assert_eq!(
            parse_exited(b"99999999999999999999"),
            Err(FieldFault::NotZeroOrOne)
        );
        assert_eq!(parse_exited(b"0.5"), Err(FieldFault::Decimal));
        assert_eq!(parse_exited(b"yes"), Err(FieldFault::NotANumber));
    }

    #[test]
    fn corporation_is_trimmed_and_must_be_utf8() {
        assert_eq!(parse_text(b"  acme "), Ok(Some("acme")));
        assert_eq!(parse_text(b" \t"), Ok(None));
        assert_eq!(
            parse_text(b" ab\xffc"),
            Err(FieldFault::InvalidUtf8 { position: 3 })
        );
    }

    #[test]
    fn another_delimiter_is_detected_from_the_header() {
        let header = COLUMNS.join(";");
        assert_eq!(detect_other_delimiter(&header, 1), Some(';'));
        assert_eq!(detect_other_delimiter(&COLUMNS.join("\t"), 1), Some('\t'));
        assert_eq!(detect_other_delimiter("a|b|c", 1), Some('|'));
        assert_eq!(detect_other_delimiter("a,b", 2), None);
        assert_eq!(detect_other_delimiter("corporation", 1), None);
    }
}
