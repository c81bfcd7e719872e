//! The `early_stopping` section: when a run stops because validation no longer improves, and
//! which metric decides the best epoch, whose weights a run keeps as `model_best.bpk`.

use serde::{Deserialize, Serialize};

use super::error::{ConfigError, check};

/// The validation metric that decides the best epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopMetric {
    /// Lower is better.
    #[default]
    ValidLoss,
    /// Higher is better.
    ValidAccuracy,
}

impl std::fmt::Display for StopMetric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StopMetric::ValidLoss => "valid_loss",
            StopMetric::ValidAccuracy => "valid_accuracy",
        })
    }
}

/// Stop after `patience` epochs in a row that do not beat the best epoch by more than
/// `min_delta` (in the metric's own unit: loss, or accuracy as a fraction).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EarlyStopping {
    pub metric: StopMetric,
    pub patience: usize,
    pub min_delta: f64,
}

impl Default for EarlyStopping {
    fn default() -> Self {
        Self {
            metric: StopMetric::ValidLoss,
            patience: 3,
            min_delta: 0.0,
        }
    }
}

impl EarlyStopping {
    pub fn validate(&self) -> Result<(), ConfigError> {
        check(
            self.patience > 0,
            "early_stopping.patience",
            "must be at least 1 (epochs without improvement before stopping)",
        )?;
        check(
            self.min_delta.is_finite() && self.min_delta >= 0.0,
            "early_stopping.min_delta",
            format!("must be 0 or more, got {}", self.min_delta),
        )
    }
}
