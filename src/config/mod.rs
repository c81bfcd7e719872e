//! The training config: every hyperparameter of a run, read from JSON.
//!
//! Unknown keys are rejected and every value is checked, so a typo cannot silently fall back to
//! a default. Errors name the file and the key. Each section is a file of its own that reads and
//! checks itself ([`model`], [`optimizer`], [`schedule`], [`data`]); the optimizer and schedule
//! sections make their Burn counterparts with `init()`, as Burn's own configs do. [`diff`]
//! compares two configs key by key.

pub mod data;
pub mod diff;
pub mod early_stopping;
pub mod ema;
pub mod error;
pub mod model;
pub mod optimizer;
pub mod schedule;
mod tagged;
pub mod tracking;

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use data::DataSection;
pub use early_stopping::{EarlyStopping, StopMetric};
pub use ema::Ema;
pub use error::ConfigError;
pub use model::ModelSection;
pub use optimizer::{AdamSection, OptimizerConfig, SgdSection};
pub use schedule::{CosineSection, LrSchedule, OnecycleSection, StepSection};
pub use tracking::{MlflowSection, TrackingSection};

use crate::data::augment::Augmentation;
use crate::device::BackendKind;
use crate::model::{LeNet5Config, OutputKind};
use error::check;
use tagged::{join_key, strip_subkey};

/// Everything that defines a training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainingConfig {
    pub model: ModelSection,
    pub optimizer: OptimizerConfig,
    pub lr_schedule: LrSchedule,
    pub epochs: usize,
    pub batch_size: usize,
    /// Threads that assemble batches in the background; 0 batches on the training thread.
    pub num_workers: usize,
    /// Seconds of training between two checkpoints inside an epoch, so that a killed run loses
    /// at most this much work; 0 checkpoints at epoch ends (and stops) only.
    pub checkpoint_every_seconds: f64,
    pub seed: u64,
    /// The backend to train on; `None` picks the most specific one compiled in.
    pub device: Option<BackendKind>,
    pub data: DataSection,
    /// Where the run's outputs go; `None` means `artifacts/<config file name>`.
    pub artifact_dir: Option<PathBuf>,
    /// Random distortions of the training images; none when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub augmentation: Option<Augmentation>,
    /// Stop when validation stops improving; none when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub early_stopping: Option<EarlyStopping>,
    /// An average of the weights over training's steps, validated and saved as the model; none
    /// when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ema: Option<Ema>,
    /// The share of each training target spread evenly over all classes (Szegedy et al. 2016),
    /// so the network is not pushed towards ever larger logits; validation's loss stays the
    /// plain cross-entropy. None when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label_smoothing: Option<f32>,
    /// A finished run whose final weights the model starts from, instead of random ones.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init_from: Option<PathBuf>,
    /// Layers (c1, s2, c3, s4, c5, f6, f7) that keep their fresh initial weights rather than
    /// `init_from`'s: `["f7"]` for a new output layer when the classes differ.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub init_from_skip: Vec<String>,
    /// Trackers the run is also logged to; none when absent.
    #[serde(skip_serializing_if = "TrackingSection::is_off")]
    pub tracking: TrackingSection,
}

/// The model's layers by name, as `init_from_skip` names them.
pub const LAYER_NAMES: [&str; 7] = ["c1", "s2", "c3", "s4", "c5", "f6", "f7"];

impl Default for TrainingConfig {
    fn default() -> Self {
        Self {
            model: ModelSection::default(),
            optimizer: OptimizerConfig::Adam(AdamSection::default()),
            lr_schedule: LrSchedule::Constant,
            epochs: 10,
            batch_size: 64,
            num_workers: 1,
            checkpoint_every_seconds: 60.0,
            seed: 42,
            device: None,
            data: DataSection::default(),
            artifact_dir: None,
            augmentation: None,
            early_stopping: None,
            ema: None,
            label_smoothing: None,
            init_from: None,
            init_from_skip: Vec::new(),
            tracking: TrackingSection::default(),
        }
    }
}

/// Values given on the command line, which replace the config file's.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub epochs: Option<usize>,
    pub batch_size: Option<usize>,
    pub learning_rate: Option<f64>,
    pub seed: Option<u64>,
    pub device: Option<BackendKind>,
    pub data_dir: Option<PathBuf>,
    pub artifact_dir: Option<PathBuf>,
    /// `--tensorboard`: log to TensorBoard whatever the config says.
    pub tensorboard: bool,
    /// `--mlflow URI`: log to this MLflow server.
    pub mlflow: Option<String>,
}

