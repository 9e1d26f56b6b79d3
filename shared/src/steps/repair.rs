//! What the full process decides from durable state rather than from what its own ingestion
//! did, so that a run that died part-way (a crash, a timeout, a kill) is finished by the next
//! one. The deployment record names the compiled data its model was last checked against
//! ([`CheckedData`]), set only once every step after the check is done; compiled data newer than
//! that is pending work, whoever ingested it. Reports are checked against the deployment only
//! after a deployment that was never finished, so an idle run still reads just the ingestion
//! record, the deployment record and one listing.

use chrono::Utc;
use serde::Deserialize;

use super::{Pipeline, StepError};
use crate::location::RecordError;
use crate::records::{
    CheckedData, CompiledData, DeploymentRecord, IngestionRecord, ObjectRef, names,
};
use crate::store::{PutMode, StoreError};

/// Whether the compiled data in `record` has work pending for `deployment`: a bootstrap when
/// nothing is deployed, a check when the deployment was not checked against this version.
pub fn work_pending(record: &IngestionRecord, deployment: Option<&DeploymentRecord>) -> bool {
    let Some(compiled) = &record.compiled else {
        return false;
    };
    match deployment {
        None => true,
        Some(deployed) => deployed
            .checked_against
            .as_ref()
            .is_none_or(|checked| !is_same_version(&checked.data, &compiled.object)),
    }
}

fn is_same_version(a: &ObjectRef, b: &ObjectRef) -> bool {
    a.url == b.url && a.version_id == b.version_id
}

/// How many of the last `total` compiled rows the deployed model has not been checked on: those
/// after the version it was checked against or, for a deployment never finished (or recorded
/// before checks were), those after the rows it was trained and validated on.
pub fn rows_to_check(deployed: &DeploymentRecord, trained_until: Option<u64>, total: u64) -> u64 {
    let seen = match &deployed.checked_against {
        Some(checked) => checked.rows,
        None => trained_until.unwrap_or(0),
    };
    total.saturating_sub(seen)
}

/// Only the field the check needs, so a report or diagnostics record that gains fields (or
/// changes others) still answers it.
#[derive(Deserialize)]
struct DescribesModel {
    model: ObjectRef,
}

#[derive(Deserialize)]
struct DiagnosticsModel {
    predictions: DescribesModel,
}

/// Whether the diagnostics and the report both describe the production model `model`.
pub async fn reports_describe(pipeline: &Pipeline, model: &ObjectRef) -> Result<bool, StepError> {
    let reports = &pipeline.locations.reports;
    let report = reports
        .get_json_if_exists::<DescribesModel>(names::REPORT_JSON, "report")
        .await?;
    let diagnostics = reports
        .get_json_if_exists::<DiagnosticsModel>(names::DIAGNOSTICS, "diagnostics record")
        .await?;
    Ok(
        report.is_some_and(|(_, r)| is_same_version(&r.model, model))
            && diagnostics.is_some_and(|(_, d)| is_same_version(&d.predictions.model, model)),
    )
}

/// Records that the deployment of `model_version` has been checked against `compiled`, with
/// everything after the check done. Conditional on the deployment record this run read: when
/// another run deployed meanwhile, nothing is written and the run is told to go again.
/// Returns the record as written, or `None` when it already named this data or newer.
/// `source_listing`: the digest of a source listing `compiled` covers, if known
/// ([`super::idle`]).
pub async fn mark_checked(
    pipeline: &Pipeline,
    model_version: &str,
    compiled: &CompiledData,
    source_listing: Option<String>,
    run_id: &str,
) -> Result<Option<ObjectRef>, StepError> {
    let production = &pipeline.locations.production;
    let concurrent = |detail: String| StepError::ConcurrentUpdate {
        what: production.object_url(names::DEPLOYMENT),
        detail,
    };
    let (meta, mut deployment) = production
        .get_json_if_exists::<DeploymentRecord>(names::DEPLOYMENT, "deployment record")
        .await?
        .ok_or_else(|| concurrent("the deployment record disappeared".into()))?;
    if deployment.model.version_id != model_version {
        return Err(concurrent(format!(
            "model version {} is deployed now, not {model_version}",
            deployment.model.version_id
        )));
    }
    // Ingestion only appends rows, so more rows is newer data: a concurrent run that checked
    // newer data than this one is never undone.
    if deployment.checked_against.as_ref().is_some_and(|checked| {
        is_same_version(&checked.data, &compiled.object) || checked.rows > compiled.rows
    }) {
        return Ok(None);
    }
    deployment.checked_against = Some(CheckedData {
        data: compiled.object.clone(),
        rows: compiled.rows,
        checked_at: Utc::now(),
        run_id: run_id.to_string(),
        source_listing,
    });
    let written = production
        .put_json(
            names::DEPLOYMENT,
            "deployment record",
            &deployment,
            PutMode::ReplaceIfMatch(meta.etag),
        )
        .await
        .map_err(|e| match e {
            RecordError::Store(StoreError::PreconditionFailed { detail, .. }) => concurrent(detail),
            other => other.into(),
        })?;
    Ok(Some(ObjectRef::new(production, &written)))
}

