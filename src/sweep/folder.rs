//! The sweep's folder: `sweep.json` written or checked ([`super::record`]), and each trial's run
//! folder, whose state is read from what it holds (as `lenet runs` reads it).
//!
//! ```text
//! <artifact dir>/<sweep name>/
//!   sweep.json              the settings, the base config and every trial's values
//!   01-batch_size=32,.../   each trial an ordinary run folder
//!   logs/<trial>.log        each trial's output, when run here; slurm-<job>_<task>.log on SLURM
//!   slurm.sh                the job array script, when submitted to SLURM
//! ```

use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::error::SweepError;
use super::plan::SweepPlan;
use super::record::SweepRecord;
use super::spec::check_name;
use crate::run::history::{self, EpochMetrics};
use crate::run::listing::details;
use crate::run::{
    CONFIG_FILE, METRICS_FILE, RunState, RunSummary, SUMMARY_FILE, SWEEP_FILE, create_dir,
    write_atomic,
};

/// Where a sweep's trials write their output when run on this machine.
pub const LOGS_DIR: &str = "logs";

/// Opens the sweep's folder for running it: writes `sweep.json` for a new sweep, checks that a
/// folder holding one holds this sweep (a random sweep may have grown more trials since), and
/// makes the folder for the logs.
pub fn open(plan: &SweepPlan) -> Result<(), SweepError> {
    let record = plan.record();
    if plan.dir.join(SWEEP_FILE).exists() {
        let existing = SweepRecord::read(&plan.dir)?;
        if let Some(what) = record.differs_from(&existing) {
            return Err(SweepError::Changed {
                dir: plan.dir.clone(),
                name: existing.name,
                what: what.to_string(),
            });
        }
        if existing.trials.len() >= record.trials.len() {
            return Ok(create_dir(&plan.dir.join(LOGS_DIR))?);
        }
    } else if plan.dir.join(CONFIG_FILE).exists() {
        return Err(SweepError::Usage {
            message: format!(
                "{}: holds a run, not a sweep; give the sweep another name or --artifact-dir",
                plan.dir.display()
            ),
        });
    }
    create_dir(&plan.dir.join(LOGS_DIR))?;
    let json = serde_json::to_vec_pretty(&record).expect("the record serialises");
    Ok(write_atomic(&plan.dir.join(SWEEP_FILE), &json)?)
}

/// The sweeps directly under `artifacts` (folders holding `sweep.json`), by name.
pub fn list_sweeps(artifacts: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(artifacts)
        .map(|entries| {
            entries
                .flatten()
                .map(|entry| entry.path())
                .filter(|path| path.join(SWEEP_FILE).is_file())
                .collect()
        })
        .unwrap_or_default();
    dirs.sort();
    dirs
}

/// The folder of the sweep called `name` under `artifacts`.
pub fn find_sweep(artifacts: &Path, name: &str) -> Result<PathBuf, SweepError> {
    if check_name(name).is_err() {
        return Err(SweepError::BadSweepName {
            name: name.to_string(),
        });
    }
    let dir = artifacts.join(name);
    if !dir.join(SWEEP_FILE).is_file() {
        return Err(SweepError::NoSuchSweep {
            name: name.to_string(),
            artifacts: artifacts.to_path_buf(),
        });
    }
    Ok(dir)
}

/// Where a trial is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TrialState {
    /// Not started.
    Pending,
    /// A process trains it now.
    Training,
    /// Stopped (Ctrl-C, killed): the sweep resumes it from its checkpoint when run again.
    Stopped,
    /// Ended by an error; the sweep leaves it as it is.
    Failed,
    Finished,
    /// Ended early by the sweep's hyperband, then tested and written as a finished run.
    Terminated,
}

impl TrialState {
    pub fn as_str(self) -> &'static str {
        match self {
            TrialState::Pending => "pending",
            TrialState::Training => "training",
            TrialState::Stopped => "stopped",
            TrialState::Failed => "failed",
            TrialState::Finished => "finished",
            TrialState::Terminated => "terminated",
        }
    }

    /// Whether running the sweep again leaves the trial as it is.
    pub fn is_done(self) -> bool {
        matches!(
            self,
            TrialState::Finished | TrialState::Terminated | TrialState::Failed
        )
    }
}

