//! A run: one training of the model, and the folder it writes. This module owns that folder:
//! its layout, the policy for reusing it, atomic writes into it ([`atomic`]), what a finished
//! run leaves there ([`summary`], [`history`]) and loading a finished run back ([`finished`]).
//! It knows the config and the model, but nothing of how training or evaluation work.
//!
//! ```text
//! artifacts/<config name>/
//!   config.json        the resolved config (CLI overrides applied, device and data folder filled in)
//!   model.bpk          the final weights (Burn's burnpack format)
//!   model_best.bpk     the weights of the best epoch by validation (see `early_stopping`)
//!   summary.json       test accuracy, epochs, device, timings, per-epoch metrics
//!   metrics.csv        per-epoch loss, accuracy, learning rate and seconds, train and valid
//!   plots/             loss.png and accuracy.png per epoch
//!   status.json        training, stopped, failed or finished; the config's name; first start
//!   eval/              what `lenet eval` writes
//!   checkpoints/       the two newest checkpoints (model, optimizer, scheduler, position)
//!   train/ valid/      Burn's metric logs, one folder per epoch
//!   .lock              held by the process training in the folder, if any
//! ```

pub mod atomic;
pub mod finished;
pub mod history;
pub mod listing;
pub mod lock;
pub mod status;
pub mod summary;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use thiserror::Error;

use burn::prelude::Module;

use crate::config::{ConfigError, TrainingConfig};
use crate::device::NotCompiled;
use crate::model::LeNet5;

pub use atomic::write_atomic;
pub use finished::{FinishedRun, ModelChoice};
pub use listing::{RunDetails, RunInfo, find_run, list_runs};
pub use lock::RunLock;
pub use status::{RunState, RunStatus, STATUS_FILE};
pub use summary::{BestEpoch, RunSummary};

pub const CONFIG_FILE: &str = "config.json";
pub const MODEL_FILE: &str = "model.bpk";
pub const BEST_MODEL_FILE: &str = "model_best.bpk";
pub const SUMMARY_FILE: &str = "summary.json";
pub const METRICS_FILE: &str = "metrics.csv";
pub const PLOTS_DIR: &str = "plots";
pub const EVAL_DIR: &str = "eval";
pub const CHECKPOINT_DIR: &str = "checkpoints";

/// Everything a run puts in its folder; `--overwrite` removes exactly these, nothing else.
const RUN_ENTRIES: [&str; 13] = [
    CONFIG_FILE,
    STATUS_FILE,
    MODEL_FILE,
    BEST_MODEL_FILE,
    finished::BEST_EVAL_DIR,
    SUMMARY_FILE,
    METRICS_FILE,
    PLOTS_DIR,
    EVAL_DIR,
    CHECKPOINT_DIR,
    "train",
    "valid",
    "experiment.log",
];

#[derive(Debug, Error)]
pub enum RunError {
    #[error(
        "{}: already holds a run; pass --resume to continue it, --overwrite to replace it, or \
         --artifact-dir to write elsewhere",
        dir.display()
    )]
    Exists { dir: PathBuf },
    #[error(
        "{}: no run to resume (no {CONFIG_FILE}); train one there first (lenet --config FILE \
         --artifact-dir {})",
        dir.display(),
        dir.display()
    )]
    NothingToResume { dir: PathBuf },
    #[error(
        "{}: the run already finished ({SUMMARY_FILE} is there); to train it for more epochs: \
         lenet resume --run {} --epochs N",
        dir.display(),
        dir.display()
    )]
    Finished { dir: PathBuf },
    #[error("{}: no {BEST_MODEL_FILE}: {why}", dir.display())]
    NoBestModel { dir: PathBuf, why: &'static str },
    #[error(
        "{}: in use by {holder}, which is training there; wait for it to end, or stop it first",
        dir.display()
    )]
    Locked { dir: PathBuf, holder: String },
    #[error("{}: exists and is not a directory", dir.display())]
    NotADirectory { dir: PathBuf },
    #[error("{}: no such folder", dir.display())]
    NoSuchFolder { dir: PathBuf },
    #[error("{}: not a run directory (no {CONFIG_FILE}); pass the folder a training run wrote", dir.display())]
    NotARun { dir: PathBuf },
    #[error(
        "{}: no final model ({MODEL_FILE}): the run did not finish; continue it with `lenet \
         resume --run {}`",
        dir.display(), dir.display()
    )]
    Unfinished { dir: PathBuf },
    #[error("{}: the run is still training (no final model yet); wait for it to finish", dir.display())]
    StillTraining { dir: PathBuf },
    #[error("{name:?}: not a run name (one folder name, without separators or a leading dot)")]
    BadRunName { name: String },
    #[error("no run called {name:?} in {}", artifacts.display())]
    NoSuchRun { name: String, artifacts: PathBuf },
    #[error("{}: cannot load the model: {message}", path.display())]
    Model { path: PathBuf, message: String },
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Device(#[from] NotCompiled),
    #[error("{}: cannot {action}: {source}", path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        source: io::Error,
    },
}

