//! A finished run loaded back from its directory: the resolved config and the final model.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use burn::store::ModuleRecord;
use thiserror::Error;

use crate::config::TrainingConfig;
use crate::device::Backend;
use crate::model::LeNet5;
use crate::run_dir::{CONFIG_FILE, MODEL_FILE};

#[derive(Debug, Error)]
pub enum RunError {
    #[error("{}: not a run directory (no {CONFIG_FILE}); pass the folder a training run wrote", dir.display())]
    NotARun { dir: PathBuf },
    #[error("{}: no final model ({MODEL_FILE}): the run did not finish", dir.display())]
    Unfinished { dir: PathBuf },
    #[error("{}: cannot load the model: {message}", path.display())]
    Model { path: PathBuf, message: String },
}

pub struct TrainedRun {
    pub dir: PathBuf,
    pub config: TrainingConfig,
    pub model: LeNet5,
    pub backend: Backend,
    pub device: Device,
}

impl TrainedRun {
    /// Loads the run in `dir` onto `backend`, or else the run's own backend when it is compiled
    /// in, or else the preferred one.
    pub fn load(dir: &Path, backend: Option<Backend>) -> Result<Self, crate::Error> {
        let config_path = dir.join(CONFIG_FILE);
        if !config_path.is_file() {
            return Err(RunError::NotARun {
                dir: dir.to_path_buf(),
            }
            .into());
        }
        let config = TrainingConfig::load(&config_path)?;
        let model_path = dir.join(MODEL_FILE);
        if !model_path.is_file() {
            return Err(RunError::Unfinished {
                dir: dir.to_path_buf(),
            }
            .into());
        }
        let backend = match backend {
            Some(backend) => backend,
            None => config
                .device
                .filter(|b| b.is_compiled())
                .unwrap_or_else(Backend::preferred),
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
