//! One drift report per check: the deployed model on the new labelled rows against its reference
//! profile. Performance drift is a one-sided test that the mean per-row log loss got worse by
//! more than a margin, with a minimum sample size; AUC and F1 carry bootstrap intervals (fixed
//! seed); each feature's distribution is compared with the training rows (KS with
//! Benjamini–Hochberg control across features, PSI on training deciles, normalised Wasserstein),
//! and so are the predicted probabilities and the label rate. The verdict and its explanation
//! in words are part of the report; every figure behind them is kept.

use arrow::array::RecordBatch;
use serde::{Deserialize, Serialize};

use super::stats::{
    BootstrapInterval, ConfidenceLevel, DegradationTest, KsTest, LabelRateTest, MeanInterval,
    MinRows, PsiBin, PsiBins, benjamini_hochberg_adjusted, bootstrap_f1_interval,
    bootstrap_roc_auc_interval, ks_two_sample, label_rate_test, log_loss_per_row,
    loss_degradation_test, mean_interval, psi, wasserstein_normed,
};
use crate::data::schema::FEATURES;
use crate::lifecycle::gate::{fmt_auc, fmt_p};
use crate::lifecycle::profile::{
    ReferenceSource, feature_values, labelled_probabilities, order_statistics,
};
use crate::lifecycle::{DriftRule, LifecycleSettings};
use crate::model::{ConfusionMatrix, ModelError, TrainedModel};

/// Seed of every bootstrap in a drift report, so a report can be recomputed exactly.
pub const BOOTSTRAP_SEED: u64 = 20_261_201;
/// Rows the AUC and F1 bootstraps resample at most (an evenly spaced subsample above it), which
/// bounds their cost on large batches.
pub const BOOTSTRAP_MAX_ROWS: usize = 10_000;

/// What the check concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Fewer new labelled rows than the minimum: not evidence either way.
    TooFewRows,
    /// The model performs worse on the new rows: retrain.
    PerformanceDrift,
    /// The deployed model has no reference to test against (trained by an older version):
    /// retrain once to get one.
    NoReference,
    /// Feature distributions moved but performance held: reported, the model stays.
    DataDriftOnly,
    /// Nothing significant.
    NoDrift,
}

impl Verdict {
    pub fn retrain(self) -> bool {
        matches!(self, Verdict::PerformanceDrift | Verdict::NoReference)
    }
}

/// One distribution compared with its reference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DistributionDrift {
    pub name: String,
    pub reference_rows: usize,
    pub current_rows: usize,
    pub ks: KsTest,
    /// The KS p-value after Benjamini–Hochberg across the features (and the prediction).
    pub p_adjusted: f64,
    pub psi: f64,
    pub wasserstein_normed: f64,
    pub drifted: bool,
    /// The PSI bins (the reference's deciles) with both shares: the two distributions side by
    /// side, as the HTML report draws them. Absent from reports written before it was kept.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub psi_bins: Vec<PsiBin>,
}

/// The deployed model's performance on the new rows, and the test against the reference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PerformanceDrift {
    pub rows: usize,
    pub threshold: f64,
    pub log_loss: Option<MeanInterval>,
    pub roc_auc: Option<BootstrapInterval>,
    /// F1 at the model's threshold, and at 0.5.
    pub f1: Option<BootstrapInterval>,
    pub f1_at_half: f64,
    pub reference_source: Option<ReferenceSource>,
    pub reference_rows: u64,
    pub reference_log_loss: Option<f64>,
    pub reference_roc_auc: Option<f64>,
    pub reference_f1: Option<f64>,
    /// The one-sided degradation test of the per-row log loss.
    pub test: Option<DegradationTest>,
    /// For the original rule: the F1 recorded at deployment and the F1 on the new rows.
    pub deployed_f1: Option<f64>,
}

