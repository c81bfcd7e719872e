//! Everything that can stop a command, as the library's layers report it, and what the
//! command line makes of it: one line on stderr and the exit code.

use std::path::Path;

use thiserror::Error;

use lenet::bench::BenchError;
use lenet::config::ConfigError;
use lenet::data::error::DataError;
use lenet::device::NotCompiled;
use lenet::inference::InferenceError;
use lenet::inference::export::ExportError;
use lenet::report::plots::PlotError;
use lenet::run::{RunError, invocation};
use lenet::serve::ServeError;
use lenet::sweep::SweepError;
use lenet::training::TrainingError;

#[derive(Debug, Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Device(#[from] NotCompiled),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error(transparent)]
    Inference(#[from] InferenceError),
    #[error(transparent)]
    Export(#[from] ExportError),
    #[error(transparent)]
    Plot(#[from] PlotError),
    #[error(transparent)]
    Training(#[from] TrainingError),
    #[error(transparent)]
    Serve(#[from] ServeError),
    #[error(transparent)]
    Bench(#[from] BenchError),
    #[error(transparent)]
    Sweep(#[from] SweepError),
}

impl Error {
    /// The process exit code: 130 for a run its user stopped (the shell's code for a program
    /// stopped by Ctrl-C), 2 for a problem with what the user asked for (config, flags, device,
    /// run folder policy), 1 for a problem met while doing it (data, I/O, training).
    pub fn exit_code(&self) -> u8 {
        if let Error::Training(error) | Error::Sweep(SweepError::Training(error)) = self
            && error.stopped_run().is_some()
        {
            return 130;
        }
        let usage = match self {
            Error::Config(_) | Error::Device(_) => true,
            Error::Data(error) => error.is_usage(),
            Error::Run(error) => error.is_usage(),
            Error::Inference(error) => error.is_usage(),
            Error::Export(_) | Error::Plot(_) => false,
            Error::Training(error) => error.is_usage(),
            Error::Serve(error) => error.is_usage(),
            Error::Bench(error) => error.is_usage(),
            Error::Sweep(error) => error.is_usage(),
        };
        if usage { 2 } else { 1 }
    }

    /// The line the program ends with.
    pub fn line(&self) -> String {
        match self {
            Error::Training(error) | Error::Sweep(SweepError::Training(error)) => {
                training_line(error)
            }
            error => format!("error: {error}"),
        }
    }
}

/// The line a training error ends the program with: a run its user stopped says how to go on.
pub fn training_line(error: &TrainingError) -> String {
    match error.stopped_run() {
        Some(run_dir) => format!("error: {error}; {}", resume_hint(run_dir)),
        None => format!("error: {error}"),
    }
}

/// How to continue the stopped run in `run_dir`.
fn resume_hint(run_dir: &Path) -> String {
    format!(
        "to resume from its newest checkpoint: {} resume --run {}",
        invocation(),
        run_dir.display()
    )
}
