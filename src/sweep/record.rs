//! `sweep.json`: what a sweep's folder records of it, its settings, its base config and every
//! trial's values, so that running the sweep again (here or as SLURM tasks) finds the same
//! trials, and the report and the page know what varies.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::error::SweepError;
use super::spec::{EarlyTerminate, Method, Metric};
use crate::run::SWEEP_FILE;

/// One trial: its number (from 1), its folder's name, and every parameter's value in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trial {
    pub number: usize,
    pub name: String,
    pub parameters: BTreeMap<String, Value>,
}

/// What `sweep.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepRecord {
    pub name: String,
    pub method: Method,
    pub seed: u64,
    pub metric: Metric,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub early_terminate: Option<EarlyTerminate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads_per_trial: Option<usize>,
    /// The dotted config keys whose values differ between trials.
    pub varied: Vec<String>,
    /// The parameters drawn on a logarithmic scale.
    #[serde(default)]
    pub log_scale: Vec<String>,
    /// The config every trial starts from.
    pub base: Map<String, Value>,
    pub trials: Vec<Trial>,
}

impl SweepRecord {
    /// The epochs `trial` trains for: its own value, else the base config's, else the default.
    pub fn epochs(&self, trial: &Trial) -> Option<usize> {
        let set = trial.parameters.get("epochs").or(self.base.get("epochs"));
        match set {
            Some(value) => value.as_u64().map(|n| n as usize),
            None => Some(crate::config::TrainingConfig::default().epochs),
        }
    }

    /// The record in the sweep folder `dir`.
    pub fn read(dir: &Path) -> Result<Self, SweepError> {
        let path = dir.join(SWEEP_FILE);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(SweepError::NotASweep {
                    dir: dir.to_path_buf(),
                });
            }
            Err(e) => {
                return Err(SweepError::BadRecord {
                    dir: dir.to_path_buf(),
                    message: e.to_string(),
                });
            }
        };
        serde_json::from_slice(&bytes).map_err(|e| SweepError::BadRecord {
            dir: dir.to_path_buf(),
            message: e.to_string(),
        })
    }

    /// What differs from `other` that makes them two sweeps, if anything: its settings, its
    /// base config, or trials other than a random sweep's list carried on.
    pub fn differs_from(&self, other: &SweepRecord) -> Option<&'static str> {
        let settings = |r: &SweepRecord| {
            (
                r.method,
                r.seed,
                r.metric,
                r.early_terminate,
                r.varied.clone(),
            )
        };
        if settings(self) != settings(other) {
            return Some("method, seed, metric, early_terminate or the parameters that vary");
        }
        if self.base != other.base {
            return Some("the base configs");
        }
        let shared = self.trials.len().min(other.trials.len());
        let values = |r: &SweepRecord| -> Vec<_> {
            r.trials[..shared]
                .iter()
                .map(|t| t.parameters.clone())
                .collect()
        };
        if values(self) != values(other) {
            return Some("the trials' values");
        }
        if self.method == Method::Grid && self.trials.len() != other.trials.len() {
            return Some("the grids");
        }
        None
    }
}
