//! Building a list: each client's newest row (ingestion appends a run's rows after every older
//! row, so the last occurrence is the newest), taken either incrementally — the previous list's
//! rows overlaid with the rows added since it — or by a full pass over the compiled data newest
//! first ([`rows_for_new_list`] picks); then the deployed model predicts those rows — through [`TrainedModel::predict`], so the list's
//! probabilities are the model's predictions — and each feature's contribution is computed
//! beside it.

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::sync::Arc;

use arrow::array::{Array, AsArray, Int8Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{Int8Type, Int64Type};
use chrono::Utc;

use super::compiled_rows::CompiledRows;
use super::drivers::Phrases;
use super::{
    Band, ClientStatus, DataLineage, Driver, FeatureScale, RiskBands, RiskEntry, RiskList,
    RiskListError, RiskListMeta, joined,
};
use crate::data::DataError;
use crate::data::schema::{COLUMNS, FEATURES, client_schema};
use crate::model::TrainedModel;
use crate::records::{FileOutcome, IngestionRecord};

/// The newest row of each client a list names (in no particular order), and the counts of the
/// rows and clients it does not name.
#[derive(Debug, Default)]
pub struct LatestRows {
    pub corporations: Vec<Box<str>>,
    /// Raw feature values in [`FEATURES`] order.
    pub features: Vec<[Option<i64>; 3]>,
    pub exited: Vec<Option<i8>>,
    pub rows_read: u64,
    pub rows_without_corporation: u64,
    /// Clients whose newest row is an exit older than the list's recent rows: counted only.
    pub exited_earlier: u64,
    /// Built from the previous list and the rows added since (not by a full pass).
    pub incremental: bool,
    /// The first row position of the data the rows are new for: exits from it on are kept.
    pub recent_from: u64,
}

impl LatestRows {
    /// The rows as one batch of the client schema (what the model predicts on).
    fn to_batch(&self) -> Result<RecordBatch, RiskListError> {
        let corporations: StringArray = self.corporations.iter().map(|c| Some(&**c)).collect();
        let mut columns: Vec<Arc<dyn Array>> = vec![Arc::new(corporations)];
        for index in 0..FEATURES.len() {
            let values: Int64Array = self.features.iter().map(|f| f[index]).collect();
            columns.push(Arc::new(values));
        }
        let exited: Int8Array = self.exited.iter().copied().collect();
        columns.push(Arc::new(exited));
        RecordBatch::try_new(client_schema(), columns).map_err(|e| RiskListError::Encode {
            format: "Arrow",
            detail: e.to_string(),
        })
    }
}

/// What a new list needs of the list before it: its metadata and, per client, the code, status,
/// probability, band and raw values of [`FEATURES`] (`None` where the list has no such column).
/// Read without the drivers' text and contributions ([`super::store::load_previous`]).
#[derive(Debug, Clone, PartialEq)]
pub struct PreviousList {
    pub meta: RiskListMeta,
    pub clients: Vec<PreviousClient>,
}

/// One client of a [`PreviousList`].
#[derive(Debug, Clone, PartialEq)]
pub struct PreviousClient {
    pub corporation: Box<str>,
    pub status: ClientStatus,
    pub probability: Option<f64>,
    pub band: Option<Band>,
    pub values: [Option<i64>; 3],
}

impl From<&RiskList> for PreviousList {
    fn from(list: &RiskList) -> Self {
        let clients = list
            .entries
            .iter()
            .map(|entry| PreviousClient {
                corporation: entry.corporation.as_str().into(),
                status: entry.status,
                probability: entry.probability,
                band: entry.band,
                values: FEATURES.map(|feature| entry.driver(feature).and_then(|d| d.value)),
            })
            .collect();
        PreviousList {
            meta: list.meta.clone(),
            clients,
        }
    }
}

/// Keeps the last row of every corporation in `batches` (client-schema batches in compiled
/// order).
pub fn latest_rows(
    batches: impl IntoIterator<Item = Result<RecordBatch, DataError>>,
) -> Result<LatestRows, RiskListError> {
    let mut latest = LatestRows::default();
    let mut slots: HashMap<Box<str>, usize, foldhash::fast::RandomState> = HashMap::default();
    let position = |name: &str| COLUMNS.iter().position(|c| *c == name).unwrap_or_default();
    let feature_columns = FEATURES.map(position);
    for batch in batches {
        let batch = batch?;
        latest.rows_read += batch.num_rows() as u64;
        // read_parquet conforms every batch to the client schema, so these casts hold.
        let corporation = batch.column(0).as_string::<i32>();
        let features = feature_columns.map(|i| batch.column(i).as_primitive::<Int64Type>());
        let exited = batch.column(COLUMNS.len() - 1).as_primitive::<Int8Type>();
        let value = |column: &arrow::array::PrimitiveArray<Int64Type>, row: usize| {
            column.is_valid(row).then(|| column.value(row))
        };
        for row in 0..batch.num_rows() {
            if corporation.is_null(row) {
                latest.rows_without_corporation += 1;
                continue;
            }
            let name = corporation.value(row);
            let slot = match slots.get(name) {
                Some(&slot) => slot,
                None => {
                    let slot = latest.corporations.len();
                    slots.insert(name.into(), slot);
                    latest.corporations.push(name.into());
                    latest.features.push([None; 3]);
                    latest.exited.push(None);
                    slot
                }
            };
            latest.features[slot] = [
                value(features[0], row),
                value(features[1], row),
                value(features[2], row),
            ];
            latest.exited[slot] = exited.is_valid(row).then(|| exited.value(row));
        }
    }
    Ok(latest)
}

/// The seeds of the two 64-bit halves of a code's [`code_key`].
const KEY_SEEDS: [u64; 2] = [0x5EED_C0DE_0000_0001, 0x5EED_C0DE_0000_0002];

/// A corporation code as 128 bits (two differently seeded foldhash values), what the full
/// build remembers of every code it has seen instead of the code itself (three million codes
/// at XL). Two codes collide with a probability of about n²/2¹²⁹ (10⁻²⁶ for those three
/// million), and the codes are the company's own client data, not chosen by an adversary, so a
/// collision (which would hide a client's older rows behind another's) is not a practical
/// concern.
fn code_key(code: &str) -> u128 {
    let [low, high] =
        KEY_SEEDS.map(|seed| foldhash::quality::FixedState::with_seed(seed).hash_one(code));
    (u128::from(high) << 64) | u128::from(low)
}

/// Every client's newest row in `compiled`, for a full build: the row groups newest first and
/// their rows newest first, so the first time a code is seen is its newest row. Only clients
/// that are still clients and clients that left at a position `recent_from` or later are kept;
/// the others (clients that left earlier) are counted in `exited_earlier`.
pub fn latest_rows_newest_first(
    compiled: &CompiledRows,
    recent_from: u64,
) -> Result<LatestRows, RiskListError> {
    let mut latest = LatestRows {
        recent_from,
        ..LatestRows::default()
    };
    let mut seen: HashSet<u128, foldhash::fast::RandomState> = HashSet::default();
    let position_of = |name: &str| COLUMNS.iter().position(|c| *c == name).unwrap_or_default();
    let feature_columns = FEATURES.map(position_of);
    compiled.visit_groups_newest_first(|start, batches| {
        let mut position = start + batches.iter().map(|b| b.num_rows() as u64).sum::<u64>();
        for batch in batches.iter().rev() {
            latest.rows_read += batch.num_rows() as u64;
            // read_parquet conforms every batch to the client schema, so these casts hold.
            let corporation = batch.column(0).as_string::<i32>();
            let features = feature_columns.map(|i| batch.column(i).as_primitive::<Int64Type>());
            let exited = batch.column(COLUMNS.len() - 1).as_primitive::<Int8Type>();
            for row in (0..batch.num_rows()).rev() {
                position -= 1;
                if corporation.is_null(row) {
                    latest.rows_without_corporation += 1;
                    continue;
                }
                let name = corporation.value(row);
                if !seen.insert(code_key(name)) {
                    continue;
                }
                let exit = exited.is_valid(row).then(|| exited.value(row));
                if exit == Some(1) && position < recent_from {
                    latest.exited_earlier += 1;
                    continue;
                }
                latest.corporations.push(name.into());
                latest
                    .features
                    .push(features.map(|column| column.is_valid(row).then(|| column.value(row))));
                latest.exited.push(exit);
            }
        }
        Ok(())
    })?;
    Ok(latest)
}

impl LatestRows {
    /// The rows `list` was built from, as far as it names them (its active clients' values and
    /// its exits), with its counts: the base of an incremental build ([`incremental_base`] says
    /// when `list` can be one).
    fn from_list(list: &PreviousList, lineage: &DataLineage) -> LatestRows {
        let mut rows = LatestRows {
            rows_read: list.meta.rows_read,
            rows_without_corporation: list.meta.rows_without_corporation,
            exited_earlier: list.meta.exited_earlier,
            recent_from: lineage.recent_from,
            incremental: true,
            ..LatestRows::default()
        };
        for client in &list.clients {
            let (values, exited) = match client.status {
                ClientStatus::Active => (client.values, None),
                ClientStatus::Exited => ([None; 3], Some(1)),
            };
            rows.push(client.corporation.clone(), values, exited);
        }
        rows
    }

    /// `newer` (the latest rows among the rows added since `self` was built) over `self`: a
    /// client in both takes `newer`'s row; a client that had left before and is not in `newer`
    /// is dropped and counted in `exited_earlier`.
    pub fn overlaid_with_recent(self, newer: LatestRows) -> LatestRows {
        let slots: HashMap<&str, usize, foldhash::fast::RandomState> = self
            .corporations
            .iter()
            .enumerate()
            .map(|(slot, name)| (&**name, slot))
            .collect();
        let mut replaced: Vec<Option<usize>> = vec![None; self.corporations.len()];
        let mut added = Vec::new();
        for (index, name) in newer.corporations.iter().enumerate() {
            match slots.get(&**name) {
                Some(&slot) => replaced[slot] = Some(index),
                None => added.push(index),
            }
        }
        drop(slots);
        let mut rows = LatestRows {
            recent_from: newer.recent_from,
            rows_read: self.rows_read + newer.rows_read,
            rows_without_corporation: self.rows_without_corporation
                + newer.rows_without_corporation,
            exited_earlier: self.exited_earlier,
            incremental: true,
            ..LatestRows::default()
        };
        let old = self
            .corporations
            .into_iter()
            .zip(self.features)
            .zip(self.exited)
            .zip(replaced);
        for (((name, features), exited), replacement) in old {
            match replacement {
                Some(index) => rows.push(name, newer.features[index], newer.exited[index]),
                None if exited == Some(1) => rows.exited_earlier += 1,
                None => rows.push(name, features, exited),
            }
        }
        for index in added {
            rows.push(
                newer.corporations[index].clone(),
                newer.features[index],
                newer.exited[index],
            );
        }
        rows
    }

    fn push(&mut self, name: Box<str>, features: [Option<i64>; 3], exited: Option<i8>) {
        self.corporations.push(name);
        self.features.push(features);
        self.exited.push(exited);
    }
}

/// The first row position whose exits a new list names (a client whose newest row is an exit
/// before it is counted, not listed): when `record` extends the data the previous list was
/// built from, the first row added since — or, when no row was added, the previous list's own
/// start, so a list written after a deployment alone names the same exits; otherwise the first
/// row of the newest ingested file (whose rows, less the duplicates dropped, are the last rows
/// of the compiled data).
pub fn recent_exits_from(
    previous: Option<&PreviousList>,
    record: &IngestionRecord,
    compiled_rows: u64,
) -> u64 {
    if let Some(lineage) = previous.and_then(|p| p.meta.lineage.as_ref())
        && lineage.is_extended_by(record, compiled_rows)
    {
        return if compiled_rows > lineage.compiled_rows {
            lineage.compiled_rows
        } else {
            lineage.recent_from
        };
    }
    let newest = record
        .files
        .iter()
        .rev()
        .find(|f| f.outcome == FileOutcome::Ingested)
        .map_or(0, |f| f.rows_accepted.saturating_sub(f.rows_duplicate));
    compiled_rows.saturating_sub(newest)
}

/// The previous list a new one on the compiled data of `record` (`compiled_rows` rows) is built
/// from incrementally, with the data it covers: when `record` extends that data (rows appended,
/// or none) and the list holds the values of every feature `model` uses. `None`: a full pass.
fn incremental_base<'a>(
    previous: Option<&'a PreviousList>,
    record: &IngestionRecord,
    compiled_rows: u64,
    model: &TrainedModel,
) -> Option<(&'a PreviousList, &'a DataLineage)> {
    let previous = previous?;
    let lineage = previous.meta.lineage.as_ref()?;
    let stored = |name: &str| previous.meta.features.iter().any(|f| f.name == name);
    (lineage.is_extended_by(record, compiled_rows)
        && model.features.iter().all(|f| stored(&f.name)))
    .then_some((previous, lineage))
}