impl TrainingConfig {
    /// Reads and checks a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let config = Self::parse(path, &text)?;
        config.validate().map_err(|e| e.in_file(path))?;
        Ok(config)
    }

    /// Parses config text; `path` only names the source in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        // serde would also read a struct from an array, positionally: only take an object.
        let body = text.trim_start();
        if !body.is_empty() && !body.starts_with('{') {
            return Err(ConfigError::Syntax {
                path: path.to_path_buf(),
                message: "the top level must be an object, { ... }".to_string(),
            });
        }
        if let Ok(serde_json::Value::Object(top)) = serde_json::from_str(text)
            && top.contains_key("parameters")
            && (top.contains_key("base") || top.contains_key("method"))
        {
            return Err(ConfigError::SweepFile {
                path: path.to_path_buf(),
            });
        }
        let mut json = serde_json::Deserializer::from_str(text);
        let config: Self = serde_path_to_error::deserialize(&mut json).map_err(|err| {
            let key = err.path().to_string();
            let inner = err.into_inner();
            let is_syntax = inner.is_syntax() || inner.is_eof();
            // serde's messages quote keys and values as written, escapes undone: a key
            // holding a newline (found by fuzzing) would break the error's one line.
            let inner = error::printable(&inner.to_string());
            if is_syntax {
                ConfigError::Syntax {
                    path: path.to_path_buf(),
                    message: inner,
                }
            } else {
                let key = join_key(&error::printable(&key), &inner);
                let message = error::in_words(&key, &strip_subkey(&inner));
                ConfigError::Key {
                    path: path.to_path_buf(),
                    key,
                    message,
                }
            }
        })?;
        json.end().map_err(|err| ConfigError::Syntax {
            path: path.to_path_buf(),
            message: err.to_string(),
        })?;
        Ok(config)
    }

    /// Replaces values with those given on the command line, then checks the result.
    pub fn apply(&mut self, overrides: &Overrides) -> Result<(), ConfigError> {
        if let Some(epochs) = overrides.epochs {
            self.epochs = epochs;
        }
        if let Some(batch_size) = overrides.batch_size {
            self.batch_size = batch_size;
        }
        if let Some(lr) = overrides.learning_rate {
            self.optimizer.set_learning_rate(lr);
        }
        if let Some(seed) = overrides.seed {
            self.seed = seed;
        }
        if let Some(device) = overrides.device {
            self.device = Some(device);
        }
        if let Some(dir) = &overrides.data_dir {
            self.data.dir = Some(dir.clone());
        }
        if let Some(dir) = &overrides.artifact_dir {
            self.artifact_dir = Some(dir.clone());
        }
        self.tracking.tensorboard |= overrides.tensorboard;
        if let Some(uri) = &overrides.mlflow {
            self.tracking
                .mlflow
                .get_or_insert_with(MlflowSection::default)
                .uri = Some(uri.clone());
        }
        self.validate()
    }

    /// Checks every value that JSON types alone do not constrain, section by section.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(augmentation) = &self.augmentation {
            data::validate_augmentation(augmentation)?;
        }
        self.optimizer.validate()?;
        self.lr_schedule.validate(self.optimizer.learning_rate())?;
        self.tracking.validate()?;
        check(self.epochs > 0, "epochs", "must be at least 1")?;
        check(self.batch_size > 0, "batch_size", "must be at least 1")?;
        check(
            self.checkpoint_every_seconds.is_finite() && self.checkpoint_every_seconds >= 0.0,
            "checkpoint_every_seconds",
            format!(
                "must be 0 (epoch ends only) or a number of seconds, got {}",
                self.checkpoint_every_seconds
            ),
        )?;
        if let Some(early_stopping) = &self.early_stopping {
            early_stopping.validate()?;
        }
        if let Some(ema) = &self.ema {
            ema.validate()?;
        }
        if let Some(smoothing) = self.label_smoothing {
            check(
                (0.0..1.0).contains(&smoothing),
                "label_smoothing",
                format!("must be at least 0 and below 1, got {smoothing}"),
            )?;
        }
        if let Some(layer) = self
            .init_from_skip
            .iter()
            .find(|l| !LAYER_NAMES.contains(&l.as_str()))
        {
            return Err(ConfigError::value(
                "init_from_skip",
                format!(
                    "{layer:?} is not a layer; the layers are {}",
                    LAYER_NAMES.join(", ")
                ),
            ));
        }
        check(
            self.init_from
                .as_ref()
                .is_none_or(|dir| !dir.as_os_str().is_empty()),
            "init_from",
            "is empty; name a finished run's folder, or leave the key out",
        )?;
        check(
            self.init_from.is_some() || self.init_from_skip.is_empty(),
            "init_from_skip",
            "names layers of init_from's model, but init_from is not set",
        )?;
        self.data.validate()?;
        self.check_classes()
    }

    /// Checks that the model can have the data's classes (when they are known): the paper's
    /// RBF output units exist for the ten digits only.
    pub fn check_classes(&self) -> Result<(), ConfigError> {
        let classes = self.data.class_names().len();
        let output = self.model.to_model_config().output;
        check(
            output != OutputKind::Rbf || classes == 10,
            "model.output",
            format!(
                "\"rbf\" is the 1998 paper's output units, whose fixed prototypes are drawings \
                 of the ten digits; this data set has {classes} classes: use \"output\": \"linear\""
            ),
        )
    }

    /// The model's Burn config, its output layer sized to the data's classes.
    pub fn model_config(&self) -> LeNet5Config {
        self.model
            .to_model_config()
            .with_num_classes(self.data.class_names().len())
    }

    /// Training time between two checkpoints inside an epoch, if any.
    pub fn checkpoint_every(&self) -> Option<std::time::Duration> {
        (self.checkpoint_every_seconds > 0.0)
            .then(|| std::time::Duration::from_secs_f64(self.checkpoint_every_seconds))
    }

    /// The run directory: `artifact_dir`, or `artifacts/<name>` where `name` is the config's.
    pub fn run_dir(&self, config_name: &str) -> PathBuf {
        self.artifact_dir
            .clone()
            .unwrap_or_else(|| Path::new("artifacts").join(config_name))
    }
}

/// The name a config is known by: its file name without extension (`configs/lenet.json` -> `lenet`).
pub fn config_name(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "run".to_string())
}

#[cfg(test)]
mod tests;
