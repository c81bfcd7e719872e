//! What the server keeps between requests: each run's model, loaded once and shared, and each
//! test set read once; and what bounds its work. A model is loaded again when its file changes,
//! so a run that finished, or was trained again, after the server started is served as it is
//! now. Models are shared without a lock (answering takes `&self`), and the maps are read
//! through poisoning: a request that failed half-way leaves nothing the next one cannot use.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use crate::config::TrainingConfig;
use crate::data::split::ImageSplit;
use crate::device::BackendKind;
use crate::inference::InferenceError;
use crate::inference::eval::run_test_set;
use crate::run::{FinishedRun, MODEL_FILE, RunError};

use super::pool::ComputePool;

#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub artifacts: PathBuf,
    pub host: IpAddr,
    /// 0 lets the system pick a free port.
    pub port: u16,
    /// Where the data set is, for runs whose own data folder is gone.
    pub data_dir: Option<PathBuf>,
    pub device: Option<BackendKind>,
    /// The largest upload decoded, in pixels, instead of each run's `data.max_image_pixels`.
    pub max_image_pixels: Option<u64>,
    /// Every API request must carry this token (`Authorization: Bearer` or `?token=`).
    pub token: Option<String>,
    /// Host names requests may be addressed to besides the address bound.
    pub allowed_hosts: Vec<String>,
}

/// A loaded model, shared by the requests that use it.
pub type SharedRun = Arc<FinishedRun>;

/// Requests that compute (predictions, explanations, evaluations) running or waiting at once;
/// past this many, a request is answered 503 at once rather than queued without end.
pub const MAX_IN_FLIGHT: usize = 64;

/// The bytes of all uploads held at once, being received or waiting for their answer: sixteen
/// of the largest (16 MiB each); past it an upload is answered 503.
pub const UPLOAD_BUDGET_BYTES: usize = 256 << 20;

/// Evaluations of a whole test set running or waiting at once.
pub const MAX_EVALUATIONS: usize = 4;

pub struct AppState {
    /// The address the server listens on.
    pub bound: SocketAddr,
    pub artifacts: PathBuf,
    pub data_dir: Option<PathBuf>,
    pub device: Option<BackendKind>,
    pub max_image_pixels: Option<u64>,
    pub token: Option<String>,
    pub allowed_hosts: Vec<String>,
    models: Mutex<HashMap<PathBuf, (SystemTime, SharedRun)>>,
    /// By what decides a test set: the data set, its folder and the run's split settings.
    test_sets: Mutex<HashMap<String, ImageSplit>>,
    /// One evaluation at a time: two would compete for the same cores and the same files.
    pub evaluating: tokio::sync::Mutex<()>,
    /// Evaluations running or waiting (see [`MAX_EVALUATIONS`]).
    pub evaluations: Arc<tokio::sync::Semaphore>,
    /// Requests that compute, running or waiting (see [`MAX_IN_FLIGHT`]).
    pub in_flight: Arc<tokio::sync::Semaphore>,
    /// Bytes of the uploads held at once (see [`UPLOAD_BUDGET_BYTES`]).
    pub upload_budget: Arc<tokio::sync::Semaphore>,
    /// The threads computations run on, one per core.
    pub compute: ComputePool,
}

impl AppState {
    pub fn new(options: &ServeOptions, bound: SocketAddr) -> Self {
        Self {
            bound,
            artifacts: options.artifacts.clone(),
            data_dir: options.data_dir.clone(),
            device: options.device,
            max_image_pixels: options.max_image_pixels,
            token: options.token.clone(),
            allowed_hosts: options.allowed_hosts.clone(),
            models: Mutex::default(),
            test_sets: Mutex::default(),
            evaluating: tokio::sync::Mutex::new(()),
            evaluations: Arc::new(tokio::sync::Semaphore::new(MAX_EVALUATIONS)),
            in_flight: Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT)),
            upload_budget: Arc::new(tokio::sync::Semaphore::new(UPLOAD_BUDGET_BYTES)),
            compute: ComputePool::new(std::thread::available_parallelism().map_or(1, |n| n.get())),
        }
    }

    /// The finished run in `dir`, loaded on first use and again when its model file changes.
    pub fn model(&self, dir: &Path) -> Result<SharedRun, RunError> {
        let modified = std::fs::metadata(dir.join(MODEL_FILE))
            .and_then(|m| m.modified())
            .ok();
        if let Some(modified) = modified
            && let Some((loaded, run)) = unpoisoned(&self.models).get(dir)
            && *loaded == modified
        {
            return Ok(run.clone());
        }
        // Loading reports a missing model (unfinished or still training) as such.
        let run = Arc::new(FinishedRun::load(dir, self.device)?);
        if let Some(modified) = modified {
            unpoisoned(&self.models).insert(dir.to_path_buf(), (modified, run.clone()));
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
        if let Some(test) = unpoisoned(&self.test_sets).get(&key) {
            return Ok(test.clone());
        }
        let test = run_test_set(&run.config, data_dir.as_deref())?;
        unpoisoned(&self.test_sets).insert(key, test.clone());
        Ok(test)
    }
}

/// The map behind `mutex`, even if a request panicked while holding it: each entry is whole
/// (inserted in one step), so what it holds is still right.
fn unpoisoned<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
