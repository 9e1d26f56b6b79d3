//! The data layer from the outside: every kind of bad input a user can hand the pipeline, what
//! the user is told, and that the good rows of a file survive its bad ones.

use std::io::{self, Read};
use std::path::PathBuf;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Int8Type, Int64Type};
use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use shared::data::schema::{self, COLUMNS, client_schema};
use shared::data::{
    CsvBatchReader, CsvFileContents, CsvReadOptions, CsvWarning, DataError, RejectedRow,
    RowProblem, read_csv_file, read_parquet, rejected_rows_to_batch, write_parquet,
    write_rejected_csv,
};

const HEADER: &str = "corporation,lastmonth_activity,lastyear_activity,number_of_employees,exited";

fn read(name: &str, text: &str) -> CsvFileContents {
    read_csv_file(name, text.as_bytes()).unwrap()
}

fn read_err(name: &str, bytes: &[u8]) -> DataError {
    read_csv_file(name, bytes).unwrap_err()
}

fn corporations(batch: &RecordBatch) -> Vec<Option<String>> {
    let column = batch
        .column_by_name(schema::CORPORATION)
        .unwrap()
        .as_string::<i32>();
    column
        .iter()
        .map(|value| value.map(str::to_string))
        .collect()
}

fn int64s(batch: &RecordBatch, name: &str) -> Vec<Option<i64>> {
    let column = batch
        .column_by_name(name)
        .unwrap()
        .as_primitive::<Int64Type>();
    column.iter().collect()
}

fn exited(batch: &RecordBatch) -> Vec<Option<i8>> {
    let column = batch
        .column_by_name(schema::EXITED)
        .unwrap()
        .as_primitive::<Int8Type>();
    column.iter().collect()
}

/// A file with one bad row (line 3) between two good ones.
fn file_with_bad_row(bad_row: &str) -> String {
    format!("{HEADER}\nacme,1,10,100,0\n{bad_row}\nzxcv,2,20,200,1\n")
}

/// Checks the one rejected row of a [`file_with_bad_row`] file and that both good rows were kept.
fn assert_single_rejection(contents: &CsvFileContents, column: Option<&str>) -> RejectedRow {
    assert_eq!(contents.rejected.len(), 1, "{:?}", contents.rejected);
    let rejected = contents.rejected[0].clone();
    assert_eq!(rejected.file, contents.file);
    assert_eq!(rejected.line, 3);
    assert_eq!(rejected.column.as_deref(), column);
    assert_eq!(
        corporations(&contents.accepted),
        vec![Some("acme".to_string()), Some("zxcv".to_string())]
    );
    assert_eq!(contents.counts.rows_read, 3);
    assert_eq!(contents.counts.rows_accepted, 2);
    assert_eq!(contents.counts.rows_rejected, 1);
    rejected
}

// ---------------------------------------------------------------------------------------------
// Rows that break the schema: rejected with file, line, column and reason; good rows kept.

#[test]
fn not_a_number_is_rejected() {
    let contents = read("dataset3.csv", &file_with_bad_row("bad,12a,10,100,0"));
    let rejected = assert_single_rejection(&contents, Some("lastmonth_activity"));
    assert!(matches!(rejected.problem, RowProblem::NotANumber { .. }));
    assert_eq!(
        rejected.to_string(),
        "dataset3.csv line 3, column lastmonth_activity: \"12a\" is not a number; expected a non-negative integer"
    );
    assert_eq!(rejected.record, "bad,12a,10,100,0");
}

#[test]
fn decimal_is_rejected() {
    let contents = read("dataset3.csv", &file_with_bad_row("bad,1,10,1.5,0"));
    let rejected = assert_single_rejection(&contents, Some("number_of_employees"));
    assert!(matches!(rejected.problem, RowProblem::Decimal { .. }));
    assert_eq!(
        rejected.to_string(),
        "dataset3.csv line 3, column number_of_employees: \"1.5\" is a decimal number; expected a non-negative integer"
    );
}