/// The first row position a new list on the compiled data of `record` (`compiled_rows` rows)
/// reads: where the rows added since `previous` start when [`rows_for_new_list`] builds it
/// incrementally, else 0 (a full pass reads every row).
pub fn first_row_needed(
    previous: Option<&PreviousList>,
    record: &IngestionRecord,
    compiled_rows: u64,
    model: &TrainedModel,
) -> u64 {
    incremental_base(previous, record, compiled_rows, model)
        .map_or(0, |(_, lineage)| lineage.compiled_rows)
}

/// The rows of a new list on `compiled`: built incrementally from `previous` (its rows overlaid
/// with the rows added since) when [`incremental_base`] allows it (when no row was added, its
/// rows as they are); otherwise by a full pass ([`latest_rows_newest_first`]). Both give the
/// same rows.
pub fn rows_for_new_list(
    compiled: &CompiledRows,
    record: &IngestionRecord,
    previous: Option<&PreviousList>,
    model: &TrainedModel,
) -> Result<LatestRows, RiskListError> {
    let total = compiled.row_count();
    if let Some((previous, lineage)) = incremental_base(previous, record, total, model) {
        if total == lineage.compiled_rows {
            return Ok(LatestRows::from_list(previous, lineage));
        }
        // The previous list's rows and the new rows' latest, on two cores.
        let (base, newer) = std::thread::scope(|scope| {
            let base = scope.spawn(|| LatestRows::from_list(previous, lineage));
            let newer = compiled
                .rows_from(lineage.compiled_rows)
                .and_then(|added| latest_rows(added.into_iter().map(Ok)));
            let base = joined(base, "the previous list's rows")?;
            Ok::<_, RiskListError>((base, newer?))
        })?;
        let newer = LatestRows {
            recent_from: lineage.compiled_rows,
            ..newer
        };
        return Ok(base.overlaid_with_recent(newer));
    }
    latest_rows_newest_first(compiled, recent_exits_from(previous, record, total))
}

