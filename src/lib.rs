//! LeNet-5, the classic digit classifier, on the Burn deep-learning framework.
//!
//! The binary (`src/main.rs`) is a thin command line over this library. Its folders are its
//! roles, and each depends only on those listed before it:
//!
//! - [`device`]: which compiled backend a run uses; [`input`]: the 28x28 form the model takes;
//! - [`data`]: IDX files, where they come from, datasets, batches, the epoch loader;
//! - [`kernels`]: LeNet's convolutions, pools and the 1998 ops on the CPU backends (flex, ndarray);
//! - [`model`]: LeNet-5 as a Burn `Module` and its `Config`, and the 1998 network's parts;
//! - [`config`]: the JSON config, section by section;
//! - [`run`]: the folder a run writes, and a finished run loaded back;
//! - [`report`]: tables, text and figures for people;
//! - [`inference`]: running a model, `eval`, `predict`, `export`;
//! - [`training`]: training through Burn's `Learner`, resumable, in phases;
//! - [`serve`]: the runs in the browser, over [`run`] and [`inference`];
//! - [`bench`]: how fast each backend trains, evaluates and predicts.

pub mod bench;
pub mod config;
pub mod data;
pub mod device;
pub mod inference;
pub mod input;
pub mod kernels;
pub mod model;
pub mod report;
pub mod run;
pub mod serve;
pub mod training;

use thiserror::Error;

/// Everything that can stop a command, each with a one-line message naming what is wrong.
#[derive(Debug, Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    Device(#[from] device::NotCompiled),
    #[error(transparent)]
    Source(#[from] data::source::SourceError),
    #[error(transparent)]
    Data(#[from] data::dataset::DataError),
    #[error(transparent)]
    Run(#[from] run::RunError),
    #[error(transparent)]
    Plot(#[from] report::plots::PlotError),
    #[error(transparent)]
    Export(#[from] inference::export::ExportError),
    #[error(transparent)]
    Checkpoint(#[from] training::checkpoint::CheckpointError),
    #[error(transparent)]
    Serve(#[from] serve::ServeError),
    #[error("training failed: {0}")]
    Training(String),
    #[error("cannot resume: {0}")]
    Resume(String),
    #[error("init_from {}: {message}", dir.display())]
    InitFrom {
        dir: std::path::PathBuf,
        message: String,
    },
    #[error("evaluation failed: {0}")]
    Evaluation(String),
    #[error("{}: {problem}", file.display())]
    Import {
        file: std::path::PathBuf,
        problem: String,
    },
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
        checkpoint: Option<(std::path::PathBuf, data::loader::Position)>,
        batches_per_epoch: usize,
        run_dir: std::path::PathBuf,
        /// The epochs completed, for the table printed after the dashboard closes.
        history: Vec<run::history::EpochMetrics>,
    },
    #[error(
        "training killed from the dashboard (q, then k); resume from its newest checkpoint with: \
         lenet resume --run {}",
        run_dir.display()
    )]
    Killed { run_dir: std::path::PathBuf },
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
        /// The epochs completed, for the table printed after the dashboard closes.
        history: Vec<run::history::EpochMetrics>,
    },
}

impl Error {
    /// The epochs a stopped run completed, if it is one.
    pub fn history(&self) -> Option<&[run::history::EpochMetrics]> {
        match self {
            Error::Interrupted { history, .. } | Error::NonFiniteLoss { history, .. } => {
                Some(history)
            }
            _ => None,
        }
    }

    /// The process exit code: 2 for a problem with what the user asked for (config, flags,
    /// device, run directory policy), 1 for a problem met while doing it (data, I/O, training).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Config(_) | Error::Device(_) => 2,
            Error::Run(error) if error.is_usage() => 2,
            Error::Resume(_) | Error::InitFrom { .. } => 2,
            Error::Serve(serve::ServeError::NoArtifacts { .. }) => 2,
            // The shell's convention for a program stopped by Ctrl-C.
            Error::Interrupted { .. } | Error::Killed { .. } => 130,
            Error::Data(data::dataset::DataError::SplitTooLarge { .. }) => 2,
            Error::Data(data::dataset::DataError::Folder(
                data::folder::FolderError::TestTooLarge { .. },
            )) => 2,
            // A data set that needs data.dir and has none: the config is incomplete.
            Error::Source(data::source::SourceError::NoDir { .. }) => 2,
            _ => 1,
        }
    }
}
