//! Where a run is logged besides its own folder, for teams that watch runs in a tracker:
//! TensorBoard's event files ([`tensorboard`]) and an MLflow tracking server ([`mlflow`]).
//! Training feeds them as it goes; this layer knows run histories and config keys, and nothing
//! of how training is driven.

pub mod mlflow;
pub mod tensorboard;

use std::io;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::run::RunError;

#[derive(Debug, Error)]
pub enum TrackingError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error(transparent)]
    Run(#[from] RunError),
    #[error("TensorBoard picture '{tag}' is not a readable PNG: {message}")]
    Picture { tag: String, message: String },
    #[error("MLflow at {uri}: {message}")]
    Mlflow { uri: String, message: String },
}

impl TrackingError {
    /// Whether the user can fix it by what they asked for: a tracking server that cannot be
    /// reached or refuses the run is named by its URI, given by the user.
    pub fn is_usage(&self) -> bool {
        matches!(self, TrackingError::Mlflow { .. })
    }

    fn io(path: &Path) -> impl FnOnce(io::Error) -> Self + '_ {
        move |source| TrackingError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// The git commit this binary was built from, when it was built in a git checkout (see
/// `build.rs`): trackers record it beside the run.
pub fn source_commit() -> Option<&'static str> {
    option_env!("LENET_GIT_COMMIT")
}
