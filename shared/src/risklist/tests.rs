//! The list on the bundled seed data, checked against what is computed here independently: the
//! latest row of every corporation read from the seed CSV files (exact duplicates dropped, as
//! ingestion does), the deployed model's own predictions for those rows, and its coefficients;
//! and on generated data, the incremental build against the full build of the same data.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;

use super::*;
use crate::data::csv::read_csv_file;
use crate::data::schema::COLUMNS;
use crate::steps::compiled::fetched_part;
use crate::steps::deployment::deployed_model;
use crate::steps::fullprocess::run_full_process;
use crate::store::PutMode;
use crate::testing::{local_pipeline, place_seed_source_files, repo_path};

/// The newest row of every corporation in `files` (in ingestion order), exact duplicates of an
/// earlier row skipped: the rows as CSV text with the index of the file they are in, keyed by
/// corporation.
fn expected_latest(files: &[&str]) -> HashMap<String, (String, usize)> {
    let mut seen = HashSet::new();
    let mut latest = HashMap::new();
    for (index, file) in files.iter().enumerate() {
        let text = std::fs::read_to_string(repo_path(file)).unwrap();
        for line in text.lines().skip(1).filter(|l| !l.trim().is_empty()) {
            if !seen.insert(line.to_string()) {
                continue;
            }
            let corporation = line.split(',').next().unwrap().to_string();
            latest.insert(corporation, (line.to_string(), index));
        }
    }
    latest
}

fn is_exit(row: &str) -> bool {
    row.rsplit(',').next() == Some("1")
}

/// Checks `list` against the seed files it was built from and the deployed model: it names
/// every client still a client and every client that left in `files[new_from..]` (the files
/// the list is new for), once each, and counts the clients that left before — plus, in an
/// incremental list, the clients `counted_before` (by the previous list) that came back in the
/// new files, which it cannot tell from new clients. Returns how many clients are listed as
/// exited and which are counted as exited earlier.
fn check_against_seed(
    list: &RiskList,
    model: &crate::model::TrainedModel,
    files: &[&str],
    new_from: usize,
    counted_before: &HashSet<String>,
) -> (usize, HashSet<String>) {
    let all = expected_latest(files);
    let (expected, earlier): (HashMap<_, _>, HashMap<_, _>) = all
        .iter()
        .partition(|(_, (row, file))| !is_exit(row) || *file >= new_from);
    let expected: HashMap<String, String> = expected
        .into_iter()
        .map(|(name, (row, _))| (name.clone(), row.clone()))
        .collect();
    let listed: HashSet<&str> = list
        .entries
        .iter()
        .map(|e| e.corporation.as_str())
        .collect();
    assert_eq!(
        listed.len(),
        list.entries.len(),
        "a corporation is listed twice"
    );
    let wanted: HashSet<&str> = expected.keys().map(String::as_str).collect();
    assert_eq!(listed, wanted);
    let returned = counted_before
        .iter()
        .filter(|name| all[*name].1 >= new_from)
        .count();
    assert_eq!(list.meta.exited_earlier as usize, earlier.len() + returned);
    // Listed and counted: every distinct corporation (the returned ones twice).
    assert_eq!(list.meta.clients as usize, all.len() + returned);
    assert_eq!(list.entries.len() + earlier.len(), all.len());

    // The deployed model's predictions for exactly those rows.
    let mut csv = COLUMNS.join(",");
    let mut order = Vec::new();
    for (corporation, row) in &expected {
        csv.push('\n');
        csv.push_str(row);
        order.push(corporation.clone());
    }
    let contents = read_csv_file("expected.csv", csv.as_bytes()).unwrap();
    assert!(contents.rejected.is_empty());
    let predicted = model.predict(&contents.accepted).unwrap().probabilities;
    let exited: Vec<bool> = expected_rows_exited(&order, &expected);

    let mut previous_probability = f64::INFINITY;
    let mut ranked = 0;
    for (position, entry) in list.entries.iter().enumerate() {
        let index = order.iter().position(|c| *c == entry.corporation).unwrap();
        if exited[index] {
            assert_eq!(entry.status, ClientStatus::Exited, "{}", entry.corporation);
            assert_eq!(
                (entry.rank, entry.probability, entry.band),
                (None, None, None)
            );
            assert!(entry.drivers.is_empty());
            continue;
        }
        ranked += 1;
        assert_eq!(position + 1, ranked, "ranked clients come first");
        assert_eq!(entry.status, ClientStatus::Active);
        assert_eq!(entry.rank, Some(ranked as u32));
        let probability = entry.probability.unwrap();
        assert_eq!(probability, predicted[index], "{}", entry.corporation);
        assert!(
            probability <= previous_probability,
            "not sorted by probability"
        );
        previous_probability = probability;

        // Bands: high from the model's threshold, watch for the rest of the top decile.
        let band = entry.band.unwrap();
        let expected_band = if probability >= model.threshold() {
            Band::High
        } else if ranked <= list.meta.watch_last_rank as usize {
            Band::Watch
        } else {
            Band::Low
        };
        assert_eq!(band, expected_band, "{}", entry.corporation);

        // Drivers: one per feature, contribution = coefficient × standardised value, signs
        // agreeing with the coefficients, largest first, adding up to the log-odds.
        assert_eq!(entry.drivers.len(), model.features.len());
        let mut log_odds = model.intercept_standardized;
        for pair in entry.drivers.windows(2) {
            assert!(pair[0].contribution.abs() >= pair[1].contribution.abs());
        }
        for driver in &entry.drivers {
            let feature = model
                .features
                .iter()
                .find(|f| *f.name == *driver.feature)
                .unwrap();
            let value = driver.value.unwrap() as f64;
            let z = (value - feature.mean) / feature.std;
            assert!((driver.standardized - z).abs() < 1e-12);
            let coefficient = feature.coefficient_standardized;
            assert!((driver.contribution - coefficient * z).abs() < 1e-12);
            if z != 0.0 && coefficient != 0.0 {
                assert_eq!(
                    driver.contribution.signum(),
                    coefficient.signum() * z.signum(),
                    "{} {}",
                    entry.corporation,
                    driver.feature
                );
                let effect = if driver.contribution > 0.0 {
                    "raises the risk"
                } else {
                    "lowers the risk"
                };
                assert!(driver.phrase.ends_with(effect), "{}", driver.phrase);
            }
            log_odds += driver.contribution;
        }
        assert!((sigmoid(log_odds) - probability).abs() < 1e-12);
    }
    assert_eq!(list.meta.ranked as usize, ranked);
    let listed_exits = exited.iter().filter(|e| **e).count();
    assert_eq!(list.meta.exited as usize, listed_exits);
    (
        listed_exits,
        earlier.keys().map(|name| name.to_string()).collect(),
    )
}