/// What a list is built from besides the rows: the model's provenance and the data's version.
#[derive(Debug, Clone)]
pub struct Provenance {
    pub run_id: String,
    pub model_version: String,
    pub model_deployed_by: String,
    pub data_version: String,
    /// The compiled data the rows were taken from, for the next list's incremental build.
    pub lineage: Option<DataLineage>,
}

/// What the drivers of a row need of each model feature, worked out once per list: its name,
/// where its raw value is, and its phrases.
fn driver_book(model: &TrainedModel) -> Vec<DriverBookEntry> {
    model
        .features
        .iter()
        .map(|feature| DriverBookEntry {
            name: feature.name.as_str().into(),
            raw_index: FEATURES.iter().position(|f| *f == feature.name),
            phrases: Phrases::new(&feature.name),
        })
        .collect()
}

/// One model feature in [`driver_book`].
struct DriverBookEntry {
    name: Arc<str>,
    /// Where its raw value is among [`FEATURES`].
    raw_index: Option<usize>,
    phrases: Phrases,
}

/// The drivers of one row: every model feature's contribution, the largest first.
fn drivers(
    model: &TrainedModel,
    book: &[DriverBookEntry],
    values: &[Option<i64>; 3],
) -> Vec<Driver> {
    let mut drivers: Vec<Driver> = model
        .features
        .iter()
        .zip(book)
        .map(|(feature, entry)| {
            let value = entry.raw_index.and_then(|i| values[i]);
            let raw = value.map_or(feature.impute_value, |v| v as f64);
            let standardized = (raw - feature.mean) / feature.std;
            let contribution = feature.coefficient_standardized * standardized;
            Driver {
                phrase: entry.phrases.of(value, standardized, contribution).clone(),
                feature: entry.name.clone(),
                value,
                standardized,
                contribution,
            }
        })
        .collect();
    sort_drivers(&mut drivers);
    drivers
}

