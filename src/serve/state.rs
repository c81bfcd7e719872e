//! What the server keeps between requests: each run's model, loaded once and shared, and each
//! test set read once. A model is loaded again when its file changes, so a run that finished,
//! or was trained again, after the server started is served as it is now.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use crate::Error;
use crate::data::idx;
use crate::data::mnist::{Mnist, MnistSplit};
use crate::data::source;
use crate::device::BackendKind;
use crate::run::{FinishedRun, MODEL_FILE, RunError};

use super::ServeOptions;

/// A loaded model, shared by the requests that use it; inference takes the lock briefly.
pub type SharedRun = Arc<Mutex<FinishedRun>>;

pub struct AppState {
    pub artifacts: PathBuf,
    pub data_dir: Option<PathBuf>,
    pub device: Option<BackendKind>,
    models: Mutex<HashMap<PathBuf, (SystemTime, SharedRun)>>,
    test_sets: Mutex<HashMap<PathBuf, Arc<MnistSplit>>>,
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

    /// The test set a run was tested on, read once per folder.
    pub fn test_set(&self, run: &FinishedRun) -> Result<Arc<MnistSplit>, Error> {
        let configured = self.data_dir.as_deref().or(run.config.data.dir.as_deref());
        let location =
            source::locate_dataset(run.config.data.dataset, configured, &idx::TEST_FILES)?;
        if let Some(split) = self.test_sets.lock().unwrap().get(&location.dir) {
            return Ok(split.clone());
        }
        let split = Arc::new(Mnist::read_test(&location.dir)?);
        self.test_sets
            .lock()
            .unwrap()
            .insert(location.dir, split.clone());
        Ok(split)
    }
}