fn expected_rows_exited(order: &[String], expected: &HashMap<String, String>) -> Vec<bool> {
    order.iter().map(|c| is_exit(&expected[c])).collect()
}

use crate::model::sigmoid;

#[tokio::test]
async fn every_run_that_adds_rows_writes_the_list_of_the_latest_rows_explained() {
    let dir = tempfile::tempdir().unwrap();
    let (_, pipeline) = local_pipeline(dir.path());
    place_seed_source_files(dir.path());
    let first = run_full_process(&pipeline, "run-20260101T000000000Z-0001")
        .await
        .unwrap();
    let written = first
        .risk_list
        .clone()
        .expect("the bootstrap writes a list");
    assert!(first.wrote.contains(&written.latest_parquet));
    assert!(first.steps.iter().any(|s| s.step == "risk_list"));
    let reports = &pipeline.locations.reports;
    let list = load_latest(reports).await.unwrap().unwrap();
    let (deployment, model) = deployed_model(&pipeline).await.unwrap();
    assert_eq!(list.meta.model_version, deployment.model.version_id);
    assert_eq!(written.model_version, deployment.model.version_id);
    assert_eq!(list.meta.threshold, model.threshold());
    assert_eq!(
        Some(&list.meta.data_version),
        first
            .wrote
            .iter()
            .find(|o| o.url.contains("/parts/ingested_month="))
            .map(|o| &o.version_id)
    );
    assert_eq!(list.meta.previous_run_id, None);
    assert!(list.entries.iter().all(|e| !e.newly_high));
    let seed = [
        "data/sourcedata/dataset3.csv",
        "data/sourcedata/dataset4.csv",
    ];
    // The first list: exits named from the newest ingested file on.
    // (The seed has clients that left in each file: 7 are named, 6 counted.)
    let (named, counted) = check_against_seed(&list, &model, &seed, 1, &HashSet::new());
    assert_eq!((named, counted.len()), (7, 6));
    assert!(!list.meta.incremental);

    // The CSV holds the same rows; the run's own Parquet copy is kept.
    let (_, csv) = reports.get(store::LATEST_CSV, None).await.unwrap();
    let csv = String::from_utf8(csv.to_vec()).unwrap();
    assert_eq!(csv.lines().count(), list.entries.len() + 1);
    assert!(csv.starts_with("rank,corporation,status,probability,band,"));
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let number = |text: &str| (!text.is_empty()).then(|| text.parse::<f64>().unwrap());
    for (row, entry) in reader.records().zip(&list.entries) {
        let row = row.unwrap();
        assert_eq!(number(&row[0]), entry.rank.map(f64::from));
        assert_eq!(&row[1], entry.corporation);
        assert_eq!(&row[2], entry.status.name());
        // Numbers rounded to their decimals.
        let close = |text: &str, value: Option<f64>, decimals: i32| match (number(text), value) {
            (Some(read), Some(value)) => {
                (read - value).abs() <= 0.5 * 10f64.powi(-decimals) + 1e-12
            }
            (read, value) => read.is_none() && value.is_none(),
        };
        assert!(close(&row[3], entry.probability, 6), "{}", &row[3]);
        assert!(close(&row[5], entry.previous_probability, 6));
        assert!(close(&row[6], entry.probability_change, 6));
        let phrases: Vec<&str> = entry.drivers.iter().map(|d| &*d.phrase).collect();
        assert_eq!(&row[8], phrases.join("; "));
        for (index, feature) in list.meta.features.iter().enumerate() {
            let driver = entry.driver(&feature.name);
            let at = 9 + 3 * index;
            assert_eq!(
                number(&row[at]),
                driver.and_then(|d| d.value).map(|v| v as f64)
            );
            assert!(close(&row[at + 1], driver.map(|d| d.standardized), 4));
            assert!(close(&row[at + 2], driver.map(|d| d.contribution), 4));
        }
    }
    let run_copy = format!("{}/{}.parquet", store::RUN_LISTS_PREFIX, first.run_id);
    let (_, run_bytes) = reports.get(&run_copy, None).await.unwrap();
    let (_, latest_bytes) = reports.get(store::LATEST_PARQUET, None).await.unwrap();
    assert_eq!(
        run_bytes, latest_bytes,
        "latest.parquet is a copy of the run's list"
    );

    // A run that adds rows (the practice files) writes a new list compared with the first.
    for name in ["dataset1.csv", "dataset2.csv"] {
        let body = std::fs::read(repo_path("data/practicedata").join(name)).unwrap();
        pipeline
            .locations
            .source_data
            .put(name, Bytes::from(body), PutMode::Overwrite)
            .await
            .unwrap();
    }
    let second = run_full_process(&pipeline, "run-20260101T000000000Z-0002")
        .await
        .unwrap();
    assert!(second.rows_added > 0);
    assert!(second.risk_list.is_some());
    let newer = load_latest(reports).await.unwrap().unwrap();
    assert_eq!(
        newer.meta.previous_run_id.as_deref(),
        Some(first.run_id.as_str())
    );
    let (_, model) = deployed_model(&pipeline).await.unwrap();
    let all = [
        "data/sourcedata/dataset3.csv",
        "data/sourcedata/dataset4.csv",
        "data/practicedata/dataset1.csv",
        "data/practicedata/dataset2.csv",
    ];
    // Built from the first list and the rows added since; exits named from those rows.
    assert!(newer.meta.incremental);
    // Every client that left has a newer row in the practice files: 15 named, none left
    // earlier, but the 6 the first list counted came back, and stay counted.
    let (named, earlier) = check_against_seed(&newer, &model, &all, 2, &counted);
    assert_eq!(
        (named, earlier.len(), newer.meta.exited_earlier),
        (15, 0, 6)
    );
    for entry in &newer.entries {
        let before = list.client(&entry.corporation);
        let before_probability = before.and_then(|e| e.probability);
        assert_eq!(entry.previous_probability, before_probability);
        if let (Some(now), Some(then)) = (entry.probability, before_probability) {
            assert_eq!(entry.probability_change, Some(now - then));
        }
        let was_high = before.and_then(|e| e.band) == Some(Band::High);
        assert_eq!(
            entry.newly_high,
            entry.band == Some(Band::High) && !was_high
        );
    }

    // A client's history: its place in the earlier list.
    let corporation = &list.ranked().next().unwrap().corporation;
    let history = client_history(reports, corporation, Some(&second.run_id))
        .await
        .unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].run_id, first.run_id);
    assert_eq!(history[0].rank, Some(1));

    // A run with nothing new writes nothing, so no list either.
    let idle = run_full_process(&pipeline, "run-20260101T000000000Z-0003")
        .await
        .unwrap();
    assert!(idle.risk_list.is_none());
}

