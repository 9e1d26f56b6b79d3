//! Model drift: whether the deployed model still does well enough on new rows to stay deployed.
//! [`report::check_drift`] measures the deployed model on the new labelled rows against the
//! reference profile stored with it and returns a [`report::DriftReport`] (performance with
//! intervals and a one-sided test, per-feature data drift, prediction and label-rate drift, and
//! the verdict in words); the lifecycle settings choose the rule, including the original raw-F1
//! comparison. [`stats`] holds the statistics and [`threshold`] the choice of the decision
//! threshold, each pinned against scipy / scikit-learn in its tests.

pub mod report;
pub mod stats;
pub mod threshold;
