//! The compiled data set as one logical table: the Parquet parts the ingestion record lists
//! (its manifest), read in manifest order, so rows keep their compiled positions whatever the
//! parts. Every consumer (training, the drift check, diagnostics, the report, the risk list,
//! the export) reads through here: the storage layout is known in this file and in the
//! ingestion that writes it. Parts are fetched at the versions the record names, only those
//! holding the rows asked for.

use arrow::array::RecordBatch;
use bytes::Bytes;

use super::{Pipeline, StepError};
use crate::data::error::DataError;
use crate::data::parquet::{
    ParquetBatchWriter, parquet_row_group_rows, read_parquet_columns, read_parquet_row_groups,
};
use crate::location::Location;
use crate::records::{CompiledData, CompiledPart, IngestionRecord, names};

/// One part of the compiled data and its bytes.
#[derive(Debug, Clone)]
pub struct FetchedPart {
    pub part: CompiledPart,
    pub bytes: Bytes,
}

/// The ingestion record in `compiled` and the compiled data it commits; an error that says to
/// ingest first when there is none.
pub async fn committed_data(
    pipeline: &Pipeline,
    compiled: &Location,
) -> Result<(IngestionRecord, CompiledData), StepError> {
    let no_data = || StepError::NoCompiledData {
        location: compiled.url().to_string(),
        source_location: pipeline.locations.source_data.url().to_string(),
    };
    let (_, record) = compiled
        .get_json_if_exists::<IngestionRecord>(names::INGESTION_RECORD, "ingestion record")
        .await?
        .ok_or_else(no_data)?;
    let data = record.compiled.clone().ok_or_else(no_data)?;
    Ok((record, data))
}

/// The parts of `data` that hold rows at positions `from_row..`, in compiled order, each at
/// the version the manifest names (fetched concurrently: on S3 each is a round trip).
pub async fn fetch_parts(
    compiled: &Location,
    data: &CompiledData,
    from_row: u64,
) -> Result<Vec<FetchedPart>, StepError> {
    let wanted: Vec<CompiledPart> = data
        .parts()
        .into_iter()
        .filter(|part| part.first_row + part.rows > from_row)
        .collect();
    let objects = wanted
        .iter()
        .map(|part| (part.key.clone(), part.object.version_id.clone()))
        .collect();
    let bytes = fetch_objects(compiled, objects).await?;
    Ok(wanted
        .into_iter()
        .zip(bytes)
        .map(|(part, bytes)| FetchedPart { part, bytes })
        .collect())
}

/// The bytes of each (key, version) of `compiled`, in order, read a few at a time
/// ([`Location::get_all`]).
pub async fn fetch_objects(
    compiled: &Location,
    objects: Vec<(String, String)>,
) -> Result<Vec<Bytes>, StepError> {
    let objects = objects
        .into_iter()
        .map(|(key, version)| (key, Some(version)))
        .collect();
    compiled
        .get_all(objects)
        .await
        .into_iter()
        .map(|read| Ok(read?.1))
        .collect()
}

/// Where the fingerprint index of the part at `part_key` goes: the same path under
/// `fingerprints/` (`parts/ingested_month=2026-12/part-x.parquet` ->
/// `fingerprints/ingested_month=2026-12/part-x.fp128`).
pub fn fingerprint_key(part_key: &str) -> String {
    sidecar_key(part_key, names::FINGERPRINTS_PREFIX, "fp128")
}

/// Where an object describing the part at `part_key` goes: the part's path under `prefix`
/// instead of `parts/`, with `extension` instead of `.parquet`.
pub fn sidecar_key(part_key: &str, prefix: &str, extension: &str) -> String {
    let path = part_key
        .strip_prefix(names::COMPILED_PARTS_PREFIX)
        .unwrap_or(part_key)
        .trim_start_matches('/');
    let stem = path.strip_suffix(".parquet").unwrap_or(path);
    format!("{prefix}/{stem}.{extension}")
}