#[tokio::test]
async fn the_parquet_file_reads_back_as_the_list_written() {
    let dir = tempfile::tempdir().unwrap();
    let (_, pipeline) = local_pipeline(dir.path());
    place_seed_source_files(dir.path());
    run_full_process(&pipeline, "run-20260101T000000000Z-0001")
        .await
        .unwrap();
    let bands = RiskBands::new(Some(0.3), 0.5).unwrap();
    let (record, built) = write_risk_list(&pipeline, "run-on-demand", &bands)
        .await
        .unwrap();
    // What was encoded from the columns reads back as the entries the columns make.
    let written = built.to_list();
    assert_eq!(built.top_ranked(3), written.entries[..3]);
    let read = load_latest(&pipeline.locations.reports)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read, written);
    assert_eq!(record.clients, written.meta.clients);
    assert_eq!(written.meta.high_probability, 0.3);
    assert_eq!(
        written.meta.watch_last_rank as u64,
        written.meta.ranked.div_ceil(2)
    );
    assert_eq!(
        written.meta.high + written.meta.watch + written.meta.low,
        written.meta.ranked
    );
    // Compared with the bootstrap's list: same model and data, so nothing moved.
    assert!(written.ranked().all(|e| e.probability_change == Some(0.0)));
}

#[test]
fn bands_are_validated_and_read_from_the_environment() {
    let bands = RiskBands::from_lookup(|_| None).unwrap();
    assert_eq!(bands, RiskBands::default());
    assert_eq!(bands.high_probability(0.42), 0.42);
    assert_eq!(bands.watch_ranks(95), 10);
    assert_eq!(bands.watch_ranks(0), 0);
    let fixed = RiskBands::from_lookup(|name| match name {
        HIGH_PROBABILITY_ENV => Some("0.7".into()),
        _ => Some("0.25".into()),
    })
    .unwrap();
    assert_eq!(fixed.high_probability(0.42), 0.7);
    assert_eq!(fixed.watch_ranks(10), 3);
    for (high, share) in [
        (Some(1.0), 0.1),
        (Some(0.0), 0.1),
        (None, -0.1),
        (None, 1.5),
    ] {
        assert!(RiskBands::new(high, share).is_err(), "{high:?} {share}");
    }
    let error =
        RiskBands::from_lookup(|name| (name == WATCH_SHARE_ENV).then(|| "ten".into())).unwrap_err();
    assert!(error.to_string().contains(WATCH_SHARE_ENV), "{error}");
}

