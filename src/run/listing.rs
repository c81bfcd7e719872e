//! The runs under an artifacts folder, as `lenet runs` lists them and `lenet serve` shows them:
//! each read from what its folder holds, whether it finished, stopped, failed or is training
//! now (its lock is held), so nothing in training has to report to them.

use std::fs;
use std::path::{Component, Path, PathBuf};

use serde::Serialize;

use super::error::RunError;
use super::folder::name;
use super::history::{self, EpochMetrics};
use super::invocation::invocation;
use super::layout::{CONFIG_FILE, METRICS_FILE, SUMMARY_FILE, SWEEP_FILE, TENSORBOARD_DIR};
use super::lock::RunLock;
use super::mlflow_record::MlflowRecord;
use super::status::{RunState, RunStatus, rfc3339};
use super::summary::RunSummary;
use crate::config::TrainingConfig;

/// One run at a glance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunInfo {
    /// The run's folder name under the artifacts folder: how the API names it.
    pub name: String,
    /// The config it was started with (its file name without `.json`), when known.
    pub config: Option<String>,
    pub variant: Option<String>,
    pub dataset: Option<String>,
    pub backend: Option<String>,
    pub epochs_done: usize,
    pub epochs_planned: Option<usize>,
    /// Fraction of the test set classified correctly, once the run finished.
    pub test_accuracy: Option<f64>,
    /// When the run was first started (RFC 3339, UTC).
    pub started: Option<String>,
    pub state: RunState,
    /// Why it stopped or failed, or what is wrong with the folder.
    pub message: Option<String>,
    /// The trackers the run was also logged to, from what its folder holds.
    pub logged_to: Vec<Tracked>,
}

/// A tracker a run was logged to, and where: TensorBoard's event folder, the MLflow run's page.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tracked {
    pub tracker: String,
    pub at: String,
}

/// One run in full: the glance, its resolved config and its epochs so far.
#[derive(Debug, Clone, Serialize)]
pub struct RunDetails {
    #[serde(flatten)]
    pub info: RunInfo,
    pub config_values: Option<TrainingConfig>,
    pub history: Vec<EpochMetrics>,
}

/// Every run directly under `artifacts` (a folder holding `config.json`), by name.
pub fn list_runs(artifacts: &Path) -> Result<Vec<RunInfo>, RunError> {
    if !artifacts.is_dir() {
        return Err(RunError::NoSuchFolder {
            dir: artifacts.to_path_buf(),
        });
    }
    let mut dirs: Vec<PathBuf> = fs::read_dir(artifacts)
        .map_err(RunError::io(artifacts, "read folder"))?
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.join(CONFIG_FILE).is_file())
        .collect();
    dirs.sort();
    Ok(dirs.iter().map(|dir| details(dir).info).collect())
}

/// The folder of the run called `name` under `artifacts`: a folder in it, or a trial of a
/// sweep in it (`<sweep>/<trial>`). Each part is one plain folder name: anything that could
/// lead elsewhere (`..`, another separator, a hidden name) is refused.
pub fn find_run(artifacts: &Path, name: &str) -> Result<PathBuf, RunError> {
    let bad = || RunError::BadRunName {
        name: name.to_string(),
    };
    let parts: Vec<&str> = name.split('/').collect();
    if parts.len() > 2 || !parts.iter().all(|part| is_plain(part)) {
        return Err(bad());
    }
    if parts.len() == 2 && !artifacts.join(parts[0]).join(SWEEP_FILE).is_file() {
        return Err(bad());
    }
    let dir = parts
        .iter()
        .fold(artifacts.to_path_buf(), |dir, part| dir.join(part));
    if !dir.join(CONFIG_FILE).is_file() {
        return Err(RunError::NoSuchRun {
            name: name.to_string(),
            artifacts: artifacts.to_path_buf(),
        });
    }
    Ok(dir)
}

/// Whether `part` is one folder name that stays where it is.
fn is_plain(part: &str) -> bool {
    let mut components = Path::new(part).components();
    matches!(
        (components.next(), components.next()),
        (Some(Component::Normal(_)), None)
    ) && !part.starts_with('.')
        && !part.contains(['/', '\\'])
}

