//! A run that goes on from what its folder holds: resumed from its newest checkpoint, or
//! extended to more epochs (`lenet resume --epochs N`). Everything here is checked before the
//! folder is written to; [`write_extended`] then makes an extended run's folder say what it now is.

use std::fs;
use std::path::{Path, PathBuf};

use burn::train::Learner;

use burn::store::ModuleRecord;

use super::checkpoint::{Checkpoints, Loaded};
use super::error::TrainingError;
use super::options::StartMode;
use super::resumable::Outcome;
use crate::config::TrainingConfig;
use crate::data::loader::Position;
use crate::model::LeNet5;
use crate::run::{self, CONFIG_FILE, RunError, SUMMARY_FILE, history};

/// A run found fit to go on: its newest checkpoint that loads, if any, and what was wrong with
/// newer ones.
pub struct Continued {
    pub newest: Option<Loaded>,
    pub warnings: Vec<String>,
}

/// The config and the config name the run in `run_dir` was started with, checked to be a run
/// that can go on as `mode` says: unfinished, unless it is extended.
pub fn saved_run(run_dir: &Path, mode: StartMode) -> Result<(TrainingConfig, String), RunError> {
    let config = run::prepare_resume(run_dir, matches!(mode, StartMode::Extend { .. }))?;
    let name = Checkpoints::new(run_dir)
        .config_name()
        .unwrap_or_else(|| run::name(run_dir));
    Ok((config, name))
}

/// Checks that the run in `run_dir`, started with `saved`, can go on with `config` as `mode`
/// says, and finds the checkpoint it goes on from.
pub fn check(
    config: &TrainingConfig,
    saved: &TrainingConfig,
    run_dir: &Path,
    mode: StartMode,
) -> Result<Continued, TrainingError> {
    let mut compared = saved.clone();
    if let StartMode::Extend { epochs } = mode {
        compared.epochs = epochs;
    }
    // Runs made before classes were recorded have none in their config: the data's are theirs.
    if compared.data.classes.is_none() {
        compared.data.classes = config.data.classes.clone();
    }
    if let Some(first) = compared.differences(config).into_iter().next() {
        return Err(TrainingError::Resume(format!(
            "{}: the run was started with {} = {}, not {}; resume with the config it started \
             with, or train it again with --overwrite",
            run_dir.join(CONFIG_FILE).display(),
            first.key,
            first.was,
            first.now
        )));
    }
    let (newest, problems) = Checkpoints::new(run_dir).newest();
    let warnings = problems
        .into_iter()
        .map(|problem| format!("skipping a checkpoint that does not load: {problem}"))
        .collect();
    if let StartMode::Extend { epochs } = mode {
        check_extend(config, epochs, run_dir, newest.as_ref())?;
    }
    Ok(Continued { newest, warnings })
}

/// Checks that a run can go on from its `newest` checkpoint to `epochs` epochs.
fn check_extend(
    config: &TrainingConfig,
    epochs: usize,
    run_dir: &Path,
    newest: Option<&Loaded>,
) -> Result<(), TrainingError> {
    let Some(newest) = newest else {
        return Err(TrainingError::Resume(format!(
            "{}: no checkpoint that loads, so nothing to continue from; train the run again \
             with --overwrite",
            run_dir.display()
        )));
    };
    let met = config
        .early_stopping
        .and_then(|rule| history::stopped_early(&newest.state.history, &rule));
    if let Some(epoch) = met {
        return Err(TrainingError::Resume(format!(
            "{}: early stopping ended the run at epoch {epoch}, and would end it again at once; \
             train a new run (with init_from: this run) to go on",
            run_dir.display()
        )));
    }
    let done = newest.state.position.epoch - 1;
    if epochs <= done {
        return Err(TrainingError::Resume(format!(
            "{}: the run has done {done} epochs already; --epochs must be more than that",
            run_dir.display()
        )));
    }
    Ok(())
}

/// Makes the folder of a run extended to `config.epochs` say so: the config with its new
/// epochs, and no summary, since the run is no longer finished. The final model stays until the
/// longer run replaces it.
pub fn write_extended(config: &TrainingConfig, run_dir: &Path) -> Result<(), RunError> {
    let json = serde_json::to_vec_pretty(config).expect("config serialises");
    run::write_atomic(&run_dir.join(CONFIG_FILE), &json)?;
    let summary: PathBuf = run_dir.join(SUMMARY_FILE);
    match fs::remove_file(&summary) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(RunError::io(&summary, "remove")(e))
        }
        _ => Ok(()),
    }
}

/// Makes a resumed run's recorded config say where it is logged now (`--resume
/// --tensorboard`, say), so that the next resume goes on logging there; nothing else changes.
pub fn write_tracking(config: &TrainingConfig, run_dir: &Path) -> Result<(), TrainingError> {
    let path = run_dir.join(CONFIG_FILE);
    let mut saved = TrainingConfig::load(&path)?;
    if saved.tracking != config.tracking {
        saved.tracking = config.tracking.clone();
        let json = serde_json::to_vec_pretty(&saved).expect("config serialises");
        run::write_atomic(&path, &json)?;
    }
    Ok(())
}

/// The learner as the `loaded` checkpoint left it, how the run had gone until then, where
/// it continues, and its weight average if it kept one.
pub fn restore(
    checkpoints: &Checkpoints,
    learner: &mut Learner<LeNet5>,
    loaded: Loaded,
) -> (Outcome, Position, Option<ModuleRecord>) {
    learner.load_model(loaded.model);
    learner.load_optim(loaded.optim);
    learner.load_scheduler(loaded.scheduler);
    let start = loaded.state.position;
    let path = checkpoints.state_file(loaded.state.steps);
    let outcome = Outcome {
        completed_epochs: start.epoch - 1,
        history: loaded.state.history,
        checkpoint: Some((path, start)),
        stop: None,
        stopped_early_at: None,
        stopped_by: None,
    };
    (outcome, start, loaded.average)
}