#[test]
fn the_newest_first_pass_keeps_each_clients_newest_row_and_counts_old_exits() {
    use std::sync::Arc;

    use arrow::array::{Int8Array, Int64Array, RecordBatch, StringArray};
    use parquet::arrow::ArrowWriter;
    use parquet::file::properties::WriterProperties;

    use crate::data::parquet::read_parquet;
    use crate::data::schema::client_schema;
    use compiled_rows::CompiledRows;

    // Six clients over seven "months" (five rows a month but for c4 and c5), some missing in
    // later months, c2 leaving in the last month, c4 leaving in month 2, c5 appearing from
    // month 5 on, one row without a corporation code; row groups of four rows, so groups end
    // mid-month.
    let mut names = Vec::new();
    let mut values = Vec::new();
    let mut exited = Vec::new();
    for month in 0..7i64 {
        for client in 0..6i64 {
            if (client == 4 && month > 2) || (client == 5 && month < 5) {
                continue;
            }
            names.push(if client == 3 && month == 5 {
                None
            } else {
                Some(format!("c{client}"))
            });
            values.push(Some(month * 10 + client));
            exited.push(Some(i8::from(
                (client == 2 && month == 6) || (client == 4 && month == 2),
            )));
        }
    }
    let total = names.len() as u64;
    let batch = RecordBatch::try_new(
        client_schema(),
        vec![
            Arc::new(StringArray::from(names)),
            Arc::new(Int64Array::from(values.clone())),
            Arc::new(Int64Array::from(values.clone())),
            Arc::new(Int64Array::from(values)),
            Arc::new(Int8Array::from(exited)),
        ],
    )
    .unwrap();
    let properties = WriterProperties::builder()
        .set_max_row_group_row_count(Some(4))
        .build();
    let mut file = Vec::new();
    let mut writer =
        ArrowWriter::try_new(&mut file, client_schema(), Some(properties.clone())).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    let file = Bytes::from(file);
    let compiled = CompiledRows::of_parts(&[fetched_part("t", 0, total, file.clone())], 0).unwrap();
    assert_eq!(compiled.row_count(), total);

    let by_name = |rows: &LatestRows| -> HashMap<String, ([Option<i64>; 3], Option<i8>)> {
        (0..rows.corporations.len())
            .map(|i| {
                (
                    rows.corporations[i].to_string(),
                    (rows.features[i], rows.exited[i]),
                )
            })
            .collect()
    };
    // With every row recent, the same rows as the one forward pass of the whole file.
    let forward = latest_rows(read_parquet("t", file.clone()).unwrap()).unwrap();
    let all = latest_rows_newest_first(&compiled, 0).unwrap();
    assert_eq!(by_name(&all), by_name(&forward));
    assert_eq!(by_name(&all).len(), 6);
    assert_eq!(by_name(&all)["c4"], ([Some(24); 3], Some(1)));
    assert_eq!(by_name(&all)["c3"].0[0], Some(63));
    assert_eq!(by_name(&all)["c2"].1, Some(1));
    assert_eq!((all.rows_read, all.exited_earlier), (total, 0));
    assert_eq!(all.rows_without_corporation, 1);

    // Exits before the last two months (c4's) are counted, not kept; c2's is kept.
    let recent_from = total - 12;
    let recent = latest_rows_newest_first(&compiled, recent_from).unwrap();
    let mut expected = by_name(&forward);
    expected.remove("c4");
    assert_eq!(by_name(&recent), expected);
    assert_eq!(recent.exited_earlier, 1);

    // The rows from a position on: only those, in compiled order, whichever group they start in.
    for first in [0, 1, 4, 5, total - 1, total] {
        let rows: Vec<RecordBatch> = compiled.rows_from(first).unwrap();
        let sliced = arrow::compute::concat_batches(&client_schema(), &rows).unwrap();
        let offset = usize::try_from(first).unwrap();
        assert_eq!(
            sliced,
            batch.slice(offset, batch.num_rows() - offset),
            "{first}"
        );
    }

    // The same rows in three parts (as three ingestions write them, groups ending mid-part):
    // the same reads.
    let mut parts = Vec::new();
    let mut first_row = 0;
    for rows in [7, 13, batch.num_rows() - 20] {
        let mut part = Vec::new();
        let mut writer =
            ArrowWriter::try_new(&mut part, client_schema(), Some(properties.clone())).unwrap();
        writer.write(&batch.slice(first_row, rows)).unwrap();
        writer.close().unwrap();
        let key = format!("parts/ingested_month=2026-12/part-{first_row}.parquet");
        parts.push(fetched_part(
            &key,
            first_row as u64,
            rows as u64,
            Bytes::from(part),
        ));
        first_row += rows;
    }
    let in_parts = CompiledRows::of_parts(&parts, 0).unwrap();
    assert_eq!(in_parts.row_count(), total);
    let all_parts = latest_rows_newest_first(&in_parts, 0).unwrap();
    assert_eq!(by_name(&all_parts), by_name(&all));
    let recent_parts = latest_rows_newest_first(&in_parts, recent_from).unwrap();
    assert_eq!(by_name(&recent_parts), by_name(&recent));
    assert_eq!(recent_parts.exited_earlier, 1);
    // Only the newest parts (what an incremental build fetches): the rows from their start on,
    // and no full pass.
    let newest = CompiledRows::of_parts(&parts[1..], 9).unwrap();
    assert_eq!(newest.row_count(), total);
    let tail = arrow::compute::concat_batches(&client_schema(), &newest.rows_from(9).unwrap());
    assert_eq!(tail.unwrap(), batch.slice(9, batch.num_rows() - 9));
    assert!(newest.rows_from(6).is_err());
    assert!(latest_rows_newest_first(&newest, 0).is_err());
    // No part holds rows from the end on, and none is needed: the count is still the total.
    let none = CompiledRows::of_parts(&[], total).unwrap();
    assert_eq!(none.row_count(), total);
    assert!(none.rows_from(total).unwrap().is_empty());
    for first in 0..=total {
        let rows: Vec<RecordBatch> = in_parts.rows_from(first).unwrap();
        let sliced = arrow::compute::concat_batches(&client_schema(), &rows).unwrap();
        let offset = usize::try_from(first).unwrap();
        assert_eq!(
            sliced,
            batch.slice(offset, batch.num_rows() - offset),
            "{first}"
        );
    }
}

