//! What can stop a training run, each in one line naming what is wrong, and how far a stopped
//! run got.

use std::path::PathBuf;

use thiserror::Error;

use super::checkpoint::CheckpointError;
use crate::config::ConfigError;
use crate::data::error::DataError;
use crate::data::loader::Position;
use crate::device::NotCompiled;
use crate::report::plots::PlotError;
use crate::run::RunError;
use crate::run::history::EpochMetrics;
use crate::tracking::TrackingError;

#[derive(Debug, Error)]
pub enum TrainingError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Device(#[from] NotCompiled),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error(transparent)]
    Plot(#[from] PlotError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Tracking(#[from] TrackingError),
    #[error("training failed: {0}")]
    Failed(String),
    #[error("cannot resume: {0}")]
    Resume(String),
    #[error("init_from {}: {message}", dir.display())]
    InitFrom { dir: PathBuf, message: String },
    #[error("evaluation failed: {0}")]
    Evaluation(String),
    #[error(
        "training stopped by {by}; {}",
        match checkpoint {
            Some((path, at)) if at.batches_done == *batches_per_epoch => format!(
                "checkpoint {} continues with epoch {}'s validation",
                path.display(), at.epoch
            ),
            Some((path, at)) => format!(
                "checkpoint {} continues at epoch {}, batch {} of {batches_per_epoch}",
                path.display(), at.epoch, at.batches_done + 1
            ),
            None => "no checkpoint was written yet".to_string(),
        }
    )]
    Interrupted {
        /// What stopped it, for people: "Ctrl-C", "the dashboard (q, then s)".
        by: String,
        checkpoint: Option<(PathBuf, Position)>,
        batches_per_epoch: usize,
        run_dir: PathBuf,
        /// The epochs completed, for the table printed after the dashboard closes.
        history: Vec<EpochMetrics>,
    },
    #[error("training killed from the dashboard (q, then k)")]
    Killed { run_dir: PathBuf },
    #[error(
        "training stopped: the loss became {loss} at epoch {epoch}, batch {batch}, so no step was \
         taken with it (is optimizer.learning_rate = {learning_rate} too high?); {}",
        match checkpoint {
            Some(path) => format!("the last good checkpoint is {}", path.display()),
            None => "no checkpoint had been written yet".to_string(),
        }
    )]
    NonFiniteLoss {
        epoch: usize,
        batch: usize,
        loss: f64,
        learning_rate: f64,
        checkpoint: Option<PathBuf>,
        /// The epochs completed, for the table printed after the dashboard closes.
        history: Vec<EpochMetrics>,
    },
}

impl TrainingError {
    /// The epochs a stopped run completed, if it is one.
    pub fn history(&self) -> Option<&[EpochMetrics]> {
        match self {
            TrainingError::Interrupted { history, .. }
            | TrainingError::NonFiniteLoss { history, .. } => Some(history),
            _ => None,
        }
    }

    /// The folder of a run that was stopped by its user and can be resumed from there.
    pub fn stopped_run(&self) -> Option<&std::path::Path> {
        match self {
            TrainingError::Interrupted { run_dir, .. } | TrainingError::Killed { run_dir } => {
                Some(run_dir)
            }
            _ => None,
        }
    }

    /// Whether the error is in what the user asked for (config, device, run folder policy, a
    /// resume or init_from that cannot be) rather than met while training.
    pub fn is_usage(&self) -> bool {
        match self {
            TrainingError::Config(_)
            | TrainingError::Device(_)
            | TrainingError::Resume(_)
            | TrainingError::InitFrom { .. } => true,
            TrainingError::Run(error) => error.is_usage(),
            TrainingError::Data(error) => error.is_usage(),
            TrainingError::Tracking(error) => error.is_usage(),
            _ => false,
        }
    }
}
