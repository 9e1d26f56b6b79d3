//! The training handler, apart from `main` so tests call it with a pipeline over temporary
//! local stores: reads the plain input (nothing in it is used; it is only checked to be a JSON
//! object or `null`), trains on the compiled data the ingestion record names, and answers with
//! the new model version.

use serde::Serialize;
use serde_json::Value;
use shared::events::step_input;
use shared::invocation::{Failure, invoke};
use shared::lambda::LambdaEvent;
use shared::records::ObjectRef;
use shared::steps::Pipeline;
use shared::steps::training::train_model;

/// What one invocation did.
#[derive(Debug, Serialize)]
pub struct TrainingResponse {
    pub run_id: String,
    /// The new version of the model artifact (the scoring function's `model_version`).
    pub model_version: String,
    pub model: ObjectRef,
    /// Training rows used (rows with a missing `exited` are left out).
    pub rows_used: usize,
    pub elapsed_ms: f64,
}

/// Handles one invocation.
pub async fn handle(
    pipeline: &Pipeline,
    event: LambdaEvent<Value>,
) -> Result<TrainingResponse, Failure> {
    invoke("training", |run_id| async move {
        step_input(&event.payload)?;
        let trained = train_model(pipeline).await?;
        Ok(TrainingResponse {
            run_id,
            model_version: trained.artifact.version_id.clone(),
            model: trained.artifact,
            rows_used: trained.model.rows.rows_used,
            elapsed_ms: trained.elapsed_ms,
        })
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::invocation::PERMANENT_ERROR;
    use shared::records::names;
    use shared::steps::ingestion::{IngestScope, ingest};
    use shared::testing::{event_fixtures, lambda_event, local_pipeline, place_seed_source_files};

    #[tokio::test]
    async fn without_compiled_data_it_fails_permanently() {
        let dir = tempfile::tempdir().unwrap();
        let (_, pipeline) = local_pipeline(dir.path());
        let failure = handle(&pipeline, lambda_event(Value::Null))
            .await
            .unwrap_err();
        assert_eq!(failure.error_type(), PERMANENT_ERROR);
        assert!(failure.message.contains("no compiled data"), "{failure}");
    }

    #[tokio::test]
    async fn every_fixture_trains_a_new_model_version() {
        let dir = tempfile::tempdir().unwrap();
        let (_, pipeline) = local_pipeline(dir.path());
        place_seed_source_files(dir.path());
        ingest(&pipeline, &IngestScope::All, "seed").await.unwrap();

        let fixtures = event_fixtures();
        let mut versions = Vec::new();
        for (name, fixture) in &fixtures {
            let response = handle(&pipeline, lambda_event(fixture.clone()))
                .await
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(
                response.rows_used, 26,
                "{name}: the source files less duplicates"
            );
            assert_eq!(response.model.version_id, response.model_version);
            versions.push(response.model_version);
        }
        let stored = pipeline
            .locations
            .models
            .list_versions(names::MODEL)
            .await
            .unwrap();
        assert_eq!(stored.len(), fixtures.len());
        assert_eq!(stored[0].version_id, versions[versions.len() - 1]);

        let failure = handle(&pipeline, lambda_event(Value::from("train")))
            .await
            .unwrap_err();
        assert_eq!(failure.error_type(), PERMANENT_ERROR);
    }
}
