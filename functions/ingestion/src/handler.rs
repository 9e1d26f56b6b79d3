//! The ingestion handler, apart from `main` so tests call it with a pipeline over temporary
//! local stores. It reads the S3 event (`shared::events`), and when the event names CSV object
//! versions of the source data it runs the full process scoped to exactly those versions: they
//! are ingested, and new rows are checked for drift at once. A redelivered event names versions
//! already in the ingestion record, so the run finds nothing new and writes nothing.

use std::time::SystemTime;

use serde::Serialize;
use serde_json::Value;
use shared::events::{IngestionRequest, SourceFilter, ingestion_request};
use shared::invocation::{Failure, invoke};
use shared::lambda::LambdaEvent;
use shared::records::RunRecord;
use shared::steps::Pipeline;
use shared::steps::deadline::Deadline;
use shared::steps::fullprocess::run_full_process_for;
use shared::steps::ingestion::IngestScope;

/// What one invocation did.
#[derive(Debug, Serialize)]
pub struct IngestionResponse {
    pub run_id: String,
    /// The object versions the event named, and the records skipped with their reasons.
    #[serde(flatten)]
    pub request: IngestionRequest,
    /// The full process over those objects; `None` when the event named none.
    pub run: Option<RunRecord>,
}

/// Handles one S3 event notification.
pub async fn handle(
    pipeline: &Pipeline,
    source: &SourceFilter,
    event: LambdaEvent<Value>,
) -> Result<IngestionResponse, Failure> {
    invoke("ingestion", |run_id| async move {
        let request = ingestion_request(&event.payload, source)?;
        if request.objects.is_empty() {
            tracing::info!(
                skipped = request.skipped.len(),
                "the event names no CSV object of the source data; nothing to do"
            );
            return Ok(IngestionResponse {
                run_id,
                request,
                run: None,
            });
        }
        tracing::info!(objects = ?request.objects, "ingesting the object versions the event names");
        let scope = IngestScope::Objects(request.objects.clone());
        let deadline = Deadline::for_invocation(event.context.deadline(), SystemTime::now());
        let pipeline = pipeline.clone().with_deadline(deadline);
        let run = run_full_process_for(&pipeline, &scope, &run_id).await?;
        Ok(IngestionResponse {
            run_id,
            request,
            run: Some(run),
        })
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use shared::config::Config;
    use shared::invocation::PERMANENT_ERROR;
    use shared::records::Decision;
    use shared::records::{IngestionRecord, names};
    use shared::store::PutMode;
    use shared::testing::{
        event_fixture, event_fixtures, lambda_event, local_pipeline, place_seed_source_files,
        repo_path,
    };
    use std::path::Path;

    const UNICODE_KEY: &str = "incoming/2026-11/Clients Müller & Søn (März).csv";

    fn setup(root: &Path) -> (Config, Pipeline, SourceFilter) {
        let (config, pipeline) = local_pipeline(root);
        let source = SourceFilter::for_location(&config.source_data);
        (config, pipeline, source)
    }

    /// Every file under `root`: an invocation that writes nothing leaves this unchanged.
    fn snapshot(root: &Path) -> Vec<(std::path::PathBuf, u64)> {
        let mut found = Vec::new();
        let mut pending = vec![root.to_path_buf()];
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let entry = entry.unwrap();
                if entry.file_type().unwrap().is_dir() {
                    pending.push(entry.path());
                } else {
                    found.push((entry.path(), entry.metadata().unwrap().len()));
                }
            }
        }
        found.sort();
        found
    }

    async fn ingestion_record(pipeline: &Pipeline) -> IngestionRecord {
        pipeline
            .locations
            .compiled_data
            .get_json::<IngestionRecord>(names::INGESTION_RECORD, "ingestion record", None)
            .await
            .unwrap()
            .1
    }

    #[tokio::test]
    async fn the_unicode_key_event_ingests_its_version_once() {
        let dir = tempfile::tempdir().unwrap();
        let (_, pipeline, source) = setup(dir.path());
        let body = std::fs::read(repo_path("data/sourcedata/dataset3.csv")).unwrap();
        let written = pipeline
            .locations
            .source_data
            .put(UNICODE_KEY, Bytes::from(body), PutMode::Overwrite)
            .await
            .unwrap();

        // As recorded, the fixture names a version this store never had: nothing to ingest.
        let fixture = event_fixture("s3-put-unicode-key.json");
        let response = handle(&pipeline, &source, lambda_event(fixture.clone()))
            .await
            .unwrap();
        assert_eq!(response.request.objects[0].key, UNICODE_KEY);
        let run = response.run.unwrap();
        assert_eq!(run.decision, Decision::NoNewData, "{}", run.reason);

        // The same event naming the version the store gave the upload: ingested, bootstrapped.
        let mut fixture = fixture;
        fixture["Records"][0]["s3"]["object"]["versionId"] =
            Value::from(written.version_id.clone());
        let response = handle(&pipeline, &source, lambda_event(fixture.clone()))
            .await
            .unwrap();
        let run = response.run.unwrap();
        assert_eq!(run.decision, Decision::Bootstrap, "{}", run.reason);
        assert_eq!(run.new_files.len(), 1);
        assert_eq!(run.new_files[0].key, UNICODE_KEY);
        assert_eq!(run.new_files[0].version_id, written.version_id);

        // Delivered again (at-least-once): nothing new, nothing written anywhere.
        let before = snapshot(dir.path());
        let response = handle(&pipeline, &source, lambda_event(fixture))
            .await
            .unwrap();
        assert_eq!(response.run.unwrap().decision, Decision::NoNewData);
        assert_eq!(snapshot(dir.path()), before);
        let record = ingestion_record(&pipeline).await;
        assert_eq!(record.files.len(), 1);
    }

    #[tokio::test]
    async fn the_multi_record_event_ingests_every_csv_and_skips_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let (_, pipeline, source) = setup(dir.path());
        place_seed_source_files(dir.path());
        std::fs::create_dir_all(dir.path().join("source/notes")).unwrap();
        std::fs::write(dir.path().join("source/notes/README.txt"), "not data").unwrap();

        let response = handle(
            &pipeline,
            &source,
            lambda_event(event_fixture("s3-put-multi.json")),
        )
        .await
        .unwrap();
        assert_eq!(response.request.skipped.len(), 1);
        assert_eq!(response.request.skipped[0].key, "notes/README.txt");
        let run = response.run.unwrap();
        assert_eq!(run.decision, Decision::Bootstrap, "{}", run.reason);
        let keys: Vec<_> = run.new_files.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(keys, ["dataset3.csv", "dataset4.csv"]);

        let again = handle(
            &pipeline,
            &source,
            lambda_event(event_fixture("s3-put-multi.json")),
        )
        .await
        .unwrap();
        assert_eq!(again.run.unwrap().decision, Decision::NoNewData);
        assert_eq!(ingestion_record(&pipeline).await.files.len(), 2);
        let json = serde_json::to_value(&again.request).unwrap();
        assert_eq!(json["skipped"][0]["reason"], "not_csv");
    }

    #[tokio::test]
    async fn every_fixture_is_handled_and_non_s3_input_is_a_permanent_error() {
        let dir = tempfile::tempdir().unwrap();
        let (_, pipeline, source) = setup(dir.path());
        for (name, fixture) in event_fixtures() {
            let result = handle(&pipeline, &source, lambda_event(fixture)).await;
            if name.starts_with("s3-") {
                let response = result.unwrap_or_else(|e| panic!("{name}: {e}"));
                // Nothing is in the source yet: the named objects do not exist.
                assert!(
                    response
                        .run
                        .is_none_or(|run| run.decision == Decision::NoNewData),
                    "{name}"
                );
            } else {
                let failure = result.unwrap_err();
                assert_eq!(failure.error_type(), PERMANENT_ERROR, "{name}");
                assert!(failure.message.contains("S3 event"), "{name}: {failure}");
            }
        }
    }
}