#[test]
fn negative_is_rejected() {
    let contents = read("dataset3.csv", &file_with_bad_row("bad,1,-3,100,0"));
    let rejected = assert_single_rejection(&contents, Some("lastyear_activity"));
    assert!(matches!(rejected.problem, RowProblem::Negative { .. }));
    assert_eq!(
        rejected.to_string(),
        "dataset3.csv line 3, column lastyear_activity: \"-3\" is negative; expected a non-negative integer"
    );
}

#[test]
fn exited_other_than_zero_or_one_is_rejected() {
    let contents = read("dataset3.csv", &file_with_bad_row("bad,1,10,100,2"));
    let rejected = assert_single_rejection(&contents, Some("exited"));
    assert!(matches!(rejected.problem, RowProblem::NotZeroOrOne { .. }));
    assert_eq!(
        rejected.to_string(),
        "dataset3.csv line 3, column exited: \"2\" is not 0 or 1; expected 0 (stayed) or 1 (exited)"
    );
}

#[test]
fn too_few_fields_is_rejected() {
    let contents = read("dataset3.csv", &file_with_bad_row("bad,1,10,100"));
    let rejected = assert_single_rejection(&contents, None);
    assert!(matches!(
        rejected.problem,
        RowProblem::TooFewFields {
            found: 4,
            expected: 5,
            ..
        }
    ));
    let message = rejected.to_string();
    assert!(
        message.starts_with("dataset3.csv line 3: the row has 4 fields but the header has 5; expected 5 comma-separated fields"),
        "{message}"
    );
    assert_eq!(rejected.record, "bad,1,10,100");
}

#[test]
fn too_many_fields_is_rejected() {
    let contents = read("dataset3.csv", &file_with_bad_row("bad,1,10,100,0,7"));
    let rejected = assert_single_rejection(&contents, None);
    assert!(matches!(
        rejected.problem,
        RowProblem::TooManyFields {
            found: 6,
            expected: 5,
            ..
        }
    ));
    let message = rejected.to_string();
    assert!(
        message.starts_with("dataset3.csv line 3: the row has 6 fields but the header has 5;"),
        "{message}"
    );
    assert!(message.contains("not in quotes"), "{message}");
}

#[test]
fn integer_overflow_is_rejected() {
    let contents = read(
        "dataset3.csv",
        &file_with_bad_row("bad,99999999999999999999,10,100,0"),
    );
    let rejected = assert_single_rejection(&contents, Some("lastmonth_activity"));
    assert!(matches!(rejected.problem, RowProblem::TooLarge { .. }));
    assert_eq!(
        rejected.to_string(),
        "dataset3.csv line 3, column lastmonth_activity: \"99999999999999999999\" is too large for a 64-bit integer; expected a non-negative integer of at most 9223372036854775807"
    );
}

#[test]
fn invalid_utf8_in_a_field_is_rejected() {
    let mut bytes = format!("{HEADER}\nacme,1,10,100,0\n").into_bytes();
    bytes.extend_from_slice(b"b\xffd,1,10,100,0\n");
    bytes.extend_from_slice(b"zxcv,2,20,200,1\n");
    let contents = read_csv_file("dataset3.csv", &bytes[..]).unwrap();
    let rejected = assert_single_rejection(&contents, Some("corporation"));
    assert_eq!(
        rejected.problem,
        RowProblem::InvalidUtf8 {
            value: "b\u{FFFD}d".to_string(),
            position: 1
        }
    );
    let message = rejected.to_string();
    assert!(
        message.starts_with("dataset3.csv line 3, column corporation: \"b\u{FFFD}d\" is not valid UTF-8 (invalid byte at position 1); expected UTF-8 text"),
        "{message}"
    );
    assert_eq!(rejected.record, "b\u{FFFD}d,1,10,100,0");
}

#[test]
fn the_leftmost_bad_field_is_reported() {
    let contents = read("d.csv", &file_with_bad_row("bad,x,-1,1.5,7"));
    let rejected = assert_single_rejection(&contents, Some("lastmonth_activity"));
    assert!(matches!(rejected.problem, RowProblem::NotANumber { .. }));
}

