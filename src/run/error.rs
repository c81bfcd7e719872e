//! What can go wrong with a run folder, each in one line naming the folder or file.

use std::io;
use std::path::{Path, PathBuf};

use thiserror::Error;

use super::invocation::invocation;
use super::layout::{BEST_MODEL_FILE, CONFIG_FILE, MODEL_FILE, SUMMARY_FILE};
use crate::config::ConfigError;
use crate::device::NotCompiled;

#[derive(Debug, Error)]
pub enum RunError {
    #[error(
        "{}: already holds a run; pass --resume to continue it, --overwrite to replace it, or \
         --artifact-dir to write elsewhere",
        dir.display()
    )]
    Exists { dir: PathBuf },
    #[error(
        "{}: no run to resume (no {CONFIG_FILE}); train one there first ({} --config FILE \
         --artifact-dir {})",
        dir.display(),
        invocation(),
        dir.display()
    )]
    NothingToResume { dir: PathBuf },
    #[error(
        "{}: the run already finished ({SUMMARY_FILE} is there); to train it for more epochs: \
         {} resume --run {} --epochs N",
        dir.display(),
        invocation(),
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
        "{}: no final model ({MODEL_FILE}): the run did not finish; continue it with `{} \
         resume --run {}`",
        dir.display(), invocation(), dir.display()
    )]
    Unfinished { dir: PathBuf },
    #[error("{}: the run is still training (no final model yet); wait for it to finish", dir.display())]
    StillTraining { dir: PathBuf },
    #[error(
        "{name:?}: not a run name (one folder name, or <sweep>/<trial> for a sweep's trial, \
         without other separators or a leading dot)"
    )]
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
