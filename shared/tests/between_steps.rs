//! The pipeline's `between_steps` hook, which the binaries set to give freed memory back to the
//! operating system: the full process calls it after every step it records, and diagnostics once
//! more between its own summary and its timing run. The library calls nothing else of the kind.

use std::sync::atomic::{AtomicUsize, Ordering};

use shared::records::Decision;
use shared::steps::fullprocess::run_full_process;
use shared::testing::{local_pipeline, place_seed_source_files};

static CALLS: AtomicUsize = AtomicUsize::new(0);

fn count_call() {
    CALLS.fetch_add(1, Ordering::SeqCst);
}

#[tokio::test]
async fn the_full_process_calls_the_hook_between_its_steps() {
    let dir = tempfile::tempdir().unwrap();
    let (_, mut pipeline) = local_pipeline(dir.path());
    place_seed_source_files(dir.path());
    pipeline.between_steps = count_call;

    let record = run_full_process(&pipeline, "run-hook").await.unwrap();
    assert_eq!(record.decision, Decision::Bootstrap, "{}", record.reason);
    let steps: Vec<&str> = record.steps.iter().map(|s| s.step.as_str()).collect();
    assert_eq!(
        steps,
        [
            "ingestion",
            "training",
            "scoring",
            "deployment",
            "diagnostics",
            "reporting",
            "risk_list",
            "html_report"
        ]
    );
    assert_eq!(CALLS.load(Ordering::SeqCst), steps.len() + 1);
}
