//! The compiled data's summary statistics without reading its history: when ingestion writes a
//! part it also writes that part's exact, mergeable statistics ([`DataStatistics`]: missing
//! values per column, every numeric column's value counts) under `stats/`, and the diagnostics
//! merge those small objects instead of decoding every row. A part written before them, or
//! whose statistics object is unusable, is summarised from its rows when read (nothing is
//! written back: reading never writes). Merged statistics give exactly the numbers of one pass
//! over all rows.

use bytes::Bytes;

use super::compiled::{FetchedPart, fetch_objects, for_each_batch, sidecar_key};
use super::{StepError, spawn_blocking_in_span};
use crate::location::Location;
use crate::records::{CompiledData, CompiledPart, ObjectRef, PartStatistics, names};
use crate::stats::{DataStatistics, SummaryBuilder};
use crate::store::{PutMode, StoreError};

/// Where the statistics of the part at `part_key` go: the same path under `stats/`
/// (`parts/ingested_month=2026-12/part-x.parquet` -> `stats/ingested_month=2026-12/part-x.json`).
pub fn statistics_key(part_key: &str) -> String {
    sidecar_key(part_key, names::STATISTICS_PREFIX, "json")
}

/// The statistics of one part's rows, decoded from its bytes.
pub fn statistics_of_part(part: &FetchedPart) -> Result<DataStatistics, StepError> {
    let mut builder = SummaryBuilder::new();
    for_each_batch::<StepError>(
        std::slice::from_ref(part),
        None,
        part.part.first_row,
        |batch| {
            builder.add(&batch).map_err(|source| StepError::Summary {
                url: part.part.object.url.clone(),
                source,
            })
        },
    )?;
    Ok(builder.statistics())
}

/// Writes `statistics`, those of the part at `part_key` (computed from its rows as they were
/// encoded). Their content follows from the part's, so a run that writes them again writes the
/// same bytes.
pub async fn write_part_statistics(
    compiled: &Location,
    part_key: &str,
    statistics: &DataStatistics,
) -> Result<PartStatistics, StepError> {
    let key = statistics_key(part_key);
    let put = compiled
        .put_json(&key, "part statistics", statistics, PutMode::Overwrite)
        .await?;
    Ok(PartStatistics {
        object: ObjectRef::new(compiled, &put),
        key,
    })
}

/// The statistics of every row of `data`: each part's stored statistics, read a few at a time;
/// the parts without usable ones decoded.
pub async fn compiled_statistics(
    compiled: &Location,
    data: &CompiledData,
) -> Result<DataStatistics, StepError> {
    let parts = data.parts();
    let (stored, mut unsummarised): (Vec<CompiledPart>, Vec<CompiledPart>) = parts
        .into_iter()
        .partition(|part| part.statistics.is_some());
    let objects = stored
        .iter()
        .filter_map(|part| part.statistics.as_ref())
        .map(|s| (s.key.clone(), Some(s.object.version_id.clone())))
        .collect();
    let mut total = DataStatistics::default();
    for (part, read) in stored.into_iter().zip(compiled.get_all(objects).await) {
        let bytes = match read {
            Ok((_, bytes)) => bytes,
            Err(StoreError::NotFound { .. }) => Bytes::new(),
            Err(other) => return Err(other.into()),
        };
        match serde_json::from_slice::<DataStatistics>(&bytes) {
            Ok(statistics) if statistics.describes(part.rows) => total.merge(&statistics),
            _ => {
                tracing::warn!(
                    part = %part.key,
                    "the part's statistics object does not describe it; reading the part instead"
                );
                unsummarised.push(part);
            }
        }
    }
    if unsummarised.is_empty() {
        return Ok(total);
    }
    tracing::info!(
        parts = unsummarised.len(),
        "parts without statistics: summarised from their rows"
    );
    // One part decoded at a time, so memory holds one part's bytes, not the history's.
    for part in unsummarised {
        let objects = vec![(part.key.clone(), part.object.version_id.clone())];
        let bytes = fetch_objects(compiled, objects)
            .await?
            .pop()
            .unwrap_or_default();
        let fetched = FetchedPart { part, bytes };
        let statistics = spawn_blocking_in_span(move || statistics_of_part(&fetched)).await??;
        total.merge(&statistics);
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steps::compiled::{committed_data, fetch_parts};
    use crate::steps::ingestion::{IngestScope, ingest};
    use crate::synth::{SynthSpec, generate_in_memory};

    #[tokio::test]
    async fn merged_part_statistics_equal_one_pass_over_every_row() {
        let pipeline = crate::testing::scratch_pipeline();
        let spec = SynthSpec {
            clients: 500,
            months: 3,
            missing_rate: 0.05,
            test_rows: 0,
            ..SynthSpec::default()
        };
        for (month, (name, body)) in generate_in_memory(&spec).unwrap().0.into_iter().enumerate() {
            let source = &pipeline.locations.source_data;
            source
                .put(&name, Bytes::from(body), PutMode::CreateOnly)
                .await
                .unwrap();
            ingest(&pipeline, &IngestScope::All, &format!("run-{month}"))
                .await
                .unwrap();
        }
        let compiled = &pipeline.locations.compiled_data;
        let (_, mut data) = committed_data(&pipeline, compiled).await.unwrap();
        assert_eq!(data.parts.len(), 3);
        assert!(data.parts.iter().all(|p| p.statistics.is_some()));

        // One pass over every decoded row, as the diagnostics did before.
        let mut builder = SummaryBuilder::new();
        let parts = fetch_parts(compiled, &data, 0).await.unwrap();
        for_each_batch::<StepError>(&parts, None, 0, |batch| {
            builder.add(&batch).unwrap();
            Ok(())
        })
        .unwrap();
        let whole = builder.statistics();
        assert_eq!(whole.rows, data.rows);
        assert!(whole.missing["lastmonth_activity"] > 0);

        assert_eq!(compiled_statistics(compiled, &data).await.unwrap(), whole);
        // A part from before statistics, one whose statistics object is another part's, one
        // whose object is gone: each read from its rows instead.
        data.parts[0].statistics = None;
        data.parts[2].statistics = data.parts[1].statistics.clone();
        if let Some(statistics) = &mut data.parts[1].statistics {
            statistics.key = "stats/gone.json".into();
        }
        let merged = compiled_statistics(compiled, &data).await.unwrap();
        assert_eq!(merged, whole);
        assert_eq!(merged.summary(), whole.summary());
    }

    #[test]
    fn statistics_sit_beside_the_part_under_stats() {
        assert_eq!(
            statistics_key("parts/ingested_month=2026-12/part-run-1.parquet"),
            "stats/ingested_month=2026-12/part-run-1.json"
        );
    }
}
