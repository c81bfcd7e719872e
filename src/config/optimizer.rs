//! The `optimizer` section, tagged by `"type"`: Adam or SGD, with PyTorch's defaults, and the
//! Burn optimizer it makes.

use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, ModuleOptimizer, SgdConfig};
use serde::{Deserialize, Deserializer, Serialize};

use super::error::{ConfigError, check};
use super::tagged::{section_body, tagged_section};

/// The optimizer, tagged by `"type"`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum OptimizerConfig {
    Adam(AdamSection),
    Sgd(SgdSection),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdamSection {
    pub learning_rate: f64,
    pub beta_1: f32,
    pub beta_2: f32,
    /// Burn's default is 1e-5; PyTorch's (and ours) is 1e-8.
    pub epsilon: f32,
    /// L2 penalty added to the gradient (PyTorch's `weight_decay` for Adam).
    pub weight_decay: f32,
}

impl Default for AdamSection {
    fn default() -> Self {
        Self {
            learning_rate: 1e-3,
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-8,
            weight_decay: 0.0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SgdSection {
    pub learning_rate: f64,
    /// 0 disables momentum.
    pub momentum: f64,
    /// Burn's default is 0.1; PyTorch's (and ours) is 0.
    pub dampening: f64,
    pub nesterov: bool,
    pub weight_decay: f32,
}

impl Default for SgdSection {
    fn default() -> Self {
        Self {
            learning_rate: 0.01,
            momentum: 0.9,
            dampening: 0.0,
            nesterov: false,
            weight_decay: 0.0,
        }
    }
}

impl<'de> Deserialize<'de> for OptimizerConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (kind, section) = tagged_section(deserializer, &["adam", "sgd"])?;
        Ok(match kind.as_str() {
            "adam" => OptimizerConfig::Adam(section_body(section)?),
            _ => OptimizerConfig::Sgd(section_body(section)?),
        })
    }
}

impl OptimizerConfig {
    pub fn learning_rate(&self) -> f64 {
        match self {
            OptimizerConfig::Adam(adam) => adam.learning_rate,
            OptimizerConfig::Sgd(sgd) => sgd.learning_rate,
        }
    }

    /// Checks every value that JSON types alone do not constrain.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let lr = self.learning_rate();
        check(
            lr.is_finite() && lr > 0.0,
            "optimizer.learning_rate",
            format!("must be a positive number, got {lr}"),
        )?;
        match self {
            OptimizerConfig::Adam(adam) => {
                for (key, beta) in [
                    ("optimizer.beta_1", adam.beta_1),
                    ("optimizer.beta_2", adam.beta_2),
                ] {
                    check(
                        (0.0..1.0).contains(&beta),
                        key,
                        format!("must be in [0, 1), got {beta}"),
                    )?;
                }
                check(
                    adam.epsilon.is_finite() && adam.epsilon > 0.0,
                    "optimizer.epsilon",
                    format!("must be a positive number, got {}", adam.epsilon),
                )?;
                check_weight_decay(adam.weight_decay)
            }
            OptimizerConfig::Sgd(sgd) => {
                check(
                    (0.0..1.0).contains(&sgd.momentum),
                    "optimizer.momentum",
                    format!("must be in [0, 1), got {}", sgd.momentum),
                )?;
                check(
                    (0.0..=1.0).contains(&sgd.dampening),
                    "optimizer.dampening",
                    format!("must be in [0, 1], got {}", sgd.dampening),
                )?;
                check(
                    !sgd.nesterov || (sgd.momentum > 0.0 && sgd.dampening == 0.0),
                    "optimizer.nesterov",
                    "needs momentum > 0 and dampening 0",
                )?;
                check_weight_decay(sgd.weight_decay)
            }
        }
    }

    /// The Burn optimizer this section describes.
    pub fn init(&self) -> ModuleOptimizer {
        let weight_decay = |penalty: f32| (penalty > 0.0).then(|| WeightDecayConfig::new(penalty));
        match self {
            OptimizerConfig::Adam(adam) => AdamConfig::new()
                .with_beta_1(adam.beta_1)
                .with_beta_2(adam.beta_2)
                .with_epsilon(adam.epsilon)
                .with_weight_decay(weight_decay(adam.weight_decay))
                .init(),
            OptimizerConfig::Sgd(sgd) => SgdConfig::new()
                .with_momentum((sgd.momentum > 0.0).then(|| {
                    MomentumConfig::new()
                        .with_momentum(sgd.momentum)
                        .with_dampening(sgd.dampening)
                        .with_nesterov(sgd.nesterov)
                }))
                .with_weight_decay(weight_decay(sgd.weight_decay))
                .init(),
        }
    }

    pub(super) fn set_learning_rate(&mut self, lr: f64) {
        match self {
            OptimizerConfig::Adam(adam) => adam.learning_rate = lr,
            OptimizerConfig::Sgd(sgd) => sgd.learning_rate = lr,
        }
    }
}

fn check_weight_decay(weight_decay: f32) -> Result<(), ConfigError> {
    check(
        weight_decay.is_finite() && weight_decay >= 0.0,
        "optimizer.weight_decay",
        format!("must be 0 or more, got {weight_decay}"),
    )
}
