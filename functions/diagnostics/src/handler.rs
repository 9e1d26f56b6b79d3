//! The diagnostics handler, apart from `main` so tests call it with a pipeline over temporary
//! local stores: runs the diagnostics of the deployed model and answers with where the record
//! was written and its short form (the full record, with one prediction per row, stays in the
//! reports location: a Lambda response is limited to 6 MB).

use serde::Serialize;
use serde_json::Value;
use shared::events::step_input;
use shared::invocation::{Failure, invoke};
use shared::lambda::LambdaEvent;
use shared::records::ObjectRef;
use shared::records::{MissingShare, Timings};
use shared::steps::Pipeline;
use shared::steps::diagnostics::{TimingSource, run_diagnostics_with};

/// What one invocation did.
#[derive(Debug, Serialize)]
pub struct DiagnosticsResponse {
    pub run_id: String,
    /// The diagnostics record as written.
    pub diagnostics: ObjectRef,
    /// The deployed model the predictions are from.
    pub model: ObjectRef,
    pub predictions: usize,
    pub compiled_rows: u64,
    pub missing_values: Vec<MissingShare>,
    pub timings: Option<Timings>,
    pub timing_error: Option<String>,
    /// Direct dependencies with a newer release, as `name current -> latest`.
    pub outdated_dependencies: Vec<String>,
}

/// Handles one invocation.
pub async fn handle(
    pipeline: &Pipeline,
    event: LambdaEvent<Value>,
) -> Result<DiagnosticsResponse, Failure> {
    invoke("diagnostics", |run_id| async move {
        step_input(&event.payload)?;
        // The deploying run's timings unless re-timing on scratch storage is asked for.
        let timing = match event.payload.get("retime").and_then(Value::as_bool) {
            Some(true) => TimingSource::Retime,
            _ => TimingSource::DeployingRun,
        };
        let (record, written) = run_diagnostics_with(pipeline, &run_id, timing).await?;
        let outdated_dependencies = record
            .dependencies
            .iter()
            .filter(|d| d.status == shared::dependencies::Freshness::Outdated)
            .map(|d| {
                format!(
                    "{} {} -> {}",
                    d.name,
                    d.current,
                    d.latest.as_deref().unwrap_or("?")
                )
            })
            .collect();
        Ok(DiagnosticsResponse {
            run_id,
            diagnostics: written,
            model: record.predictions.model,
            predictions: record.predictions.rows.len(),
            compiled_rows: record.summary.rows,
            missing_values: record.missing_values,
            timings: record.timings,
            timing_error: record.timing_error,
            outdated_dependencies,
        })
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::invocation::PERMANENT_ERROR;
    use shared::records::names;
    use shared::steps::fullprocess::run_full_process;
    use shared::testing::{event_fixtures, lambda_event, local_pipeline, place_seed_source_files};

    #[tokio::test]
    async fn every_fixture_diagnoses_the_deployed_model() {
        let dir = tempfile::tempdir().unwrap();
        let (_, pipeline) = local_pipeline(dir.path());
        let failure = handle(&pipeline, lambda_event(Value::Null))
            .await
            .unwrap_err();
        assert_eq!(
            failure.error_type(),
            PERMANENT_ERROR,
            "nothing deployed yet"
        );

        place_seed_source_files(dir.path());
        let bootstrap = run_full_process(&pipeline, "seed").await.unwrap();
        let fixtures = event_fixtures();
        for (name, fixture) in &fixtures {
            let response = handle(&pipeline, lambda_event(fixture.clone()))
                .await
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(Some(response.model), bootstrap.model_after, "{name}");
            assert_eq!(response.predictions, 5, "one per test row");
            assert_eq!(response.missing_values.len(), 5);
            let timings = response
                .timings
                .unwrap_or_else(|| panic!("{:?}", response.timing_error));
            assert_eq!(
                timings.run_id.as_deref(),
                Some("seed"),
                "the deploying run's"
            );
        }
        let retimed = handle(&pipeline, lambda_event(serde_json::json!({"retime": true})))
            .await
            .unwrap();
        let timings = retimed.timings.unwrap();
        assert_eq!((timings.run_id, timings.source_files), (None, 2));
        assert!(timings.scratch_location.unwrap().starts_with("memory://"));
        let written = pipeline
            .locations
            .reports
            .list_versions(names::DIAGNOSTICS)
            .await
            .unwrap();
        assert_eq!(
            written.len(),
            fixtures.len() + 2,
            "the bootstrap's, then one each, then the re-timed one"
        );
    }
}