#[test]
fn a_file_of_only_bad_rows_is_read_with_every_row_rejected() {
    let contents = read("d.csv", &format!("{HEADER}\na,x,1,1,0\nb,1,1,1,5\n"));
    assert_eq!(contents.accepted.num_rows(), 0);
    assert_eq!(contents.accepted.schema(), client_schema());
    assert_eq!(
        contents
            .rejected
            .iter()
            .map(|row| row.line)
            .collect::<Vec<_>>(),
        vec![2, 3]
    );
}

// ---------------------------------------------------------------------------------------------
// Whole-file errors.

#[test]
fn empty_file_is_refused() {
    for text in ["", "\n\n", "  \r\n \n"] {
        let error = read_err("dataset9.csv", text.as_bytes());
        assert!(
            matches!(error, DataError::EmptyFile { .. }),
            "{text:?}: {error}"
        );
        assert_eq!(
            error.to_string(),
            format!(
                "dataset9.csv: the file is empty; expected a header line ({HEADER}) followed by data rows"
            )
        );
    }
}

#[test]
fn header_only_is_refused() {
    for text in [
        HEADER.to_string(),
        format!("{HEADER}\n"),
        format!("{HEADER}\r\n\r\n  \n"),
    ] {
        let error = read_err("dataset9.csv", text.as_bytes());
        assert!(
            matches!(error, DataError::HeaderOnly { header_line: 1, .. }),
            "{error}"
        );
        assert_eq!(
            error.to_string(),
            "dataset9.csv: the file has a header (line 1) but no data rows; expected at least one row after the header"
        );
    }
}