/// Rewrites the seed-compatible `ingestedfiles.txt` in `compiled_data` when it does not list
/// what the ingestion record says (a run that stopped between the two writes).
pub async fn repair_ingested_files_text(
    pipeline: &Pipeline,
    record: &IngestionRecord,
) -> Result<Option<ObjectRef>, StepError> {
    let compiled = &pipeline.locations.compiled_data;
    let expected = record.ingested_files_text();
    if let Some((_, current)) = compiled.get_if_exists(names::INGESTED_FILES_TXT).await?
        && current == expected.as_bytes()
    {
        return Ok(None);
    }
    let written = compiled
        .put(
            names::INGESTED_FILES_TXT,
            bytes::Bytes::from(expected),
            PutMode::Overwrite,
        )
        .await?;
    Ok(Some(ObjectRef::new(compiled, &written)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(version: &str) -> ObjectRef {
        ObjectRef {
            url: "file:///c/finaldata.parquet".into(),
            version_id: version.into(),
            etag: format!("etag-{version}"),
            size: 1,
        }
    }

    fn ingestion(version: Option<&str>, rows: u64) -> IngestionRecord {
        IngestionRecord {
            compiled: version.map(|v| CompiledData {
                object: object(v),
                rows,
                duplicates_dropped: 0,
                parts: Vec::new(),
            }),
            ..Default::default()
        }
    }

    fn deployment(checked: Option<(&str, u64)>) -> DeploymentRecord {
        DeploymentRecord {
            model: object("m"),
            model_source: object("m0"),
            score: object("s"),
            score_source: object("s0"),
            ingestion_record: object("i"),
            ingestion_record_source: object("i0"),
            f1: 0.5,
            deployed_at: Utc::now(),
            run_id: "run-1".into(),
            checked_against: checked.map(|(v, rows)| CheckedData {
                data: object(v),
                rows,
                checked_at: Utc::now(),
                run_id: "run-1".into(),
                source_listing: None,
            }),
        }
    }

    #[test]
    fn work_is_pending_until_the_deployment_was_checked_against_the_current_data() {
        // No data: nothing to do, deployed or not.
        assert!(!work_pending(&ingestion(None, 0), None));
        assert!(!work_pending(&ingestion(None, 0), Some(&deployment(None))));
        // Data and no deployment: the bootstrap.
        assert!(work_pending(&ingestion(Some("v1"), 10), None));
        // A deployment never finished, or checked against older data.
        assert!(work_pending(
            &ingestion(Some("v1"), 10),
            Some(&deployment(None))
        ));
        assert!(work_pending(
            &ingestion(Some("v2"), 20),
            Some(&deployment(Some(("v1", 10))))
        ));
        // Checked against exactly this version: idle.
        assert!(!work_pending(
            &ingestion(Some("v2"), 20),
            Some(&deployment(Some(("v2", 20))))
        ));
    }

    #[test]
    fn rows_to_check_start_after_the_check_or_else_after_the_training_rows() {
        assert_eq!(
            rows_to_check(&deployment(Some(("v1", 10))), Some(15), 25),
            15
        );
        assert_eq!(rows_to_check(&deployment(None), Some(15), 25), 10);
        assert_eq!(rows_to_check(&deployment(None), Some(25), 25), 0);
        // A model without a recorded window: every row.
        assert_eq!(rows_to_check(&deployment(None), None, 25), 25);
    }

    #[test]
    fn a_deployment_record_written_before_checks_were_recorded_still_loads() {
        let mut json = serde_json::to_value(deployment(None)).unwrap();
        assert!(json.get("checked_against").is_none());
        json.as_object_mut().unwrap().remove("checked_against");
        let record: DeploymentRecord = serde_json::from_value(json).unwrap();
        assert_eq!(record.checked_against, None);
    }

    fn compiled(version: &str, rows: u64) -> CompiledData {
        CompiledData {
            object: object(version),
            rows,
            duplicates_dropped: 0,
            parts: Vec::new(),
        }
    }

    #[tokio::test]
    async fn the_check_mark_only_moves_forward_and_only_on_the_model_this_run_checked() {
        let pipeline = crate::testing::scratch_pipeline();
        let production = &pipeline.locations.production;
        production
            .put_json(
                names::DEPLOYMENT,
                "deployment record",
                &deployment(None),
                PutMode::CreateOnly,
            )
            .await
            .unwrap();
        let checked = || async {
            production
                .get_json::<DeploymentRecord>(names::DEPLOYMENT, "deployment record", None)
                .await
                .unwrap()
                .1
                .checked_against
                .map(|c| (c.data.version_id, c.rows, c.run_id))
        };

        let newer = compiled("v2", 20);
        assert!(
            mark_checked(&pipeline, "m", &newer, None, "run-b")
                .await
                .unwrap()
                .is_some()
        );
        assert_eq!(checked().await, Some(("v2".into(), 20, "run-b".into())));
        // A slower run that checked older data leaves the newer mark alone; so does a repeat.
        let older = compiled("v1", 10);
        assert!(
            mark_checked(&pipeline, "m", &older, None, "run-a")
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            mark_checked(&pipeline, "m", &newer, None, "run-c")
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(checked().await, Some(("v2".into(), 20, "run-b".into())));
        // Another model was deployed meanwhile: nothing is marked, the run is told to go again.
        let error = mark_checked(&pipeline, "other", &compiled("v3", 30), None, "run-d")
            .await
            .unwrap_err();
        assert!(
            matches!(error, StepError::ConcurrentUpdate { .. }),
            "{error}"
        );
        assert_eq!(checked().await, Some(("v2".into(), 20, "run-b".into())));
    }
}
