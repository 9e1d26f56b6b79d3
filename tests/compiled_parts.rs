//! The compiled data in parts: after a few ingestions, an independent reader (pyarrow's dataset
//! API with Hive partitioning, from the test venv) reads the `parts/` folder of a local store
//! and gets exactly the rows our reader gives; a record written before parts (one
//! `finaldata.parquet`) is still read, de-duplicated against and adopted as part 0; and
//! `risk export-compiled` writes the whole table as one file. Without pyarrow the independent
//! reader is skipped locally and fails under `CI=true`.

use std::path::{Path, PathBuf};
use std::process::Command;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Int8Type, Int64Type};
use bytes::Bytes;
use shared::data::parquet::read_parquet;
use shared::records::{IngestionRecord, ObjectRef, names};
use shared::steps::Pipeline;
use shared::steps::compiled::{export_as_one_file, fetch_parts};
use shared::steps::ingestion::{IngestScope, ingest};
use shared::steps::training::load_compiled_data;
use shared::store::PutMode;
use shared::testing::{local_pipeline, place_seed_source_files, repo_path};

/// Every row as one text line (`None` for a missing value), in compiled order.
fn rows_of(batches: &[RecordBatch]) -> Vec<String> {
    let mut rows = Vec::new();
    for batch in batches {
        let corporation = batch.column(0).as_string::<i32>();
        let numbers: Vec<_> = (1..4)
            .map(|i| batch.column(i).as_primitive::<Int64Type>())
            .collect();
        let exited = batch.column(4).as_primitive::<Int8Type>();
        for row in 0..batch.num_rows() {
            let mut fields = vec![format!(
                "{:?}",
                corporation.is_valid(row).then(|| corporation.value(row))
            )];
            for column in &numbers {
                fields.push(format!(
                    "{:?}",
                    column.is_valid(row).then(|| column.value(row))
                ));
            }
            fields.push(format!(
                "{:?}",
                exited.is_valid(row).then(|| exited.value(row))
            ));
            rows.push(fields.join(","));
        }
    }
    rows
}

async fn ingest_file(pipeline: &Pipeline, root: &Path, from: &str) -> u64 {
    let name = Path::new(from).file_name().unwrap().to_str().unwrap();
    ingest_copy(pipeline, root, from, name, &shared::steps::new_run_id())
        .await
        .rows_added
}

/// Copies the repository file `from` into the source location as `name`, and ingests.
async fn ingest_copy(
    pipeline: &Pipeline,
    root: &Path,
    from: &str,
    name: &str,
    run_id: &str,
) -> shared::steps::ingestion::IngestionOutcome {
    std::fs::copy(repo_path(from), root.join("source").join(name)).unwrap();
    ingest(pipeline, &IngestScope::All, run_id).await.unwrap()
}

async fn record(pipeline: &Pipeline) -> IngestionRecord {
    let (_, record) = pipeline
        .locations
        .compiled_data
        .get_json::<IngestionRecord>(names::INGESTION_RECORD, "ingestion record", None)
        .await
        .unwrap();
    record
}

/// The venv's Python when it has pyarrow; `None` (skip) locally, a panic under `CI=true`.
fn python_with_pyarrow() -> Option<PathBuf> {
    let venv = std::env::var("RISK_TEST_VENV").unwrap_or_else(|_| ".venv".into());
    let venv = repo_path(&venv);
    let python = venv.join("bin/python");
    let found = Command::new(&python)
        .args(["-c", "import pyarrow.dataset"])
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return Some(python);
    }
    let reason = format!(
        "{} cannot import pyarrow (scripts/test.sh installs it)",
        python.display()
    );
    if std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true")) {
        panic!("the independent reader is required in CI, but {reason}");
    }
    eprintln!("skipped: {reason}");
    None
}