#[test]
fn missing_column_is_refused_naming_it_and_listing_what_was_found() {
    let text = "corporation,lastmonth_activity,lastyear_activity,exited\nacme,1,2,0\n";
    let error = read_err("dataset9.csv", text.as_bytes());
    match &error {
        DataError::MissingColumns { missing, found, .. } => {
            assert_eq!(missing, &vec!["number_of_employees".to_string()]);
            assert_eq!(found.len(), 4);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(
        error.to_string(),
        "dataset9.csv: required column 'number_of_employees' is missing (the header has 'corporation', \
         'lastmonth_activity', 'lastyear_activity', 'exited'); expected the columns corporation, \
         lastmonth_activity, lastyear_activity, number_of_employees, exited"
    );
}

#[test]
fn duplicate_column_is_refused() {
    let text = format!("{HEADER},Exited\nacme,1,2,3,0,1\n");
    let error = read_err("dataset9.csv", text.as_bytes());
    assert!(matches!(
        error,
        DataError::DuplicateColumn {
            first: 5,
            second: 6,
            ..
        }
    ));
    assert_eq!(
        error.to_string(),
        "dataset9.csv: the header has column 'exited' twice (columns 5 and 6); expected each column once"
    );
}

#[test]
fn semicolon_delimiter_is_refused() {
    let text = format!("{}\nacme;1;2;3;0\n", HEADER.replace(',', ";"));
    let error = read_err("dataset9.csv", text.as_bytes());
    assert!(matches!(
        error,
        DataError::WrongDelimiter { detected: ';', .. }
    ));
    assert_eq!(
        error.to_string(),
        "dataset9.csv: the header is separated by semicolons (';'), not commas; expected \
         comma-separated values (export the file as CSV with ',' as the delimiter)"
    );
}

#[test]
fn tab_delimiter_is_refused() {
    let text = format!("{}\nacme\t1\t2\t3\t0\n", HEADER.replace(',', "\t"));
    let error = read_err("dataset9.tsv", text.as_bytes());
    assert!(matches!(
        error,
        DataError::WrongDelimiter { detected: '\t', .. }
    ));
    let message = error.to_string();
    assert!(
        message.starts_with("dataset9.tsv: the header is separated by tabs, not commas; expected comma-separated values"),
        "{message}"
    );
}

#[test]
fn pipe_delimited_header_of_unknown_columns_is_still_recognised() {
    let error = read_err("d.csv", b"id|name|value\n1|a|2\n");
    assert!(
        matches!(error, DataError::WrongDelimiter { detected: '|', .. }),
        "{error}"
    );
}

#[test]
fn binary_file_is_refused() {
    let mut bytes = b"\x00\x01\x02garbage".to_vec();
    bytes.extend_from_slice(&[0u8; 100]);
    let error = read_err("dataset9.csv", &bytes);
    assert!(matches!(error, DataError::NotText { .. }));
    assert_eq!(
        error.to_string(),
        "dataset9.csv: the file is binary, not text: it contains a NUL byte at byte offset 0; expected a UTF-8 text CSV file"
    );
}

#[test]
fn known_binary_formats_are_named() {
    for (bytes, what) in [
        (&b"PAR1\x15\x04"[..], "Parquet"),
        (b"\x1f\x8b\x08\x00", "gzip"),
        (b"PK\x03\x04\x14\x00", "ZIP"),
        (b"\xFF\xFEc\x00o\x00", "UTF-16"),
    ] {
        let message = read_err("upload.csv", bytes).to_string();
        assert!(
            message.starts_with("upload.csv: the file is not UTF-8 text:"),
            "{message}"
        );
        assert!(message.contains(what), "{message}");
    }
}

#[test]
fn parquet_bytes_given_as_csv_are_refused() {
    let mut parquet = Vec::new();
    let batch = read("t.csv", &format!("{HEADER}\na,1,2,3,0\n")).accepted;
    write_parquet("t.parquet", &mut parquet, [batch]).unwrap();
    let error = read_err("dataset9.csv", &parquet);
    assert!(matches!(error, DataError::NotText { .. }), "{error}");
}

#[test]
fn invalid_utf8_in_the_header_is_refused() {
    let mut bytes =
        b"corpor\xe9tion,lastmonth_activity,lastyear_activity,number_of_employees,exited\n"
            .to_vec();
    bytes.extend_from_slice(b"a,1,2,3,0\n");
    let error = read_err("latin1.csv", &bytes);
    assert!(matches!(error, DataError::NotText { .. }));
    assert_eq!(
        error.to_string(),
        "latin1.csv: the header line is not valid UTF-8 (invalid byte at position 6); expected a UTF-8 text CSV file"
    );
}

/// Yields its data, then fails: a dropped connection half-way through an S3 body.
struct FailingReader {
    data: Vec<u8>,
    offset: usize,
}

impl Read for FailingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let rest = &self.data[self.offset..];
        if rest.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "connection reset",
            ));
        }
        let count = rest.len().min(buf.len());
        buf[..count].copy_from_slice(&rest[..count]);
        self.offset += count;
        Ok(count)
    }
}

#[test]
fn io_error_while_reading_is_reported_once_with_the_file_name() {
    // Long enough that opening succeeds and the failure comes while reading batches.
    let data = generated_file(2000).into_bytes();
    let input = FailingReader { data, offset: 0 };
    let mut reader = CsvBatchReader::open("remote.csv", input).unwrap();
    let error = reader.next().unwrap().unwrap_err();
    assert!(matches!(error, DataError::Io { .. }));
    assert_eq!(
        error.to_string(),
        "remote.csv: reading failed: connection reset"
    );
    assert!(reader.next().is_none());

    let input = FailingReader {
        data: Vec::new(),
        offset: 0,
    };
    let error = read_csv_file("remote.csv", input).unwrap_err();
    assert_eq!(
        error.to_string(),
        "remote.csv: reading failed: connection reset"
    );
}

#[test]
fn unclosed_quote_in_a_large_file_is_refused_not_buffered() {
    let mut text = format!("{HEADER}\na,1,2,3,0\n\"b,1,2,3,0\n");
    let row = "c,1,2,3,0\n";
    while text.len() < 2 * 1024 * 1024 {
        text.push_str(row);
    }
    let error = read_err("big.csv", text.as_bytes());
    assert!(
        matches!(error, DataError::RecordTooLong { line: 3, .. }),
        "{error}"
    );
    assert!(error.to_string().contains("quote"), "{error}");
}

