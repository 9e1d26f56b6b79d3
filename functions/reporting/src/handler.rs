//! The reporting handler, apart from `main` so tests call it with a pipeline over temporary
//! local stores: writes the confusion-matrix plot and the JSON and Markdown reports of the
//! deployed model on the test data, and answers with their versions and the metrics.

use serde::Serialize;
use serde_json::Value;
use shared::events::step_input;
use shared::invocation::{Failure, invoke};
use shared::lambda::LambdaEvent;
use shared::model::ClassificationMetrics;
use shared::records::ObjectRef;
use shared::steps::Pipeline;
use shared::steps::reporting::run_reporting;

/// What one invocation did.
#[derive(Debug, Serialize)]
pub struct ReportingResponse {
    pub run_id: String,
    /// The deployed model reported on.
    pub model: ObjectRef,
    pub metrics: ClassificationMetrics,
    pub confusion_matrix_png: ObjectRef,
    pub report_json: ObjectRef,
    pub report_markdown: ObjectRef,
    /// The HTML page (`index.html`) written for people.
    pub report_html: Option<ObjectRef>,
}

/// Handles one invocation.
pub async fn handle(
    pipeline: &Pipeline,
    event: LambdaEvent<Value>,
) -> Result<ReportingResponse, Failure> {
    invoke("reporting", |run_id| async move {
        step_input(&event.payload)?;
        let outcome = run_reporting(pipeline, &run_id).await?;
        Ok(ReportingResponse {
            run_id,
            model: outcome.report.model,
            metrics: outcome.report.metrics,
            confusion_matrix_png: outcome.png,
            report_json: outcome.json,
            report_markdown: outcome.markdown,
            report_html: outcome.html.map(|pages| pages.latest),
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
    async fn every_fixture_reports_on_the_deployed_model() {
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
            assert_eq!(response.metrics.rows, 5);
            assert!(
                response
                    .confusion_matrix_png
                    .url
                    .ends_with(names::CONFUSION_MATRIX_PNG)
            );
            let page = response.report_html.expect("the report page");
            assert!(page.url.ends_with("/index.html"), "{name}");
        }
        let reports = &pipeline.locations.reports;
        for name in [
            names::CONFUSION_MATRIX_PNG,
            names::REPORT_JSON,
            names::REPORT_MARKDOWN,
            shared::report::INDEX_HTML,
        ] {
            let versions = reports.list_versions(name).await.unwrap();
            assert_eq!(versions.len(), fixtures.len() + 1, "{name}");
        }
    }
}