/// Everything the folder `dir` says about its run.
pub fn details(dir: &Path) -> RunDetails {
    let name = name(dir);
    let summary: Option<RunSummary> = fs::read(dir.join(SUMMARY_FILE))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok());
    let status = RunStatus::read(dir);
    let (config, config_problem) = match TrainingConfig::load(&dir.join(CONFIG_FILE)) {
        Ok(config) => (Some(config), None),
        Err(e) => (None, Some(e.to_string())),
    };
    let history = match &summary {
        Some(summary) => summary.history.clone(),
        None => fs::read_to_string(dir.join(METRICS_FILE))
            .map(|csv| history::from_csv(&csv))
            .unwrap_or_default(),
    };
    let (state, message) = if let Some(summary) = &summary {
        // What ended it, in a word ("hyperband"); summary.json has the whole reason.
        let early = summary.stopped_early_at.map(|epoch| {
            match summary
                .stopped_by
                .as_deref()
                .and_then(|why| why.split(':').next())
            {
                Some(by) => format!("stopped early after epoch {epoch} by {by}"),
                None => format!("stopped early after epoch {epoch}"),
            }
        });
        (RunState::Finished, early)
    } else if RunLock::is_held(dir) {
        (RunState::Training, None)
    } else {
        match &status {
            Some(s) if s.state == RunState::Failed => (RunState::Failed, s.message.clone()),
            Some(s) if s.state == RunState::Stopped => (RunState::Stopped, s.message.clone()),
            // Left "training" (or nothing) behind without holding the lock: killed.
            _ => (
                RunState::Stopped,
                Some(format!(
                    "ended without a word (killed?); `{} resume` continues it",
                    invocation()
                )),
            ),
        }
    };
    let started = status.as_ref().map(|s| s.started.clone()).or_else(|| {
        fs::metadata(dir.join(CONFIG_FILE))
            .and_then(|m| m.modified())
            .ok()
            .map(rfc3339)
    });
    let info = RunInfo {
        name,
        config: summary
            .as_ref()
            .map(|s| s.config.clone())
            .or_else(|| status.as_ref().map(|s| s.config.clone())),
        variant: config.as_ref().map(|c| c.model.variant.to_string()),
        dataset: config.as_ref().map(|c| c.data.dataset.to_string()),
        backend: summary
            .as_ref()
            .map(|s| s.device)
            .or(config.as_ref().and_then(|c| c.device))
            .map(|b| b.to_string()),
        epochs_done: history.len(),
        epochs_planned: config.as_ref().map(|c| c.epochs),
        test_accuracy: summary.as_ref().map(|s| s.test_accuracy),
        started,
        state,
        message: config_problem.or(message),
        logged_to: logged_to(dir),
    };
    RunDetails {
        info,
        config_values: config,
        history,
    }
}

/// Whether the run in `run_dir` holds TensorBoard event files.
pub fn has_tensorboard_events(run_dir: &Path) -> bool {
    fs::read_dir(run_dir.join(TENSORBOARD_DIR)).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|entry| entry.file_name().to_string_lossy().contains("tfevents"))
    })
}

/// The trackers the run folder says it was logged to, and where.
fn logged_to(dir: &Path) -> Vec<Tracked> {
    let mut trackers = Vec::new();
    if has_tensorboard_events(dir) {
        trackers.push(Tracked {
            tracker: "tensorboard".to_string(),
            at: dir.join(TENSORBOARD_DIR).display().to_string(),
        });
    }
    if let Some(record) = MlflowRecord::read(dir) {
        trackers.push(Tracked {
            tracker: "mlflow".to_string(),
            at: record.page(),
        });
    }
    trackers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_could_leave_the_folder_are_refused() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir(root.path().join("good")).unwrap();
        fs::write(root.path().join("good").join(CONFIG_FILE), "{}").unwrap();
        assert!(find_run(root.path(), "good").is_ok());
        for bad in [
            "..", ".", "../good", "good/..", "/etc", ".hidden", "a\\b", "",
        ] {
            assert!(
                matches!(find_run(root.path(), bad), Err(RunError::BadRunName { .. })),
                "{bad:?}"
            );
        }
        assert!(matches!(
            find_run(root.path(), "absent"),
            Err(RunError::NoSuchRun { .. })
        ));
        // A trial of a sweep goes by `<sweep>/<trial>`; a plain folder's insides do not.
        fs::create_dir_all(root.path().join("sweep/trial")).unwrap();
        fs::write(root.path().join("sweep/trial").join(CONFIG_FILE), "{}").unwrap();
        fs::create_dir_all(root.path().join("good/inner")).unwrap();
        fs::write(root.path().join("good/inner").join(CONFIG_FILE), "{}").unwrap();
        assert!(matches!(
            find_run(root.path(), "sweep/trial"),
            Err(RunError::BadRunName { .. })
        ));
        fs::write(root.path().join("sweep").join(SWEEP_FILE), "{}").unwrap();
        assert_eq!(
            find_run(root.path(), "sweep/trial").unwrap(),
            root.path().join("sweep/trial")
        );
        for bad in [
            "good/inner",
            "sweep/..",
            "sweep/../good",
            "sweep/trial/x",
            "sweep/.x",
        ] {
            assert!(
                matches!(find_run(root.path(), bad), Err(RunError::BadRunName { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_folder_reads_as_the_state_it_was_left_in() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("run");
        fs::create_dir(&dir).unwrap();
        fs::write(dir.join(CONFIG_FILE), r#"{"epochs": 4}"#).unwrap();
        // Killed before its first epoch ended: no status, no lock, no metrics.
        let info = details(&dir).info;
        assert_eq!((info.state, info.epochs_done), (RunState::Stopped, 0));
        assert_eq!(info.epochs_planned, Some(4));

        let status = RunStatus::starting(&dir, "mine");
        status.write(&dir).unwrap();
        fs::write(
            dir.join(METRICS_FILE),
            history::to_csv(&[EpochMetrics {
                epoch: 1,
                train_loss: Some(0.5),
                ..EpochMetrics::default()
            }]),
        )
        .unwrap();
        {
            let _lock = RunLock::acquire(&dir).unwrap();
            let info = details(&dir).info;
            assert_eq!(info.state, RunState::Training);
            assert_eq!(info.config.as_deref(), Some("mine"));
            assert_eq!(info.epochs_done, 1);
        }
        status
            .ended(RunState::Failed, Some("loss became NaN".into()))
            .write(&dir)
            .unwrap();
        let info = details(&dir).info;
        assert_eq!(info.state, RunState::Failed);
        assert_eq!(info.message.as_deref(), Some("loss became NaN"));
        assert_eq!(list_runs(root.path()).unwrap(), vec![info]);
    }
}
