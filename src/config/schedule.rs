//! The `lr_schedule` section, tagged by `"type"`: constant, step, cosine or one-cycle, written
//! per epoch, and the Burn scheduler it makes, which steps per batch.

use burn::lr_scheduler::LrSchedulerConfig;
use burn::lr_scheduler::constant::ConstantLr;
use burn::lr_scheduler::cosine::CosineAnnealingLrSchedulerConfig;
use burn::lr_scheduler::linear::LinearLrSchedulerConfig;
use burn::lr_scheduler::module_lr_scheduler::ModuleLrScheduler;
use burn::lr_scheduler::sequential::SequentialLrSchedulerConfig;
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
    /// One cycle: rise linearly from `initial_lr` to the optimizer's learning rate over
    /// `warmup_epochs` (a fraction of an epoch is allowed), then anneal to `min_lr` along a
    /// cosine over the rest of the run.
    Onecycle(OnecycleSection),
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
            LrSchedule::Cosine(cosine) => check_cosine(lr, cosine.min_lr),
            LrSchedule::Onecycle(cycle) => {
                check_cosine(lr, cycle.min_lr)?;
                check(
                    cycle.initial_lr > 0.0 && cycle.initial_lr < lr,
                    "lr_schedule.initial_lr",
                    format!(
                        "must be above 0 and below optimizer.learning_rate ({lr}), got {}",
                        cycle.initial_lr
                    ),
                )?;
                check(
                    cycle.warmup_epochs > 0.0 && cycle.warmup_epochs.is_finite(),
                    "lr_schedule.warmup_epochs",
                    format!("must be a positive number, got {}", cycle.warmup_epochs),
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
            LrSchedule::Onecycle(cycle) => {
                let total = epochs * iterations_per_epoch;
                let warmup = ((cycle.warmup_epochs * iterations_per_epoch as f64).round() as usize)
                    .clamp(1, total.saturating_sub(1).max(1));
                let rise = LinearLrSchedulerConfig::new(cycle.initial_lr, lr, warmup);
                let fall = CosineAnnealingLrSchedulerConfig::new(lr, (total - warmup).max(1))
                    .with_min_lr(cycle.min_lr);
                SequentialLrSchedulerConfig::new(
                    vec![
                        LrSchedulerConfig::Linear(rise),
                        LrSchedulerConfig::Cosine(fall),
                    ],
                    vec![warmup],
                )
                .init()
            }
        };
        built.map_err(|message| ConfigError::value("lr_schedule", message))
    }
}

/// Burn's cosine schedule accepts initial rates up to 1 only, and anneals downwards.
fn check_cosine(lr: f64, min_lr: f64) -> Result<(), ConfigError> {
    check(
        lr <= 1.0,
        "optimizer.learning_rate",
        format!("must be at most 1 with a cosine schedule, got {lr}"),
    )?;
    check(
        min_lr >= 0.0 && min_lr < lr,
        "lr_schedule.min_lr",
        format!("must be at least 0 and below optimizer.learning_rate ({lr}), got {min_lr}"),
    )
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OnecycleSection {
    pub warmup_epochs: f64,
    pub initial_lr: f64,
    pub min_lr: f64,
}

impl Default for OnecycleSection {
    fn default() -> Self {
        Self {
            warmup_epochs: 0.3,
            initial_lr: 1e-4,
            min_lr: 0.0,
        }
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
        let (kind, section) =
            tagged_section(deserializer, &["constant", "step", "cosine", "onecycle"])?;
        Ok(match kind.as_str() {
            "constant" => {
                let Empty {} = section_body(section)?;
                LrSchedule::Constant
            }
            "step" => LrSchedule::Step(section_body(section)?),
            "cosine" => LrSchedule::Cosine(section_body(section)?),
            _ => LrSchedule::Onecycle(section_body(section)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rates(mut scheduler: ModuleLrScheduler, steps: usize) -> Vec<f64> {
        (0..steps).map(|_| scheduler.step().base()).collect()
    }

    #[test]
    fn onecycle_rises_to_the_peak_then_anneals() {
        let schedule = LrSchedule::Onecycle(OnecycleSection {
            warmup_epochs: 0.5,
            initial_lr: 0.001,
            min_lr: 0.0,
        });
        let lrs = rates(schedule.init(0.01, 2, 10).unwrap(), 20);
        assert!(
            (lrs[0] - 0.001).abs() < 1e-12,
            "starts at initial_lr: {lrs:?}"
        );
        let peak = lrs.iter().cloned().fold(0.0, f64::max);
        assert!(
            (peak - 0.01).abs() < 1e-12,
            "peaks at learning_rate: {lrs:?}"
        );
        let top = lrs.iter().position(|&lr| lr == peak).unwrap();
        assert_eq!(top, 5, "peak after warmup_epochs * iterations: {lrs:?}");
        assert!(lrs[..=top].windows(2).all(|w| w[0] < w[1]), "{lrs:?}");
        assert!(lrs[top..].windows(2).all(|w| w[0] > w[1]), "{lrs:?}");
        assert!(lrs[19] < 0.001, "ends near min_lr: {lrs:?}");
    }

    #[test]
    fn onecycle_resumes_from_its_record() {
        let schedule = LrSchedule::Onecycle(OnecycleSection::default());
        let whole = rates(schedule.init(0.01, 3, 7).unwrap(), 21);
        let mut first = schedule.init(0.01, 3, 7).unwrap();
        let mut resumed: Vec<f64> = (0..9).map(|_| first.step().base()).collect();
        let second = schedule
            .init(0.01, 3, 7)
            .unwrap()
            .load_record(first.to_record());
        resumed.extend(rates(second, 12));
        assert_eq!(resumed, whole);
    }
}
