//! Building a list: each client's newest row (ingestion appends a run's rows after every older
//! row, so the last occurrence is the newest), taken either incrementally — the previous list's
//! rows overlaid with the rows added since it — or by a full pass over the compiled data newest
//! first ([`rows_for_new_list`] picks); then the deployed model predicts those rows — through [`TrainedModel::predict`], so the list's
//! probabilities are the model's predictions — and each feature's contribution is computed
//! beside it.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, RecordBatch};
use arrow::datatypes::{Int8Type, Int64Type};
use chrono::Utc;

use super::compiled_rows::CompiledRows;
use super::drivers::Phrases;
use super::{
    Band, ClientStatus, DataLineage, Driver, FeatureScale, RiskBands, RiskEntry, RiskList,
    RiskListError, RiskListMeta, joined,
};
use crate::data::schema::{COLUMNS, FEATURES};
use crate::data::{DataError, Prehashed};
use crate::model::TrainedModel;
use crate::records::{FileOutcome, IngestionRecord};

/// The newest row of each client a list names (in no particular order), and the counts of the
/// rows and clients it does not name.
#[derive(Debug, Default, Clone)]
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
    /// Rows built from a previous list ([`LatestRows::from_list`]) remember where their client
    /// is in it, so scoring need not look every client up by code again.
    previous_slots: Option<PreviousSlots>,
}

/// Per row, the client's position in the previous list of run `run_id` (`None`: not in it).
#[derive(Debug, Clone)]
struct PreviousSlots {
    run_id: String,
    slots: Vec<Option<u32>>,
}

