//! Training a challenger on a window, with its threshold chosen and its reference measured on the
//! window's validation rows, and the champion/challenger gate: the challenger replaces the
//! deployed model only if, on the same validation rows, its per-row log loss is not worse than
//! the champion's by the margin (a paired, one-sided test, the non-inferiority form of MLflow's
//! minimum-change rule). Both models' figures are kept whatever the outcome.

use arrow::array::RecordBatch;
use serde::{Deserialize, Serialize};

use super::LifecycleSettings;
use super::profile::{ReferenceProfile, ReferenceSource, labelled_probabilities};
use super::window::TrainingWindow;
use crate::drift::stats::{MinRows, PairedTest, log_loss_per_row, paired_comparison, roc_auc};
use crate::drift::threshold::{ThresholdRule, choose_threshold};
use crate::model::{ModelError, TrainedModel, ValidTrainingParams, classification_metrics, train};

/// A newly trained model with the rows it was validated on.
#[derive(Debug, Clone)]
pub struct Challenger {
    pub model: TrainedModel,
    pub validation: Vec<RecordBatch>,
}

/// Trains on `window` of `batches` (the compiled rows from position `first_row` on, in order:
/// reading only the window's, `first_row = window.rows.start`, gives the same model as reading
/// all from 0): the fit on the training part,
/// the threshold by `settings.threshold` on the validation part (the fallback threshold when
/// there is none or it has one class only), and the reference profile.
pub fn train_challenger(
    batches: &[RecordBatch],
    first_row: u64,
    window: TrainingWindow,
    params: &ValidTrainingParams,
    settings: &LifecycleSettings,
) -> Result<Challenger, ModelError> {
    let (training, validation) = window.split(batches, first_row);
    let mut model = train(&training, params)?;
    let (source, reference_rows) = if validation.is_empty() {
        (ReferenceSource::TrainingRows, &training)
    } else {
        (ReferenceSource::Validation, &validation)
    };
    // One prediction of the reference rows serves the threshold choice and the profile.
    let (labels, probabilities) = labelled_probabilities(&model, reference_rows)?;
    if source == ReferenceSource::Validation && !labels.is_empty() {
        let both_classes = labels.contains(&0) && labels.contains(&1);
        let rule = if both_classes && !settings.is_original() {
            settings.threshold
        } else {
            ThresholdRule::Fixed {
                threshold: settings.fallback_threshold,
            }
        };
        model.decision_threshold = choose_threshold(&labels, &probabilities, rule).ok();
    }
    if model.decision_threshold.is_none() && !settings.is_original() {
        tracing::info!(
            threshold = settings.fallback_threshold.get(),
            "no usable validation rows: the fallback threshold stays"
        );
    }
    model.reference = Some(ReferenceProfile::measure(
        &model,
        &training,
        source,
        &labels,
        &probabilities,
    )?);
    model.window = Some(window);
    Ok(Challenger { model, validation })
}

/// One model's figures on the gate's rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateFigures {
    pub log_loss: f64,
    pub roc_auc: Option<f64>,
    /// F1 at the model's own threshold.
    pub f1: f64,
    pub threshold: f64,
}

/// The gate's verdict with both models' figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateResult {
    pub accepted: bool,
    pub rows: usize,
    pub champion: GateFigures,
    pub challenger: GateFigures,
    pub test: Option<PairedTest>,
    /// Why, in words, with the figures.
    pub reason: String,
}

fn figures(model: &TrainedModel, labels: &[u8], probabilities: &[f64]) -> GateFigures {
    let losses = log_loss_per_row(labels, probabilities).unwrap_or_default();
    let classes: Vec<u8> = probabilities
        .iter()
        .map(|&p| u8::from(p >= model.threshold()))
        .collect();
    GateFigures {
        log_loss: losses.iter().sum::<f64>() / losses.len().max(1) as f64,
        roc_auc: roc_auc(labels, probabilities).ok().flatten(),
        f1: classification_metrics(labels, &classes, probabilities)
            .map(|m| m.f1)
            .unwrap_or(0.0),
        threshold: model.threshold(),
    }
}

/// Compares `champion` and `challenger` on the challenger's validation rows.
pub fn challenge(
    champion: &TrainedModel,
    challenger: &Challenger,
    settings: &LifecycleSettings,
) -> Result<GateResult, ModelError> {
    let (labels, champion_p) = labelled_probabilities(champion, &challenger.validation)?;
    let (_, challenger_p) = labelled_probabilities(&challenger.model, &challenger.validation)?;
    let champion_figures = figures(champion, &labels, &champion_p);
    let challenger_figures = figures(&challenger.model, &labels, &challenger_p);
    let rows = labels.len();
    if rows == 0 {
        return Ok(GateResult {
            accepted: false,
            rows,
            champion: champion_figures,
            challenger: challenger_figures,
            test: None,
            reason: "no validation rows to compare the challenger with the champion on: the champion stays".into(),
        });
    }
    let per_row = |p: &[f64]| {
        log_loss_per_row(&labels, p).map_err(|e| ModelError::InvalidModel(e.to_string()))
    };
    let (champion_losses, challenger_losses) = (per_row(&champion_p)?, per_row(&challenger_p)?);
    let min_rows = MinRows::new(2).map_err(|e| ModelError::InvalidModel(e.to_string()))?;
    let test = paired_comparison(
        &champion_losses,
        &challenger_losses,
        settings.challenger_margin,
        min_rows,
    )
    .map_err(|e| ModelError::InvalidModel(e.to_string()))?;
    let accepted = test
        .challenger_at_least_as_good(settings.gate_significance)
        .unwrap_or(challenger_figures.log_loss <= champion_figures.log_loss);
    let p_value = match &test {
        PairedTest::Tested(t) => fmt_p(t.p_value),
        PairedTest::TooFewRows { .. } => "n/a".into(),
    };
    let reason = format!(
        "on the same {rows} validation rows the challenger's log loss is {:.4} (AUC {}, F1 {:.3}) against the champion's {:.4} (AUC {}, F1 {:.3}); non-inferiority with margin {} at significance {}: p = {p_value}: {}",
        challenger_figures.log_loss,
        fmt_auc(challenger_figures.roc_auc),
        challenger_figures.f1,
        champion_figures.log_loss,
        fmt_auc(champion_figures.roc_auc),
        champion_figures.f1,
        settings.challenger_margin.get(),
        settings.gate_significance.get(),
        if accepted {
            "the challenger replaces the champion"
        } else {
            "the challenger is rejected, the champion stays"
        }
    );
    Ok(GateResult {
        accepted,
        rows,
        champion: champion_figures,
        challenger: challenger_figures,
        test: Some(test),
        reason,
    })
}

pub(crate) fn fmt_auc(auc: Option<f64>) -> String {
    auc.map_or_else(|| "n/a".into(), |a| format!("{a:.3}"))
}

/// A p-value for a sentence: three decimals, or scientific notation when tiny.
pub(crate) fn fmt_p(p: f64) -> String {
    if p < 1e-16 {
        "< 1e-16".into()
    } else if p < 0.001 {
        format!("{p:.1e}")
    } else {
        format!("{p:.3}")
    }
}
