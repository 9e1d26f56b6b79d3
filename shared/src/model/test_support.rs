//! Test-only helpers: client-schema batches from literal rows or from the seed CSVs in `data/`
//! (a deliberately tiny parser; the real validating reader lives in the data layer).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Int8Array, Int64Array, StringArray};
use arrow::record_batch::RecordBatch;

use crate::data::schema::client_schema;

/// One client row: `(lastmonth_activity, lastyear_activity, number_of_employees, exited)`.
pub type Row = (Option<i64>, Option<i64>, Option<i64>, Option<i8>);

pub fn batch(rows: &[Row]) -> RecordBatch {
    let names: StringArray = (0..rows.len()).map(|i| Some(format!("c{i}"))).collect();
    let lastmonth: Int64Array = rows.iter().map(|r| r.0).collect();
    let lastyear: Int64Array = rows.iter().map(|r| r.1).collect();
    let employees: Int64Array = rows.iter().map(|r| r.2).collect();
    let exited: Int8Array = rows.iter().map(|r| r.3).collect();
    RecordBatch::try_new(
        client_schema(),
        vec![
            Arc::new(names),
            Arc::new(lastmonth),
            Arc::new(lastyear),
            Arc::new(employees),
            Arc::new(exited),
        ],
    )
    .unwrap()
}

pub fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

/// Rows of a seed CSV (header `corporation,lastmonth_activity,…,exited`), empty fields as null.
pub fn csv_rows(relative: &str) -> Vec<(String, Row)> {
    let mut reader = csv::Reader::from_path(repo_path(relative)).unwrap();
    reader
        .records()
        .map(|record| {
            let record = record.unwrap();
            let int = |i: usize| {
                let field = record[i].trim();
                (!field.is_empty()).then(|| field.parse::<i64>().unwrap())
            };
            let exited = int(4).map(|v| i8::try_from(v).unwrap());
            (record[0].to_string(), (int(1), int(2), int(3), exited))
        })
        .collect()
}

/// The seed practice data as the pipeline compiles it: all files concatenated, exact duplicate
/// rows dropped (first occurrence kept).
pub fn practice_data() -> RecordBatch {
    let mut seen = Vec::new();
    for file in [
        "data/practicedata/dataset1.csv",
        "data/practicedata/dataset2.csv",
    ] {
        for row in csv_rows(file) {
            if !seen.contains(&row) {
                seen.push(row);
            }
        }
    }
    batch(&seen.into_iter().map(|(_, row)| row).collect::<Vec<_>>())
}

pub fn test_data() -> RecordBatch {
    let rows: Vec<Row> = csv_rows("data/testdata/testdata.csv")
        .into_iter()
        .map(|(_, row)| row)
        .collect();
    batch(&rows)
}
