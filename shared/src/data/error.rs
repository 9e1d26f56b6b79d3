//! Errors of the data layer that reject a whole file (or a whole Parquet read or write), as
//! opposed to the single rows that [`super::rejected`] describes. Every variant names the file
//! and says what was found and what was expected, so the message alone tells a user what to fix.

use std::fmt::Write as _;
use std::io;

use arrow::error::ArrowError;
use parquet::errors::ParquetError;

use super::schema::COLUMNS;

/// A file (or Parquet data) the data layer could not use at all.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{file}: the file is empty; expected a header line ({}) followed by data rows", COLUMNS.join(","))]
    EmptyFile { file: String },

    #[error(
        "{file}: the file has a header (line {header_line}) but no data rows; expected at least one row after the header"
    )]
    HeaderOnly { file: String, header_line: u64 },

    #[error("{file}: {}", describe_missing_columns(missing, found))]
    MissingColumns {
        file: String,
        /// Required columns not in the header, in canonical order.
        missing: Vec<String>,
        /// Every column name the header has, trimmed, in file order.
        found: Vec<String>,
    },

    #[error(
        "{file}: the header has column '{column}' twice (columns {first} and {second}); expected each column once"
    )]
    DuplicateColumn {
        file: String,
        column: String,
        /// 1-based positions in the header.
        first: usize,
        second: usize,
    },

    #[error("{file}: the header is separated by {}, not commas; expected comma-separated values (export the file as CSV with ',' as the delimiter)", delimiter_name(*detected))]
    WrongDelimiter { file: String, detected: char },

    #[error("{file}: {detail}; expected a UTF-8 text CSV file")]
    NotText { file: String, detail: String },

    #[error(
        "{file} line {line}: a record is longer than {limit} bytes, which almost always means a quote (\") was opened and never closed; expected rows of a few dozen bytes"
    )]
    RecordTooLong {
        file: String,
        line: u64,
        limit: usize,
    },

    #[error("{file}: reading failed: {source}")]
    Io {
        file: String,
        #[source]
        source: io::Error,
    },

    #[error(
        "{file}: {detail}; expected the client schema ({})",
        describe_client_schema()
    )]
    SchemaMismatch { file: String, detail: String },

    #[error(
        "{file}: not a readable Parquet file ({source}); expected a Parquet file of the client schema"
    )]
    NotParquet {
        file: String,
        #[source]
        source: ParquetError,
    },

    #[error("{file}: Parquet error: {source}")]
    Parquet {
        file: String,
        #[source]
        source: ParquetError,
    },

    #[error("{file}: Arrow error: {source}")]
    Arrow {
        file: String,
        #[source]
        source: ArrowError,
    },
}

impl DataError {
    /// The name of the file (or data set) the error is about.
    pub fn file(&self) -> &str {
        match self {
            DataError::EmptyFile { file }
            | DataError::HeaderOnly { file, .. }
            | DataError::MissingColumns { file, .. }
            | DataError::DuplicateColumn { file, .. }
            | DataError::WrongDelimiter { file, .. }
            | DataError::NotText { file, .. }
            | DataError::RecordTooLong { file, .. }
            | DataError::Io { file, .. }
            | DataError::SchemaMismatch { file, .. }
            | DataError::NotParquet { file, .. }
            | DataError::Parquet { file, .. }
            | DataError::Arrow { file, .. } => file,
        }
    }
}

fn describe_missing_columns(missing: &[String], found: &[String]) -> String {
    let quoted = |names: &[String]| {
        names
            .iter()
            .map(|name| format!("'{name}'"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut message = if missing.len() == 1 {
        format!("required column {} is missing", quoted(missing))
    } else {
        format!("required columns {} are missing", quoted(missing))
    };
    let _ = write!(
        message,
        " (the header has {}); expected the columns {}",
        if found.is_empty() {
            "no column names".to_string()
        } else {
            quoted(found)
        },
        COLUMNS.join(", ")
    );
    message
}

fn describe_client_schema() -> String {
    super::schema::client_schema()
        .fields()
        .iter()
        .map(|field| format!("{}: {}", field.name(), field.data_type()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn delimiter_name(delimiter: char) -> String {
    match delimiter {
        ';' => "semicolons (';')".to_string(),
        '\t' => "tabs".to_string(),
        '|' => "pipes ('|')".to_string(),
        other => format!("{other:?}"),
    }
}