#[test]
fn unclosed_quote_in_a_small_file_hints_at_the_quote() {
    let contents = read(
        "d.csv",
        &format!("{HEADER}\na,1,2,3,0\n\"b,1,2,3,0\nc,1,2,3,0\n"),
    );
    assert_eq!(contents.rejected.len(), 1);
    let message = contents.rejected[0].to_string();
    assert!(
        message.starts_with("d.csv line 3: the row has 1 fields"),
        "{message}"
    );
    assert!(
        message.contains("spans 2 lines: is a quote (\") left unclosed?"),
        "{message}"
    );
}

// ---------------------------------------------------------------------------------------------
// Files that are accepted.

#[test]
fn utf8_bom_is_accepted() {
    let text = format!("\u{FEFF}{HEADER}\nacme,1,2,3,0\n");
    let contents = read("bom.csv", &text);
    assert_eq!(contents.accepted.num_rows(), 1);
    assert!(contents.warnings.is_empty(), "{:?}", contents.warnings);
}

#[test]
fn crlf_line_ends_are_accepted() {
    let text = format!("{HEADER}\r\nacme,1,2,3,0\r\nbad,1,2,x,0\r\nzxcv,4,5,6,1\r\n");
    let contents = read("crlf.csv", &text);
    assert_eq!(
        corporations(&contents.accepted),
        vec![Some("acme".into()), Some("zxcv".into())]
    );
    assert_eq!(
        int64s(&contents.accepted, schema::NUMBER_OF_EMPLOYEES),
        vec![Some(3), Some(6)]
    );
    assert_eq!(exited(&contents.accepted), vec![Some(0), Some(1)]);
    assert_eq!(contents.rejected[0].line, 3);
    assert_eq!(contents.rejected[0].record, "bad,1,2,x,0");
}

#[test]
fn quoted_fields_with_commas_and_quotes_are_accepted() {
    let text = format!("{HEADER}\n\"Acme, Inc.\",\"1\",2,3,0\n\"The \"\"Best\"\" Co\",4,5,6,1\n");
    let contents = read("quoted.csv", &text);
    assert_eq!(
        corporations(&contents.accepted),
        vec![Some("Acme, Inc.".into()), Some("The \"Best\" Co".into())]
    );
    assert_eq!(
        int64s(&contents.accepted, schema::LASTMONTH_ACTIVITY),
        vec![Some(1), Some(4)]
    );
}

#[test]
fn columns_in_another_order_are_accepted_in_canonical_order() {
    let text = "exited, number_of_employees ,corporation,lastyear_activity,lastmonth_activity\n1,3,acme,2,1\n";
    let contents = read("reordered.csv", text);
    assert_eq!(contents.accepted.schema(), client_schema());
    assert_eq!(corporations(&contents.accepted), vec![Some("acme".into())]);
    assert_eq!(
        int64s(&contents.accepted, schema::LASTMONTH_ACTIVITY),
        vec![Some(1)]
    );
    assert_eq!(
        int64s(&contents.accepted, schema::LASTYEAR_ACTIVITY),
        vec![Some(2)]
    );
    assert_eq!(
        int64s(&contents.accepted, schema::NUMBER_OF_EMPLOYEES),
        vec![Some(3)]
    );
    assert_eq!(exited(&contents.accepted), vec![Some(1)]);
    assert!(contents.warnings.is_empty());
}

#[test]
fn extra_column_is_ignored_with_a_warning() {
    let text = format!("region,{HEADER}\nnorth,acme,1,2,3,0\n");
    let contents = read("extra.csv", &text);
    assert_eq!(contents.accepted.num_columns(), 5);
    assert_eq!(corporations(&contents.accepted), vec![Some("acme".into())]);
    assert_eq!(
        contents.warnings,
        vec![CsvWarning::ExtraColumn {
            file: "extra.csv".into(),
            name: "region".into(),
            position: 1
        }]
    );
    assert!(contents.warnings[0].to_string().starts_with(
        "extra.csv: column 1 'region' is not part of the client schema and is ignored"
    ));
}

