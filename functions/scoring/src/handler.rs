//! The scoring handler, apart from `main` so tests call it with a pipeline over temporary
//! local stores: loads the named model version (or the latest) from the models location,
//! scores it on the test data, and answers with the model and score versions, which is exactly
//! the input the deployment function takes.

use serde::Serialize;
use serde_json::Value;
use shared::events::step_input;
use shared::invocation::{Failure, invoke};
use shared::lambda::LambdaEvent;
use shared::model::ClassificationMetrics;
use shared::records::ObjectRef;
use shared::steps::Pipeline;
use shared::steps::scoring::score_model;
use shared::steps::training::load_model;

/// What one invocation did.
#[derive(Debug, Serialize)]
pub struct ScoringResponse {
    pub run_id: String,
    /// The model version scored.
    pub model_version: String,
    /// The new score record version (the deployment function's `score_version`).
    pub score_version: String,
    pub score: ObjectRef,
    pub f1: f64,
    pub metrics: ClassificationMetrics,
}

/// Handles one invocation.
pub async fn handle(
    pipeline: &Pipeline,
    event: LambdaEvent<Value>,
) -> Result<ScoringResponse, Failure> {
    invoke("scoring", |run_id| async move {
        let input = step_input(&event.payload)?;
        let (model_ref, model) =
            load_model(&pipeline.locations.models, input.model_version.as_deref()).await?;
        let scored = score_model(pipeline, &model_ref, &model, &run_id).await?;
        Ok(ScoringResponse {
            run_id,
            model_version: model_ref.version_id,
            score_version: scored.artifact.version_id.clone(),
            score: scored.artifact,
            f1: scored.record.f1(),
            metrics: scored.record.metrics,
        })
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use shared::invocation::PERMANENT_ERROR;
    use shared::steps::ingestion::{IngestScope, ingest};
    use shared::steps::training::train_model;
    use shared::testing::{event_fixtures, lambda_event, local_pipeline, place_seed_source_files};

    #[tokio::test]
    async fn every_fixture_scores_the_latest_model_and_a_version_can_be_named() {
        let dir = tempfile::tempdir().unwrap();
        let (_, pipeline) = local_pipeline(dir.path());

        let failure = handle(&pipeline, lambda_event(json!({})))
            .await
            .unwrap_err();
        assert_eq!(failure.error_type(), PERMANENT_ERROR, "no model yet");

        place_seed_source_files(dir.path());
        ingest(&pipeline, &IngestScope::All, "seed").await.unwrap();
        let first = train_model(&pipeline).await.unwrap().artifact;
        let latest = train_model(&pipeline).await.unwrap().artifact;

        for (name, fixture) in event_fixtures() {
            let response = handle(&pipeline, lambda_event(fixture))
                .await
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(response.model_version, latest.version_id, "{name}");
            assert!((0.0..=1.0).contains(&response.f1));
            assert_eq!(response.metrics.rows, 5, "the seed's test file");
        }

        let named = handle(
            &pipeline,
            lambda_event(json!({"model_version": first.version_id})),
        )
        .await
        .unwrap();
        assert_eq!(named.model_version, first.version_id);

        let failure = handle(
            &pipeline,
            lambda_event(json!({"model_version": "no-such-version"})),
        )
        .await
        .unwrap_err();
        assert_eq!(failure.error_type(), PERMANENT_ERROR);
        assert!(failure.message.contains("no-such-version"), "{failure}");
    }
}
