//! The ingestion Lambda function, triggered by S3 `ObjectCreated` events on the source-data
//! bucket. It ingests exactly the CSV object versions the event names and, when any of them is
//! new, runs the rest of the full process at once (drift check, and retrain, rescore, redeploy,
//! diagnostics and reporting on drift), so new data does not wait for the schedule. The
//! configuration, S3 client and pipeline are built once per cold start; the handler is in
//! `handler.rs`.

mod handler;

use shared::events::SourceFilter;

fn main() -> Result<(), shared::lambda::Error> {
    shared::lambda::run_with(
        |config, pipeline| (pipeline, SourceFilter::for_location(&config.source_data)),
        async |(pipeline, source), event| handler::handle(pipeline, source, event).await,
    )
}
