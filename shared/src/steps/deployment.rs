//! Deployment: copies a model version, its score record and the ingestion record it was trained
//! from to the production location as new versions there, then writes the deployment record
//! naming exactly those versions. The record is written last and readers only follow it, so
//! production is never seen half-updated; a rollback is a deployment record naming older
//! versions (every version is kept).

use bytes::Bytes;
use chrono::Utc;

use super::training::load_model;
use super::{Pipeline, StepError};
use crate::location::RecordError;
use crate::model::TrainedModel;
use crate::records::{DeploymentRecord, ObjectRef, ScoreRecord, names};
use crate::store::{PutMode, StoreError};

/// What a deployment wrote.
#[derive(Debug, Clone)]
pub struct DeploymentOutcome {
    pub record: DeploymentRecord,
    /// Every object written to production, the deployment record last.
    pub written: Vec<ObjectRef>,
}

/// Deploys the model version `model` and score version `score` (both in `models`) with the
/// current ingestion record.
pub async fn deploy(
    pipeline: &Pipeline,
    model: &ObjectRef,
    score: &ObjectRef,
    run_id: &str,
) -> Result<DeploymentOutcome, StepError> {
    let locations = &pipeline.locations;
    let (models, production, compiled) = (
        &locations.models,
        &locations.production,
        &locations.compiled_data,
    );
    let current = production
        .get_json_if_exists::<DeploymentRecord>(names::DEPLOYMENT, "deployment record")
        .await?;

    let (_, score_record) = models
        .get_json::<ScoreRecord>(names::SCORE, "score record", Some(&score.version_id))
        .await?;
    let ingestion_source = compiled.head(names::INGESTION_RECORD, None).await?;

    let model_copy = models
        .copy_to(
            names::MODEL,
            Some(&model.version_id),
            production,
            names::MODEL,
        )
        .await?;
    let score_copy = models
        .copy_to(
            names::SCORE,
            Some(&score.version_id),
            production,
            names::SCORE,
        )
        .await?;
    let ingestion_copy = compiled
        .copy_to(
            names::INGESTION_RECORD,
            Some(&ingestion_source.version_id),
            production,
            names::INGESTION_RECORD,
        )
        .await?;
    // The seed-compatible text files, derived from the records just copied.
    let score_text = production
        .put(
            names::LATEST_SCORE_TXT,
            Bytes::from(format!("{}\n", score_record.f1())),
            PutMode::Overwrite,
        )
        .await?;
    let (_, ingestion) = production
        .get_json::<crate::records::IngestionRecord>(
            names::INGESTION_RECORD,
            "ingestion record",
            Some(&ingestion_copy.version_id),
        )
        .await?;
    let ingested_text = production
        .put(
            names::INGESTED_FILES_TXT,
            Bytes::from(ingestion.ingested_files_text()),
            PutMode::Overwrite,
        )
        .await?;

    let record = DeploymentRecord {
        model: ObjectRef::new(production, &model_copy),
        model_source: model.clone(),
        score: ObjectRef::new(production, &score_copy),
        score_source: score.clone(),
        ingestion_record: ObjectRef::new(production, &ingestion_copy),
        ingestion_record_source: ObjectRef::new(compiled, &ingestion_source),
        f1: score_record.f1(),
        deployed_at: Utc::now(),
        run_id: run_id.to_string(),
        // Set once the full process has finished this deployment ([`super::repair`]).
        checked_against: None,
    };
    let mode = match current {
        Some((meta, _)) => PutMode::ReplaceIfMatch(meta.etag),
        None => PutMode::CreateOnly,
    };
    let deployment = production
        .put_json(names::DEPLOYMENT, "deployment record", &record, mode)
        .await
        .map_err(|e| match e {
            RecordError::Store(StoreError::PreconditionFailed { detail, .. }) => {
                StepError::ConcurrentUpdate {
                    what: production.object_url(names::DEPLOYMENT),
                    detail,
                }
            }
            other => other.into(),
        })?;
    tracing::info!(
        model_version = %record.model.version_id,
        source_model_version = %model.version_id,
        f1 = record.f1,
        "deployed"
    );
    let written = vec![
        record.model.clone(),
        record.score.clone(),
        record.ingestion_record.clone(),
        ObjectRef::new(production, &score_text),
        ObjectRef::new(production, &ingested_text),
        ObjectRef::new(production, &deployment),
    ];
    Ok(DeploymentOutcome { record, written })
}

/// The current deployment record, if anything was ever deployed.
pub async fn current_deployment(
    pipeline: &Pipeline,
) -> Result<Option<DeploymentRecord>, StepError> {
    Ok(pipeline
        .locations
        .production
        .get_json_if_exists::<DeploymentRecord>(names::DEPLOYMENT, "deployment record")
        .await?
        .map(|(_, record)| record))
}

/// The deployment record and the exact model version it names.
pub async fn deployed_model(
    pipeline: &Pipeline,
) -> Result<(DeploymentRecord, TrainedModel), StepError> {
    let production = &pipeline.locations.production;
    let record = current_deployment(pipeline)
        .await?
        .ok_or_else(|| StepError::NoDeployment {
            location: production.url().to_string(),
        })?;
    let (_, model) = load_model(production, Some(&record.model.version_id)).await?;
    Ok((record, model))
}

/// Deploys a model version with a score record of that version, both from the models
/// location: with nothing named, the latest model and the latest score, which must be of that
/// model; with a model version, the newest score record of it; with a score version, that
/// score and the model it scored. A model that was never scored is refused
/// ([`StepError::NotScored`]): production always says how well its model does.
pub async fn deploy_scored(
    pipeline: &Pipeline,
    model_version: Option<&str>,
    score_version: Option<&str>,
    run_id: &str,
) -> Result<DeploymentOutcome, StepError> {
    let models = &pipeline.locations.models;
    let model_version = match (model_version, score_version) {
        (Some(version), _) => version.to_string(),
        (None, Some(score_version)) => {
            let (_, score) = models
                .get_json::<ScoreRecord>(names::SCORE, "score record", Some(score_version))
                .await?;
            score.model.version_id
        }
        (None, None) => models.head(names::MODEL, None).await?.version_id,
    };
    // A version that does not exist is reported as such, not as "never scored".
    models.head(names::MODEL, Some(&model_version)).await?;
    let not_scored = || StepError::NotScored {
        model_version: model_version.clone(),
        location: models.url().to_string(),
    };
    let (score_meta, score) = match score_version {
        Some(version) => {
            models
                .get_json::<ScoreRecord>(names::SCORE, "score record", Some(version))
                .await?
        }
        None => {
            let mut found = None;
            // Newest first: the most recent score of this model wins.
            for meta in models.list_versions(names::SCORE).await? {
                let (meta, score) = models
                    .get_json::<ScoreRecord>(names::SCORE, "score record", Some(&meta.version_id))
                    .await?;
                if score.model.version_id == model_version {
                    found = Some((meta, score));
                    break;
                }
            }
            found.ok_or_else(not_scored)?
        }
    };
    if score.model.version_id != model_version {
        return Err(StepError::ScoreMismatch {
            score_version: score_meta.version_id,
            scored_model: score.model.version_id,
            model_version,
        });
    }
    let (model_ref, _) = load_model(models, Some(&model_version)).await?;
    let score_ref = ObjectRef::new(models, &score_meta);
    deploy(pipeline, &model_ref, &score_ref, run_id).await
}
