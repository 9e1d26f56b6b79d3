//! What a model is compared with when new rows arrive, stored in the model artifact so a drift
//! check reads only the new rows: the distribution of each feature over the training rows, and
//! the model's own performance, score distribution and label rate on its validation rows (on its
//! training rows when it had none, which is optimistic and said so). Distributions are kept as
//! at most [`PROFILE_SAMPLE`] evenly spaced order statistics of the sorted values: the same
//! quantiles at a fixed size (a KS test against them is slightly conservative, as if the
//! reference had that many rows).

use arrow::array::{Array, RecordBatch};
use serde::{Deserialize, Serialize};

use crate::data::schema::FEATURES;
use crate::drift::stats::{log_loss_per_row, roc_auc};
use crate::model::columns::{feature_column, label_at, target_column};
use crate::model::{ModelError, TrainedModel, classification_metrics};

/// Values kept per distribution.
pub const PROFILE_SAMPLE: usize = 1000;

/// Where the reference performance was measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReferenceSource {
    /// Rows held out from training (the honest reference).
    Validation,
    /// The training rows themselves (no rows could be held out): optimistic.
    TrainingRows,
}

/// One feature's distribution over the training rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureProfile {
    pub name: String,
    /// Rows with the value present, and missing.
    pub present: u64,
    pub missing: u64,
    /// Sorted sample (order statistics) of the present values.
    pub values: Vec<f64>,
}

/// The reference a deployed model is checked against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReferenceProfile {
    pub source: ReferenceSource,
    /// Labelled rows the performance was measured on.
    pub rows: u64,
    pub positives: u64,
    pub log_loss: f64,
    pub roc_auc: Option<f64>,
    /// F1 at the model's decision threshold.
    pub f1: f64,
    /// Sorted sample of the per-row log losses (for the degradation test).
    pub losses: Vec<f64>,
    /// Sorted sample of the predicted probabilities.
    pub scores: Vec<f64>,
    /// Feature distributions over the training rows.
    pub features: Vec<FeatureProfile>,
}

/// Labels and predicted probabilities of the rows of `batches` whose `exited` is known.
pub fn labelled_probabilities(
    model: &TrainedModel,
    batches: &[RecordBatch],
) -> Result<(Vec<u8>, Vec<f64>), ModelError> {
    let mut labels = Vec::new();
    let mut probabilities = Vec::new();
    let mut first_row = 0;
    for batch in batches {
        let target = target_column(batch)?;
        let predictions = model.predict(batch)?;
        for (row, probability) in predictions.probabilities.iter().enumerate() {
            if let Some(label) = label_at(target, row, first_row + row)? {
                labels.push(label);
                probabilities.push(*probability);
            }
        }
        first_row += batch.num_rows();
    }
    Ok((labels, probabilities))
}

/// The present values of feature `name` in `batches`, as f64, and how many were missing.
pub fn feature_values(batches: &[RecordBatch], name: &str) -> Result<(Vec<f64>, u64), ModelError> {
    let mut values = Vec::new();
    let mut missing = 0u64;
    for batch in batches {
        let column = feature_column(batch, name, &[name.to_string()])?;
        missing += column.null_count() as u64;
        values.extend(column.iter().flatten().map(|v| v as f64));
    }
    Ok((values, missing))
}

/// At most `size` evenly spaced order statistics of `values` (sorted).
pub fn order_statistics(mut values: Vec<f64>, size: usize) -> Vec<f64> {
    values.retain(|v| v.is_finite());
    values.sort_unstable_by(f64::total_cmp);
    if values.len() <= size || size < 2 {
        return values;
    }
    let last = (values.len() - 1) as f64;
    (0..size)
        .map(|i| values[((i as f64) * last / (size - 1) as f64).round() as usize])
        .collect()
}

impl ReferenceProfile {
    /// The profile of `model`: its performance from `labels` and `probabilities`, measured on
    /// the rows `source` names, and the feature distributions of its `training` rows.
    pub fn measure(
        model: &TrainedModel,
        training: &[RecordBatch],
        source: ReferenceSource,
        labels: &[u8],
        probabilities: &[f64],
    ) -> Result<Self, ModelError> {
        let losses = log_loss_per_row(labels, probabilities)
            .map_err(|e| ModelError::InvalidModel(e.to_string()))?;
        let log_loss = losses.iter().sum::<f64>() / losses.len().max(1) as f64;
        let classes: Vec<u8> = probabilities
            .iter()
            .map(|&p| u8::from(p >= model.threshold()))
            .collect();
        let metrics = classification_metrics(labels, &classes, probabilities)?;
        let features = FEATURES
            .iter()
            .map(|name| {
                let (values, missing) = feature_values(training, name)?;
                Ok(FeatureProfile {
                    name: name.to_string(),
                    present: values.len() as u64,
                    missing,
                    values: order_statistics(values, PROFILE_SAMPLE),
                })
            })
            .collect::<Result<_, ModelError>>()?;
        Ok(ReferenceProfile {
            source,
            rows: labels.len() as u64,
            positives: labels.iter().map(|&l| u64::from(l)).sum(),
            log_loss,
            roc_auc: roc_auc(labels, probabilities).ok().flatten(),
            f1: metrics.f1,
            losses: order_statistics(losses, PROFILE_SAMPLE),
            scores: order_statistics(probabilities.to_vec(), PROFILE_SAMPLE),
            features,
        })
    }

    pub fn feature(&self, name: &str) -> Option<&FeatureProfile> {
        self.features.iter().find(|f| f.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_statistics_keep_the_extremes_and_the_size() {
        let values: Vec<f64> = (0..10_000).rev().map(f64::from).collect();
        let sample = order_statistics(values, 1000);
        assert_eq!(sample.len(), 1000);
        assert_eq!(sample[0], 0.0);
        assert_eq!(sample[999], 9999.0);
        assert!(sample.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(
            order_statistics(vec![3.0, 1.0, f64::NAN], 10),
            vec![1.0, 3.0]
        );
    }
}
