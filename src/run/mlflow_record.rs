//! `mlflow.json`: the MLflow run a run folder was logged to, kept so that a resumed run goes on
//! logging to the same one, and so that `lenet runs` can say where it went.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::layout::MLFLOW_FILE;

/// What the run folder keeps of its MLflow run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MlflowRecord {
    pub uri: String,
    pub experiment_id: String,
    pub run_id: String,
    pub artifact_uri: String,
}

impl MlflowRecord {
    /// The run's page in MLflow's UI.
    pub fn page(&self) -> String {
        format!(
            "{}/#/experiments/{}/runs/{}",
            self.uri.trim_end_matches('/'),
            self.experiment_id,
            self.run_id
        )
    }

    /// The record in `run_dir`, if the run was logged to MLflow.
    pub fn read(run_dir: &Path) -> Option<Self> {
        let text = std::fs::read_to_string(run_dir.join(MLFLOW_FILE)).ok()?;
        serde_json::from_str(&text).ok()
    }
}