impl LatestRows {
    /// The raw feature columns (all the model reads), without the codes: copying 100,000
    /// codes into a batch only to score it cost more than the scoring.
    fn feature_batch(&self) -> Result<RecordBatch, RiskListError> {
        let columns = FEATURES.iter().enumerate().map(|(index, name)| {
            let values: Int64Array = self.features.iter().map(|f| f[index]).collect();
            (*name, Arc::new(values) as ArrayRef)
        });
        RecordBatch::try_from_iter(columns).map_err(|e| RiskListError::Encode {
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
    // Keyed by the code's 128-bit key, so each new client's code is allocated once (its row).
    let mut slots: HashMap<u128, usize, Prehashed> = HashMap::default();
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
            let slot = match slots.entry(code_key(name)) {
                Entry::Occupied(slot) => *slot.get(),
                Entry::Vacant(vacant) => {
                    let slot = latest.corporations.len();
                    vacant.insert(slot);
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

/// A corporation code as 128 bits (two differently seeded foldhash values), what a build
/// remembers of every code it has seen instead of the code itself (three million codes
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
    // The codes seen, in two halves by a bit of their key, each searched on its own core: the
    // set is tens of megabytes, and its cache misses were most of the pass.
    let mut seen: [HashSet<u128, Prehashed>; 2] = Default::default();
    let position_of = |name: &str| COLUMNS.iter().position(|c| *c == name).unwrap_or_default();
    let feature_columns = FEATURES.map(position_of);
    // Per group, reused: the group's rows with a code, newest first, as (key, batch, row).
    let mut keyed: Vec<(u128, u32, u32)> = Vec::new();
    compiled.visit_groups_newest_first(|start, batches| {
        keyed.clear();
        for (index, batch) in batches.iter().enumerate().rev() {
            latest.rows_read += batch.num_rows() as u64;
            let corporation = batch.column(0).as_string::<i32>();
            for row in (0..batch.num_rows()).rev() {
                if corporation.is_null(row) {
                    latest.rows_without_corporation += 1;
                } else {
                    let key = code_key(corporation.value(row));
                    keyed.push((key, index as u32, row as u32));
                }
            }
        }
        let [low, high] = &mut seen;
        let (newest_low, newest_high) = std::thread::scope(|scope| {
            let keyed = &keyed;
            let other = scope.spawn(move || first_sightings(keyed, high, true));
            let mine = first_sightings(keyed, low, false);
            Ok::<_, RiskListError>((mine, joined(other, "the seen codes")?))
        })?;
        // Where each batch starts, to tell a row's position.
        let mut batch_start = Vec::with_capacity(batches.len());
        let mut next = start;
        for batch in &batches {
            batch_start.push(next);
            next += batch.num_rows() as u64;
        }
        for index in newest_low.into_iter().chain(newest_high) {
            let (_, batch_index, row) = keyed[index];
            let (batch_index, row) = (batch_index as usize, row as usize);
            let batch = &batches[batch_index];
            let position = batch_start[batch_index] + row as u64;
            // read_parquet conforms every batch to the client schema, so these casts hold.
            let corporation = batch.column(0).as_string::<i32>();
            let exited = batch.column(COLUMNS.len() - 1).as_primitive::<Int8Type>();
            let exit = exited.is_valid(row).then(|| exited.value(row));
            if exit == Some(1) && position < recent_from {
                latest.exited_earlier += 1;
                continue;
            }
            let features = feature_columns.map(|i| batch.column(i).as_primitive::<Int64Type>());
            latest.corporations.push(corporation.value(row).into());
            latest
                .features
                .push(features.map(|column| column.is_valid(row).then(|| column.value(row))));
            latest.exited.push(exit);
        }
        Ok(())
    })?;
    Ok(latest)
}

/// The indices in `keyed` (newest first) of the codes `seen` had not seen, among those whose
/// key's top bit is `high`; they are added to `seen`.
fn first_sightings(
    keyed: &[(u128, u32, u32)],
    seen: &mut HashSet<u128, Prehashed>,
    high: bool,
) -> Vec<usize> {
    keyed
        .iter()
        .enumerate()
        .filter(|(_, (key, _, _))| (key >> 127 == 1) == high && seen.insert(*key))
        .map(|(index, _)| index)
        .collect()
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
        rows.previous_slots = u32::try_from(list.clients.len())
            .ok()
            .map(|clients| PreviousSlots {
                run_id: list.meta.run_id.clone(),
                slots: (0..clients).map(Some).collect(),
            });
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
        let mut previous_slots = self.previous_slots;
        let mut kept_slots = Vec::new();
        let old = self
            .corporations
            .into_iter()
            .zip(self.features)
            .zip(self.exited)
            .zip(replaced)
            .enumerate();
        for (row, (((name, features), exited), replacement)) in old {
            let slot = previous_slots.as_ref().and_then(|p| p.slots[row]);
            match replacement {
                Some(index) => rows.push(name, newer.features[index], newer.exited[index]),
                None if exited == Some(1) => {
                    rows.exited_earlier += 1;
                    continue;
                }
                None => rows.push(name, features, exited),
            }
            kept_slots.push(slot);
        }
        for index in added {
            rows.push(
                newer.corporations[index].clone(),
                newer.features[index],
                newer.exited[index],
            );
            kept_slots.push(None);
        }
        if let Some(previous) = &mut previous_slots {
            previous.slots = kept_slots;
        }
        rows.previous_slots = previous_slots;
        rows
    }

    /// Where each of `order`'s rows is in `previous`, from the slots [`LatestRows::from_list`]
    /// kept when they were taken from this very list (each checked by code); `None` otherwise.
    fn clients_in<'a>(
        &self,
        previous: &'a PreviousList,
        order: &[usize],
    ) -> Option<Vec<Option<&'a PreviousClient>>> {
        let kept = self.previous_slots.as_ref()?;
        if kept.run_id != previous.meta.run_id || kept.slots.len() != self.corporations.len() {
            return None;
        }
        order
            .iter()
            .map(|&row| match kept.slots[row] {
                None => Some(None),
                Some(slot) => previous
                    .clients
                    .get(slot as usize)
                    .filter(|client| client.corporation == self.corporations[row])
                    .map(Some),
            })
            .collect()
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
/// where its raw value is, its scaling and its phrases.
struct DriverBookEntry {
    name: Arc<str>,
    /// Where its raw value is among [`FEATURES`].
    raw_index: Option<usize>,
    impute_value: f64,
    mean: f64,
    std: f64,
    coefficient_standardized: f64,
    phrases: Phrases,
}

fn driver_book(model: &TrainedModel) -> Vec<DriverBookEntry> {
    model
        .features
        .iter()
        .map(|feature| DriverBookEntry {
            name: feature.name.as_str().into(),
            raw_index: FEATURES.iter().position(|f| *f == feature.name),
            impute_value: feature.impute_value,
            mean: feature.mean,
            std: feature.std,
            coefficient_standardized: feature.coefficient_standardized,
            phrases: Phrases::new(&feature.name),
        })
        .collect()
}

/// Largest absolute contribution first (stable: ties keep model order).
pub(super) fn sort_drivers(drivers: &mut [Driver]) {
    drivers.sort_by(|a, b| b.contribution.abs().total_cmp(&a.contribution.abs()));
}

/// A list as it is built: its clients in list order (the ranked ones by rank, then those who
/// left by code) held as columns, which the writer encodes to Arrow without making an entry
/// per client (at XL those 100,000 entries and their drivers were a third of the step).
/// Entries are made on demand: [`BuiltList::entry`], [`BuiltList::to_list`].
pub struct BuiltList {
    pub meta: RiskListMeta,
    rows: LatestRows,
    /// The row (in `rows`) at each position of the list.
    order: Vec<usize>,
    /// Per ranked position: the probability, band and whether it is newly high.
    probability: Vec<f64>,
    band: Vec<Band>,
    newly_high: Vec<bool>,
    /// Per position: the probability in the previous list.
    previous_probability: Vec<Option<f64>>,
    /// Per model feature, per ranked position: standardised value, contribution and phrase.
    standardized: Vec<Vec<f64>>,
    contribution: Vec<Vec<f64>>,
    phrase: Vec<Vec<u8>>,
    /// Per ranked position, the model features largest contribution first
    /// ([`sort_drivers`]'s order), `features` at a time.
    driver_order: Vec<u8>,
    book: Vec<DriverBookEntry>,
}

impl BuiltList {
    /// Clients in the list (ranked and exited).
    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Ranked clients: the first positions.
    pub fn ranked(&self) -> usize {
        self.probability.len()
    }

    pub(super) fn corporation(&self, position: usize) -> &str {
        &self.rows.corporations[self.order[position]]
    }

    pub(super) fn probability(&self, position: usize) -> Option<f64> {
        self.probability.get(position).copied()
    }

    pub(super) fn band(&self, position: usize) -> Option<Band> {
        self.band.get(position).copied()
    }

    pub(super) fn previous_probability(&self, position: usize) -> Option<f64> {
        self.previous_probability[position]
    }

    pub(super) fn newly_high(&self, position: usize) -> bool {
        self.newly_high.get(position).copied().unwrap_or(false)
    }

    /// 1 for the most at risk; `None` for a client that left.
    pub(super) fn rank(&self, position: usize) -> Option<u32> {
        (position < self.ranked()).then(|| u32::try_from(position + 1).unwrap_or(u32::MAX))
    }

    pub(super) fn status(&self, position: usize) -> ClientStatus {
        if position < self.ranked() {
            ClientStatus::Active
        } else {
            ClientStatus::Exited
        }
    }

    pub(super) fn probability_change(&self, position: usize) -> Option<f64> {
        self.probability(position)
            .zip(self.previous_probability(position))
            .map(|(now, before)| now - before)
    }

    /// The model features at `position`, largest contribution first (none for a client that
    /// left).
    fn driver_order_at(&self, position: usize) -> &[u8] {
        let features = self.book.len();
        if position < self.ranked() {
            &self.driver_order[position * features..(position + 1) * features]
        } else {
            &[]
        }
    }

    /// The raw value, standardised value and contribution of model feature `feature` at
    /// ranked `position` (`None` for a client that left).
    pub(super) fn feature_at(
        &self,
        feature: usize,
        position: usize,
    ) -> Option<(Option<i64>, f64, f64)> {
        (position < self.ranked()).then(|| {
            let value = self.book[feature]
                .raw_index
                .and_then(|i| self.rows.features[self.order[position]][i]);
            (
                value,
                self.standardized[feature][position],
                self.contribution[feature][position],
            )
        })
    }

    /// Model feature `feature` over the ranked positions, as columns: raw values (each
    /// client's row looked up once, in list order), standardised values and contributions.
    pub(super) fn feature_columns(&self, feature: usize) -> (Vec<Option<i64>>, &[f64], &[f64]) {
        let raw_index = self.book[feature].raw_index;
        let values = self.order[..self.ranked()]
            .iter()
            .map(|&row| raw_index.and_then(|i| self.rows.features[row][i]))
            .collect();
        (
            values,
            &self.standardized[feature],
            &self.contribution[feature],
        )
    }

    /// The drivers' phrases at `position`, largest contribution first (none for a client
    /// that left).
    pub(super) fn phrases(&self, position: usize) -> impl Iterator<Item = &Arc<str>> {
        self.driver_order_at(position).iter().map(move |&f| {
            let f = usize::from(f);
            self.book[f].phrases.get(self.phrase[f][position])
        })
    }

    /// The entry at `position`.
    pub fn entry(&self, position: usize) -> RiskEntry {
        let drivers = self
            .driver_order_at(position)
            .iter()
            .filter_map(|&f| {
                let f = usize::from(f);
                let (value, standardized, contribution) = self.feature_at(f, position)?;
                Some(Driver {
                    feature: self.book[f].name.clone(),
                    value,
                    standardized,
                    contribution,
                    phrase: self.book[f].phrases.get(self.phrase[f][position]).clone(),
                })
            })
            .collect();
        RiskEntry {
            corporation: self.corporation(position).to_string(),
            status: self.status(position),
            rank: self.rank(position),
            probability: self.probability(position),
            band: self.band(position),
            previous_probability: self.previous_probability(position),
            probability_change: self.probability_change(position),
            newly_high: self.newly_high(position),
            drivers,
        }
    }

    /// The first `count` ranked entries.
    pub fn top_ranked(&self, count: usize) -> Vec<RiskEntry> {
        (0..count.min(self.ranked()))
            .map(|p| self.entry(p))
            .collect()
    }

    /// The whole list, an entry per client.
    pub fn to_list(&self) -> RiskList {
        RiskList {
            meta: self.meta.clone(),
            entries: (0..self.len()).map(|p| self.entry(p)).collect(),
        }
    }
}

/// The list for `rows` under `model`, compared with `previous` (the list before it, if any).
pub fn build_risk_list(
    model: &TrainedModel,
    rows: &LatestRows,
    previous: Option<&PreviousList>,
    bands: &RiskBands,
    provenance: Provenance,
) -> Result<RiskList, RiskListError> {
    Ok(build_list(model, rows.clone(), previous, bands, provenance)?.to_list())
}

/// [`build_risk_list`] as columns ([`BuiltList`]), what the writer encodes.
pub fn build_list(
    model: &TrainedModel,
    rows: LatestRows,
    previous: Option<&PreviousList>,
    bands: &RiskBands,
    provenance: Provenance,
) -> Result<BuiltList, RiskListError> {
    let probabilities = model.predict(&rows.feature_batch()?)?.probabilities;
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
    // A client has one row, so no two keys tie: an unstable sort gives the one order.
    active.sort_unstable_by(|&a, &b| {
        probabilities[b]
            .total_cmp(&probabilities[a])
            .then_with(|| rows.corporations[a].cmp(&rows.corporations[b]))
    });
    exited.sort_unstable_by(|&a, &b| rows.corporations[a].cmp(&rows.corporations[b]));
    let watch_ranks = bands.watch_ranks(active.len());
    let ranked = active.len();

    let mut order = active;
    order.extend(exited);
    let by_slot = previous.and_then(|list| rows.clients_in(list, &order));
    let before: Vec<Option<&PreviousClient>> = by_slot.unwrap_or_else(|| {
        let previous_of: HashMap<&str, &PreviousClient, foldhash::fast::RandomState> = previous
            .map(|list| list.clients.iter().map(|c| (&*c.corporation, c)).collect())
            .unwrap_or_default();
        order
            .iter()
            .map(|&index| previous_of.get(&*rows.corporations[index]).copied())
            .collect()
    });

    let mut probability = Vec::with_capacity(ranked);
    let mut band = Vec::with_capacity(ranked);
    let mut newly_high = Vec::with_capacity(ranked);
    let mut counts = [0u64; 3];
    for (position, &index) in order[..ranked].iter().enumerate() {
        let p = probabilities[index];
        let b = if p >= high_probability {
            Band::High
        } else if position < watch_ranks {
            Band::Watch
        } else {
            Band::Low
        };
        counts[b as usize] += 1;
        probability.push(p);
        band.push(b);
        newly_high.push(
            b == Band::High
                && previous.is_some()
                && before[position].and_then(|e| e.band) != Some(Band::High),
        );
    }
    let previous_probability = before
        .iter()
        .map(|b| b.and_then(|e| e.probability))
        .collect();

    let book = driver_book(model);
    let features = book.len();
    let mut standardized = vec![Vec::with_capacity(ranked); features];
    let mut contribution = vec![Vec::with_capacity(ranked); features];
    let mut phrase = vec![Vec::with_capacity(ranked); features];
    for (f, entry) in book.iter().enumerate() {
        for &index in &order[..ranked] {
            let value = entry.raw_index.and_then(|i| rows.features[index][i]);
            let raw = value.map_or(entry.impute_value, |v| v as f64);
            let z = (raw - entry.mean) / entry.std;
            let c = entry.coefficient_standardized * z;
            standardized[f].push(z);
            contribution[f].push(c);
            phrase[f].push(entry.phrases.index_of(value, z, c));
        }
    }
    // Stable, like sort_drivers: ties keep model order.
    let mut driver_order = Vec::with_capacity(ranked * features);
    let mut one: Vec<u8> = Vec::with_capacity(features);
    let size = |feature: u8, position: usize| contribution[usize::from(feature)][position].abs();
    for position in 0..ranked {
        one.clear();
        one.extend((0..features).map(|f| u8::try_from(f).unwrap_or(u8::MAX)));
        one.sort_by(|&a, &b| size(b, position).total_cmp(&size(a, position)));
        driver_order.extend_from_slice(&one);
    }

    let exited_count = order.len() - ranked;
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
        ranked: ranked as u64,
        exited: exited_count as u64,
        exited_earlier: rows.exited_earlier,
        high: counts[Band::High as usize],
        watch: counts[Band::Watch as usize],
        low: counts[Band::Low as usize],
        newly_high: newly_high.iter().filter(|&&n| n).count() as u64,
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
    Ok(BuiltList {
        meta,
        rows,
        order,
        probability,
        band,
        newly_high,
        previous_probability,
        standardized,
        contribution,
        phrase,
        driver_order,
        book,
    })
}
