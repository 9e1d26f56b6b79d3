//! Reporting: the deployed model scored on the test data, drawn as a confusion-matrix PNG and
//! written up as a JSON report (for machines) and a Markdown report (for people), all in
//! `reports` as new versions.

use std::fmt::Write as _;

use bytes::Bytes;
use chrono::Utc;

use super::deployment::deployed_model;
use super::scoring::load_test_data;
use super::{Pipeline, StepError};
use crate::drift::report::bootstrap_f1_and_auc;
use crate::model::confusion_matrix_png;
use crate::records::{Coefficient, ObjectRef, Report, TestIntervals, names};
use crate::store::PutMode;

/// What reporting wrote.
#[derive(Debug, Clone)]
pub struct ReportOutcome {
    pub report: Report,
    pub json: ObjectRef,
    pub markdown: ObjectRef,
    pub png: ObjectRef,
    /// The HTML page and its per-run copy ([`crate::report`]); the full process writes them
    /// itself, after its run is decided.
    pub html: Option<crate::report::HtmlPages>,
}

/// The reporting step: [`write_reports`], then the HTML page.
pub async fn run_reporting(pipeline: &Pipeline, run_id: &str) -> Result<ReportOutcome, StepError> {
    let mut outcome = write_reports(pipeline, run_id).await?;
    outcome.html = Some(crate::report::publish_html(pipeline, run_id, None, None).await?);
    Ok(outcome)
}

/// Scores the deployed model on the test data and writes the plot and both reports.
pub async fn write_reports(pipeline: &Pipeline, run_id: &str) -> Result<ReportOutcome, StepError> {
    let (deployment, model) = deployed_model(pipeline).await?;
    let test = load_test_data(pipeline).await?;
    // The metrics, and the bootstrap intervals the HTML page shows (drawn once per deployment
    // and test data), over the same scored rows.
    let (confidence, resamples) = (
        pipeline.lifecycle.confidence,
        pipeline.lifecycle.bootstrap_resamples,
    );
    let scored = model.clone();
    let (evaluation, test_intervals) = super::spawn_blocking_in_span(move || {
        let (evaluation, labels, probabilities) = scored.evaluate_with_scores(&test.batches)?;
        let threshold = scored.threshold();
        let (f1, roc_auc) =
            bootstrap_f1_and_auc(&labels, &probabilities, threshold, resamples, confidence);
        let intervals = TestIntervals {
            confidence,
            resamples,
            f1,
            roc_auc,
        };
        Ok::<_, StepError>((evaluation, intervals))
    })
    .await??;
    let reports = &pipeline.locations.reports;

    // The short version only: with the run id as well the title is wider than the plot (the
    // run id is in the JSON and Markdown reports).
    let title_version = short_version(&deployment.model.version_id);
    let matrix = evaluation.metrics.confusion;
    let png = super::spawn_blocking_in_span(move || confusion_matrix_png(&matrix, &title_version))
        .await??;
    let png_written = reports
        .put(
            names::CONFUSION_MATRIX_PNG,
            Bytes::from(png),
            PutMode::Overwrite,
        )
        .await?;
    let png_ref = ObjectRef::new(reports, &png_written);

    let (per_unit, intercept_per_unit) = model.coefficients_in_original_units();
    let coefficients = model
        .features
        .iter()
        .zip(per_unit)
        .map(|(feature, per_unit)| Coefficient {
            feature: feature.name.clone(),
            per_unit,
            standardized: feature.coefficient_standardized,
        })
        .collect();
    let report =
        Report {
            model: deployment.model.clone(),
            deployed_f1: deployment.f1,
            deployed_at: deployment.deployed_at,
            test_data: test.files,
            metrics: evaluation.metrics,
            coefficients,
            intercept_per_unit,
            training_rows: model.rows.rows_used,
            training_data: model.metadata.training_data_location.clone().map(
                |location| match &model.metadata.training_data_version {
                    Some(version) => format!("{location} (version {version})"),
                    None => location,
                },
            ),
            threshold: model.threshold(),
            confusion_matrix_png: png_ref.clone(),
            generated_at: Utc::now(),
            run_id: run_id.to_string(),
            test_intervals: Some(test_intervals),
        };
    let json = reports
        .put_json(names::REPORT_JSON, "report", &report, PutMode::Overwrite)
        .await?;
    let markdown = reports
        .put(
            names::REPORT_MARKDOWN,
            Bytes::from(markdown_report(&report)),
            PutMode::Overwrite,
        )
        .await?;
    tracing::info!(f1 = report.metrics.f1, png = %png_ref.url, "report written");
    Ok(ReportOutcome {
        json: ObjectRef::new(reports, &json),
        markdown: ObjectRef::new(reports, &markdown),
        png: png_ref,
        report,
        html: None,
    })
}

