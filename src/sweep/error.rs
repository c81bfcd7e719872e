//! What can be wrong with a sweep, each in one line naming the file, the key or the folder.

use std::path::PathBuf;

use thiserror::Error;

use crate::config::ConfigError;
use crate::data::error::DataError;
use crate::run::RunError;
use crate::training::TrainingError;

#[derive(Debug, Error)]
pub enum SweepError {
    #[error("{}: cannot read sweep file: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is not JSON, or a key outside `parameters` is wrong.
    #[error("{}: {message}", path.display())]
    File { path: PathBuf, message: String },
    /// A parameter's form or values are wrong, or a value is one its config key cannot take.
    #[error("{}: parameters.{key}: {message}", path.display())]
    Parameter {
        path: PathBuf,
        key: String,
        message: String,
    },
    /// The base config named by the sweep file cannot be used.
    #[error("{}: base: {source}", path.display())]
    Base { path: PathBuf, source: ConfigError },
    #[error(
        "{}: holds the sweep {name:?} made with other settings ({what} differ); give this sweep \
         another name, or --artifact-dir, or remove that folder to start it again",
        dir.display()
    )]
    Changed {
        dir: PathBuf,
        name: String,
        what: String,
    },
    #[error("{}: not a sweep folder (no sweep.json); `lenet sweep --config FILE` makes one", dir.display())]
    NotASweep { dir: PathBuf },
    #[error(
        "{}: a trial of the sweep in {}; pass --sweep {}",
        dir.display(),
        sweep.display(),
        sweep.display()
    )]
    TrialNotSweep { dir: PathBuf, sweep: PathBuf },
    #[error("{}: sweep.json cannot be read: {message}", dir.display())]
    BadRecord { dir: PathBuf, message: String },
    #[error("no sweep called {name:?} in {}", artifacts.display())]
    NoSuchSweep { name: String, artifacts: PathBuf },
    #[error("{name:?}: not a sweep name (letters, digits, '-', '_' and '.', not first)")]
    BadSweepName { name: String },
    #[error("--trial {number}: the sweep has trials 1 to {count}")]
    NoSuchTrial { number: usize, count: usize },
    #[error("{message}")]
    Usage { message: String },
    #[error(
        "sbatch not found ({source}): submit from a machine with SLURM's client commands, or \
         see the script with --dry-run"
    )]
    NoSbatch { source: std::io::Error },
    #[error("sbatch refused the job: {0}")]
    Sbatch(String),
    #[error("cannot start a trial ({program}): {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error(transparent)]
    Training(#[from] TrainingError),
}

impl SweepError {
    /// Whether the error is in what the user asked for (the sweep file, a flag, the folder)
    /// rather than met while running the sweep.
    pub fn is_usage(&self) -> bool {
        match self {
            SweepError::Read { .. }
            | SweepError::File { .. }
            | SweepError::Parameter { .. }
            | SweepError::Base { .. }
            | SweepError::Changed { .. }
            | SweepError::NotASweep { .. }
            | SweepError::TrialNotSweep { .. }
            | SweepError::NoSuchTrial { .. }
            | SweepError::NoSuchSweep { .. }
            | SweepError::BadSweepName { .. }
            | SweepError::Usage { .. }
            | SweepError::NoSbatch { .. } => true,
            SweepError::BadRecord { .. } | SweepError::Sbatch(_) | SweepError::Spawn { .. } => {
                false
            }
            SweepError::Data(error) => error.is_usage(),
            SweepError::Run(error) => error.is_usage(),
            SweepError::Training(error) => error.is_usage(),
        }
    }
}
