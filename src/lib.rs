//! LeNet-5, the classic digit classifier, on the Burn deep-learning framework.
//!
//! The binary (`src/main.rs`) is a thin command line over this library: [`config`] reads a run's
//! hyperparameters, [`source`] finds or downloads MNIST, [`data`] turns it into Burn datasets,
//! [`model`] declares the network, [`training`] trains it through Burn's `Learner`,
//! [`inference`] runs it, [`eval`] reports on a finished run, [`predict`] classifies people's
//! images and [`export`] writes the weights for PyTorch.

pub mod augment;
pub mod bench;
pub mod checkpoint;
pub mod config;
pub mod conv;
pub mod data;
pub mod device;
pub mod eval;
pub mod export;
pub mod history;
pub mod idx;
pub mod inference;
pub mod lecun98;
pub mod loader;
pub mod model;
pub mod plots;
pub mod pool;
pub mod predict;
pub mod renderer;
pub mod report;
pub mod run;
pub mod run_dir;
pub mod source;
pub mod terminal;
pub mod training;
pub mod training_loop;

use thiserror::Error;

/// Everything that can stop a command, each with a one-line message naming what is wrong.
#[derive(Debug, Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    Device(#[from] device::NotCompiled),
    #[error(transparent)]
    Source(#[from] source::SourceError),
    #[error(transparent)]
    Data(#[from] data::DataError),
    #[error(transparent)]
    RunDir(#[from] run_dir::RunDirError),
    #[error(transparent)]
    Run(#[from] run::RunError),
    #[error(transparent)]
    Plot(#[from] plots::PlotError),
    #[error(transparent)]
    Export(#[from] export::ExportError),
    #[error(transparent)]
    Checkpoint(#[from] checkpoint::CheckpointError),
    #[error("training failed: {0}")]
    Training(String),
    #[error("cannot resume: {0}")]
    Resume(String),
    #[error("evaluation failed: {0}")]
    Evaluation(String),
    #[error(
        "training stopped ({reason}); {}",
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
        reason: String,
        checkpoint: Option<(std::path::PathBuf, checkpoint::Position)>,
        batches_per_epoch: usize,
        run_dir: std::path::PathBuf,
    },
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
        checkpoint: Option<std::path::PathBuf>,
    },
}

impl Error {
    /// The process exit code: 2 for a problem with what the user asked for (config, flags,
    /// device, run directory policy), 1 for a problem met while doing it (data, I/O, training).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Config(_) | Error::Device(_) => 2,
            Error::RunDir(
                run_dir::RunDirError::Exists { .. }
                | run_dir::RunDirError::NothingToResume { .. }
                | run_dir::RunDirError::Finished { .. },
            ) => 2,
            Error::Resume(_) => 2,
            // The shell's convention for a program stopped by Ctrl-C.
            Error::Interrupted { .. } => 130,
            Error::Run(run::RunError::NotARun { .. }) => 2,
            Error::Data(data::DataError::ValidationTooLarge { .. }) => 2,
            _ => 1,
        }
    }
}