/// Everything one drift check found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftReport {
    pub rule: DriftRule,
    pub performance: PerformanceDrift,
    pub features: Vec<DistributionDrift>,
    pub prediction: Option<DistributionDrift>,
    pub label_rate: Option<LabelRateTest>,
    /// Share of features that drifted; the data set drifted when at least half did (Evidently's
    /// default share).
    pub share_of_features_drifted: f64,
    pub data_drift: bool,
    pub verdict: Verdict,
    /// The decision in words, with the figures.
    pub explanation: String,
}

fn stats_error(e: impl std::fmt::Display) -> ModelError {
    ModelError::InvalidModel(format!("drift statistics: {e}"))
}

/// Checks `model` on `new_rows`. `deployed_f1`: the F1 recorded at deployment (the original
/// rule compares with it).
pub fn check_drift(
    model: &TrainedModel,
    new_rows: &[RecordBatch],
    deployed_f1: f64,
    settings: &LifecycleSettings,
) -> Result<DriftReport, ModelError> {
    let (labels, probabilities) = labelled_probabilities(model, new_rows)?;
    let performance = performance(model, &labels, &probabilities, deployed_f1, settings)?;
    let (features, prediction) = distributions(model, new_rows, &probabilities, settings)?;
    let label_rate = match &model.reference {
        Some(reference) if !labels.is_empty() => Some(
            label_rate_test(
                reference.positives,
                reference.rows,
                labels.iter().map(|&l| u64::from(l)).sum(),
                labels.len() as u64,
                settings.min_rows,
            )
            .map_err(stats_error)?,
        ),
        _ => None,
    };
    let drifted = features.iter().filter(|f| f.drifted).count();
    let share = if features.is_empty() {
        0.0
    } else {
        drifted as f64 / features.len() as f64
    };
    let data_drift = !features.is_empty() && share >= 0.5;
    let mut report = DriftReport {
        rule: settings.drift_rule,
        performance,
        features,
        prediction,
        label_rate,
        share_of_features_drifted: share,
        data_drift,
        verdict: Verdict::NoDrift,
        explanation: String::new(),
    };
    (report.verdict, report.explanation) = decide(&report, settings);
    Ok(report)
}

fn performance(
    model: &TrainedModel,
    labels: &[u8],
    probabilities: &[f64],
    deployed_f1: f64,
    settings: &LifecycleSettings,
) -> Result<PerformanceDrift, ModelError> {
    let threshold = model.threshold();
    let rows = labels.len();
    let reference = model.reference.as_ref();
    let mut drift = PerformanceDrift {
        rows,
        threshold,
        log_loss: None,
        roc_auc: None,
        f1: None,
        f1_at_half: 0.0,
        reference_source: reference.map(|r| r.source),
        reference_rows: reference.map_or(0, |r| r.rows),
        reference_log_loss: reference.map(|r| r.log_loss),
        reference_roc_auc: reference.and_then(|r| r.roc_auc),
        reference_f1: reference.map(|r| r.f1),
        test: None,
        deployed_f1: Some(deployed_f1),
    };
    if rows == 0 {
        return Ok(drift);
    }
    let losses = log_loss_per_row(labels, probabilities).map_err(stats_error)?;
    drift.log_loss = mean_interval(&losses, settings.confidence).ok();
    // (The labels are 0/1: log_loss_per_row checked them.)
    let mut at_half = ConfusionMatrix::default();
    for (&label, &probability) in labels.iter().zip(probabilities) {
        match (label, probability >= 0.5) {
            (0, false) => at_half.true_negatives += 1,
            (0, true) => at_half.false_positives += 1,
            (_, false) => at_half.false_negatives += 1,
            (_, true) => at_half.true_positives += 1,
        }
    }
    drift.f1_at_half = at_half.f1();
    (drift.f1, drift.roc_auc) = bootstrap_f1_and_auc(
        labels,
        probabilities,
        threshold,
        settings.bootstrap_resamples,
        settings.confidence,
    );
    if let Some(reference) = reference.filter(|r| !r.losses.is_empty()) {
        drift.test = Some(
            // The minimum applies to the new rows (decide() enforces it); a small reference is
            // allowed for, through its larger standard error.
            loss_degradation_test(
                &reference.losses,
                &losses,
                settings.min_log_loss_increase,
                MinRows::new(2).map_err(stats_error)?,
            )
            .map_err(stats_error)?,
        );
    }
    Ok(drift)
}

