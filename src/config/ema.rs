//! The `ema` section: training keeps an exponential moving average of the weights, and that
//! average is the model the run validates, keeps as its best and saves.

use serde::{Deserialize, Serialize};

use super::error::{ConfigError, check};

/// How much of the average each optimizer step keeps: 0.999 averages roughly the last
/// thousand steps' weights.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Ema {
    pub decay: f64,
}

impl Default for Ema {
    fn default() -> Self {
        Self { decay: 0.999 }
    }
}

impl Ema {
    pub fn validate(&self) -> Result<(), ConfigError> {
        check(
            self.decay > 0.0 && self.decay < 1.0,
            "ema.decay",
            format!("must be in (0, 1), got {}", self.decay),
        )
    }
}
