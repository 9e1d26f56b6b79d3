//! The deployment handler, apart from `main` so tests call it with a pipeline over temporary
//! local stores: picks the model and score versions (named in the input, or the latest model
//! with a score of it) and deploys them to production.

use serde::Serialize;
use serde_json::Value;
use shared::events::step_input;
use shared::invocation::{Failure, invoke};
use shared::lambda::LambdaEvent;
use shared::records::DeploymentRecord;
use shared::steps::Pipeline;
use shared::steps::deployment::deploy_scored;

/// What one invocation did.
#[derive(Debug, Serialize)]
pub struct DeploymentResponse {
    pub run_id: String,
    /// The models-location versions that were deployed.
    pub model_version: String,
    pub score_version: String,
    pub deployment: DeploymentRecord,
}

/// Handles one invocation.
pub async fn handle(
    pipeline: &Pipeline,
    event: LambdaEvent<Value>,
) -> Result<DeploymentResponse, Failure> {
    invoke("deployment", |run_id| async move {
        let input = step_input(&event.payload)?;
        let deployment = deploy_scored(
            pipeline,
            input.model_version.as_deref(),
            input.score_version.as_deref(),
            &run_id,
        )
        .await?
        .record;
        Ok(DeploymentResponse {
            run_id,
            model_version: deployment.model_source.version_id.clone(),
            score_version: deployment.score_source.version_id.clone(),
            deployment,
        })
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use shared::invocation::PERMANENT_ERROR;
    use shared::records::names;
    use shared::steps::ingestion::{IngestScope, ingest};
    use shared::steps::scoring::score_model;
    use shared::steps::training::train_model;
    use shared::testing::{event_fixtures, lambda_event, local_pipeline, place_seed_source_files};

    #[tokio::test]
    async fn deploys_scored_models_and_refuses_unscored_ones() {
        let dir = tempfile::tempdir().unwrap();
        let (_, pipeline) = local_pipeline(dir.path());
        place_seed_source_files(dir.path());
        ingest(&pipeline, &IngestScope::All, "seed").await.unwrap();
        let first = train_model(&pipeline).await.unwrap();
        let first_score = score_model(&pipeline, &first.artifact, &first.model, "seed")
            .await
            .unwrap();

        let fixtures = event_fixtures();
        for (name, fixture) in &fixtures {
            let response = handle(&pipeline, lambda_event(fixture.clone()))
                .await
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(response.model_version, first.artifact.version_id, "{name}");
            assert_eq!(response.score_version, first_score.artifact.version_id);
            assert_eq!(response.deployment.f1, first_score.record.f1());
        }
        let production = &pipeline.locations.production;
        let deployments = production.list_versions(names::DEPLOYMENT).await.unwrap();
        assert_eq!(deployments.len(), fixtures.len());

        // A newer model that was never scored: the latest cannot be deployed, nor named.
        let second = train_model(&pipeline).await.unwrap();
        for input in [
            json!({}),
            json!({"model_version": second.artifact.version_id}),
        ] {
            let failure = handle(&pipeline, lambda_event(input)).await.unwrap_err();
            assert_eq!(failure.error_type(), PERMANENT_ERROR);
            assert!(failure.message.contains("no score record"), "{failure}");
        }
        // A version that does not exist is said to be missing, not unscored.
        let failure = handle(
            &pipeline,
            lambda_event(json!({"model_version": "no-such-version"})),
        )
        .await
        .unwrap_err();
        assert_eq!(failure.error_type(), PERMANENT_ERROR);
        assert!(failure.message.contains("no-such-version"), "{failure}");
        assert!(!failure.message.contains("no score record"), "{failure}");
        // A score of one model named with another model: refused.
        let failure = handle(
            &pipeline,
            lambda_event(json!({
                "model_version": second.artifact.version_id,
                "score_version": first_score.artifact.version_id
            })),
        )
        .await
        .unwrap_err();
        assert!(
            failure.message.contains("is for model version"),
            "{failure}"
        );

        // The older, scored model by name (a rollback), and by its score version.
        let by_model = handle(
            &pipeline,
            lambda_event(json!({"model_version": first.artifact.version_id})),
        )
        .await
        .unwrap();
        assert_eq!(by_model.score_version, first_score.artifact.version_id);
        let by_score = handle(
            &pipeline,
            lambda_event(json!({"score_version": first_score.artifact.version_id})),
        )
        .await
        .unwrap();
        assert_eq!(by_score.model_version, first.artifact.version_id);
        assert_eq!(
            production
                .list_versions(names::DEPLOYMENT)
                .await
                .unwrap()
                .len(),
            fixtures.len() + 2
        );
    }
}
