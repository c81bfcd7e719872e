//! The `lr_schedule` section, tagged by `"type"`: constant, step or cosine, written per epoch,
//! and the Burn scheduler it makes, which steps per batch.

use burn::lr_scheduler::constant::ConstantLr;
use burn::lr_scheduler::cosine::CosineAnnealingLrSchedulerConfig;
use burn::lr_scheduler::module_lr_scheduler::ModuleLrScheduler;
use burn::lr_scheduler::step::StepLrSchedulerConfig;
use serde::{Deserialize, Deserializer, Serialize};

use super::error::{ConfigError, check};
use super::tagged::{Empty, section_body, tagged_section};

/// How the learning rate changes over the run, tagged by `"type"`. Burn steps schedules per
/// batch; these are written per epoch and converted.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum LrSchedule {
    /// The optimizer's learning rate throughout.
    Constant,
    /// Multiply the learning rate by `gamma` every `step_epochs` epochs.
    Step(StepSection),
    /// Anneal from the optimizer's learning rate to `min_lr` over the run along a cosine.
    Cosine(CosineSection),
}

impl LrSchedule {
    /// Checks every value that JSON types alone do not constrain; `learning_rate` is the
    /// optimizer's, where the schedule starts.
    pub fn validate(&self, learning_rate: f64) -> Result<(), ConfigError> {
        let lr = learning_rate;
        match self {
            LrSchedule::Constant => Ok(()),
            LrSchedule::Step(step) => {
                check(
                    step.step_epochs > 0,
                    "lr_schedule.step_epochs",
                    "must be at least 1",
                )?;
                check(
                    step.gamma > 0.0 && step.gamma < 1.0,
                    "lr_schedule.gamma",
                    format!("must be in (0, 1), got {}", step.gamma),
                )
            }
            LrSchedule::Cosine(cosine) => {
                // Burn's cosine schedule accepts initial rates up to 1 only.
                check(
                    lr <= 1.0,
                    "optimizer.learning_rate",
                    format!("must be at most 1 with a cosine schedule, got {lr}"),
                )?;
                check(
                    cosine.min_lr >= 0.0 && cosine.min_lr < lr,
                    "lr_schedule.min_lr",
                    format!(
                        "must be at least 0 and below optimizer.learning_rate ({lr}), got {}",
                        cosine.min_lr
                    ),
                )
            }
        }
    }

    /// The Burn scheduler for a run of `epochs` epochs of `iterations_per_epoch` batches that
    /// starts at `learning_rate`: Burn's schedulers step once per batch, the config speaks in
    /// epochs.
    pub fn init(
        &self,
        learning_rate: f64,
        epochs: usize,
        iterations_per_epoch: usize,
    ) -> Result<ModuleLrScheduler, ConfigError> {
        let lr = learning_rate;
        let built = match self {
            LrSchedule::Constant => Ok(ConstantLr::new(lr).into()),
            LrSchedule::Step(step) => {
                StepLrSchedulerConfig::new(lr, step.step_epochs * iterations_per_epoch)
                    .with_gamma(step.gamma)
                    .init()
            }
            LrSchedule::Cosine(cosine) => {
                CosineAnnealingLrSchedulerConfig::new(lr, epochs * iterations_per_epoch)
                    .with_min_lr(cosine.min_lr)
                    .init()
            }
        };
        built.map_err(|message| ConfigError::value("lr_schedule", message))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StepSection {
    pub step_epochs: usize,
    pub gamma: f64,
}

impl Default for StepSection {
    fn default() -> Self {
        Self {
            step_epochs: 5,
            gamma: 0.1,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CosineSection {
    pub min_lr: f64,
}

impl<'de> Deserialize<'de> for LrSchedule {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (kind, section) = tagged_section(deserializer, &["constant", "step", "cosine"])?;
        Ok(match kind.as_str() {
            "constant" => {
                let Empty {} = section_body(section)?;
                LrSchedule::Constant
            }
            "step" => LrSchedule::Step(section_body(section)?),
            _ => LrSchedule::Cosine(section_body(section)?),
        })
    }
}
