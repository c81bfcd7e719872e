//! A finished run loaded back from its folder: the resolved config and the final model, on a
//! backend compiled into this binary.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use burn::store::ModuleRecord;

use super::{CONFIG_FILE, MODEL_FILE, RunError, RunLock};
use crate::config::TrainingConfig;
use crate::device::BackendKind;
use crate::model::LeNet5;

pub struct FinishedRun {
    pub dir: PathBuf,
    pub config: TrainingConfig,
    pub model: LeNet5,
    pub backend: BackendKind,
    pub device: Device,
}

impl FinishedRun {
    /// Loads the run in `dir` onto `backend`, or else the run's own backend when it is compiled
    /// in, or else the preferred one.
    pub fn load(dir: &Path, backend: Option<BackendKind>) -> Result<Self, RunError> {
        if !dir.exists() {
            return Err(RunError::NoSuchFolder {
                dir: dir.to_path_buf(),
            });
        }
        let config_path = dir.join(CONFIG_FILE);
        if !config_path.is_file() {
            return Err(RunError::NotARun {
                dir: dir.to_path_buf(),
            });
        }
        let config = TrainingConfig::load(&config_path)?;
        let model_path = dir.join(MODEL_FILE);
        if !model_path.is_file() {
            let dir = dir.to_path_buf();
            return Err(if RunLock::is_held(&dir) {
                RunError::StillTraining { dir }
            } else {
                RunError::Unfinished { dir }
            });
        }
        let backend = match backend {
            Some(backend) => backend,
            None => config
                .device
                .filter(|b| b.is_compiled())
                .unwrap_or_else(BackendKind::preferred),
        };
        let device = backend.device()?;
        let model_error = |message: String| RunError::Model {
            path: model_path.clone(),
            message,
        };
        let record = ModuleRecord::load(&model_path).map_err(|e| model_error(e.to_string()))?;
        let model = config
            .model
            .to_model_config()
            .init(&device)
            .try_load_record(record)
            .map_err(|e| model_error(e.to_string()))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            config,
            model,
            backend,
            device,
        })
    }
}
