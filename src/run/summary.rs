//! `summary.json`: the outcome of a finished run.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::history::EpochMetrics;
use crate::device::BackendKind;

/// What `summary.json` holds: the outcome of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// The name of the config the run was started with.
    pub config: String,
    pub run_dir: PathBuf,
    pub device: BackendKind,
    pub parameters: usize,
    pub epochs: usize,
    pub train_images: usize,
    pub valid_images: usize,
    /// Whether validation used the test set (`data.validation_size` 0).
    pub validated_on_test_set: bool,
    pub test_images: usize,
    pub test_correct: usize,
    /// Fraction of test images classified correctly, 0..1.
    pub test_accuracy: f64,
    pub test_loss: f64,
    pub train_seconds: f64,
    pub test_seconds: f64,
    /// Whether the run was interrupted and resumed on the way.
    #[serde(default)]
    pub resumed: bool,
    /// The class names, in label order.
    #[serde(default)]
    pub classes: Vec<String>,
    /// The epoch whose weights are `model_best.bpk`, and how it was chosen.
    #[serde(default)]
    pub best: Option<BestEpoch>,
    /// The epoch at which early stopping ended the run, before its configured epochs.
    #[serde(default)]
    pub stopped_early_at: Option<usize>,
    /// Why the run ended early when it was not early stopping but its caller that ended it (a
    /// sweep's hyperband, which compares the run with the sweep's other trials).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_by: Option<String>,
    pub history: Vec<EpochMetrics>,
}

/// The best epoch of a run, by the validation metric that chose it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BestEpoch {
    pub epoch: usize,
    /// `valid_loss` or `valid_accuracy`.
    pub metric: String,
    pub value: f64,
    /// The best epoch's model on the test set.
    pub test_accuracy: f64,
    pub test_loss: f64,
}