/// Largest absolute contribution first (stable: ties keep model order).
pub(super) fn sort_drivers(drivers: &mut [Driver]) {
    drivers.sort_by(|a, b| b.contribution.abs().total_cmp(&a.contribution.abs()));
}

/// The list for `rows` under `model`, compared with `previous` (the list before it, if any).
pub fn build_risk_list(
    model: &TrainedModel,
    rows: &LatestRows,
    previous: Option<&PreviousList>,
    bands: &RiskBands,
    provenance: Provenance,
) -> Result<RiskList, RiskListError> {
    let probabilities = model.predict(&rows.to_batch()?)?.probabilities;
    let threshold = model.threshold();
    let high_probability = bands.high_probability(threshold);

    let mut active: Vec<usize> = Vec::new();
    let mut exited: Vec<usize> = Vec::new();
    for index in 0..rows.corporations.len() {
        if rows.exited[index] == Some(1) {
            exited.push(index);
        } else {
            active.push(index);
        }
    }
    active.sort_by(|&a, &b| {
        probabilities[b]
            .total_cmp(&probabilities[a])
            .then_with(|| rows.corporations[a].cmp(&rows.corporations[b]))
    });
    exited.sort_by(|&a, &b| rows.corporations[a].cmp(&rows.corporations[b]));
    let watch_ranks = bands.watch_ranks(active.len());

    let previous_of: HashMap<&str, &PreviousClient, foldhash::fast::RandomState> = previous
        .map(|list| list.clients.iter().map(|c| (&*c.corporation, c)).collect())
        .unwrap_or_default();
    let book = driver_book(model);
    let entry_of = |position: usize, index: usize| {
        let probability = probabilities[index];
        let band = if probability >= high_probability {
            Band::High
        } else if position < watch_ranks {
            Band::Watch
        } else {
            Band::Low
        };
        let corporation = rows.corporations[index].to_string();
        let before = previous_of.get(corporation.as_str());
        let previous_probability = before.and_then(|e| e.probability);
        RiskEntry {
            rank: Some(u32::try_from(position + 1).unwrap_or(u32::MAX)),
            probability: Some(probability),
            band: Some(band),
            previous_probability,
            probability_change: previous_probability.map(|p| probability - p),
            newly_high: band == Band::High
                && previous.is_some()
                && before.and_then(|e| e.band) != Some(Band::High),
            drivers: drivers(model, &book, &rows.features[index]),
            status: ClientStatus::Active,
            corporation,
        }
    };
    // The ranked entries in two halves on two cores (the drivers are most of the work).
    let (first, second) = active.split_at(active.len() / 2);
    let mut entries = std::thread::scope(|scope| {
        let later = scope.spawn(|| {
            let start = first.len();
            let entries = second.iter().enumerate();
            entries
                .map(|(offset, &index)| entry_of(start + offset, index))
                .collect::<Vec<_>>()
        });
        let mut entries = Vec::with_capacity(rows.corporations.len());
        entries.extend(
            first
                .iter()
                .enumerate()
                .map(|(position, &index)| entry_of(position, index)),
        );
        let later = joined(later, "the ranked entries")?;
        entries.extend(later);
        Ok::<_, RiskListError>(entries)
    })?;
    let mut counts = [0u64; 3];
    let mut newly_high = 0;
    for entry in &entries {
        if let Some(band) = entry.band {
            counts[band as usize] += 1;
        }
        newly_high += u64::from(entry.newly_high);
    }
    for &index in &exited {
        let corporation = rows.corporations[index].to_string();
        let previous_probability = previous_of
            .get(corporation.as_str())
            .and_then(|e| e.probability);
        entries.push(RiskEntry {
            corporation,
            status: ClientStatus::Exited,
            rank: None,
            probability: None,
            band: None,
            previous_probability,
            probability_change: None,
            newly_high: false,
            drivers: Vec::new(),
        });
    }
    let meta = RiskListMeta {
        run_id: provenance.run_id,
        generated_at: Utc::now(),
        model_version: provenance.model_version,
        model_deployed_by: provenance.model_deployed_by,
        threshold,
        data_version: provenance.data_version,
        high_probability,
        high_rule: bands.high(),
        watch_share: bands.watch_share(),
        watch_last_rank: u32::try_from(watch_ranks).unwrap_or(u32::MAX),
        rows_read: rows.rows_read,
        rows_without_corporation: rows.rows_without_corporation,
        clients: rows.corporations.len() as u64 + rows.exited_earlier,
        ranked: active.len() as u64,
        exited: exited.len() as u64,
        exited_earlier: rows.exited_earlier,
        high: counts[Band::High as usize],
        watch: counts[Band::Watch as usize],
        low: counts[Band::Low as usize],
        newly_high,
        previous_run_id: previous.map(|p| p.meta.run_id.clone()),
        lineage: provenance.lineage,
        incremental: rows.incremental,
        features: model
            .features
            .iter()
            .map(|f| FeatureScale {
                name: f.name.clone(),
                mean: f.mean,
                std: f.std,
                coefficient_standardized: f.coefficient_standardized,
            })
            .collect(),
    };
    Ok(RiskList { meta, entries })
}