/// A fingerprint index: the sorted fingerprints, 16 bytes each, little-endian.
pub fn encode_fingerprints(sorted: &[u128]) -> Vec<u8> {
    sorted.iter().flat_map(|f| f.to_le_bytes()).collect()
}

/// The fingerprints of an index of `rows` rows; `None` when its size says it is not one.
pub fn decode_fingerprints(bytes: &[u8], rows: u64) -> Option<Vec<u128>> {
    if bytes.len() as u64 != rows.checked_mul(16)? {
        return None;
    }
    Some(
        bytes
            .chunks_exact(16)
            .map(|chunk| {
                let mut word = [0u8; 16];
                word.copy_from_slice(chunk);
                u128::from_le_bytes(word)
            })
            .collect(),
    )
}

/// Decodes the rows at positions `from_row..` of `parts` (all columns, or only `columns`), in
/// compiled order: a part starting before `from_row` is sliced.
pub fn decode_rows(
    parts: &[FetchedPart],
    columns: Option<&[&str]>,
    from_row: u64,
) -> Result<Vec<RecordBatch>, DataError> {
    let mut batches = Vec::new();
    for_each_batch(parts, columns, from_row, |batch| {
        batches.push(batch);
        Ok(())
    })?;
    Ok(batches)
}

/// Calls `visit` with every batch of the rows at positions `from_row..` of `parts`, in compiled
/// order, one batch decoded at a time; in a part that starts before `from_row`, only the row
/// groups from the one holding `from_row` are decoded, and the first of them is sliced.
pub fn for_each_batch<E: From<DataError>>(
    parts: &[FetchedPart],
    columns: Option<&[&str]>,
    from_row: u64,
    mut visit: impl FnMut(RecordBatch) -> Result<(), E>,
) -> Result<(), E> {
    for FetchedPart { part, bytes } in parts {
        let skip_in_part = from_row.saturating_sub(part.first_row);
        if skip_in_part >= part.rows {
            continue;
        }
        let (row_groups, mut skip) = match skip_in_part {
            0 => (None, 0),
            _ => {
                let (groups, skip) = row_groups_from(
                    &parquet_row_group_rows(&part.key, bytes.clone())?,
                    skip_in_part,
                );
                (Some(groups), skip)
            }
        };
        let batches: Box<dyn Iterator<Item = Result<RecordBatch, DataError>>> = match columns {
            None => Box::new(read_parquet_row_groups(
                part.key.as_str(),
                bytes.clone(),
                row_groups,
            )?),
            Some(columns) => Box::new(read_parquet_columns(
                &part.key,
                bytes.clone(),
                columns,
                row_groups,
            )?),
        };
        for batch in batches {
            let batch = batch?;
            let rows = batch.num_rows() as u64;
            if skip >= rows {
                skip -= rows;
                continue;
            }
            let offset = usize::try_from(skip).unwrap_or(usize::MAX);
            skip = 0;
            visit(if offset == 0 {
                batch
            } else {
                batch.slice(offset, batch.num_rows() - offset)
            })?;
        }
    }
    Ok(())
}

/// The row groups (of `group_rows` rows each) holding the rows from position `skip` on, and
/// how many rows of the first of them come before `skip`.
fn row_groups_from(group_rows: &[u64], skip: u64) -> (Vec<usize>, u64) {
    let mut skipped = 0;
    for (group, &rows) in group_rows.iter().enumerate() {
        if skipped + rows > skip {
            return ((group..group_rows.len()).collect(), skip - skipped);
        }
        skipped += rows;
    }
    (Vec::new(), 0)
}

/// The whole compiled data set as one Parquet file (the seed's `finaldata.parquet`), rows in
/// compiled order; returns the bytes and the row count.
pub fn export_as_one_file(parts: &[FetchedPart]) -> Result<(Vec<u8>, u64), DataError> {
    let mut writer = ParquetBatchWriter::new(names::COMPILED_DATA, Vec::new())?;
    for_each_batch::<DataError>(parts, None, 0, |batch| writer.write(&batch))?;
    writer.finish_into_inner()
}