/// The F1 (at `threshold`) and ROC AUC intervals of a drift report, also used for the report's
/// test figures: bootstraps from [`BOOTSTRAP_SEED`] over at most [`BOOTSTRAP_MAX_ROWS`] rows (an
/// evenly spaced subsample of a larger batch); `None` where one is undefined.
pub fn bootstrap_f1_and_auc(
    labels: &[u8],
    probabilities: &[f64],
    threshold: f64,
    resamples: usize,
    confidence: ConfidenceLevel,
) -> (Option<BootstrapInterval>, Option<BootstrapInterval>) {
    let rows = labels.len();
    let (labels, probabilities): (Vec<u8>, Vec<f64>) = if rows > BOOTSTRAP_MAX_ROWS {
        (0..BOOTSTRAP_MAX_ROWS)
            .map(|i| i * rows / BOOTSTRAP_MAX_ROWS)
            .map(|i| (labels[i], probabilities[i]))
            .unzip()
    } else {
        (labels.to_vec(), probabilities.to_vec())
    };
    // The two bootstraps (each with its own seeded generator) on two cores.
    let (labels, probabilities) = (&labels, &probabilities);
    std::thread::scope(|scope| {
        let roc_auc = scope.spawn(|| {
            bootstrap_roc_auc_interval(labels, probabilities, resamples, confidence, BOOTSTRAP_SEED)
        });
        let f1 = bootstrap_f1_interval(
            labels,
            probabilities,
            threshold,
            resamples,
            confidence,
            BOOTSTRAP_SEED,
        );
        (f1.ok(), roc_auc.join().ok().and_then(Result::ok))
    })
}

fn compare(
    name: &str,
    reference: &[f64],
    current: &[f64],
) -> Result<Option<DistributionDrift>, ModelError> {
    if reference.len() < 2 || current.len() < 2 {
        return Ok(None);
    }
    let ks = ks_two_sample(reference, current).map_err(stats_error)?;
    let psi = psi(reference, current, PsiBins::DECILES).map_err(stats_error)?;
    let wasserstein = wasserstein_normed(reference, current).map_err(stats_error)?;
    Ok(Some(DistributionDrift {
        name: name.to_string(),
        reference_rows: reference.len(),
        current_rows: current.len(),
        p_adjusted: ks.p_value,
        ks,
        psi: psi.value,
        wasserstein_normed: wasserstein.normed,
        drifted: false,
        psi_bins: psi.bins,
    }))
}

type Distributions = (Vec<DistributionDrift>, Option<DistributionDrift>);

fn distributions(
    model: &TrainedModel,
    new_rows: &[RecordBatch],
    probabilities: &[f64],
    settings: &LifecycleSettings,
) -> Result<Distributions, ModelError> {
    let Some(reference) = &model.reference else {
        return Ok((Vec::new(), None));
    };
    let mut features = Vec::new();
    for name in FEATURES {
        let Some(profile) = reference.feature(name) else {
            continue;
        };
        // The current values are thinned like the reference's only above the exact-KS size.
        let (values, _) = feature_values(new_rows, name)?;
        let values = order_statistics(values, 10_000);
        if let Some(drift) = compare(name, &profile.values, &values)? {
            features.push(drift);
        }
    }
    let current_scores = order_statistics(probabilities.to_vec(), 10_000);
    let mut prediction = compare("predicted_probability", &reference.scores, &current_scores)?;
    // False-alarm control across every distribution compared in this report.
    let mut p_values: Vec<f64> = features.iter().map(|f| f.ks.p_value).collect();
    if let Some(p) = &prediction {
        p_values.push(p.ks.p_value);
    }
    if !p_values.is_empty() {
        let adjusted = benjamini_hochberg_adjusted(&p_values).map_err(stats_error)?;
        for (drift, p) in features
            .iter_mut()
            .chain(prediction.iter_mut())
            .zip(adjusted)
        {
            drift.p_adjusted = p;
            drift.drifted = p < settings.data_drift_significance.get()
                && (drift.psi >= settings.data_drift_effect
                    || drift.wasserstein_normed >= settings.data_drift_effect);
        }
    }
    Ok((features, prediction))
}