/// pyarrow's view of the parts folder: every row as [`rows_of`] formats it (sorted, since an
/// engine promises no order), and each row's `ingested_month` partition value.
fn rows_read_by_pyarrow(python: &Path, parts: &Path) -> (Vec<String>, Vec<String>) {
    const SCRIPT: &str = r#"
import sys
import pyarrow.dataset as ds
table = ds.dataset(sys.argv[1], format="parquet", partitioning="hive").to_table()
def show(v):
    return "None" if v is None else ('Some("%s")' % v if isinstance(v, str) else "Some(%d)" % v)
columns = ["corporation", "lastmonth_activity", "lastyear_activity", "number_of_employees", "exited"]
data = [table.column(c).to_pylist() for c in columns]
months = table.column("ingested_month").to_pylist()
for i in range(table.num_rows):
    print(str(months[i]) + "\t" + ",".join(show(column[i]) for column in data))
"#;
    let output = Command::new(python)
        .args(["-c", SCRIPT])
        .arg(parts)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    let mut rows = Vec::new();
    let mut months = Vec::new();
    for line in text.lines() {
        let (month, row) = line.split_once('\t').unwrap();
        months.push(month.to_string());
        rows.push(row.to_string());
    }
    rows.sort();
    months.sort();
    months.dedup();
    (rows, months)
}

#[tokio::test]
async fn an_independent_reader_gets_the_same_rows_from_the_parts() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (_, pipeline) = local_pipeline(root);
    place_seed_source_files(root);
    ingest(&pipeline, &IngestScope::All, "run-first")
        .await
        .unwrap();
    assert!(ingest_file(&pipeline, root, "data/practicedata/dataset1.csv").await > 0);
    assert!(ingest_file(&pipeline, root, "data/practicedata/dataset2.csv").await > 0);
    // A file whose rows are all compiled already adds no part.
    let again = ingest_copy(
        &pipeline,
        root,
        "data/sourcedata/dataset3.csv",
        "again.csv",
        "run-again",
    )
    .await;
    assert_eq!(again.rows_added, 0);
    let file = &again.new_files[0];
    assert_eq!((file.rows_accepted, file.rows_duplicate), (11, 11));

    let record = record(&pipeline).await;
    let compiled = record.compiled.clone().unwrap();
    assert_eq!(
        compiled.parts.len(),
        3,
        "one part per ingestion that added rows"
    );
    let mut next_row = 0;
    for part in &compiled.parts {
        assert!(
            part.key.starts_with("parts/ingested_month="),
            "{}",
            part.key
        );
        assert_eq!(part.first_row, next_row);
        next_row += part.rows;
    }
    assert_eq!(next_row, compiled.rows);
    assert_eq!(compiled.object, compiled.parts[2].object, "the newest part");

    let (_, batches) = load_compiled_data(&pipeline, &pipeline.locations.compiled_data)
        .await
        .unwrap();
    let ours = rows_of(&batches);
    assert_eq!(ours.len() as u64, compiled.rows);
    // Compiled order: the first ingestion's rows come first.
    let first_part =
        std::fs::read(root.join("store/compiled").join(&compiled.parts[0].key)).unwrap();
    let first: Vec<RecordBatch> = read_parquet("part 0", first_part.into())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows_of(&first), ours[..compiled.parts[0].rows as usize]);

    let Some(python) = python_with_pyarrow() else {
        return;
    };
    let (theirs, months) = rows_read_by_pyarrow(&python, &root.join("store/compiled/parts"));
    let mut sorted = ours.clone();
    sorted.sort();
    assert_eq!(theirs, sorted);
    let mut expected_months: Vec<String> = compiled
        .parts
        .iter()
        .map(|p| {
            p.key
                .split('/')
                .nth(1)
                .unwrap()
                .trim_start_matches("ingested_month=")
                .into()
        })
        .collect();
    expected_months.dedup();
    assert_eq!(months, expected_months);
}

