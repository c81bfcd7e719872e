//! One trial trained in this process: what `lenet sweep --trial N` does, for each trial the
//! sweep starts on this machine and in each SLURM array task. A trial that is done is left as
//! it is, a stopped one resumes from its checkpoint, a new one starts; with hyperband, the
//! trial judges itself at each rung against the other trials' folders.

use std::path::PathBuf;
use std::sync::Arc;

use super::error::SweepError;
use super::folder::{self, TrialState, TrialStatus};
use super::hyperband;
use super::plan::SweepPlan;
use super::record::Trial;
use crate::run::history::EpochMetrics;
use crate::training::{EpochGate, StartMode, TrainOptions, Training};

/// What a trial needs done.
pub enum TrialStart {
    /// Nothing: it finished, was terminated, or failed, as its folder says.
    Done { state: TrialState, dir: PathBuf },
    /// Training, prepared: new, or resumed from its checkpoint.
    Ready {
        training: Box<Training>,
        resumed: bool,
    },
}

/// The trial numbered `number` of `plan`, prepared to train with `options` (without the
/// dashboard, which belongs to a terminal of its own).
pub fn start(
    plan: &SweepPlan,
    number: usize,
    options: &TrainOptions,
) -> Result<TrialStart, SweepError> {
    let trial = plan.trial(number)?;
    folder::open(plan)?;
    let status = TrialStatus::read(&plan.trial_dir(trial));
    if status.state.is_done() {
        return Ok(TrialStart::Done {
            state: status.state,
            dir: status.dir,
        });
    }
    let config = plan.config(trial)?;
    let mode = match status.state {
        TrialState::Pending => StartMode::New,
        _ => StartMode::Resume,
    };
    let mut options = options.clone();
    options.dashboard = false;
    if plan.spec.early_terminate.is_some() {
        options.epoch_gate = Some(hyperband_gate(plan, trial, config.epochs));
    }
    let training = Training::prepare(&config, &plan.spec.name, mode, &options)?;
    Ok(TrialStart::Ready {
        training: Box::new(training),
        resumed: mode == StartMode::Resume,
    })
}

/// Hyperband's say at each epoch end: at a rung, the trial's metric against every other
/// trial's there, as their folders hold them now.
fn hyperband_gate(plan: &SweepPlan, trial: &Trial, epochs: usize) -> EpochGate {
    let rule = plan.spec.early_terminate.expect("asked for with a rule");
    let metric = plan.spec.metric;
    let dir = plan.dir.clone();
    let record = plan.record();
    let name = trial.name.clone();
    Arc::new(move |history: &[EpochMetrics]| {
        let epoch = history.last()?.epoch;
        if !hyperband::rungs(&rule, epochs).contains(&epoch) {
            return None;
        }
        let others = folder::other_histories(&dir, &record, &name);
        hyperband::judge(&rule, metric, epochs, history, &others)
    })
}