#[test]
fn header_names_match_ignoring_case_with_a_warning() {
    let text =
        "Corporation,LASTMONTH_ACTIVITY,lastyear_activity,number_of_employees,exited\na,1,2,3,0\n";
    let contents = read("case.csv", text);
    assert_eq!(contents.accepted.num_rows(), 1);
    assert_eq!(contents.warnings.len(), 2);
    assert_eq!(
        contents.warnings[0].to_string(),
        "case.csv: column 1 'Corporation' is read as 'corporation' (header names are matched ignoring case)"
    );
}

#[test]
fn missing_values_become_nulls_and_are_counted() {
    let text = format!("{HEADER}\nacme,,2,3,0\n , 1 ,  ,3,\nzxcv,1,2,,1\n,,,,\n");
    let contents = read("gaps.csv", &text);
    assert!(contents.rejected.is_empty(), "{:?}", contents.rejected);
    assert_eq!(contents.accepted.num_rows(), 4);
    assert_eq!(
        corporations(&contents.accepted),
        vec![Some("acme".into()), None, Some("zxcv".into()), None]
    );
    assert_eq!(
        int64s(&contents.accepted, schema::LASTMONTH_ACTIVITY),
        vec![None, Some(1), Some(1), None]
    );
    assert_eq!(
        exited(&contents.accepted),
        vec![Some(0), None, Some(1), None]
    );
    let missing = &contents.counts.missing_values;
    assert_eq!(missing.in_canonical_order(), [2, 2, 2, 2, 2]);
    assert_eq!(missing.get(schema::EXITED), Some(2));
    assert_eq!(missing.get("nope"), None);
    assert_eq!(missing.total(), 10);
    for (index, name) in COLUMNS.iter().enumerate() {
        assert_eq!(
            contents.accepted.column_by_name(name).unwrap().null_count() as u64,
            missing.in_canonical_order()[index]
        );
    }
}

#[test]
fn line_numbers_count_line_breaks_inside_quoted_fields() {
    let text =
        format!("{HEADER}\n\"multi\nline\r\nname\",1,2,3,0\nbad,1,2,3,9\n\"two\nlines\",x,2,3,0\n");
    let contents = read("multiline.csv", &text);
    assert_eq!(
        corporations(&contents.accepted),
        vec![Some("multi\nline\r\nname".into())]
    );
    let lines: Vec<u64> = contents.rejected.iter().map(|row| row.line).collect();
    assert_eq!(lines, vec![5, 6]);
    assert_eq!(contents.rejected[1].record, "\"two\nlines\",x,2,3,0");
}

#[test]
fn blank_lines_are_skipped_counted_and_do_not_shift_line_numbers() {
    let text = format!("\n{HEADER}\r\n\r\nacme,1,2,3,0\r\n   \r\n\r\nbad,1,2,3,x\r\n\r\n\r\n");
    let contents = read("blanks.csv", &text);
    assert_eq!(contents.counts.blank_lines, 6);
    assert_eq!(contents.counts.rows_read, 2);
    assert_eq!(contents.accepted.num_rows(), 1);
    assert_eq!(contents.rejected[0].line, 7);

    let error = read_err("blank-header.csv", format!("\n\n{HEADER}\n").as_bytes());
    assert!(matches!(
        error,
        DataError::HeaderOnly { header_line: 3, .. }
    ));
}

#[test]
fn last_line_without_line_break_is_read() {
    let contents = read("eof.csv", &format!("{HEADER}\na,1,2,3,0\nb,1,2,3,7"));
    assert_eq!(contents.accepted.num_rows(), 1);
    assert_eq!(contents.rejected[0].line, 3);
    assert_eq!(contents.rejected[0].record, "b,1,2,3,7");
}

fn seed_file(relative: &str) -> CsvFileContents {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "..", "data", relative]
        .iter()
        .collect();
    let file = std::fs::File::open(&path).unwrap();
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    read_csv_file(name, file).unwrap()
}

