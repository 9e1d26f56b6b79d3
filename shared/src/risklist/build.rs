//! Building a list: one pass over the compiled data keeps each client's newest row (ingestion
//! appends a run's rows after every older row, so the last occurrence is the newest), then the
//! deployed model predicts those rows — through [`TrainedModel::predict`], so the list's
//! probabilities are the model's predictions — and each feature's contribution is computed
//! beside it.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, AsArray, Int8Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{Int8Type, Int64Type};
use bytes::Bytes;
use chrono::Utc;

use super::drivers::driver_phrase;
use super::{
    Band, ClientStatus, Driver, FeatureScale, RiskBands, RiskEntry, RiskList, RiskListError,
    RiskListMeta,
};
use crate::data::DataError;
use crate::data::parquet::{parquet_row_group_count, read_parquet, read_parquet_row_groups};
use crate::data::schema::{COLUMNS, FEATURES, client_schema};
use crate::model::TrainedModel;
use crate::steps::compiled::FetchedPart;

/// Each client's newest row, in order of first appearance.
#[derive(Debug, Default)]
pub struct LatestRows {
    pub corporations: Vec<Box<str>>,
    /// Raw feature values in [`FEATURES`] order.
    pub features: Vec<[Option<i64>; 3]>,
    pub exited: Vec<Option<i8>>,
    pub rows_read: u64,
    pub rows_without_corporation: u64,
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

impl LatestRows {
    /// `newer` over `self` (rows of older data): a client in both keeps `newer`'s row.
    fn overlaid_with(mut self, newer: LatestRows) -> LatestRows {
        let slots: HashMap<&str, usize, foldhash::fast::RandomState> = self
            .corporations
            .iter()
            .enumerate()
            .map(|(slot, name)| (&**name, slot))
            .collect();
        let mut updates = Vec::new();
        let mut added = LatestRows::default();
        for (index, name) in newer.corporations.into_iter().enumerate() {
            match slots.get(&*name) {
                Some(&slot) => updates.push((slot, index)),
                None => {
                    added.corporations.push(name);
                    added.features.push(newer.features[index]);
                    added.exited.push(newer.exited[index]);
                }
            }
        }
        for (slot, index) in updates {
            self.features[slot] = newer.features[index];
            self.exited[slot] = newer.exited[index];
        }
        self.corporations.extend(added.corporations);
        self.features.extend(added.features);
        self.exited.extend(added.exited);
        self.rows_read += newer.rows_read;
        self.rows_without_corporation += newer.rows_without_corporation;
        self
    }
}

/// [`latest_rows`] of a whole compiled Parquet file, its older and newer halves of row groups
/// read on two threads (the pass is as long as the history: ten million rows at XL).
pub fn latest_rows_of_parquet(name: &str, data: Bytes) -> Result<LatestRows, RiskListError> {
    let groups = parquet_row_group_count(name, data.clone())?;
    if groups < 2 {
        return latest_rows(read_parquet(name, data)?);
    }
    let middle = groups / 2;
    let older_data = data.clone();
    std::thread::scope(|scope| {
        let older = scope.spawn(move || {
            latest_rows(read_parquet_row_groups(
                name,
                older_data,
                Some((0..middle).collect()),
            )?)
        });
        let newer = latest_rows(read_parquet_row_groups(
            name,
            data,
            Some((middle..groups).collect()),
        )?);
        let older = older.join().map_err(|_| RiskListError::Encode {
            format: "a worker thread",
            detail: "it panicked".to_string(),
        })??;
        Ok(older.overlaid_with(newer?))
    })
}

/// [`latest_rows`] of the compiled data's parts, in compiled order (a newer part's row for a
/// client replaces an older one).
pub fn latest_rows_of_parts(parts: &[FetchedPart]) -> Result<LatestRows, RiskListError> {
    let mut latest = LatestRows::default();
    for part in parts {
        latest = latest.overlaid_with(latest_rows_of_parquet(&part.part.key, part.bytes.clone())?);
    }
    Ok(latest)
}

/// What a list is built from besides the rows: the model's provenance and the data's version.
#[derive(Debug, Clone)]
pub struct Provenance {
    pub run_id: String,
    pub model_version: String,
    pub model_deployed_by: String,
    pub data_version: String,
}

/// The drivers of one row: every model feature's contribution, the largest first.
fn drivers(model: &TrainedModel, values: &[Option<i64>; 3]) -> Vec<Driver> {
    let mut drivers: Vec<Driver> = model
        .features
        .iter()
        .map(|feature| {
            let value = FEATURES
                .iter()
                .position(|f| *f == feature.name)
                .and_then(|i| values[i]);
            let raw = value.map_or(feature.impute_value, |v| v as f64);
            let standardized = (raw - feature.mean) / feature.std;
            let contribution = feature.coefficient_standardized * standardized;
            Driver {
                phrase: driver_phrase(&feature.name, value, standardized, contribution),
                feature: feature.name.clone(),
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
    previous: Option<&RiskList>,
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

    let previous_of: HashMap<&str, &RiskEntry, foldhash::fast::RandomState> = previous
        .map(|list| {
            list.entries
                .iter()
                .map(|e| (e.corporation.as_str(), e))
                .collect()
        })
        .unwrap_or_default();
    let mut entries = Vec::with_capacity(rows.corporations.len());
    let mut counts = [0u64; 3];
    let mut newly_high = 0;
    for (position, &index) in active.iter().enumerate() {
        let probability = probabilities[index];
        let band = if probability >= high_probability {
            Band::High
        } else if position < watch_ranks {
            Band::Watch
        } else {
            Band::Low
        };
        counts[band as usize] += 1;
        let corporation = rows.corporations[index].to_string();
        let before = previous_of.get(corporation.as_str());
        let previous_probability = before.and_then(|e| e.probability);
        let newly = band == Band::High
            && previous.is_some()
            && before.and_then(|e| e.band) != Some(Band::High);
        newly_high += u64::from(newly);
        entries.push(RiskEntry {
            rank: Some(u32::try_from(position + 1).unwrap_or(u32::MAX)),
            probability: Some(probability),
            band: Some(band),
            previous_probability,
            probability_change: previous_probability.map(|p| probability - p),
            newly_high: newly,
            drivers: drivers(model, &rows.features[index]),
            status: ClientStatus::Active,
            corporation,
        });
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
        clients: rows.corporations.len() as u64,
        ranked: active.len() as u64,
        exited: exited.len() as u64,
        high: counts[Band::High as usize],
        watch: counts[Band::Watch as usize],
        low: counts[Band::Low as usize],
        newly_high,
        previous_run_id: previous.map(|p| p.meta.run_id.clone()),
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
