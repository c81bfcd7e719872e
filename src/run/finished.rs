//! A finished run loaded back from its folder: the resolved config and the final or the best
//! model, on a backend compiled into this binary.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use burn::store::ModuleRecord;

use serde::{Deserialize, Serialize};

use super::error::RunError;
use super::layout::{BEST_EVAL_DIR, BEST_MODEL_FILE, CONFIG_FILE, EVAL_DIR, MODEL_FILE};
use super::lock::RunLock;
use crate::config::TrainingConfig;
use crate::device::BackendKind;
use crate::model::LeNet5;

/// Which of a run's models to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ModelChoice {
    /// The weights after the last epoch (`model.bpk`): what the run's schedule ended with and
    /// what its summary's test accuracy measures.
    #[default]
    Last,
    /// The weights of the best epoch by validation (`model_best.bpk`).
    Best,
}

impl ModelChoice {
    pub fn file(self) -> &'static str {
        match self {
            ModelChoice::Last => MODEL_FILE,
            ModelChoice::Best => BEST_MODEL_FILE,
        }
    }

    /// The folder `eval` writes this model's evaluation into.
    pub fn eval_dir(self) -> &'static str {
        match self {
            ModelChoice::Last => EVAL_DIR,
            ModelChoice::Best => BEST_EVAL_DIR,
        }
    }
}

pub struct FinishedRun {
    pub dir: PathBuf,
    pub config: TrainingConfig,
    pub model: LeNet5,
    pub backend: BackendKind,
    pub device: Device,
    pub choice: ModelChoice,
}

impl FinishedRun {
    /// Loads the run in `dir` onto `backend`, or else the run's own backend when it is compiled
    /// in, or else the preferred one.
    pub fn load(dir: &Path, backend: Option<BackendKind>) -> Result<Self, RunError> {
        Self::load_model(dir, backend, ModelChoice::Last)
    }

    /// Loads the run in `dir` with its final or its best model (see [`FinishedRun::load`]).
    pub fn load_model(
        dir: &Path,
        backend: Option<BackendKind>,
        choice: ModelChoice,
    ) -> Result<Self, RunError> {
        if !dir.exists() {
            return Err(RunError::NoSuchFolder {
                dir: dir.to_path_buf(),
            });
        }
        if !dir.is_dir() {
            return Err(RunError::NotADirectory {
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
        let model_path = dir.join(choice.file());
        if !model_path.is_file() {
            return Err(RunError::NoBestModel {
                dir: dir.to_path_buf(),
                why: "the run was trained before best models were kept, or never validated; \
                      use --model last",
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
            .model_config()
            .init(&device)
            .try_load_record(record)
            .map_err(|e| model_error(e.to_string()))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            config,
            model,
            backend,
            device,
            choice,
        })
    }
}
