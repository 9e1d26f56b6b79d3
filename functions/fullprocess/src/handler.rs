//! The full-process handler, apart from `main` so tests call it with a pipeline over temporary
//! local stores: classifies what triggered it (for the logs and the answer only: the full
//! process takes no parameters) and runs it over every new source file.

use std::time::SystemTime;

use serde::Serialize;
use serde_json::Value;
use shared::events::{Trigger, full_process_trigger};
use shared::invocation::{Failure, invoke};
use shared::lambda::LambdaEvent;
use shared::records::RunRecord;
use shared::steps::Pipeline;
use shared::steps::deadline::Deadline;
use shared::steps::fullprocess::run_full_process;

/// What one invocation did: its trigger and the run record (also written to the reports
/// location when the run found new data).
#[derive(Debug, Serialize)]
pub struct FullProcessResponse {
    pub trigger: Trigger,
    #[serde(flatten)]
    pub run: RunRecord,
}

/// Handles one invocation.
pub async fn handle(
    pipeline: &Pipeline,
    event: LambdaEvent<Value>,
) -> Result<FullProcessResponse, Failure> {
    invoke("fullprocess", |run_id| async move {
        let trigger = full_process_trigger(&event.payload);
        tracing::info!(?trigger, "full process triggered");
        let deadline = Deadline::for_invocation(event.context.deadline(), SystemTime::now());
        let pipeline = pipeline.clone().with_deadline(deadline);
        let run = run_full_process(&pipeline, &run_id).await?;
        Ok(FullProcessResponse { trigger, run })
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::records::Decision;
    use shared::records::{IngestionRecord, names};
    use shared::testing::{event_fixture, event_fixtures, lambda_event, local_pipeline, repo_path};

    fn add_source_file(root: &std::path::Path, from: &str, name: &str) {
        std::fs::copy(repo_path(from), root.join("source").join(name)).unwrap();
    }

    #[tokio::test]
    async fn the_schedule_bootstraps_then_finds_nothing_then_checks_new_data_for_drift() {
        let dir = tempfile::tempdir().unwrap();
        let (_, pipeline) = local_pipeline(dir.path());
        add_source_file(dir.path(), "data/sourcedata/dataset3.csv", "dataset3.csv");
        add_source_file(dir.path(), "data/sourcedata/dataset4.csv", "dataset4.csv");

        let first = handle(&pipeline, lambda_event(event_fixture("schedule.json")))
            .await
            .unwrap();
        assert!(matches!(first.trigger, Trigger::Schedule { .. }));
        assert_eq!(
            first.run.decision,
            Decision::Bootstrap,
            "{}",
            first.run.reason
        );

        for (name, fixture) in event_fixtures() {
            let response = handle(&pipeline, lambda_event(fixture))
                .await
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(response.run.decision, Decision::NoNewData, "{name}");
        }

        add_source_file(dir.path(), "data/practicedata/dataset1.csv", "dataset1.csv");
        let third = handle(&pipeline, lambda_event(Value::Null)).await.unwrap();
        assert!(matches!(third.trigger, Trigger::Plain { .. }));
        assert!(
            // A dozen new rows are too few for the drift rule's test: "too few rows to tell".
            matches!(third.run.decision, Decision::TooFewRows),
            "{:?}: {}",
            third.run.decision,
            third.run.reason
        );
        assert!(third.run.new_data_f1.is_some());

        let (_, record) = pipeline
            .locations
            .compiled_data
            .get_json::<IngestionRecord>(names::INGESTION_RECORD, "ingestion record", None)
            .await
            .unwrap();
        let keys: Vec<_> = record.files.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(keys, ["dataset3.csv", "dataset4.csv", "dataset1.csv"]);

        let json = serde_json::to_value(&third).unwrap();
        assert_eq!(json["trigger"]["kind"], "plain");
        assert!(
            json["decision"].is_string(),
            "the run record is flattened: {json}"
        );
    }

    #[tokio::test]
    async fn an_invocation_nearly_out_of_time_stops_before_its_first_step_with_a_retryable_error() {
        let dir = tempfile::tempdir().unwrap();
        let (_, pipeline) = local_pipeline(dir.path());
        add_source_file(dir.path(), "data/sourcedata/dataset3.csv", "dataset3.csv");
        // Four seconds left: less than the least safety margin (five), so no step may start.
        let mut event = lambda_event(event_fixture("schedule.json"));
        let deadline = std::time::SystemTime::now() + std::time::Duration::from_secs(4);
        event.context.deadline = deadline
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let failure = handle(&pipeline, event).await.unwrap_err();
        assert_eq!(failure.error_type(), shared::invocation::RETRYABLE_ERROR);
        assert!(
            failure.message.contains("stopped before ingestion"),
            "{}",
            failure.message
        );
        let compiled = dir.path().join("store/compiled");
        assert!(
            std::fs::read_dir(&compiled).unwrap().next().is_none(),
            "nothing written"
        );

        // With time enough (the default context has no deadline), the same event bootstraps.
        let run = handle(&pipeline, lambda_event(event_fixture("schedule.json")))
            .await
            .unwrap();
        assert_eq!(run.run.decision, Decision::Bootstrap, "{}", run.run.reason);
    }
}