#[tokio::test]
async fn a_record_from_before_parts_is_read_deduplicated_against_and_adopted_as_part_zero() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (_, pipeline) = local_pipeline(root);
    let compiled = &pipeline.locations.compiled_data;
    place_seed_source_files(root);
    ingest(&pipeline, &IngestScope::All, "run-first")
        .await
        .unwrap();

    // Rewrite the store as the version before parts left it: one finaldata.parquet that the
    // record names, no manifest, no parts folder.
    let mut legacy = record(&pipeline).await;
    let data = legacy.compiled.clone().unwrap();
    let parts = fetch_parts(compiled, &data, 0).await.unwrap();
    let (bytes, rows) = export_as_one_file(&parts).unwrap();
    let written = compiled
        .put(names::COMPILED_DATA, Bytes::from(bytes), PutMode::Overwrite)
        .await
        .unwrap();
    std::fs::remove_dir_all(root.join("store/compiled/parts")).unwrap();
    let mut legacy_data = data.clone();
    legacy_data.parts.clear();
    legacy_data.object = ObjectRef::new(compiled, &written);
    legacy_data.rows = rows;
    legacy.compiled = Some(legacy_data);
    compiled
        .put_json(
            names::INGESTION_RECORD,
            "ingestion record",
            &legacy,
            PutMode::Overwrite,
        )
        .await
        .unwrap();
    let json =
        std::fs::read_to_string(root.join("store/compiled").join(names::INGESTION_RECORD)).unwrap();
    assert!(!json.contains("\"parts\""), "{json}");

    // It is read as it was.
    let (object, before) = load_compiled_data(&pipeline, compiled).await.unwrap();
    assert!(object.url.ends_with(names::COMPILED_DATA));
    let before = rows_of(&before);
    assert_eq!(before.len() as u64, rows);

    // Its rows are known to the de-duplication: the same file again adds nothing.
    let again = ingest_copy(
        &pipeline,
        root,
        "data/sourcedata/dataset4.csv",
        "dataset4-again.csv",
        "run-again",
    )
    .await;
    assert_eq!(again.rows_added, 0);
    assert!(record(&pipeline).await.compiled.unwrap().parts.is_empty());

    // New rows: the single file becomes part 0 under parts/, and the new rows follow it.
    let added = ingest_file(&pipeline, root, "data/practicedata/dataset1.csv").await;
    assert!(added > 0);
    let upgraded = record(&pipeline).await.compiled.unwrap();
    assert_eq!(upgraded.parts.len(), 2);
    assert_eq!(
        (upgraded.parts[0].first_row, upgraded.parts[0].rows),
        (0, rows)
    );
    assert!(upgraded.parts[0].key.starts_with("parts/ingested_month="));
    // The adopted part got its fingerprint index, so it is not decoded again.
    let index = index_of(root, &upgraded.parts[0]);
    assert_eq!(index.len() as u64, rows);
    assert_eq!(upgraded.parts[1].first_row, rows);
    assert_eq!(upgraded.rows, rows + added);
    let (_, after) = load_compiled_data(&pipeline, compiled).await.unwrap();
    let after = rows_of(&after);
    assert_eq!(after[..before.len()], before[..]);
    assert_eq!(after.len() as u64, rows + added);
}

#[test]
fn risk_export_compiled_writes_the_whole_table_as_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (_, pipeline) = local_pipeline(root);
    place_seed_source_files(root);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        ingest(&pipeline, &IngestScope::All, "run-first")
            .await
            .unwrap();
        ingest_file(&pipeline, root, "data/practicedata/dataset1.csv").await;
    });
    let (_, ours) = runtime
        .block_on(load_compiled_data(
            &pipeline,
            &pipeline.locations.compiled_data,
        ))
        .unwrap();
    // The locations of `local_pipeline`, relative to the directory `risk` runs in.
    let config_path = root.join("config.json");
    std::fs::write(
        &config_path,
        r#"{"source_data": "file://source", "compiled_data": "file://store/compiled",
            "test_data": "file://testdata", "models": "file://store/models",
            "production": "file://store/production", "reports": "file://store/reports"}"#,
    )
    .unwrap();
    let out = root.join("finaldata.parquet");
    let output = Command::new(env!("CARGO_BIN_EXE_risk"))
        .current_dir(root)
        .env("RISK_DEPENDENCY_CHECK", "off")
        .arg("--config")
        .arg(&config_path)
        .arg("export-compiled")
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(&format!("Wrote {} rows (2 parts)", rows_of(&ours).len())),
        "{stdout}"
    );
    let exported: Vec<RecordBatch> = read_parquet("export", std::fs::read(&out).unwrap().into())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows_of(&exported), rows_of(&ours));
}

