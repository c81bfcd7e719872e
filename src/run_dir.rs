//! The run directory: what a training run writes, and how.
//!
//! ```text
//! artifacts/<config name>/
//!   config.json        the resolved config (CLI overrides applied, device and data folder filled in)
//!   model.bpk          the final weights (Burn's burnpack format)
//!   summary.json       test accuracy, epochs, device, timings, per-epoch metrics
//!   metrics.csv        per-epoch loss, accuracy, learning rate and seconds, train and valid
//!   plots/             loss.png and accuracy.png per epoch
//!   eval/              what `lenet eval` writes
//!   checkpoints/       the two newest checkpoints (model, optimizer, scheduler, position)
//!   train/ valid/      Burn's metric logs, one folder per epoch
//!   experiment.log     Burn's log
//! ```

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use thiserror::Error;

use crate::config::TrainingConfig;

pub const CONFIG_FILE: &str = "config.json";
pub const MODEL_FILE: &str = "model.bpk";
pub const SUMMARY_FILE: &str = "summary.json";
pub const METRICS_FILE: &str = "metrics.csv";

/// Everything a run puts in its directory; `--overwrite` removes exactly these, nothing else.
const RUN_ENTRIES: [&str; 10] = [
    CONFIG_FILE,
    MODEL_FILE,
    SUMMARY_FILE,
    METRICS_FILE,
    "plots",
    "eval",
    crate::checkpoint::CHECKPOINT_DIR,
    "train",
    "valid",
    "experiment.log",
];

#[derive(Debug, Error)]
pub enum RunDirError {
    #[error(
        "{}: already holds a run; pass --resume to continue it, --overwrite to replace it, or \
         --artifact-dir to write elsewhere",
        dir.display()
    )]
    Exists { dir: PathBuf },
    #[error("{}: no run to resume (no {CONFIG_FILE}); start one without --resume", dir.display())]
    NothingToResume { dir: PathBuf },
    #[error(
        "{}: the run already finished ({SUMMARY_FILE} is there); nothing to resume. Pass \
         --overwrite to train it again",
        dir.display()
    )]
    Finished { dir: PathBuf },
    #[error("{}: exists and is not a directory", dir.display())]
    NotADirectory { dir: PathBuf },
    #[error("{}: cannot {action}: {source}", path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        source: io::Error,
    },
}

impl RunDirError {
    fn io<'a>(path: &'a Path, action: &'static str) -> impl FnOnce(io::Error) -> Self + 'a {
        move |source| RunDirError::Io {
            path: path.to_path_buf(),
            action,
            source,
        }
    }
}

/// Makes `dir` ready for a new run: creates it, and refuses to reuse one that holds a run
/// unless `overwrite`, in which case the old run's files are removed.
pub fn prepare(dir: &Path, overwrite: bool) -> Result<(), RunDirError> {
    if dir.exists() && !dir.is_dir() {
        return Err(RunDirError::NotADirectory {
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
            return Err(RunDirError::Exists {
                dir: dir.to_path_buf(),
            });
        }
        for path in existing {
            let removed = if path.is_dir() {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
            removed.map_err(RunDirError::io(&path, "remove"))?;
        }
    }
    fs::create_dir_all(dir).map_err(RunDirError::io(dir, "create directory"))
}

/// Checks that `dir` holds a run that can be resumed and returns the config it was started with.
pub fn prepare_resume(dir: &Path) -> Result<TrainingConfig, crate::Error> {
    let config = dir.join(CONFIG_FILE);
    if !config.is_file() {
        return Err(RunDirError::NothingToResume {
            dir: dir.to_path_buf(),
        }
        .into());
    }
    if dir.join(SUMMARY_FILE).exists() {
        return Err(RunDirError::Finished {
            dir: dir.to_path_buf(),
        }
        .into());
    }
    Ok(TrainingConfig::load(&config)?)
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename, so a
/// crash leaves either the old file or the new one, never half of one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), RunDirError> {
    // Unique per process and call, so two writers of the same file never share a temporary.
    static WRITES: AtomicUsize = AtomicUsize::new(0);
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let temp = path.with_file_name(format!(
        ".{file_name}.{}.{}.tmp",
        std::process::id(),
        WRITES.fetch_add(1, Ordering::Relaxed)
    ));
    let written = fs::File::create(&temp)
        .and_then(|mut file| {
            file.write_all(bytes)?;
            file.sync_all()
        })
        .and_then(|()| fs::rename(&temp, path));
    if written.is_err() {
        let _ = fs::remove_file(&temp);
    }
    written.map_err(RunDirError::io(path, "write"))
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

    #[test]
    fn atomic_write_replaces_and_leaves_no_temporary() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("summary.json");
        write_atomic(&path, b"old").unwrap();
        write_atomic(&path, b"new").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        assert_eq!(fs::read_dir(root.path()).unwrap().count(), 1);
    }
}
