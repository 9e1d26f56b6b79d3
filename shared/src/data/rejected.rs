//! Rejected rows: a row of a source file that breaks the client schema is never dropped
//! silently. It becomes a [`RejectedRow`] that names the file, the physical line, the column at
//! fault (when one is), what was found and what was expected ([`RowProblem`]), and the raw text
//! of the record, so the pipeline can quarantine it (serde, an Arrow batch, or CSV) and a user can
//! find and fix it. The rest of the file is still used.

use std::io::Write;
use std::sync::{Arc, LazyLock};

use arrow::array::{StringBuilder, UInt64Builder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use serde::{Deserialize, Serialize};

use super::error::DataError;

/// What is wrong with a rejected row. `value` fields hold the offending field as found (invalid
/// UTF-8 replaced by U+FFFD); `expected` says what the column accepts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RowProblem {
    #[error("{value:?} is not a number; expected {expected}")]
    NotANumber { value: String, expected: String },

    #[error("{value:?} is a decimal number; expected {expected}")]
    Decimal { value: String, expected: String },

    #[error("{value:?} is negative; expected {expected}")]
    Negative { value: String, expected: String },

    #[error(
        "{value:?} is too large for a 64-bit integer; expected {expected} of at most {}",
        i64::MAX
    )]
    TooLarge { value: String, expected: String },

    #[error("{value:?} is not 0 or 1; expected {expected}")]
    NotZeroOrOne { value: String, expected: String },

    #[error(
        "{value:?} is not valid UTF-8 (invalid byte at position {position}); expected UTF-8 text (save the file as UTF-8)"
    )]
    InvalidUtf8 { value: String, position: usize },

    #[error("the row has {found} fields but the header has {expected}; expected {expected} comma-separated fields (is a value or a comma missing?){}", unclosed_quote_hint(*lines))]
    TooFewFields {
        found: usize,
        expected: usize,
        /// Physical lines the record spans; more than 1 hints at an unclosed quote.
        lines: u64,
    },

    #[error("the row has {found} fields but the header has {expected}; expected {expected} comma-separated fields (is there a stray comma, or a value with a comma that is not in quotes?){}", unclosed_quote_hint(*lines))]
    TooManyFields {
        found: usize,
        expected: usize,
        lines: u64,
    },
}

impl RowProblem {
    /// A stable machine-readable name of the problem (the serde tag).
    pub fn kind(&self) -> &'static str {
        match self {
            RowProblem::NotANumber { .. } => "not_a_number",
            RowProblem::Decimal { .. } => "decimal",
            RowProblem::Negative { .. } => "negative",
            RowProblem::TooLarge { .. } => "too_large",
            RowProblem::NotZeroOrOne { .. } => "not_zero_or_one",
            RowProblem::InvalidUtf8 { .. } => "invalid_utf8",
            RowProblem::TooFewFields { .. } => "too_few_fields",
            RowProblem::TooManyFields { .. } => "too_many_fields",
        }
    }
}

fn unclosed_quote_hint(lines: u64) -> String {
    if lines > 1 {
        format!("; the record spans {lines} lines: is a quote (\") left unclosed?")
    } else {
        String::new()
    }
}

/// One row of a source file that was not accepted, with everything needed to find and fix it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{file} line {line}{}: {problem}", column.as_ref().map(|c| format!(", column {c}")).unwrap_or_default())]
pub struct RejectedRow {
    /// The display name of the source file.
    pub file: String,
    /// Physical line the record starts on; the header is line 1.
    pub line: u64,
    /// The column at fault, when the problem is in one field.
    pub column: Option<String>,
    pub problem: RowProblem,
    /// The record's raw text as in the file (quotes included, line breaks inside quoted fields
    /// kept), invalid UTF-8 replaced by U+FFFD, cut at [`MAX_RECORD_TEXT`] bytes.
    pub record: String,
}

/// Longest raw record text kept in a [`RejectedRow`], so quarantining a garbled file stays cheap.
pub const MAX_RECORD_TEXT: usize = 4096;

/// The raw text of a record as kept in a [`RejectedRow`].
pub(crate) fn record_text(raw: &[u8]) -> String {
    if raw.len() <= MAX_RECORD_TEXT {
        return String::from_utf8_lossy(raw).into_owned();
    }
    let mut text = String::from_utf8_lossy(&raw[..MAX_RECORD_TEXT]).into_owned();
    // A multi-byte character cut in half shows as U+FFFD; drop it rather than invent a character.
    if text.ends_with('\u{FFFD}') {
        text.pop();
    }
    text.push_str(&format!("… ({} bytes in all)", raw.len()));
    text
}

static REJECTED_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("file", DataType::Utf8, false),
        Field::new("line", DataType::UInt64, false),
        Field::new("column", DataType::Utf8, true),
        Field::new("kind", DataType::Utf8, false),
        Field::new("reason", DataType::Utf8, false),
        Field::new("record", DataType::Utf8, false),
    ]))
});

/// The schema of [`rejected_rows_to_batch`]: `file`, `line`, `column` (null when the whole row is
/// at fault), `kind` ([`RowProblem::kind`]), `reason` (the problem in words) and `record`.
pub fn rejected_schema() -> SchemaRef {
    REJECTED_SCHEMA.clone()
}

/// The rejected rows as one Arrow batch of [`rejected_schema`].
pub fn rejected_rows_to_batch(rows: &[RejectedRow]) -> Result<RecordBatch, DataError> {
    let mut file = StringBuilder::new();
    let mut line = UInt64Builder::with_capacity(rows.len());
    let mut column = StringBuilder::new();
    let mut kind = StringBuilder::new();
    let mut reason = StringBuilder::new();
    let mut record = StringBuilder::new();
    for row in rows {
        file.append_value(&row.file);
        line.append_value(row.line);
        column.append_option(row.column.as_deref());
        kind.append_value(row.problem.kind());
        reason.append_value(row.problem.to_string());
        record.append_value(&row.record);
    }
    RecordBatch::try_new(
        rejected_schema(),
        vec![
            Arc::new(file.finish()),
            Arc::new(line.finish()),
            Arc::new(column.finish()),
            Arc::new(kind.finish()),
            Arc::new(reason.finish()),
            Arc::new(record.finish()),
        ],
    )
    .map_err(|source| DataError::Arrow {
        file: "rejected rows".to_string(),
        source,
    })
}

/// Writes the rejected rows as CSV with a header, in the columns of [`rejected_schema`].
pub fn write_rejected_csv<W: Write>(rows: &[RejectedRow], sink: W) -> std::io::Result<()> {
    let mut writer = ::csv::Writer::from_writer(sink);
    writer.write_record(["file", "line", "column", "kind", "reason", "record"])?;
    for row in rows {
        writer.write_record([
            row.file.as_str(),
            &row.line.to_string(),
            row.column.as_deref().unwrap_or(""),
            row.problem.kind(),
            &row.problem.to_string(),
            &row.record,
        ])?;
    }
    writer.flush()
}