/// `built` and `full` are the same list: same entries (ranks, probabilities, bands, drivers,
/// changes) and the same counts.
fn assert_same_list(built: &RiskList, full: &RiskList) {
    assert_eq!(built.entries.len(), full.entries.len());
    for (a, b) in built.entries.iter().zip(&full.entries) {
        assert_eq!(a, b);
    }
    let mut meta = built.meta.clone();
    meta.generated_at = full.meta.generated_at;
    meta.incremental = full.meta.incremental;
    assert_eq!(meta, full.meta);
}

#[tokio::test]
async fn an_incremental_list_is_the_full_build_of_the_same_data() {
    use crate::steps::training::compiled_data_with_record;
    use crate::synth::{SynthSpec, TEST_FILE};
    use compiled_rows::CompiledRows;

    let dir = tempfile::tempdir().unwrap();
    let (_, pipeline) = local_pipeline(dir.path());
    let spec = SynthSpec {
        clients: 300,
        months: 6,
        seed: 13,
        test_rows: 300,
        ..SynthSpec::default()
    };
    let (months, test) = crate::synth::generate_in_memory(&spec).unwrap();
    let locations = &pipeline.locations;
    locations
        .test_data
        .put(TEST_FILE, Bytes::from(test), PutMode::Overwrite)
        .await
        .unwrap();
    let add_month = |index: usize| {
        let (name, body) = months[index].clone();
        async move {
            locations
                .source_data
                .put(&name, Bytes::from(body), PutMode::Overwrite)
                .await
                .unwrap();
        }
    };
    for month in 0..3 {
        add_month(month).await;
    }
    run_full_process(&pipeline, "run-20260101T000000000Z-0001")
        .await
        .unwrap();
    for month in 3..6 {
        // What the next list reads of this one: the columns it needs, the same as the whole list.
        let previous = load_previous(&locations.reports).await.unwrap().unwrap();
        let whole = load_latest(&locations.reports).await.unwrap().unwrap();
        assert_eq!(previous, PreviousList::from(&whole));
        add_month(month).await;
        run_full_process(&pipeline, &format!("run-20260101T000000000Z-000{month}"))
            .await
            .unwrap();
        let list = load_latest(&locations.reports).await.unwrap().unwrap();
        assert!(list.meta.incremental, "month {month}");
        assert!(list.meta.exited > 0 && list.meta.exited_earlier > 0);

        // The full build of the same data, exits named from the rows the previous list covered.
        let (record, _, parts) = compiled_data_with_record(&pipeline, &locations.compiled_data)
            .await
            .unwrap();
        let compiled = CompiledRows::of_parts(&parts, 0).unwrap();
        let covered = previous.meta.lineage.as_ref().unwrap().compiled_rows;
        assert_eq!(
            recent_exits_from(Some(&previous), &record, compiled.row_count()),
            covered
        );
        let full_rows = latest_rows_newest_first(&compiled, covered).unwrap();
        let (_, model) = deployed_model(&pipeline).await.unwrap();
        let provenance = |list: &RiskList| Provenance {
            run_id: list.meta.run_id.clone(),
            model_version: list.meta.model_version.clone(),
            model_deployed_by: list.meta.model_deployed_by.clone(),
            data_version: list.meta.data_version.clone(),
            lineage: list.meta.lineage.clone(),
        };
        let bands = pipeline.risk_bands;
        let full = build_risk_list(
            &model,
            &full_rows,
            Some(&previous),
            &bands,
            provenance(&list),
        )
        .unwrap();
        assert!(!full.meta.incremental);
        assert_same_list(&list, &full);

        // Under another model than the previous list was written with: the same again.
        let mut other = model.clone();
        for (index, feature) in other.features.iter_mut().enumerate() {
            feature.coefficient_standardized *= if index == 0 { -0.5 } else { 1.5 };
        }
        other.intercept_standardized += 0.25;
        let rows = rows_for_new_list(&compiled, &record, Some(&previous), &other).unwrap();
        assert!(rows.incremental);
        let incremental =
            build_risk_list(&other, &rows, Some(&previous), &bands, provenance(&list)).unwrap();
        let full = build_risk_list(
            &other,
            &full_rows,
            Some(&previous),
            &bands,
            provenance(&list),
        )
        .unwrap();
        assert_ne!(
            incremental.entries, list.entries,
            "the other model scores differently"
        );
        assert_same_list(&incremental, &full);

        // A previous list without a feature the model uses cannot be a base: a full pass.
        let mut partial = previous.clone();
        partial.meta.features.pop();
        let rows = rows_for_new_list(&compiled, &record, Some(&partial), &model).unwrap();
        assert!(!rows.incremental);
        assert_eq!(rows.corporations.len(), full_rows.corporations.len());

        // A list written with no row added (after a deployment alone) is new for the same rows:
        // it names the same exits, incrementally and by a full pass.
        let base = PreviousList::from(&list);
        let from = recent_exits_from(Some(&base), &record, compiled.row_count());
        assert_eq!(from, covered);
        let again = rows_for_new_list(&compiled, &record, Some(&base), &other).unwrap();
        assert!(again.incremental);
        let full_again = latest_rows_newest_first(&compiled, from).unwrap();
        let incremental =
            build_risk_list(&other, &again, Some(&base), &bands, provenance(&list)).unwrap();
        let full =
            build_risk_list(&other, &full_again, Some(&base), &bands, provenance(&list)).unwrap();
        assert_eq!(incremental.meta.exited, list.meta.exited);
        assert_same_list(&incremental, &full);
    }

    // Data that does not extend the list's lineage (a file entry changed, entries gone, rows
    // gone) is read by a full pass, exits named from the newest file on.
    let list = load_latest(&locations.reports).await.unwrap().unwrap();
    let (record, _, parts) = compiled_data_with_record(&pipeline, &locations.compiled_data)
        .await
        .unwrap();
    let compiled = CompiledRows::of_parts(&parts, 0).unwrap();
    let total = compiled.row_count();
    let lineage = list.meta.lineage.clone().unwrap();
    assert!(lineage.is_extended_by(&record, total));
    let mut changed = record.clone();
    changed.files.last_mut().unwrap().etag.push('x');
    let mut shortened = record.clone();
    shortened.files.pop();
    for (other, rows) in [(&changed, total), (&shortened, total), (&record, total - 1)] {
        assert!(!lineage.is_extended_by(other, rows));
    }
    let (_, model) = deployed_model(&pipeline).await.unwrap();
    let base = PreviousList::from(&list);
    let rows = rows_for_new_list(&compiled, &changed, Some(&base), &model).unwrap();
    assert!(!rows.incremental);
    let newest = changed.files.last().unwrap();
    assert_eq!(
        rows.recent_from,
        total - (newest.rows_accepted - newest.rows_duplicate)
    );
}