/// A trial as its run folder has it.
#[derive(Debug, Clone)]
pub struct TrialStatus {
    pub dir: PathBuf,
    pub state: TrialState,
    /// Its summary, once it finished.
    pub summary: Option<RunSummary>,
    /// Its epochs so far.
    pub history: Vec<EpochMetrics>,
    pub epochs_planned: Option<usize>,
    /// Why it stopped, failed or was terminated.
    pub message: Option<String>,
}

impl TrialStatus {
    /// The trial whose run folder is `dir`.
    pub fn read(dir: &Path) -> Self {
        if !dir.join(CONFIG_FILE).is_file() {
            return Self {
                dir: dir.to_path_buf(),
                state: TrialState::Pending,
                summary: None,
                history: Vec::new(),
                epochs_planned: None,
                message: None,
            };
        }
        let run = details(dir);
        let summary: Option<RunSummary> = fs::read(dir.join(SUMMARY_FILE))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok());
        let state = match run.info.state {
            RunState::Finished if summary.as_ref().is_some_and(|s| s.stopped_by.is_some()) => {
                TrialState::Terminated
            }
            RunState::Finished => TrialState::Finished,
            RunState::Training => TrialState::Training,
            RunState::Stopped => TrialState::Stopped,
            RunState::Failed => TrialState::Failed,
        };
        Self {
            dir: dir.to_path_buf(),
            state,
            summary,
            history: run.history,
            epochs_planned: run.info.epochs_planned,
            message: run.info.message,
        }
    }
}

/// The epochs each other trial of the sweep in `dir` has recorded so far, read from their
/// folders as they are now (what hyperband compares a trial with).
pub fn other_histories(dir: &Path, record: &SweepRecord, except: &str) -> Vec<Vec<EpochMetrics>> {
    record
        .trials
        .iter()
        .filter(|trial| trial.name != except)
        .map(|trial| {
            let run = dir.join(&trial.name);
            let summary: Option<RunSummary> = fs::read(run.join(SUMMARY_FILE))
                .ok()
                .and_then(|bytes| serde_json::from_slice(&bytes).ok());
            match summary {
                Some(summary) => summary.history,
                None => fs::read_to_string(run.join(METRICS_FILE))
                    .map(|csv| history::from_csv(&csv))
                    .unwrap_or_default(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(dir: &Path, trials: usize, seed: u64) -> SweepPlan {
        let file = dir.join("s.json");
        fs::write(
            &file,
            format!(
                r#"{{"name": "s", "base": {{}}, "method": "random", "trials": {trials}, "seed": {seed},
                    "parameters": {{"seed": {{"min": 1, "max": 1000}}}}}}"#
            ),
        )
        .unwrap();
        SweepPlan::load(&file, Some(dir), None).unwrap()
    }

    #[test]
    fn a_folder_holds_one_sweep_which_may_grow() {
        let root = tempfile::tempdir().unwrap();
        open(&plan(root.path(), 3, 1)).unwrap();
        let record = SweepRecord::read(&root.path().join("s")).unwrap();
        assert_eq!(record.trials.len(), 3);
        open(&plan(root.path(), 3, 1)).unwrap();
        open(&plan(root.path(), 5, 1)).unwrap();
        assert_eq!(
            SweepRecord::read(&root.path().join("s"))
                .unwrap()
                .trials
                .len(),
            5
        );
        open(&plan(root.path(), 2, 1)).unwrap();
        // Past 9 trials new names are padded, and the first nine keep theirs.
        let first = SweepRecord::read(&root.path().join("s")).unwrap().trials[0]
            .name
            .clone();
        let grown = plan(root.path(), 12, 1);
        assert_eq!(grown.trials[0].name, first);
        assert!(
            grown.trials[11].name.starts_with("12-"),
            "{}",
            grown.trials[11].name
        );
        open(&grown).unwrap();
        let error = open(&plan(root.path(), 5, 2)).unwrap_err().to_string();
        assert!(error.contains("made with other settings"), "{error}");
        assert!(root.path().join("s").join(LOGS_DIR).is_dir());
    }

    #[test]
    fn a_trial_without_a_folder_is_pending() {
        let root = tempfile::tempdir().unwrap();
        let status = TrialStatus::read(&root.path().join("absent"));
        assert_eq!(status.state, TrialState::Pending);
        assert!(!status.state.is_done());
    }
}