/// The Hive type Athena reads an Arrow column of this type as (what template.yaml must say).
fn hive_type(data_type: &arrow::datatypes::DataType) -> &'static str {
    use arrow::datatypes::DataType;
    match data_type {
        DataType::Utf8 => "string",
        DataType::Int8 => "tinyint",
        DataType::Int64 => "bigint",
        // Unsigned 32-bit: bigint holds every value.
        DataType::UInt32 => "bigint",
        DataType::Float64 => "double",
        DataType::Boolean => "boolean",
        other => panic!("no Glue type chosen for {other}"),
    }
}

/// The columns (name, Hive type) of a Parquet file as our writer wrote it.
fn parquet_columns(path: &Path) -> Vec<(String, String)> {
    let bytes = Bytes::from(std::fs::read(path).unwrap());
    let builder =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes).unwrap();
    builder
        .schema()
        .fields()
        .iter()
        .map(|f| (f.name().clone(), hive_type(f.data_type()).to_string()))
        .collect()
}

/// The columns (name, type) of a Glue table of template.yaml.
fn glue_columns(table: &serde_norway::Value) -> Vec<(String, String)> {
    table["Properties"]["TableInput"]["StorageDescriptor"]["Columns"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["Name"].as_str().unwrap().to_string(),
                c["Type"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn the_glue_tables_declare_the_columns_and_types_the_pipeline_writes() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (_, pipeline) = local_pipeline(root);
    place_seed_source_files(root);
    let run = shared::steps::fullprocess::run_full_process(&pipeline, "run-glue")
        .await
        .unwrap();
    let compiled = record(&pipeline).await.compiled.unwrap();
    let part = root.join("store/compiled").join(&compiled.parts[0].key);
    let list = root.join(format!(
        "store/reports/{}/{}.parquet",
        shared::risklist::store::RUN_LISTS_PREFIX,
        run.run_id
    ));

    let text = std::fs::read_to_string(repo_path("template.yaml")).unwrap();
    let template: serde_norway::Value = serde_norway::from_str(&text).unwrap();
    let resources = &template["Resources"];
    assert_eq!(
        glue_columns(&resources["CompiledDataTable"]),
        parquet_columns(&part)
    );
    assert_eq!(
        glue_columns(&resources["RiskListsTable"]),
        parquet_columns(&list)
    );
    // The partition column is the folder name of every part.
    let table = &resources["CompiledDataTable"]["Properties"]["TableInput"];
    assert_eq!(
        table["PartitionKeys"][0]["Name"].as_str(),
        Some("ingested_month")
    );
    let month = compiled.parts[0].key.split('/').nth(1).unwrap();
    let month = month.strip_prefix("ingested_month=").unwrap();
    // In the projection's `yyyy-MM` format.
    let (year, number) = month.split_once('-').unwrap();
    assert!(year.len() == 4 && year.parse::<u16>().is_ok(), "{month}");
    assert!(
        number.len() == 2 && number.parse::<u8>().is_ok_and(|n| (1..=12).contains(&n)),
        "{month}"
    );
}

/// The sorted fingerprints in a part's index, read from the local store.
fn index_of(root: &Path, part: &shared::records::CompiledPart) -> Vec<u128> {
    let index = part.fingerprints.as_ref().expect("every part has an index");
    let bytes = std::fs::read(root.join("store/compiled").join(&index.key)).unwrap();
    shared::steps::compiled::decode_fingerprints(&bytes, part.rows).expect("16 bytes a row")
}

#[tokio::test]
async fn new_files_are_deduplicated_against_the_fingerprint_indexes_without_decoding_parts() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (_, pipeline) = local_pipeline(root);
    let compiled = &pipeline.locations.compiled_data;
    place_seed_source_files(root);
    ingest(&pipeline, &IngestScope::All, "run-first")
        .await
        .unwrap();
    let first = record(&pipeline).await.compiled.unwrap();
    let index = index_of(root, &first.parts[0]);
    assert_eq!(index.len() as u64, first.rows);
    assert!(index.windows(2).all(|w| w[0] < w[1]), "sorted, one per row");
    assert!(
        first.parts[0]
            .fingerprints
            .as_ref()
            .unwrap()
            .key
            .starts_with("fingerprints/")
    );

    // The seed's rows again: all duplicates, found through the index.
    let again = ingest_copy(
        &pipeline,
        root,
        "data/sourcedata/dataset3.csv",
        "again.csv",
        "run-again",
    )
    .await;
    assert_eq!(again.rows_added, 0);

    // Point part 0 at an index of the right size that holds none of its rows: the ingestion
    // trusts the index (it does not decode the part), so the same rows look new.
    let mut trusting = record(&pipeline).await;
    let data = trusting.compiled.as_mut().unwrap();
    let wrong = compiled
        .put(
            "fingerprints/wrong.fp128",
            Bytes::from(vec![0u8; 16 * data.rows as usize]),
            PutMode::CreateOnly,
        )
        .await
        .unwrap();
    let good_index = data.parts[0].fingerprints.clone();
    data.parts[0].fingerprints = Some(shared::records::FingerprintIndex {
        key: "fingerprints/wrong.fp128".into(),
        object: ObjectRef::new(compiled, &wrong),
    });
    let rewrite = |record: &IngestionRecord| {
        let record = record.clone();
        async move {
            compiled
                .put_json(
                    names::INGESTION_RECORD,
                    "ingestion record",
                    &record,
                    PutMode::Overwrite,
                )
                .await
                .unwrap();
        }
    };
    rewrite(&trusting).await;
    let fooled = ingest_copy(
        &pipeline,
        root,
        "data/sourcedata/dataset4.csv",
        "again4.csv",
        "run-fooled",
    )
    .await;
    assert_eq!(
        fooled.rows_added, 15,
        "dataset4's rows, not found in the wrong index"
    );

    // An index whose size does not match its part is not trusted: the part is read instead,
    // and the next part written also writes that part's index again.
    let mut damaged = record(&pipeline).await;
    let data = damaged.compiled.as_mut().unwrap();
    let short = compiled
        .put(
            "fingerprints/short.fp128",
            Bytes::from(vec![0u8; 16]),
            PutMode::CreateOnly,
        )
        .await
        .unwrap();
    data.parts[0].fingerprints = Some(shared::records::FingerprintIndex {
        key: "fingerprints/short.fp128".into(),
        object: ObjectRef::new(compiled, &short),
    });
    rewrite(&damaged).await;
    let careful = ingest_copy(
        &pipeline,
        root,
        "data/sourcedata/dataset3.csv",
        "again3.csv",
        "run-careful",
    )
    .await;
    assert_eq!(
        careful.rows_added, 0,
        "dataset3's rows found by reading part 0"
    );
    assert!(ingest_file(&pipeline, root, "data/practicedata/dataset1.csv").await > 0);
    let repaired = record(&pipeline).await.compiled.unwrap();
    assert_eq!(index_of(root, &repaired.parts[0]), index);
    assert_eq!(
        repaired.parts[0].fingerprints.as_ref().unwrap().key,
        good_index.unwrap().key
    );
}
