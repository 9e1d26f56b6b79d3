//! The list on the bundled seed data, checked against what is computed here independently: the
//! latest row of every corporation read from the seed CSV files (exact duplicates dropped, as
//! ingestion does), the deployed model's own predictions for those rows, and its coefficients.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;

use super::*;
use crate::data::csv::read_csv_file;
use crate::data::schema::COLUMNS;
use crate::steps::deployment::deployed_model;
use crate::steps::fullprocess::run_full_process;
use crate::store::PutMode;
use crate::testing::{local_pipeline, place_seed_source_files, repo_path};

/// The newest row of every corporation in `files` (in ingestion order), exact duplicates of an
/// earlier row skipped: the rows as CSV text, keyed by corporation.
fn expected_latest(files: &[&str]) -> HashMap<String, String> {
    let mut seen = HashSet::new();
    let mut latest = HashMap::new();
    for file in files {
        let text = std::fs::read_to_string(repo_path(file)).unwrap();
        for line in text.lines().skip(1).filter(|l| !l.trim().is_empty()) {
            if !seen.insert(line.to_string()) {
                continue;
            }
            let corporation = line.split(',').next().unwrap().to_string();
            latest.insert(corporation, line.to_string());
        }
    }
    latest
}

/// Checks `list` against the seed files it was built from and the deployed model.
fn check_against_seed(list: &RiskList, model: &crate::model::TrainedModel, files: &[&str]) {
    let expected = expected_latest(files);
    // One entry per distinct corporation.
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
    assert_eq!(list.meta.clients as usize, expected.len());

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
                .find(|f| f.name == driver.feature)
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
    assert_eq!(
        list.meta.exited as usize,
        exited.iter().filter(|e| **e).count()
    );
}

fn expected_rows_exited(order: &[String], expected: &HashMap<String, String>) -> Vec<bool> {
    order
        .iter()
        .map(|c| expected[c].rsplit(',').next() == Some("1"))
        .collect()
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
    check_against_seed(&list, &model, &seed);

    // The CSV holds the same rows; the run's own copy is kept.
    let (_, csv) = reports.get(store::LATEST_CSV, None).await.unwrap();
    let csv = String::from_utf8(csv.to_vec()).unwrap();
    assert_eq!(csv.lines().count(), list.entries.len() + 1);
    assert!(csv.starts_with("rank,corporation,status,probability,band,"));
    let run_copy = format!("{}/{}.parquet", store::RUN_LISTS_PREFIX, first.run_id);
    assert!(reports.head(&run_copy, None).await.is_ok());

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
    check_against_seed(&newer, &model, &all);
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
    let (record, written) = write_risk_list(&pipeline, "run-on-demand", &bands)
        .await
        .unwrap();
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
fn the_two_halves_of_a_file_give_the_same_latest_rows_as_one_pass() {
    use std::sync::Arc;

    use arrow::array::{Int8Array, Int64Array, RecordBatch, StringArray};
    use parquet::arrow::ArrowWriter;
    use parquet::file::properties::WriterProperties;

    use crate::data::parquet::read_parquet;
    use crate::data::schema::client_schema;

    // Five clients over seven "months", some missing in later months, one leaving, one row
    // without a corporation code; row groups of four rows, so the split falls mid-history.
    let mut names = Vec::new();
    let mut values = Vec::new();
    let mut exited = Vec::new();
    for month in 0..7i64 {
        for client in 0..5i64 {
            if client == 4 && month > 2 {
                continue;
            }
            names.push(if client == 3 && month == 5 {
                None
            } else {
                Some(format!("c{client}"))
            });
            values.push(Some(month * 10 + client));
            exited.push(Some(i8::from(client == 2 && month == 6)));
        }
    }
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
    let mut writer = ArrowWriter::try_new(&mut file, client_schema(), Some(properties)).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    let file = Bytes::from(file);

    let one_pass = latest_rows(read_parquet("t", file.clone()).unwrap()).unwrap();
    let halves = latest_rows_of_parquet("t", file).unwrap();
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
    assert_eq!(by_name(&halves), by_name(&one_pass));
    assert_eq!(by_name(&halves).len(), 5);
    assert_eq!(by_name(&halves)["c4"].0[0], Some(24));
    assert_eq!(by_name(&halves)["c3"].0[0], Some(63));
    assert_eq!(by_name(&halves)["c2"].1, Some(1));
    assert_eq!(halves.rows_read, one_pass.rows_read);
    assert_eq!(halves.rows_without_corporation, 1);
}
