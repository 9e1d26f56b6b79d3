//! Renders [`PageData`] as one HTML page: inline CSS that reflows to a phone's width, inline SVG
//! charts each with a `<title>`, a `<desc>` and its figures in a table beside it, headers on
//! every table, no script and nothing loaded from anywhere. Every section renders from whatever
//! part of the data exists and says plainly what is not available yet.

use std::fmt::Write as _;

use super::stats::{
    Proportion, calibration_curve, precision_recall_curve, roc_curve, score_histograms, thin,
    wilson,
};
use super::svg::{BarChart, Marker, PALETTE, Series, XyChart, confusion_grid, escape};
use super::{DataQuality, ModelCard, PageData, RiskList, TestFigures};
use crate::drift::report::{DistributionDrift, DriftReport, Verdict};
use crate::drift::stats::{
    BootstrapInterval, DegradationTest, LabelRateTest, MeanInterval, mean_interval,
};
use crate::lifecycle::profile::ReferenceSource;
use crate::lifecycle::window::Validation;
use crate::records::{Decision, DriftEntry, FileOutcome, RunRecord};
use crate::steps::reporting::short_version;

/// Points a curve keeps on the page.
const CURVE_POINTS: usize = 300;

const CSS: &str = r#"
:root{--ink:#1a1a1a;--muted:#555;--line:#d0d0d0;--bg:#fafafa;--blue:#0072B2;--orange:#E69F00;--green:#009E73;--vermillion:#D55E00;--purple:#CC79A7}
*{box-sizing:border-box}
body{margin:0;font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--ink);background:var(--bg);line-height:1.45;font-size:16px}
header,main,footer{max-width:1120px;margin:0 auto;padding:0 16px}
header{padding-top:20px}
h1{font-size:1.6rem;margin:0 0 4px}
h2{font-size:1.3rem;margin:0 0 10px;border-bottom:2px solid var(--blue);padding-bottom:4px}
h3{font-size:1.05rem;margin:18px 0 8px}
section{background:#fff;border:1px solid var(--line);border-radius:6px;padding:16px;margin:16px 0}
nav ul{list-style:none;padding:0;margin:10px 0;display:flex;flex-wrap:wrap;gap:6px 14px}
nav a{color:var(--blue)}
a{color:#005a8c}
.meta{color:var(--muted);font-size:.9rem;margin:0;font-weight:normal}
.na{color:var(--muted);font-style:italic;border-left:4px solid var(--line);padding-left:10px}
.glance{display:grid;grid-template-columns:repeat(auto-fit,minmax(160px,1fr));gap:10px;margin:12px 0 0}
.glance div{background:#fff;border:1px solid var(--line);border-radius:6px;padding:10px}
.glance b{display:block;font-size:1.15rem}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:.85rem;font-weight:600;border:2px solid}
.badge.good{border-color:var(--green);color:#00603f}
.badge.warn{border-color:var(--orange);color:#7a5200}
.badge.bad{border-color:var(--vermillion);color:#9c3d00}
.badge.info{border-color:var(--blue);color:#004f7a}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;margin:6px 0;font-size:.92rem;font-variant-numeric:tabular-nums}
caption{text-align:left}
th,td{border:1px solid var(--line);padding:4px 8px;text-align:left;vertical-align:top}
thead th{background:#eef4f8}
tbody th{background:#f6f6f6;font-weight:600}
td.num{text-align:right;white-space:nowrap}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,440px),1fr));gap:18px}
figure{margin:0;min-width:0}
figcaption{font-size:.9rem;color:var(--muted)}
svg.chart{width:100%;max-width:620px;height:auto;display:block;border:1px solid var(--line);border-radius:4px}
svg.matrix{max-width:420px}
details{margin:6px 0}
summary{cursor:pointer;color:#005a8c}
dl.card{display:grid;grid-template-columns:minmax(140px,max-content) 1fr;gap:4px 14px;margin:0}
dl.card dt{font-weight:600}
dl.card dd{margin:0;overflow-wrap:anywhere}
code{font-size:.88em;overflow-wrap:anywhere}
table code{white-space:nowrap;overflow-wrap:normal}
td.text{min-width:14em}
@media (max-width:600px){body{font-size:15px}td.num{white-space:normal}.ci{display:block;white-space:nowrap}th,td{padding:4px 5px}section{padding:12px 10px}dl.card{grid-template-columns:1fr}dl.card dd{margin-bottom:6px}.charts{grid-template-columns:1fr}h1{font-size:1.35rem}}
"#;

/// The whole page.
pub fn render(data: &PageData) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let _ = write!(
        out,
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:"><link rel="icon" href="data:,"><title>Attrition model report — {}</title><style>{CSS}</style></head><body>"#,
        escape(&data.run_id)
    );
    header(&mut out, data);
    out.push_str("<main>");
    model_card_section(&mut out, &data.card);
    metrics_section(&mut out, data);
    curves_section(&mut out, &data.test);
    drift_section(&mut out, &data.drift);
    history_section(&mut out, &data.runs);
    quality_section(&mut out, &data.quality);
    risk_section(&mut out, &data.risk);
    out.push_str("</main>");
    let _ = write!(
        out,
        "<footer><p class=\"meta\">Written by the attrition-risk pipeline, run <code>{}</code>, {}. Intervals are {:.0} % intervals. Colours: the Okabe–Ito palette; series also differ by line style or marker, and every chart's figures are in the table below it. This page loads nothing from the network.</p></footer></body></html>",
        escape(&data.run_id),
        data.generated_at.format("%Y-%m-%d %H:%M UTC"),
        data.confidence.get() * 100.0
    );
    out
}

fn f4(value: f64) -> String {
    if value.is_finite() {
        format!("{value:.4}")
    } else {
        "—".to_string()
    }
}

fn f3(value: f64) -> String {
    if value.is_finite() {
        format!("{value:.3}")
    } else {
        "—".to_string()
    }
}

fn percent(value: f64) -> String {
    format!("{:.1} %", value * 100.0)
}

fn unavailable(out: &mut String, why: &str) {
    let _ = write!(out, "<p class=\"na\">{}</p>", escape(&capitalise(why)));
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// An object's name for a table: the last path segment of its URL, and its version.
fn object(url: &str, version: &str) -> String {
    let name = url.rsplit('/').next().unwrap_or(url);
    format!(
        "<code title=\"{}\">{}</code> <span class=\"meta\">{}</span>",
        escape(url),
        escape(name),
        version_words(version)
    )
}

fn version_words(version: &str) -> String {
    if version == crate::store::NULL_VERSION {
        "(unversioned)".to_string()
    } else {
        format!("v {}", escape(&short_version(version)))
    }
}

fn with_interval(estimate: f64, lower: f64, upper: f64) -> String {
    format!(
        "{} <span class=\"meta ci\">[{} – {}]</span>",
        f3(estimate),
        f3(lower),
        f3(upper)
    )
}

fn bootstrap(interval: Option<&BootstrapInterval>) -> String {
    interval.map_or_else(
        || "—".into(),
        |i| with_interval(i.estimate, i.lower, i.upper),
    )
}

fn mean(interval: Option<&MeanInterval>) -> String {
    interval.map_or_else(|| "—".into(), |i| with_interval(i.mean, i.lower, i.upper))
}

fn proportion(p: Option<Proportion>) -> String {
    p.map_or_else(
        || "—".into(),
        |p| {
            format!(
                "{} <span class=\"meta ci\">[{} – {}]</span> <span class=\"meta ci\">({}/{})</span>",
                f3(p.estimate),
                f3(p.lower),
                f3(p.upper),
                p.successes,
                p.trials
            )
        },
    )
}

fn verdict_badge(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::NoDrift => r#"<span class="badge good">no drift</span>"#,
        Verdict::TooFewRows => r#"<span class="badge info">too few rows to tell</span>"#,
        Verdict::DataDriftOnly => r#"<span class="badge warn">data drift only</span>"#,
        Verdict::PerformanceDrift => r#"<span class="badge bad">performance drift</span>"#,
        Verdict::NoReference => r#"<span class="badge warn">no reference</span>"#,
    }
}

fn decision_badge(decision: Decision) -> &'static str {
    match decision {
        Decision::NoNewData => r#"<span class="badge info">no new data</span>"#,
        Decision::NoNewRows => r#"<span class="badge info">no new rows</span>"#,
        Decision::Bootstrap => r#"<span class="badge good">bootstrap: first deployment</span>"#,
        Decision::NoDrift => r#"<span class="badge good">no drift</span>"#,
        Decision::TooFewRows => r#"<span class="badge info">too few rows to tell</span>"#,
        Decision::DataDrift => r#"<span class="badge warn">data drift only</span>"#,
        Decision::Drift => r#"<span class="badge bad">drift: retrained and deployed</span>"#,
        Decision::ChallengerRejected => {
            r#"<span class="badge warn">drift: challenger rejected</span>"#
        }
        Decision::Resumed => r#"<span class="badge info">resumed an unfinished run</span>"#,
    }
}

fn header(out: &mut String, data: &PageData) {
    let _ = write!(
        out,
        "<header><h1>Attrition model report</h1><p class=\"meta\">Generated {} by run <code>{}</code></p>",
        data.generated_at.format("%Y-%m-%d %H:%M:%S UTC"),
        escape(&data.run_id)
    );
    out.push_str("<div class=\"glance\">");
    match &data.card {
        Ok(card) => {
            let _ = write!(
                out,
                "<div>Deployed model<b>v {}</b><span class=\"meta\">since {}</span></div>",
                escape(&short_version(&card.deployment.model.version_id)),
                card.deployment.deployed_at.format("%Y-%m-%d %H:%M UTC")
            );
        }
        Err(_) => out.push_str("<div>Deployed model<b>none yet</b></div>"),
    }
    if let Ok(test) = &data.test {
        let _ = write!(
            out,
            "<div>F1 on the test data<b>{}</b><span class=\"meta\">{} rows, threshold {}</span></div>",
            f3(test.metrics.f1),
            test.metrics.rows,
            f3(test.threshold)
        );
    }
    if let Ok(drift) = &data.drift {
        let _ = write!(
            out,
            "<div>Latest drift check<b>{}</b><span class=\"meta\">{}</span></div>",
            verdict_badge(drift.report.verdict),
            drift.checked_at.format("%Y-%m-%d %H:%M UTC")
        );
    }
    if let Ok(runs) = &data.runs
        && let Some(last) = runs.last()
    {
        let _ = write!(
            out,
            "<div>Latest run<b>{}</b><span class=\"meta\">{} new rows</span></div>",
            decision_badge(last.decision),
            last.rows_added
        );
    }
    out.push_str("</div><nav aria-label=\"Sections\"><ul><li><a href=\"#model\">Model card</a></li><li><a href=\"#metrics\">Metrics</a></li><li><a href=\"#curves\">Curves</a></li><li><a href=\"#drift\">Drift</a></li><li><a href=\"#history\">History</a></li><li><a href=\"#quality\">Data quality</a></li><li><a href=\"#risk\">At-risk clients</a></li></ul></nav></header>");
}

fn model_card_section(out: &mut String, card: &Result<ModelCard, String>) {
    out.push_str(
        "<section id=\"model\" aria-labelledby=\"model-h\"><h2 id=\"model-h\">Model card</h2>",
    );
    let card = match card {
        Ok(card) => card,
        Err(why) => {
            unavailable(out, why);
            out.push_str("</section>");
            return;
        }
    };
    let d = &card.deployment;
    let m = &card.model;
    out.push_str("<dl class=\"card\">");
    let mut row = |term: &str, value: String| {
        let _ = write!(out, "<dt>{term}</dt><dd>{value}</dd>");
    };
    row(
        "Model",
        format!(
            "logistic regression on {}; {}",
            m.features
                .iter()
                .map(|f| format!("<code>{}</code>", escape(&f.name)))
                .collect::<Vec<_>>()
                .join(", "),
            object(&d.model.url, &d.model.version_id)
        ),
    );
    row(
        "Trained",
        format!(
            "{} by version {} of this tool, on {} rows",
            m.metadata.trained_at.format("%Y-%m-%d %H:%M UTC"),
            escape(&m.metadata.crate_version),
            m.rows.rows_used
        ),
    );
    row(
        "Data",
        match (
            &m.metadata.training_data_location,
            &m.metadata.training_data_version,
        ) {
            (Some(location), Some(version)) => object(location, version),
            (Some(location), None) => format!("<code>{}</code>", escape(location)),
            _ => "not recorded".into(),
        } + &format!(
            "; ingestion record {}",
            object(&d.ingestion_record.url, &d.ingestion_record.version_id)
        ),
    );
    row(
        "Training window",
        match &m.window {
            Some(window) => {
                let validation = match &window.validation {
                    Validation::Newest { rows } => format!(
                        "the newest {} rows held out for validation (rows {}–{})",
                        rows.end - rows.start,
                        rows.start,
                        rows.end
                    ),
                    Validation::Sampled { share } => {
                        format!("{} of the rows held out for validation", percent(*share))
                    }
                    Validation::None { reason } => {
                        format!("no rows held out ({})", escape(reason))
                    }
                };
                format!(
                    "compiled rows {}–{}{}; {}. {}",
                    window.rows.start,
                    window.rows.end,
                    if window.files.is_empty() {
                        String::new()
                    } else {
                        format!(
                            " from {}",
                            window
                                .files
                                .iter()
                                .map(|f| format!("<code>{}</code>", escape(f)))
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    },
                    validation,
                    escape(&capitalise(&window.reason))
                )
            }
            None => "not recorded (a model trained on all compiled data)".into(),
        },
    );
    row(
        "Decision threshold",
        match &m.decision_threshold {
            Some(choice) => format!(
                "{} — chosen on the validation rows by the rule <code>{}</code> (F1 there {} against {} at 0.5)",
                f4(m.threshold()),
                escape(&format!("{:?}", choice.rule)),
                f3(choice.metrics.f1),
                f3(choice.metrics_at_default.f1)
            ),
            None => format!(
                "{} — the fixed default (no validation rows to choose one on)",
                f4(m.threshold())
            ),
        },
    );
    row(
        "Reference",
        match &m.reference {
            Some(reference) => format!(
                "{} {} rows ({} exited): log loss {}, ROC AUC {}, F1 {}",
                match reference.source {
                    ReferenceSource::Validation => "measured on",
                    ReferenceSource::TrainingRows =>
                        "measured on the training rows (optimistic; none held out):",
                },
                reference.rows,
                reference.positives,
                f4(reference.log_loss),
                reference.roc_auc.map_or_else(|| "—".into(), f4),
                f4(reference.f1)
            ),
            None => {
                "none kept (a model from an older version): the next drift check retrains".into()
            }
        },
    );
    row(
        "Deployed",
        format!(
            "{} by run <code>{}</code>, F1 on the test data {}; score {}",
            d.deployed_at.format("%Y-%m-%d %H:%M UTC"),
            escape(&d.run_id),
            f4(d.f1),
            object(&d.score.url, &d.score.version_id)
        ),
    );
    row(
        "Why",
        match &card.deployed_by {
            Some(run) => format!(
                "{} {}",
                decision_badge(run.decision),
                escape(&capitalise(&run.reason))
            ),
            None => "the deploying run's record is not kept (deployed by hand or by a single step)"
                .into(),
        },
    );
    out.push_str("</dl>");
    out.push_str("<h3>Coefficients</h3><div class=\"scroll\"><table><thead><tr><th scope=\"col\">feature</th><th scope=\"col\">per standard deviation</th><th scope=\"col\">training mean</th><th scope=\"col\">training s.d.</th></tr></thead><tbody>");
    for feature in &m.features {
        let _ = write!(
            out,
            "<tr><th scope=\"row\">{}</th><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            escape(&feature.name),
            f4(feature.coefficient_standardized),
            f3(feature.mean),
            f3(feature.std)
        );
    }
    out.push_str("</tbody></table></div></section>");
}

fn metrics_section(out: &mut String, data: &PageData) {
    out.push_str(
        "<section id=\"metrics\" aria-labelledby=\"metrics-h\"><h2 id=\"metrics-h\">Metrics</h2>",
    );
    let reference = data
        .card
        .as_ref()
        .ok()
        .and_then(|c| c.model.reference.as_ref());
    let test = data.test.as_ref().ok();
    let drift = data.drift.as_ref().ok();
    if reference.is_none() && test.is_none() && drift.is_none() {
        unavailable(
            out,
            data.test
                .as_ref()
                .err()
                .map_or("nothing scored yet", String::as_str),
        );
        out.push_str("</section>");
        return;
    }
    let confidence = data.confidence;
    let _ = write!(
        out,
        "<p>The deployed model on three sets of rows, each figure with its {:.0} % interval in brackets (bootstrap for ROC AUC and F1, normal for the mean log loss, Wilson for proportions). Lower log loss is better; the others, higher.</p>",
        confidence.get() * 100.0
    );
    let held_out_title = match reference.map(|r| r.source) {
        Some(ReferenceSource::TrainingRows) => "training rows (none held out)",
        _ => "held-out recent rows",
    };
    // The drift check scored the model deployed when it ran; a retrain in the same run (or
    // since) replaced it, and then the column is about the previous model.
    let checked_model = drift.and_then(|d| {
        data.runs
            .as_ref()
            .ok()?
            .iter()
            .find(|run| run.run_id == d.run_id)?
            .model_before
            .clone()
    });
    let deployed_model = data.card.as_ref().ok().map(|c| &c.deployment.model);
    let previous_model = match (&checked_model, deployed_model) {
        (Some(checked), Some(deployed)) if checked.version_id != deployed.version_id => {
            Some(checked.version_id.clone())
        }
        _ => None,
    };
    let new_title = drift.map_or_else(
        || "new data".to_string(),
        |d| match &previous_model {
            Some(_) => format!(
                "new data, previous model (check of {})",
                d.checked_at.format("%Y-%m-%d")
            ),
            None => format!("new data (check of {})", d.checked_at.format("%Y-%m-%d")),
        },
    );
    let _ = write!(
        out,
        "<div class=\"scroll\"><table><caption class=\"meta\">Metrics by data set</caption><thead><tr><th scope=\"col\">metric</th><th scope=\"col\">{held_out_title}</th><th scope=\"col\">test data</th><th scope=\"col\">{}</th></tr></thead><tbody>",
        escape(&new_title)
    );
    let perf = drift.map(|d| &d.report.performance);
    let mut row = |name: &str, values: [String; 3]| {
        let _ = write!(
            out,
            "<tr><th scope=\"row\">{name}</th><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            values[0], values[1], values[2]
        );
    };
    let dash = || "—".to_string();
    row(
        "rows",
        [
            reference.map_or_else(dash, |r| r.rows.to_string()),
            test.map_or_else(dash, |t| t.metrics.rows.to_string()),
            perf.map_or_else(dash, |p| p.rows.to_string()),
        ],
    );
    row(
        "log loss",
        [
            // The reference keeps a sample of its per-row losses: the interval is from it.
            reference
                .and_then(|r| mean_interval(&r.losses, confidence).ok())
                .map_or_else(dash, |i| mean(Some(&i))),
            mean(test.and_then(|t| t.log_loss.as_ref())),
            mean(perf.and_then(|p| p.log_loss.as_ref())),
        ],
    );
    row(
        "ROC AUC",
        [
            reference.and_then(|r| r.roc_auc).map_or_else(dash, f3),
            bootstrap(test.and_then(|t| t.roc_auc.as_ref())),
            bootstrap(perf.and_then(|p| p.roc_auc.as_ref())),
        ],
    );
    row(
        "F1 at the model's threshold",
        [
            reference.map_or_else(dash, |r| f3(r.f1)),
            bootstrap(test.and_then(|t| t.f1.as_ref())),
            bootstrap(perf.and_then(|p| p.f1.as_ref())),
        ],
    );
    let c = test.map(|t| t.metrics.confusion);
    row(
        "precision",
        [
            dash(),
            proportion(c.and_then(|c| {
                wilson(
                    c.true_positives,
                    c.true_positives + c.false_positives,
                    confidence,
                )
            })),
            dash(),
        ],
    );
    row(
        "recall",
        [
            dash(),
            proportion(c.and_then(|c| {
                wilson(
                    c.true_positives,
                    c.true_positives + c.false_negatives,
                    confidence,
                )
            })),
            dash(),
        ],
    );
    row(
        "accuracy",
        [
            dash(),
            proportion(
                c.and_then(|c| wilson(c.true_positives + c.true_negatives, c.total(), confidence)),
            ),
            dash(),
        ],
    );
    let new_rate = drift.and_then(|d| match &d.report.label_rate {
        Some(LabelRateTest::Tested(t)) => wilson(t.current_positives, t.current_rows, confidence),
        _ => None,
    });
    row(
        "exit rate",
        [
            proportion(reference.and_then(|r| wilson(r.positives, r.rows, confidence))),
            proportion(
                test.and_then(|t| wilson(t.metrics.actual_positives, t.metrics.rows, confidence)),
            ),
            proportion(new_rate),
        ],
    );
    out.push_str("</tbody></table></div>");
    if let Some(previous) = &previous_model {
        let _ = write!(
            out,
            "<p class=\"meta\">The new-data column is the model that was deployed when the drift check ran (v {}); the model deployed since is in the other columns.</p>",
            escape(&short_version(previous))
        );
    }
    if let Some(test) = test {
        let c = test.metrics.confusion;
        let description = format!(
            "Confusion matrix of the deployed model on {} test rows at threshold {}: {} stayed and predicted to stay (true negatives), {} stayed but predicted to exit (false positives), {} exited but predicted to stay (false negatives), {} exited and predicted to exit (true positives).",
            c.total(),
            f4(test.threshold),
            c.true_negatives,
            c.false_positives,
            c.false_negatives,
            c.true_positives
        );
        out.push_str("<h3>Confusion matrix on the test data</h3><figure>");
        out.push_str(&confusion_grid(
            "confusion",
            [
                [c.true_negatives, c.false_positives],
                [c.false_negatives, c.true_positives],
            ],
            &description,
        ));
        let _ = write!(
            out,
            "<figcaption>{}</figcaption></figure><div class=\"scroll\"><table><thead><tr><th scope=\"col\">actual \\ predicted</th><th scope=\"col\">stayed (0)</th><th scope=\"col\">exited (1)</th></tr></thead><tbody><tr><th scope=\"row\">stayed (0)</th><td class=\"num\">{}</td><td class=\"num\">{}</td></tr><tr><th scope=\"row\">exited (1)</th><td class=\"num\">{}</td><td class=\"num\">{}</td></tr></tbody></table></div>",
            escape(&description),
            c.true_negatives,
            c.false_positives,
            c.false_negatives,
            c.true_positives
        );
        if !test.files.is_empty() {
            let _ = write!(
                out,
                "<p class=\"meta\">Test data: {}</p>",
                test.files
                    .iter()
                    .map(|f| object(&f.url, &f.version_id))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    out.push_str("</section>");
}

/// A chart with its figures in a collapsible table right after it.
fn figure(out: &mut String, svg: &str, caption: &str, table_head: &[&str], rows: &[Vec<String>]) {
    let _ = write!(
        out,
        "<figure>{svg}<figcaption>{}</figcaption><details><summary>Figures as a table</summary><div class=\"scroll\"><table><thead><tr>",
        escape(caption)
    );
    for head in table_head {
        let _ = write!(out, "<th scope=\"col\">{}</th>", escape(head));
    }
    out.push_str("</tr></thead><tbody>");
    for row in rows {
        out.push_str("<tr>");
        for (i, cell) in row.iter().enumerate() {
            if i == 0 {
                let _ = write!(out, "<th scope=\"row\">{}</th>", escape(cell));
            } else {
                let _ = write!(out, "<td class=\"num\">{}</td>", escape(cell));
            }
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></div></details></figure>");
}

fn curve_series(name: &str, points: Vec<(f64, f64)>, colour: &'static str) -> Series {
    Series {
        name: name.into(),
        points,
        colour,
        line: true,
        dashed: false,
        marker: Marker::None,
    }
}

fn curves_section(out: &mut String, test: &Result<TestFigures, String>) {
    out.push_str("<section id=\"curves\" aria-labelledby=\"curves-h\"><h2 id=\"curves-h\">Curves on the test data</h2>");
    let test = match test {
        Ok(test) => test,
        Err(why) => {
            unavailable(out, why);
            out.push_str("</section>");
            return;
        }
    };
    let (labels, probabilities) = (&test.labels, &test.probabilities);
    let rows = labels.len();
    let positives = labels.iter().filter(|&&l| l == 1).count();
    out.push_str("<div class=\"charts\">");

    match roc_curve(labels, probabilities) {
        Some(points) => {
            let auc = test.metrics.roc_auc.unwrap_or(f64::NAN);
            let description = format!(
                "ROC curve of the deployed model on {rows} test rows ({positives} exited): ROC AUC {}. The further the curve bends toward the top left, above the diagonal of chance, the better the model ranks clients who leave above clients who stay.",
                f3(auc)
            );
            let svg = XyChart {
                id: "roc".into(),
                title: format!("ROC curve (AUC {})", f3(auc)),
                description: description.clone(),
                x_label: "false positive rate".into(),
                y_label: "true positive rate".into(),
                x_range: (0.0, 1.0),
                y_range: (0.0, 1.0),
                x_ticks: None,
                reference_line: Some(((0.0, 0.0), (1.0, 1.0), "chance".into())),
                series: vec![curve_series(
                    "model",
                    thin(&points, CURVE_POINTS),
                    PALETTE[0],
                )],
            }
            .render();
            let table: Vec<Vec<String>> = thin(&points, 11)
                .iter()
                .map(|(x, y)| vec![f3(*x), f3(*y)])
                .collect();
            figure(
                out,
                &svg,
                &description,
                &["false positive rate", "true positive rate"],
                &table,
            );
        }
        None => unavailable(out, "no ROC curve: the test data has only one class"),
    }

    match precision_recall_curve(labels, probabilities) {
        Some((points, average_precision)) => {
            let base = positives as f64 / rows.max(1) as f64;
            let description = format!(
                "Precision–recall curve on {rows} test rows: average precision {}, against {} for a model that guesses (the share of clients who exited).",
                f3(average_precision),
                f3(base)
            );
            let svg = XyChart {
                id: "pr".into(),
                title: format!("Precision–recall (AP {})", f3(average_precision)),
                description: description.clone(),
                x_label: "recall".into(),
                y_label: "precision".into(),
                x_range: (0.0, 1.0),
                y_range: (0.0, 1.0),
                x_ticks: None,
                reference_line: Some(((0.0, base), (1.0, base), "guessing".into())),
                series: vec![curve_series(
                    "model",
                    thin(&points, CURVE_POINTS),
                    PALETTE[1],
                )],
            }
            .render();
            let table: Vec<Vec<String>> = thin(&points, 11)
                .iter()
                .map(|(x, y)| vec![f3(*x), f3(*y)])
                .collect();
            figure(out, &svg, &description, &["recall", "precision"], &table);
        }
        None => unavailable(
            out,
            "no precision–recall curve: no client in the test data exited",
        ),
    }

    let bins = calibration_curve(labels, probabilities, 10);
    if !bins.is_empty() {
        let description = format!(
            "Calibration on {rows} test rows in ten probability bins: for each bin, the share of clients who exited against the mean predicted probability. Points on the diagonal mean the probabilities can be read at face value; small bins ({} of 10 bins hold fewer than 10 rows) are noisy.",
            bins.iter().filter(|b| b.rows < 10).count()
        );
        let svg = XyChart {
            id: "calibration".into(),
            title: "Calibration".into(),
            description: description.clone(),
            x_label: "mean predicted probability".into(),
            y_label: "observed exit rate".into(),
            x_range: (0.0, 1.0),
            y_range: (0.0, 1.0),
            x_ticks: None,
            reference_line: Some(((0.0, 0.0), (1.0, 1.0), "perfectly calibrated".into())),
            series: vec![Series {
                name: "model".into(),
                points: bins
                    .iter()
                    .map(|b| (b.mean_predicted, b.observed_rate))
                    .collect(),
                colour: PALETTE[2],
                line: true,
                dashed: false,
                marker: Marker::Circle,
            }],
        }
        .render();
        let table: Vec<Vec<String>> = bins
            .iter()
            .map(|b| {
                vec![
                    format!("{:.1}–{:.1}", b.lower, b.upper),
                    b.rows.to_string(),
                    f3(b.mean_predicted),
                    f3(b.observed_rate),
                ]
            })
            .collect();
        figure(
            out,
            &svg,
            &description,
            &[
                "probability bin",
                "rows",
                "mean predicted",
                "observed exit rate",
            ],
            &table,
        );
    }

    let bin_count = if rows >= 1000 { 20 } else { 10 };
    let (stayed, exited) = score_histograms(labels, probabilities, bin_count);
    let categories: Vec<String> = (0..bin_count)
        .map(|i| format!("{:.2}", i as f64 / bin_count as f64))
        .collect();
    let description = format!(
        "Predicted probability of leaving for the {} test clients who stayed and the {} who exited, in {bin_count} bins of width {}; the model's threshold is {}. The less the two distributions overlap, the better the model separates them.",
        rows - positives,
        positives,
        f3(1.0 / bin_count as f64),
        f3(test.threshold)
    );
    let svg = BarChart {
        id: "scores".into(),
        title: "Score distribution by class".into(),
        description: description.clone(),
        x_label: "predicted probability (bin start)".into(),
        y_label: "clients".into(),
        categories: categories.clone(),
        series: vec![
            (
                "stayed (0)".into(),
                PALETTE[0],
                stayed.iter().map(|&c| c as f64).collect(),
            ),
            (
                "exited (1)".into(),
                PALETTE[1],
                exited.iter().map(|&c| c as f64).collect(),
            ),
        ],
    }
    .render();
    let table: Vec<Vec<String>> = categories
        .iter()
        .enumerate()
        .map(|(i, start)| {
            vec![
                format!("{start}–{:.2}", (i + 1) as f64 / bin_count as f64),
                stayed[i].to_string(),
                exited[i].to_string(),
            ]
        })
        .collect();
    figure(
        out,
        &svg,
        &description,
        &["probability", "stayed", "exited"],
        &table,
    );
    out.push_str("</div></section>");
}

/// A PSI bin as an axis label: its upper edge (`≤ x`), or `> x` for the open top bin, in at
/// most three significant digits (the table beside the chart has the exact edges).
fn bin_label(lower: Option<f64>, upper: Option<f64>) -> String {
    match (lower, upper) {
        (_, Some(u)) => format!("≤{}", compact(u)),
        (Some(l), None) => format!(">{}", compact(l)),
        (None, None) => "all".into(),
    }
}

/// A number in few characters: 3 significant digits, thousands as k and millions as M.
fn compact(value: f64) -> String {
    let abs = value.abs();
    if abs >= 1e6 {
        format!("{:.3}M", value / 1e6)
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    } else if abs >= 1e4 {
        format!("{:.0}k", value / 1e3)
    } else if abs >= 100.0 || value.fract() == 0.0 {
        format!("{value:.0}")
    } else if abs >= 1.0 {
        format!("{value:.2}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    } else {
        format!("{value:.3}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    }
}

/// A PSI bin's exact range, for the table.
fn bin_range(lower: Option<f64>, upper: Option<f64>) -> String {
    match (lower, upper) {
        (None, Some(u)) => format!("≤ {u}"),
        (Some(l), None) => format!("> {l}"),
        (Some(l), Some(u)) => format!("{l} – {u}"),
        (None, None) => "all".into(),
    }
}

fn distribution_figure(out: &mut String, id: &str, drift: &DistributionDrift) {
    let words = format!(
        "{}: KS statistic {} (p = {}, {} after false-discovery control across features), PSI {}, normalised Wasserstein distance {}; {} reference and {} current rows — {}.",
        drift.name,
        f3(drift.ks.statistic),
        crate::lifecycle::gate::fmt_p(drift.ks.p_value),
        crate::lifecycle::gate::fmt_p(drift.p_adjusted),
        f3(drift.psi),
        f3(drift.wasserstein_normed),
        drift.reference_rows,
        drift.current_rows,
        if drift.drifted {
            "drifted"
        } else {
            "not drifted"
        }
    );
    if drift.psi_bins.is_empty() {
        let _ = write!(
            out,
            "<figure><p class=\"na\">The distributions themselves are not kept in this (older) report.</p><figcaption>{}</figcaption></figure>",
            escape(&words)
        );
        return;
    }
    let categories: Vec<String> = drift
        .psi_bins
        .iter()
        .map(|b| bin_label(b.lower, b.upper))
        .collect();
    let description = format!(
        "Share of rows in each of the reference's decile bins, training rows against the new rows. {words}"
    );
    let svg = BarChart {
        id: id.to_string(),
        title: format!(
            "{}{}",
            if drift.name == "predicted_probability" {
                "predicted probability"
            } else {
                &drift.name
            },
            if drift.drifted { " — drifted" } else { "" }
        ),
        description: description.clone(),
        x_label: "value bin: upper edge (training deciles)".into(),
        y_label: "share of rows (%)".into(),
        categories: categories.clone(),
        series: vec![
            (
                "reference (training)".into(),
                PALETTE[0],
                drift
                    .psi_bins
                    .iter()
                    .map(|b| b.reference_share * 100.0)
                    .collect(),
            ),
            (
                "current (new rows)".into(),
                PALETTE[1],
                drift
                    .psi_bins
                    .iter()
                    .map(|b| b.current_share * 100.0)
                    .collect(),
            ),
        ],
    }
    .render();
    let table: Vec<Vec<String>> = drift
        .psi_bins
        .iter()
        .zip(&categories)
        .map(|(b, _)| {
            vec![
                bin_range(b.lower, b.upper),
                percent(b.reference_share),
                percent(b.current_share),
                f4(b.contribution),
            ]
        })
        .collect();
    figure(
        out,
        &svg,
        &words,
        &["bin", "reference", "current", "PSI contribution"],
        &table,
    );
}

fn drift_section(out: &mut String, drift: &Result<DriftEntry, String>) {
    out.push_str("<section id=\"drift\" aria-labelledby=\"drift-h\"><h2 id=\"drift-h\">Drift</h2>");
    let entry = match drift {
        Ok(entry) => entry,
        Err(why) => {
            unavailable(out, why);
            out.push_str("</section>");
            return;
        }
    };
    let report: &DriftReport = &entry.report;
    let _ = write!(
        out,
        "<p>{} Checked {} by run <code>{}</code> ({} rule).</p><p><b>Decision:</b> {}</p>",
        verdict_badge(report.verdict),
        entry.checked_at.format("%Y-%m-%d %H:%M UTC"),
        escape(&entry.run_id),
        match report.rule {
            crate::lifecycle::DriftRule::Statistical => "statistical",
            crate::lifecycle::DriftRule::RawF1 => "original F1",
        },
        escape(&capitalise(&report.explanation))
    );
    let perf = &report.performance;
    out.push_str("<h3>Performance on the new rows</h3><div class=\"scroll\"><table><thead><tr><th scope=\"col\">figure</th><th scope=\"col\">new rows</th><th scope=\"col\">reference</th></tr></thead><tbody>");
    let _ = write!(
        out,
        "<tr><th scope=\"row\">rows</th><td class=\"num\">{}</td><td class=\"num\">{}</td></tr><tr><th scope=\"row\">log loss</th><td class=\"num\">{}</td><td class=\"num\">{}</td></tr><tr><th scope=\"row\">ROC AUC</th><td class=\"num\">{}</td><td class=\"num\">{}</td></tr><tr><th scope=\"row\">F1 at threshold {}</th><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
        perf.rows,
        perf.reference_rows,
        mean(perf.log_loss.as_ref()),
        perf.reference_log_loss.map_or_else(|| "—".into(), f4),
        bootstrap(perf.roc_auc.as_ref()),
        perf.reference_roc_auc.map_or_else(|| "—".into(), f3),
        f3(perf.threshold),
        bootstrap(perf.f1.as_ref()),
        perf.reference_f1.map_or_else(|| "—".into(), f3),
    );
    let test_words = match &perf.test {
        Some(DegradationTest::Tested(t)) => format!(
            "log loss up by {} (margin {}), z = {}, one-sided p = {}",
            f4(t.difference),
            t.margin,
            f3(t.z),
            crate::lifecycle::gate::fmt_p(t.p_value)
        ),
        Some(DegradationTest::TooFewRows {
            current_rows,
            min_rows,
            ..
        }) => format!("not tested: {current_rows} rows, {min_rows} needed"),
        None => "not tested (no reference losses)".into(),
    };
    let _ = write!(
        out,
        "<tr><th scope=\"row\">degradation test</th><td colspan=\"2\">{}</td></tr></tbody></table></div>",
        escape(&test_words)
    );

    out.push_str("<h3>Prediction and label rate</h3>");
    let label_words = match &report.label_rate {
        Some(LabelRateTest::Tested(t)) => format!(
            "Exit rate {} on the new rows against {} on the reference (difference {}, two-sided p = {}).",
            percent(t.current_rate),
            percent(t.reference_rate),
            f4(t.difference),
            crate::lifecycle::gate::fmt_p(t.p_value)
        ),
        Some(LabelRateTest::TooFewRows {
            current_rows,
            min_rows,
            ..
        }) => format!("Exit rate not tested: {current_rows} new labelled rows, {min_rows} needed."),
        None => "No label rate reference.".into(),
    };
    let _ = write!(out, "<p>{}</p>", escape(&label_words));
    out.push_str("<div class=\"charts\">");
    match &report.prediction {
        Some(prediction) => distribution_figure(out, "drift-prediction", prediction),
        None => unavailable(out, "no prediction drift figures (no reference scores)"),
    }
    out.push_str("</div>");

    let _ = write!(
        out,
        "<h3>Features</h3><p>{} of {} features drifted ({}): a feature drifts when its KS test is significant after false-discovery control and its PSI or normalised Wasserstein distance reaches the effect size. Data drift alone is reported, not acted on.</p>",
        report.features.iter().filter(|f| f.drifted).count(),
        report.features.len(),
        percent(report.share_of_features_drifted)
    );
    if report.features.is_empty() {
        unavailable(
            out,
            "no feature distributions (the model has no reference profile)",
        );
    } else {
        out.push_str("<div class=\"scroll\"><table><thead><tr><th scope=\"col\">feature</th><th scope=\"col\">KS statistic</th><th scope=\"col\">p (adjusted)</th><th scope=\"col\">PSI</th><th scope=\"col\">Wasserstein (normalised)</th><th scope=\"col\">drifted</th></tr></thead><tbody>");
        for f in report.features.iter().chain(report.prediction.iter()) {
            let _ = write!(
                out,
                "<tr><th scope=\"row\">{}</th><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
                escape(&f.name),
                f3(f.ks.statistic),
                crate::lifecycle::gate::fmt_p(f.p_adjusted),
                f3(f.psi),
                f3(f.wasserstein_normed),
                if f.drifted { "<b>yes</b>" } else { "no" }
            );
        }
        out.push_str("</tbody></table></div><div class=\"charts\">");
        for (i, feature) in report.features.iter().enumerate() {
            distribution_figure(out, &format!("drift-feature-{i}"), feature);
        }
        out.push_str("</div>");
    }
    out.push_str("</section>");
}

fn history_section(out: &mut String, runs: &Result<Vec<RunRecord>, String>) {
    out.push_str("<section id=\"history\" aria-labelledby=\"history-h\"><h2 id=\"history-h\">History of runs</h2>");
    let runs = match runs {
        Ok(runs) => runs,
        Err(why) => {
            unavailable(out, why);
            out.push_str("</section>");
            return;
        }
    };
    let index = |i: usize| i as f64 + 1.0;
    let points = |value: &dyn Fn(&RunRecord) -> Option<f64>| -> Vec<(f64, f64)> {
        runs.iter()
            .enumerate()
            .filter_map(|(i, run)| value(run).map(|v| (index(i), v)))
            .collect()
    };
    // Events sit in two lanes above the metrics: deployments on top, drift findings below.
    let events = |lane: f64, wanted: &dyn Fn(&RunRecord) -> bool| -> Vec<(f64, f64)> {
        runs.iter()
            .enumerate()
            .filter(|(_, run)| wanted(run))
            .map(|(i, _)| (index(i), lane))
            .collect()
    };
    let deployed =
        |run: &RunRecord| run.model_after.is_some() && run.model_after != run.model_before;
    let series = vec![
        Series {
            name: "F1 on new rows".into(),
            points: points(&|r| r.new_data_f1),
            colour: PALETTE[0],
            line: true,
            dashed: false,
            marker: Marker::Circle,
        },
        Series {
            name: "ROC AUC on new rows".into(),
            points: points(&|r| {
                r.drift
                    .as_ref()
                    .and_then(|d| d.performance.roc_auc.as_ref())
                    .map(|a| a.estimate)
            }),
            colour: PALETTE[5],
            line: true,
            dashed: true,
            marker: Marker::Square,
        },
        Series {
            name: "test F1 of a new model".into(),
            points: points(&|r| r.new_model_f1),
            colour: PALETTE[2],
            line: false,
            dashed: false,
            marker: Marker::Circle,
        },
        Series {
            name: "deployed".into(),
            points: events(1.13, &deployed),
            colour: PALETTE[2],
            line: false,
            dashed: false,
            marker: Marker::Triangle,
        },
        Series {
            name: "drift".into(),
            points: events(1.05, &|r| {
                matches!(r.decision, Decision::Drift | Decision::ChallengerRejected)
            }),
            colour: PALETTE[4],
            line: false,
            dashed: false,
            marker: Marker::Diamond,
        },
        Series {
            name: "challenger rejected".into(),
            points: runs
                .iter()
                .enumerate()
                .filter(|(_, r)| r.decision == Decision::ChallengerRejected)
                .map(|(i, _)| (index(i), 1.13))
                .collect(),
            colour: PALETTE[6],
            line: false,
            dashed: false,
            marker: Marker::Cross,
        },
        Series {
            name: "data drift".into(),
            points: events(1.05, &|r| r.decision == Decision::DataDrift),
            colour: PALETTE[3],
            line: false,
            dashed: false,
            marker: Marker::Square,
        },
    ];
    let series: Vec<Series> = series
        .into_iter()
        .filter(|s| !s.points.is_empty())
        .collect();
    let every = runs.len().div_ceil(4).max(1);
    // As precise as the runs' spread needs.
    let span = match (runs.first(), runs.last()) {
        (Some(first), Some(last)) => last.started_at - first.started_at,
        _ => chrono::TimeDelta::zero(),
    };
    let time_format = if span < chrono::TimeDelta::hours(1) {
        "%H:%M:%S"
    } else if span < chrono::TimeDelta::days(2) {
        "%d %H:%M"
    } else {
        "%Y-%m-%d"
    };
    let x_ticks: Vec<(f64, String)> = runs
        .iter()
        .enumerate()
        .filter(|(i, _)| i % every == 0)
        .map(|(i, run)| (index(i), run.started_at.format(time_format).to_string()))
        .collect();
    let count = |wanted: &dyn Fn(&RunRecord) -> bool| runs.iter().filter(|r| wanted(r)).count();
    let description = format!(
        "{} runs from {} to {}: deployments {}, drifts detected {}, challengers rejected {}, data drift only {}. Lines: the deployed model's F1 and ROC AUC on each run's new rows; markers along the top: deployments and rejected challengers (upper lane), drift and data drift (lower lane).",
        runs.len(),
        runs.first().map_or(String::new(), |r| r
            .started_at
            .format("%Y-%m-%d")
            .to_string()),
        runs.last().map_or(String::new(), |r| r
            .started_at
            .format("%Y-%m-%d")
            .to_string()),
        count(&deployed),
        count(&|r| matches!(r.decision, Decision::Drift | Decision::ChallengerRejected)),
        count(&|r| r.decision == Decision::ChallengerRejected),
        count(&|r| r.decision == Decision::DataDrift),
    );
    let svg = XyChart {
        id: "history".into(),
        title: "Metrics and decisions over runs".into(),
        description: description.clone(),
        x_label: "run (start time, UTC)".into(),
        y_label: "F1 / ROC AUC".into(),
        x_range: (0.5, runs.len() as f64 + 0.5),
        y_range: (0.0, 1.18),
        x_ticks: Some(x_ticks),
        reference_line: None,
        series,
    }
    .render();
    let _ = write!(
        out,
        "<figure>{svg}<figcaption>{}</figcaption></figure>",
        escape(&description)
    );
    out.push_str("<div class=\"scroll\"><table><caption class=\"meta\">Runs, newest first</caption><thead><tr><th scope=\"col\">run</th><th scope=\"col\">decision</th><th scope=\"col\">rows added</th><th scope=\"col\">F1 on new rows</th><th scope=\"col\">new model's test F1</th><th scope=\"col\">model after</th><th scope=\"col\">why</th></tr></thead><tbody>");
    for run in runs.iter().rev().take(50) {
        let _ = write!(
            out,
            "<tr><th scope=\"row\"><code>{}</code></th><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td><td class=\"text\"><details><summary>reason</summary>{}</details></td></tr>",
            escape(&run.run_id),
            decision_badge(run.decision),
            run.rows_added,
            run.new_data_f1.map_or_else(|| "—".into(), f3),
            run.new_model_f1.map_or_else(|| "—".into(), f3),
            run.model_after
                .as_ref()
                .map_or_else(|| "—".into(), |m| escape(&short_version(&m.version_id))),
            escape(&capitalise(&run.reason))
        );
    }
    out.push_str("</tbody></table></div></section>");
}

fn quality_section(out: &mut String, quality: &Result<DataQuality, String>) {
    out.push_str("<section id=\"quality\" aria-labelledby=\"quality-h\"><h2 id=\"quality-h\">Data quality</h2>");
    let quality = match quality {
        Ok(quality) => quality,
        Err(why) => {
            unavailable(out, why);
            out.push_str("</section>");
            return;
        }
    };
    let files = &quality.ingestion.files;
    let sum = |f: &dyn Fn(&crate::records::IngestedFile) -> u64| files.iter().map(f).sum::<u64>();
    let _ = write!(
        out,
        "<p>{} source file versions seen: {} ingested, {} rejected whole. {} rows read, {} accepted, {} rejected (quarantined with their reasons), {} exact duplicates dropped.{}</p>",
        files.len(),
        files
            .iter()
            .filter(|f| f.outcome == FileOutcome::Ingested)
            .count(),
        files
            .iter()
            .filter(|f| f.outcome == FileOutcome::Rejected)
            .count(),
        sum(&|f| f.rows_read),
        sum(&|f| f.rows_accepted),
        sum(&|f| f.rows_rejected),
        sum(&|f| f.rows_duplicate),
        quality
            .ingestion
            .compiled
            .as_ref()
            .map_or(String::new(), |c| format!(
                " The compiled data set has {} rows.",
                c.rows
            ))
    );
    out.push_str("<h3>Files ingested</h3><div class=\"scroll\"><table><thead><tr><th scope=\"col\">file</th><th scope=\"col\">outcome</th><th scope=\"col\">rows read</th><th scope=\"col\">accepted</th><th scope=\"col\">rejected</th><th scope=\"col\">duplicates</th><th scope=\"col\">missing values</th><th scope=\"col\">quarantine</th><th scope=\"col\">ingested</th></tr></thead><tbody>");
    for file in files.iter().rev().take(100) {
        let missing: u64 = file.missing_values.values().sum();
        let outcome = match file.outcome {
            FileOutcome::Ingested => "ingested".to_string(),
            FileOutcome::Rejected => format!(
                "<b>rejected</b>: {}",
                escape(file.error.as_deref().unwrap_or("unreadable"))
            ),
        };
        let quarantine = file.quarantine.as_ref().map_or_else(
            || "—".to_string(),
            |q| {
                if q.url.starts_with("file://") {
                    format!(
                        "<a href=\"{}\">{}</a>",
                        escape(&q.url),
                        escape(q.url.rsplit('/').next().unwrap_or(&q.url))
                    )
                } else {
                    format!("<code>{}</code>", escape(&q.url))
                }
            },
        );
        let _ = write!(
            out,
            "<tr><th scope=\"row\"><code>{}</code> <span class=\"meta\">{}</span></th><td>{outcome}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{missing}</td><td>{quarantine}</td><td>{}</td></tr>",
            escape(&file.key),
            version_words(&file.version_id),
            file.rows_read,
            file.rows_accepted,
            file.rows_rejected,
            file.rows_duplicate,
            file.ingested_at.format("%Y-%m-%d %H:%M")
        );
    }
    out.push_str("</tbody></table></div>");
    if files.len() > 100 {
        let _ = write!(
            out,
            "<p class=\"meta\">The newest 100 of {} files.</p>",
            files.len()
        );
    }

    out.push_str("<h3>Rows rejected by reason</h3>");
    if quality.reasons.is_empty() {
        out.push_str("<p>No row has been rejected.</p>");
    } else {
        out.push_str("<div class=\"scroll\"><table><thead><tr><th scope=\"col\">column</th><th scope=\"col\">problem</th><th scope=\"col\">rows</th><th scope=\"col\">example</th></tr></thead><tbody>");
        for reason in &quality.reasons {
            let _ = write!(
                out,
                "<tr><th scope=\"row\">{}</th><td>{}</td><td class=\"num\">{}</td><td class=\"text\">{}</td></tr>",
                if reason.column.is_empty() {
                    "(whole row)".to_string()
                } else {
                    escape(&reason.column)
                },
                escape(&reason.kind.replace('_', " ")),
                reason.rows,
                escape(&reason.example)
            );
        }
        out.push_str("</tbody></table></div>");
    }
    for note in &quality.notes {
        let _ = write!(out, "<p class=\"meta\">{}</p>", escape(note));
    }

    out.push_str("<h3>Missing values</h3>");
    match &quality.diagnostics {
        Some(diagnostics) if !diagnostics.missing_values.is_empty() => {
            let _ = write!(
                out,
                "<p class=\"meta\">In the compiled data, from the diagnostics of {}.</p><div class=\"scroll\"><table><thead><tr><th scope=\"col\">column</th><th scope=\"col\">missing</th><th scope=\"col\">share</th></tr></thead><tbody>",
                diagnostics.generated_at.format("%Y-%m-%d %H:%M UTC")
            );
            for share in &diagnostics.missing_values {
                let _ = write!(
                    out,
                    "<tr><th scope=\"row\">{}</th><td class=\"num\">{}</td><td class=\"num\">{:.2} %</td></tr>",
                    escape(&share.column),
                    share.missing,
                    share.percent
                );
            }
            out.push_str("</tbody></table></div>");
        }
        _ => {
            // Without diagnostics, the ingestion record's own counts.
            let mut totals: std::collections::BTreeMap<&str, u64> = Default::default();
            for file in files {
                for (column, count) in &file.missing_values {
                    *totals.entry(column.as_str()).or_default() += count;
                }
            }
            if totals.is_empty() {
                unavailable(
                    out,
                    "no missing-value counts yet: the diagnostics step records them",
                );
            } else {
                out.push_str("<p class=\"meta\">Among accepted rows, summed over the files ingested (no diagnostics record yet).</p><div class=\"scroll\"><table><thead><tr><th scope=\"col\">column</th><th scope=\"col\">missing</th></tr></thead><tbody>");
                for (column, count) in totals {
                    let _ = write!(
                        out,
                        "<tr><th scope=\"row\">{}</th><td class=\"num\">{count}</td></tr>",
                        escape(column)
                    );
                }
                out.push_str("</tbody></table></div>");
            }
        }
    }
    out.push_str("</section>");
}

fn risk_section(out: &mut String, risk: &Result<RiskList, String>) {
    out.push_str("<section id=\"risk\" aria-labelledby=\"risk-h\"><h2 id=\"risk-h\">Top at-risk clients</h2>");
    match risk {
        Err(why) => unavailable(out, why),
        Ok(list) if list.clients.is_empty() => unavailable(out, "the risk list is empty"),
        Ok(list) => {
            let _ = write!(
                out,
                "<p>{} clients ranked by the deployed model's probability that they leave, {} of them in the high band (list of {}). The {} most at risk:</p>",
                list.ranked,
                list.high,
                escape(&list.generated_at.format("%Y-%m-%d %H:%M UTC").to_string()),
                list.clients.len()
            );
            if list.exited > 0 || list.exited_earlier > 0 {
                let _ = write!(
                    out,
                    "<p class=\"meta\">Not ranked: {} {} left within the new data (marked <code>exited</code> in the full list); {} who left before it {} counted, not listed.</p>",
                    list.exited,
                    if list.exited == 1 {
                        "client who"
                    } else {
                        "clients who"
                    },
                    list.exited_earlier,
                    if list.exited_earlier == 1 {
                        "is"
                    } else {
                        "are"
                    },
                );
            }
            out.push_str("<div class=\"scroll\"><table><thead><tr><th scope=\"col\">rank</th><th scope=\"col\">client</th><th scope=\"col\">risk of leaving</th><th scope=\"col\">band</th><th scope=\"col\">change since the previous list</th><th scope=\"col\">main drivers</th></tr></thead><tbody>");
            for client in &list.clients {
                let change = match client.change {
                    Some(change) => format!("{:+.1} points", change * 100.0),
                    None => "new in the list".to_string(),
                };
                let newly = if client.newly_high {
                    " (newly high)"
                } else {
                    ""
                };
                let _ = write!(
                    out,
                    "<tr><td class=\"num\">{}</td><th scope=\"row\">{}</th><td class=\"num\">{}</td><td>{}{}</td><td>{}</td><td>{}</td></tr>",
                    client.rank,
                    escape(&client.client),
                    percent(client.probability),
                    client.band,
                    newly,
                    escape(&change),
                    escape(&client.drivers.join("; "))
                );
            }
            let _ = write!(
                out,
                "</tbody></table></div><p>The full list: <a href=\"{0}\">{0}</a> (also as Parquet, and through the API: <code>GET /risk</code>, <code>GET /clients/{{corporation}}</code>).</p>",
                escape(&list.full_list)
            );
        }
    }
    out.push_str("</section>");
}