/// The compiled data set the ingestion record in `compiled_data` commits, as one Parquet file
/// (`risk export-compiled`): its description and the file's bytes.
pub async fn export_compiled(pipeline: &Pipeline) -> Result<(CompiledData, Vec<u8>), StepError> {
    let compiled = &pipeline.locations.compiled_data;
    let (_, data) = committed_data(pipeline, compiled).await?;
    let parts = fetch_parts(compiled, &data, 0).await?;
    let (bytes, _) = super::spawn_blocking_in_span(move || export_as_one_file(&parts)).await??;
    Ok((data, bytes))
}

/// The key of the part a run writes in `month` (`YYYY-MM`): its own folder per ingestion month
/// (a Hive partition any engine reads as a column), its own name per run, so no part is ever
/// written twice.
pub fn part_key(month: &str, run_id: &str) -> String {
    format!(
        "{}/ingested_month={month}/part-{run_id}.parquet",
        names::COMPILED_PARTS_PREFIX
    )
}

/// For tests: a part as the manifest names it and as fetched, `rows` rows from position
/// `first_row` in the Parquet `bytes`.
#[cfg(test)]
pub(crate) fn fetched_part(key: &str, first_row: u64, rows: u64, bytes: Bytes) -> FetchedPart {
    FetchedPart {
        part: CompiledPart {
            key: key.into(),
            object: crate::records::ObjectRef {
                url: format!("memory:///{key}"),
                version_id: "1".into(),
                etag: "e".into(),
                size: bytes.len() as u64,
            },
            rows,
            first_row,
            fingerprints: None,
            statistics: None,
        },
        bytes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::parquet::{read_parquet, write_parquet};
    use crate::data::schema::client_schema;
    use arrow::array::{Int8Array, Int64Array, StringArray};
    use std::sync::Arc;

    fn client_batch(corporations: &[&str]) -> RecordBatch {
        let n = corporations.len();
        let numbers = || Arc::new(Int64Array::from_iter_values((0..n).map(|i| i as i64)));
        RecordBatch::try_new(
            client_schema(),
            vec![
                Arc::new(StringArray::from(corporations.to_vec())),
                numbers(),
                numbers(),
                numbers(),
                Arc::new(Int8Array::from_iter_values((0..n).map(|i| (i % 2) as i8))),
            ],
        )
        .unwrap()
    }

    fn part(key: &str, first_row: u64, batches: &[RecordBatch]) -> FetchedPart {
        let mut bytes = Vec::new();
        let rows = write_parquet(key, &mut bytes, batches.iter().cloned()).unwrap();
        fetched_part(key, first_row, rows, bytes.into())
    }

    fn corporations(batches: &[RecordBatch]) -> Vec<String> {
        use arrow::array::AsArray;
        batches
            .iter()
            .flat_map(|b| {
                b.column(0)
                    .as_string::<i32>()
                    .iter()
                    .map(|v| v.unwrap_or("").to_string())
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn rows_from_a_position_span_parts_in_manifest_order() {
        let a = client_batch(&["a0", "a1", "a2"]);
        let b = client_batch(&["b0", "b1"]);
        let parts = [part("p0", 0, &[a]), part("p1", 3, &[b])];
        let all = decode_rows(&parts, None, 0).unwrap();
        assert_eq!(corporations(&all), ["a0", "a1", "a2", "b0", "b1"]);
        let tail = decode_rows(&parts, None, 2).unwrap();
        assert_eq!(corporations(&tail), ["a2", "b0", "b1"]);
        let second = decode_rows(&parts, None, 4).unwrap();
        assert_eq!(corporations(&second), ["b1"]);
        assert!(decode_rows(&parts, None, 5).unwrap().is_empty());
        let exported = export_as_one_file(&parts).unwrap();
        assert_eq!(exported.1, 5);
        let back: Vec<RecordBatch> = read_parquet("x", exported.0.into())
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(corporations(&back), corporations(&all));
    }

    #[test]
    fn rows_from_a_position_decode_only_the_row_groups_that_hold_them() {
        use parquet::arrow::ArrowWriter;
        use parquet::file::properties::WriterProperties;
        let names: Vec<String> = (0..10).map(|i| format!("c{i}")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let batch = client_batch(&names);
        let properties = WriterProperties::builder()
            .set_max_row_group_row_count(Some(4))
            .build();
        let mut bytes = Vec::new();
        let mut writer =
            ArrowWriter::try_new(&mut bytes, client_schema(), Some(properties)).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        let mut fetched = part("p0", 0, &[]);
        fetched.part.rows = 10;
        fetched.bytes = bytes.into();
        assert_eq!(
            parquet_row_group_rows("p0", fetched.bytes.clone()).unwrap(),
            [4, 4, 2]
        );
        let parts = [fetched];
        for from in 0..=10 {
            let rows = decode_rows(&parts, None, from).unwrap();
            assert_eq!(corporations(&rows), names[from as usize..], "{from}");
            // The model's columns only: the same rows.
            let columns =
                decode_rows(&parts, Some(&["lastyear_activity", "exited"]), from).unwrap();
            let count: usize = columns.iter().map(RecordBatch::num_rows).sum();
            assert_eq!(count, 10 - from as usize, "{from}");
            let values: Vec<i64> = columns
                .iter()
                .flat_map(|b| {
                    b.column(0)
                        .as_any()
                        .downcast_ref::<Int64Array>()
                        .unwrap()
                        .values()
                        .to_vec()
                })
                .collect();
            assert_eq!(values, (from as i64..10).collect::<Vec<_>>(), "{from}");
        }
    }

    #[test]
    fn a_position_falls_in_the_row_group_that_holds_it() {
        let groups = [4, 4, 2];
        assert_eq!(row_groups_from(&groups, 1), (vec![0, 1, 2], 1));
        assert_eq!(row_groups_from(&groups, 4), (vec![1, 2], 0));
        assert_eq!(row_groups_from(&groups, 7), (vec![1, 2], 3));
        assert_eq!(row_groups_from(&groups, 9), (vec![2], 1));
        assert_eq!(row_groups_from(&groups, 10), (vec![], 0));
    }

    #[test]
    fn a_record_from_before_parts_is_read_as_its_single_file() {
        let json = r#"{"object":{"url":"file:///c/finaldata.parquet","version_id":"v1",
            "etag":"e","size":10},"rows":26,"duplicates_dropped":2}"#;
        let data: CompiledData = serde_json::from_str(json).unwrap();
        let parts = data.parts();
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].key, names::COMPILED_DATA);
        assert_eq!((parts[0].first_row, parts[0].rows), (0, 26));
        assert_eq!(parts[0].object.version_id, "v1");
        // Written again, it has no `parts` field, exactly as before.
        assert!(!serde_json::to_string(&data).unwrap().contains("parts"));
    }

    #[test]
    fn fingerprint_indexes_round_trip_and_refuse_a_wrong_size() {
        let fingerprints = [1u128, 2, u128::MAX];
        let bytes = encode_fingerprints(&fingerprints);
        assert_eq!(bytes.len(), 48);
        assert_eq!(decode_fingerprints(&bytes, 3).unwrap(), fingerprints);
        assert_eq!(decode_fingerprints(&bytes, 2), None);
        assert_eq!(decode_fingerprints(&bytes[..47], 3), None);
        assert_eq!(
            fingerprint_key("parts/ingested_month=2026-12/part-run-1.parquet"),
            "fingerprints/ingested_month=2026-12/part-run-1.fp128"
        );
    }

    #[test]
    fn part_keys_are_hive_partitions_by_ingestion_month() {
        assert_eq!(
            part_key("2026-12", "run-1"),
            "parts/ingested_month=2026-12/part-run-1.parquet"
        );
    }
}