#[test]
fn seed_files_are_read_completely() {
    for (path, rows) in [
        ("practicedata/dataset1.csv", 17),
        ("practicedata/dataset2.csv", 19),
        ("sourcedata/dataset3.csv", 11),
        ("sourcedata/dataset4.csv", 15),
        ("testdata/testdata.csv", 5),
    ] {
        let contents = seed_file(path);
        assert_eq!(contents.accepted.num_rows(), rows, "{path}");
        assert_eq!(contents.counts.rows_read, rows as u64, "{path}");
        assert!(
            contents.rejected.is_empty(),
            "{path}: {:?}",
            contents.rejected
        );
        assert!(contents.warnings.is_empty(), "{path}");
        assert_eq!(contents.counts.missing_values.total(), 0, "{path}");
        assert_eq!(contents.counts.blank_lines, 0, "{path}");
    }
    let test_data = seed_file("testdata/testdata.csv");
    assert_eq!(
        corporations(&test_data.accepted)[0].as_deref(),
        Some("werf")
    );
    assert_eq!(
        int64s(&test_data.accepted, schema::LASTYEAR_ACTIVITY),
        vec![Some(3), Some(2145), Some(333), Some(12346), Some(675)]
    );
}

/// Generated rows; every 1000th row (counting from 0) has a bad `exited`.
fn generated_file(rows: usize) -> String {
    let mut text = format!("{HEADER}\n");
    for row in 0..rows {
        let exited = if row % 1000 == 0 { 7 } else { row % 2 };
        text.push_str(&format!("c{row},{row},{},{},{exited}\n", row * 3, row % 50));
    }
    text
}

#[test]
fn a_file_larger_than_the_batch_size_yields_several_batches() {
    let text = generated_file(10_500);
    let options = CsvReadOptions { batch_rows: 4096 };
    let mut reader = CsvBatchReader::open_with("big.csv", text.as_bytes(), options).unwrap();
    let mut sizes = Vec::new();
    let mut rejected_lines = Vec::new();
    for batch in &mut reader {
        let batch = batch.unwrap();
        assert_eq!(batch.accepted.schema(), client_schema());
        sizes.push(batch.accepted.num_rows() + batch.rejected.len());
        rejected_lines.extend(batch.rejected.iter().map(|row| row.line));
    }
    assert_eq!(sizes, vec![4096, 4096, 2308]);
    let expected_lines: Vec<u64> = (0..10_500u64).step_by(1000).map(|row| row + 2).collect();
    assert_eq!(rejected_lines, expected_lines);
    let counts = reader.counts();
    assert_eq!(counts.rows_read, 10_500);
    assert_eq!(counts.rows_rejected, 11);
    assert_eq!(counts.rows_accepted, 10_489);
}

/// Hands out at most `chunk` bytes per read, to cut records at every possible place.
struct TrickleReader<'a> {
    data: &'a [u8],
    chunk: usize,
}

impl Read for TrickleReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let count = self.data.len().min(buf.len()).min(self.chunk);
        buf[..count].copy_from_slice(&self.data[..count]);
        self.data = &self.data[count..];
        Ok(count)
    }
}

#[test]
fn results_do_not_depend_on_how_the_input_arrives() {
    let mut text = format!(
        "\u{FEFF}{HEADER}\r\n\r\n\"multi\nline\",1,2,3,0\r\nbad,1,2,3,9\r\n  \n\"q,\"\"x\"\"\",,5,6,1\nshort,1\n"
    );
    text.push_str(&generated_file(3000)[HEADER.len() + 1..]);
    let whole = read("t.csv", &text);
    for chunk in [1, 2, 3, 7, 64, 4096] {
        let trickled = read_csv_file(
            "t.csv",
            TrickleReader {
                data: text.as_bytes(),
                chunk,
            },
        )
        .unwrap();
        assert_eq!(trickled.accepted, whole.accepted, "chunk {chunk}");
        assert_eq!(trickled.rejected, whole.rejected, "chunk {chunk}");
        assert_eq!(trickled.counts, whole.counts, "chunk {chunk}");
    }
    assert_eq!(whole.counts.blank_lines, 2);
    let lines: Vec<u64> = whole.rejected.iter().map(|row| row.line).collect();
    assert_eq!(lines[..3], [5, 8, 9]);
}