impl RunError {
    pub(crate) fn io<'a>(
        path: &'a Path,
        action: &'static str,
    ) -> impl FnOnce(io::Error) -> Self + 'a {
        move |source| RunError::Io {
            path: path.to_path_buf(),
            action,
            source,
        }
    }

    /// Whether the error is about what the user asked for (a folder that cannot be used that
    /// way, a bad config) rather than something that went wrong while doing it.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            RunError::Exists { .. }
                | RunError::NothingToResume { .. }
                | RunError::Finished { .. }
                | RunError::NoBestModel { .. }
                | RunError::NotARun { .. }
                | RunError::NoSuchFolder { .. }
                | RunError::Locked { .. }
                | RunError::BadRunName { .. }
                | RunError::NoSuchRun { .. }
                | RunError::Config(_)
                | RunError::Device(_)
        )
    }
}

/// Creates `dir` and everything above it.
pub fn create_dir(dir: &Path) -> Result<(), RunError> {
    fs::create_dir_all(dir).map_err(RunError::io(dir, "create directory"))
}

/// Makes `dir` ready for a new run: creates it, and refuses to reuse one that holds a run
/// unless `overwrite`, in which case the old run's files are removed.
pub fn prepare(dir: &Path, overwrite: bool) -> Result<(), RunError> {
    if dir.exists() && !dir.is_dir() {
        return Err(RunError::NotADirectory {
            dir: dir.to_path_buf(),
        });
    }
    let existing: Vec<PathBuf> = RUN_ENTRIES
        .iter()
        .map(|name| dir.join(name))
        .filter(|p| p.exists())
        .collect();
    if !existing.is_empty() {
        if !overwrite {
            return Err(RunError::Exists {
                dir: dir.to_path_buf(),
            });
        }
        for path in existing {
            let removed = if path.is_dir() {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
            removed.map_err(RunError::io(&path, "remove"))?;
        }
    }
    create_dir(dir)
}

/// Checks that `dir` holds a run that can be resumed and returns the config it was started with.
/// A finished run can be resumed only to be `extended` with more epochs.
pub fn prepare_resume(dir: &Path, extended: bool) -> Result<TrainingConfig, RunError> {
    let config = dir.join(CONFIG_FILE);
    if !config.is_file() {
        return Err(RunError::NothingToResume {
            dir: dir.to_path_buf(),
        });
    }
    if !extended && dir.join(SUMMARY_FILE).exists() {
        return Err(RunError::Finished {
            dir: dir.to_path_buf(),
        });
    }
    Ok(TrainingConfig::load(&config)?)
}

/// Writes `model`'s weights to `path` in Burn's burnpack format, atomically.
pub fn save_model(path: &Path, model: &LeNet5) -> Result<(), RunError> {
    let bytes = model
        .clone()
        .into_record()
        .into_bytes()
        .map_err(|e| RunError::Model {
            path: path.to_path_buf(),
            message: format!("cannot serialise the model: {e}"),
        })?;
    write_atomic(path, &bytes)
}

/// The name a run goes by: its folder's name.
pub fn name(dir: &Path) -> String {
    dir.file_name()
        .map_or("run".to_string(), |n| n.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_is_not_overwritten_without_asking() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("run");
        prepare(&dir, false).unwrap();
        write_atomic(&dir.join(CONFIG_FILE), b"{}").unwrap();
        fs::write(dir.join("notes.txt"), "mine").unwrap();

        let err = prepare(&dir, false).unwrap_err().to_string();
        assert!(err.contains("--overwrite"), "{err}");

        prepare(&dir, true).unwrap();
        assert!(!dir.join(CONFIG_FILE).exists());
        assert!(
            dir.join("notes.txt").exists(),
            "files that are not the run's stay"
        );
    }

    #[test]
    fn a_file_in_the_way_is_reported() {
        let root = tempfile::tempdir().unwrap();
        let file = root.path().join("file");
        fs::write(&file, "x").unwrap();
        let err = prepare(&file, false).unwrap_err().to_string();
        assert!(err.contains("is not a directory"), "{err}");
    }
}
