//! The run folder's policy: a new run's folder made ready (and an old run in it replaced only
//! when asked), a run checked before it is resumed, the model written, the run's name.

use std::fs;
use std::path::{Path, PathBuf};

use burn::prelude::Module;
use burn::tensor::Bytes;

use super::atomic::write_atomic;
use super::error::RunError;
use super::layout::{CONFIG_FILE, RUN_ENTRIES, SUMMARY_FILE};
use crate::config::TrainingConfig;
use crate::model::LeNet5;

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
    let bytes = model_bytes(model).map_err(|message| RunError::Model {
        path: path.to_path_buf(),
        message,
    })?;
    write_atomic(path, &bytes)
}

/// `model`'s weights in Burn's burnpack format, or why they could not be serialised.
pub fn model_bytes(model: &LeNet5) -> Result<Bytes, String> {
    model
        .clone()
        .into_record()
        .into_bytes()
        .map_err(|e| format!("cannot serialise the model: {e}"))
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