#[test]
fn line_numbers_stay_right_across_buffer_refills() {
    // Well past the reader's internal buffer, so records straddle refills.
    let rows = 120_000;
    let text = generated_file(rows);
    assert!(text.len() > 2 * 1024 * 1024);
    let contents = read("long.csv", &text);
    assert_eq!(contents.counts.rows_read, rows as u64);
    let lines: Vec<u64> = contents.rejected.iter().map(|row| row.line).collect();
    let expected: Vec<u64> = (0..rows as u64).step_by(1000).map(|row| row + 2).collect();
    assert_eq!(lines, expected);
    assert_eq!(contents.rejected[119].record, "c119000,119000,357000,0,7");
    assert_eq!(
        int64s(&contents.accepted, schema::LASTMONTH_ACTIVITY).last(),
        Some(&Some(119_999))
    );
}

// ---------------------------------------------------------------------------------------------
// Rejected rows leave the reader in forms the pipeline can quarantine.

#[test]
fn rejected_rows_serialize_and_convert_to_batch_and_csv() {
    let contents = read(
        "dataset3.csv",
        &format!("{HEADER}\nacme,1,-3,3,0\n\"a,b\",1,2\nok,1,2,3,1\n"),
    );
    let rejected = &contents.rejected;
    assert_eq!(rejected.len(), 2);

    let json = serde_json::to_value(&rejected[0]).unwrap();
    assert_eq!(json["file"], "dataset3.csv");
    assert_eq!(json["line"], 2);
    assert_eq!(json["column"], "lastyear_activity");
    assert_eq!(json["problem"]["kind"], "negative");
    assert_eq!(json["problem"]["value"], "-3");
    assert_eq!(json["record"], "acme,1,-3,3,0");
    let back: RejectedRow = serde_json::from_value(json).unwrap();
    assert_eq!(&back, &rejected[0]);

    let batch = rejected_rows_to_batch(rejected).unwrap();
    assert_eq!(batch.num_rows(), 2);
    assert_eq!(batch.column_by_name("column").unwrap().null_count(), 1);
    let reasons = batch.column_by_name("reason").unwrap().as_string::<i32>();
    assert_eq!(
        reasons.value(0),
        "\"-3\" is negative; expected a non-negative integer"
    );

    let mut csv = Vec::new();
    write_rejected_csv(rejected, &mut csv).unwrap();
    let csv = String::from_utf8(csv).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("file,line,column,kind,reason,record"));
    assert_eq!(
        lines.next(),
        Some(
            "dataset3.csv,2,lastyear_activity,negative,\"\"\"-3\"\" is negative; expected a non-negative integer\",\"acme,1,-3,3,0\""
        )
    );
}

// ---------------------------------------------------------------------------------------------
// CSV in, Parquet at rest.

#[test]
fn csv_batches_round_trip_through_parquet() {
    let text = format!("{HEADER}\nacme,,2,3,0\n,1,2,3,\nbad,x,1,1,1\n");
    let mut reader = CsvBatchReader::open("d.csv", text.as_bytes()).unwrap();
    let mut parquet = Vec::new();
    let mut writer =
        shared::data::ParquetBatchWriter::new("compiled.parquet", &mut parquet).unwrap();
    let mut expected = Vec::new();
    for batch in &mut reader {
        let batch = batch.unwrap();
        writer.write(&batch.accepted).unwrap();
        expected.push(batch.accepted);
    }
    assert_eq!(writer.finish().unwrap(), 2);

    let read_back: Vec<RecordBatch> = read_parquet("compiled.parquet", Bytes::from(parquet))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(read_back, expected);
    assert_eq!(read_back[0].column(1).null_count(), 1);
    assert_eq!(read_back[0].column(0).null_count(), 1);
}
