//! What the server keeps between requests: each run's model, loaded once and shared, and each
//! test set read once. A model is loaded again when its file changes, so a run that finished,
//! or was trained again, after the server started is served as it is now.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use crate::config::TrainingConfig;
use crate::data::split::ImageSplit;
use crate::device::BackendKind;
use crate::inference::InferenceError;
use crate::inference::eval::run_test_set;
use crate::run::{FinishedRun, MODEL_FILE, RunError};

#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub artifacts: PathBuf,
    pub host: IpAddr,
    /// 0 lets the system pick a free port.
    pub port: u16,
    /// Where the data set is, for runs whose own data folder is gone.
    pub data_dir: Option<PathBuf>,
    pub device: Option<BackendKind>,
}

/// A loaded model, shared by the requests that use it; inference takes the lock briefly.
pub type SharedRun = Arc<Mutex<FinishedRun>>;

pub struct AppState {
    pub artifacts: PathBuf,
    pub data_dir: Option<PathBuf>,
    pub device: Option<BackendKind>,
    models: Mutex<HashMap<PathBuf, (SystemTime, SharedRun)>>,
    /// By what decides a test set: the data set, its folder and the run's split settings.
    test_sets: Mutex<HashMap<String, ImageSplit>>,
    /// One evaluation at a time: two would compete for the same cores and the same files.
    pub evaluating: tokio::sync::Mutex<()>,
}

impl AppState {
    pub fn new(options: &ServeOptions) -> Self {
        Self {
            artifacts: options.artifacts.clone(),
            data_dir: options.data_dir.clone(),
            device: options.device,
            models: Mutex::default(),
            test_sets: Mutex::default(),
            evaluating: tokio::sync::Mutex::new(()),
        }
    }

    /// The finished run in `dir`, loaded on first use and again when its model file changes.
    pub fn model(&self, dir: &Path) -> Result<SharedRun, RunError> {
        let modified = std::fs::metadata(dir.join(MODEL_FILE))
            .and_then(|m| m.modified())
            .ok();
        if let Some(modified) = modified
            && let Some((loaded, run)) = self.models.lock().unwrap().get(dir)
            && *loaded == modified
        {
            return Ok(run.clone());
        }
        // Loading reports a missing model (unfinished or still training) as such.
        let run = Arc::new(Mutex::new(FinishedRun::load(dir, self.device)?));
        if let Some(modified) = modified {
            self.models
                .lock()
                .unwrap()
                .insert(dir.to_path_buf(), (modified, run.clone()));
        }
        Ok(run)
    }

    /// Where a run's data is: its own folder while it is there, else `--data-dir` (runs
    /// trained on another machine, or before the data moved). Serving runs of several data sets
    /// at once, one folder cannot stand for all of them.
    pub fn data_dir_for(&self, config: &TrainingConfig) -> Option<PathBuf> {
        match &config.data.dir {
            Some(own) if own.exists() => None,
            _ => self.data_dir.clone(),
        }
    }

    /// The test set a run was tested on, read once for all the runs that share it.
    pub fn test_set(&self, run: &FinishedRun) -> Result<ImageSplit, InferenceError> {
        let data = &run.config.data;
        let data_dir = self.data_dir_for(&run.config);
        let key = serde_json::json!([data, data_dir, run.config.seed]).to_string();
        if let Some(test) = self.test_sets.lock().unwrap().get(&key) {
            return Ok(test.clone());
        }
        let test = run_test_set(&run.config, data_dir.as_deref())?;
        self.test_sets.lock().unwrap().insert(key, test.clone());
        Ok(test)
    }
}
