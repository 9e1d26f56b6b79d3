//! The model versions kept in the models location, each with when it was trained, on how many
//! rows, its newest score on the test data and whether it is the one deployed: what a person
//! needs to pick a version for a rollback (`risk models`, then `risk deploy --model-version`).

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::deployment::current_deployment;
use super::training::load_model;
use super::{Pipeline, StepError};
use crate::records::{ScoreRecord, names};

/// One model version in the models location.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelVersion {
    /// The version id in the models location: what `risk deploy --model-version` takes.
    pub version_id: String,
    pub trained_at: DateTime<Utc>,
    /// Rows the model was fitted on.
    pub rows_trained: usize,
    /// The model's decision threshold.
    pub threshold: f64,
    /// F1 of the newest score of this version on the test data (`None`: never scored, so it
    /// cannot be deployed).
    pub f1: Option<f64>,
    pub scored_at: Option<DateTime<Utc>>,
    /// Whether this is the version the deployment record names now.
    pub deployed: bool,
}

/// Every model version in the models location, newest first.
pub async fn list_model_versions(pipeline: &Pipeline) -> Result<Vec<ModelVersion>, StepError> {
    let models = &pipeline.locations.models;
    let deployed = current_deployment(pipeline)
        .await?
        .map(|record| record.model_source.version_id);
    // Each score names the model version it scored; newest first, so the first one seen for a
    // model is its newest.
    let mut scores: Vec<ScoreRecord> = Vec::new();
    for meta in models.list_versions(names::SCORE).await? {
        let (_, score) = models
            .get_json::<ScoreRecord>(names::SCORE, "score record", Some(&meta.version_id))
            .await?;
        scores.push(score);
    }
    let mut versions = Vec::new();
    for meta in models.list_versions(names::MODEL).await? {
        let (_, model) = load_model(models, Some(&meta.version_id)).await?;
        let score = scores
            .iter()
            .find(|s| s.model.version_id == meta.version_id);
        versions.push(ModelVersion {
            deployed: deployed.as_deref() == Some(meta.version_id.as_str()),
            version_id: meta.version_id,
            trained_at: model.metadata.trained_at,
            rows_trained: model.rows.rows_used,
            threshold: model.threshold(),
            f1: score.map(ScoreRecord::f1),
            scored_at: score.map(|s| s.scored_at),
        });
    }
    Ok(versions)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steps::deployment::deploy_scored;
    use crate::steps::fullprocess::run_full_process;
    use crate::steps::scoring::score_model;
    use crate::steps::training::train_model;
    use crate::testing::{local_pipeline, place_seed_source_files};

    #[tokio::test]
    async fn lists_every_version_with_its_score_and_follows_a_rollback() {
        let dir = tempfile::tempdir().unwrap();
        let (_, pipeline) = local_pipeline(dir.path());
        place_seed_source_files(dir.path());
        run_full_process(&pipeline, "run-1").await.unwrap();
        // A second model, trained and scored by hand, then deployed.
        let trained = train_model(&pipeline).await.unwrap();
        let scored = score_model(&pipeline, &trained.artifact, &trained.model, "run-2")
            .await
            .unwrap();
        deploy_scored(&pipeline, None, None, "run-2").await.unwrap();
        // A third, never scored.
        let unscored = train_model(&pipeline).await.unwrap();

        let versions = list_model_versions(&pipeline).await.unwrap();
        assert_eq!(versions.len(), 3);
        assert_eq!(versions[0].version_id, unscored.artifact.version_id);
        assert_eq!((versions[0].f1, versions[0].deployed), (None, false));
        assert_eq!(versions[1].version_id, trained.artifact.version_id);
        assert_eq!(versions[1].f1, Some(scored.record.f1()));
        assert!(versions[1].deployed);
        assert_eq!(versions[1].rows_trained, 26);
        assert!(!versions[2].deployed && versions[2].f1.is_some());

        // Rollback with the listed id: the listing follows.
        let first = versions[2].version_id.clone();
        deploy_scored(&pipeline, Some(&first), None, "run-3")
            .await
            .unwrap();
        let versions = list_model_versions(&pipeline).await.unwrap();
        let deployed: Vec<&str> = versions
            .iter()
            .filter(|v| v.deployed)
            .map(|v| v.version_id.as_str())
            .collect();
        assert_eq!(deployed, [first.as_str()]);
    }
}