fn decide(report: &DriftReport, settings: &LifecycleSettings) -> (Verdict, String) {
    let perf = &report.performance;
    let drifted: Vec<&str> = report
        .features
        .iter()
        .filter(|f| f.drifted)
        .map(|f| f.name.as_str())
        .collect();
    let data_words = if drifted.is_empty() {
        "no feature's distribution moved significantly".to_string()
    } else {
        format!(
            "data drift in {} of {} features ({})",
            drifted.len(),
            report.features.len(),
            drifted.join(", ")
        )
    };
    let new_f1 = perf.f1.as_ref().map_or(0.0, |f| f.estimate);
    if settings.is_original() {
        let deployed = perf.deployed_f1.unwrap_or(0.0);
        return if perf.rows > 0 && new_f1 < deployed {
            (
                Verdict::PerformanceDrift,
                format!(
                    "original rule: F1 on the {} new rows is {new_f1:.4}, lower than the F1 recorded at deployment ({deployed:.4}): drift",
                    perf.rows
                ),
            )
        } else {
            (
                Verdict::NoDrift,
                format!(
                    "original rule: F1 on the {} new rows is {new_f1:.4}, not lower than the F1 recorded at deployment ({deployed:.4}): no drift",
                    perf.rows
                ),
            )
        };
    }
    if perf.rows < settings.min_rows.get() {
        return (
            Verdict::TooFewRows,
            format!(
                "too few rows to tell: {} new labelled rows, at least {} are needed for a performance test; the model stays ({data_words})",
                perf.rows,
                settings.min_rows.get()
            ),
        );
    }
    let Some(test) = &perf.test else {
        return (
            Verdict::NoReference,
            "the deployed model has no reference performance to test against (it predates drift statistics): retraining once to get one".into(),
        );
    };
    let figures = match (test, &perf.log_loss) {
        (DegradationTest::Tested(t), Some(loss)) => format!(
            "log loss on the {} new rows {:.4} ({:.0} % interval {:.4}–{:.4}) against {:.4} on the reference ({} rows, {}); one-sided test of an increase above {}: p = {} (significance {}); AUC {} against {}",
            perf.rows,
            t.current_mean,
            loss.confidence.get() * 100.0,
            loss.lower,
            loss.upper,
            t.reference_mean,
            perf.reference_rows,
            match perf.reference_source {
                Some(ReferenceSource::Validation) => "validation rows",
                _ => "training rows",
            },
            t.margin,
            fmt_p(t.p_value),
            settings.significance.get(),
            fmt_auc(perf.roc_auc.as_ref().map(|a| a.estimate)),
            fmt_auc(perf.reference_roc_auc),
        ),
        _ => "too few reference rows for the test".into(),
    };
    match test.degraded(settings.significance) {
        Some(true) => (
            Verdict::PerformanceDrift,
            format!("performance drift: {figures}; {data_words}: retraining on recent rows"),
        ),
        Some(false) if report.data_drift => (
            Verdict::DataDriftOnly,
            format!("{data_words}, but performance held ({figures}): the model stays"),
        ),
        Some(false) => (
            Verdict::NoDrift,
            format!("no drift: {figures}; {data_words}: the model stays"),
        ),
        None => (
            Verdict::TooFewRows,
            format!("too few rows to tell ({figures}); {data_words}: the model stays"),
        ),
    }
}