/// A version id short enough for a plot's title or a table. Local version ids are timestamps,
/// which differ at the end; S3's are random: keeping both ends keeps any two versions apart.
pub(crate) fn short_version(version: &str) -> String {
    let chars: Vec<char> = version.chars().collect();
    if chars.len() <= 14 {
        return version.to_string();
    }
    let head: String = chars[..6].iter().collect();
    let tail: String = chars[chars.len() - 6..].iter().collect();
    format!("{head}…{tail}")
}

fn format_optional(value: Option<f64>) -> String {
    value.map_or_else(
        || "undefined (one class only)".to_string(),
        |v| format!("{v:.4}"),
    )
}

/// The human-readable report.
pub fn markdown_report(report: &Report) -> String {
    let m = &report.metrics;
    let c = &m.confusion;
    let mut out = String::new();
    let _ = writeln!(out, "# Attrition model report\n");
    let _ = writeln!(
        out,
        "- Model: `{}` (version `{}`)",
        report.model.url, report.model.version_id
    );
    let _ = writeln!(
        out,
        "- Deployed: {} with F1 {:.4}",
        report.deployed_at.to_rfc3339(),
        report.deployed_f1
    );
    if let Some(data) = &report.training_data {
        let _ = writeln!(out, "- Trained on: {data}, {} rows", report.training_rows);
    }
    for file in &report.test_data {
        let _ = writeln!(
            out,
            "- Test data: `{}` (version `{}`)",
            file.url, file.version_id
        );
    }
    let _ = writeln!(
        out,
        "- Generated: {} by run `{}`\n",
        report.generated_at.to_rfc3339(),
        report.run_id
    );
    let _ = writeln!(
        out,
        "## Metrics on the test data ({} rows, decision threshold {:.4})\n",
        m.rows, report.threshold
    );
    let _ = writeln!(out, "| metric | value |\n|---|---|");
    let _ = writeln!(out, "| F1 | {:.4} |", m.f1);
    let _ = writeln!(out, "| precision | {:.4} |", m.precision);
    let _ = writeln!(out, "| recall | {:.4} |", m.recall);
    let _ = writeln!(out, "| accuracy | {:.4} |", m.accuracy);
    let _ = writeln!(out, "| ROC AUC | {} |\n", format_optional(m.roc_auc));
    let _ = writeln!(out, "## Confusion matrix\n");
    let _ = writeln!(
        out,
        "| actual \\ predicted | stayed (0) | exited (1) |\n|---|---|---|"
    );
    let _ = writeln!(
        out,
        "| stayed (0) | {} | {} |",
        c.true_negatives, c.false_positives
    );
    let _ = writeln!(
        out,
        "| exited (1) | {} | {} |\n",
        c.false_negatives, c.true_positives
    );
    let _ = writeln!(
        out,
        "![confusion matrix]({})\n",
        names::CONFUSION_MATRIX_PNG
    );
    let _ = writeln!(out, "## Coefficients\n");
    let _ = writeln!(out, "| feature | per unit | standardised |\n|---|---|---|");
    for coefficient in &report.coefficients {
        let _ = writeln!(
            out,
            "| {} | {:.6} | {:.4} |",
            coefficient.feature, coefficient.per_unit, coefficient.standardized
        );
    }
    let _ = writeln!(out, "| (intercept) | {:.6} | |", report.intercept_per_unit);
    out
}

#[cfg(test)]
mod tests {
    use super::short_version;

    #[test]
    fn short_versions_keep_both_ends_of_long_ids() {
        assert_eq!(short_version("m000000000003"), "m000000000003");
        assert_eq!(short_version("01795693527012345678"), "017956…345678");
        assert_eq!(
            short_version("3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY"),
            "3HL4kq…dIbrHY"
        );
    }
}
