//! The training config: every hyperparameter of a run, read from JSON.
//!
//! Unknown keys are rejected and every value is checked, so a typo cannot silently fall back to
//! a default. Errors name the file and the key.

use std::fs;
use std::path::{Path, PathBuf};

use serde::de::{self, DeserializeOwned, Deserializer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use thiserror::Error;

use crate::augment::Augmentation;
use crate::device::Backend;
use crate::model::{ActivationKind, LeNet5Config, OutputKind, PoolingKind, Variant};
use crate::source::Dataset;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("{}: cannot read config: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not valid JSON: {message}", path.display())]
    Syntax { path: PathBuf, message: String },
    #[error("{}: {key}: {message}", path.display())]
    Key {
        path: PathBuf,
        key: String,
        message: String,
    },
    #[error("config key {key}: {message}")]
    Value { key: &'static str, message: String },
}

impl ConfigError {
    fn value(key: &'static str, message: impl Into<String>) -> Self {
        ConfigError::Value {
            key,
            message: message.into(),
        }
    }

    /// Attaches the config file's name to a value error found after loading.
    fn in_file(self, path: &Path) -> Self {
        match self {
            ConfigError::Value { key, message } => ConfigError::Key {
                path: path.to_path_buf(),
                key: key.to_string(),
                message,
            },
            other => other,
        }
    }
}

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
    pub seed: u64,
    /// The backend to train on; `None` picks the most specific one compiled in.
    pub device: Option<Backend>,
    pub data: DataSection,
    /// Where the run's outputs go; `None` means `artifacts/<config file name>`.
    pub artifact_dir: Option<PathBuf>,
    /// Random distortions of the training images; none when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub augmentation: Option<Augmentation>,
}

impl Default for TrainingConfig {
    fn default() -> Self {
        Self {
            model: ModelSection::default(),
            optimizer: OptimizerConfig::Adam(AdamSection::default()),
            lr_schedule: LrSchedule::Constant,
            epochs: 10,
            batch_size: 64,
            num_workers: 1,
            seed: 42,
            device: None,
            data: DataSection::default(),
            artifact_dir: None,
            augmentation: None,
        }
    }
}

/// The network. `variant` picks the modern LeNet-5 or the 1998 paper's; the other keys default
/// by variant (modern: relu, max, linear; lecun98: scaled_tanh, trainable, rbf) and can be set
/// to mix the two.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelSection {
    pub variant: Variant,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub activation: Option<ActivationKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pooling: Option<PoolingKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<OutputKind>,
}

impl ModelSection {
    pub fn to_model_config(self) -> LeNet5Config {
        let paper = self.variant == Variant::Lecun98;
        LeNet5Config::new()
            .with_variant(self.variant)
            .with_activation(self.activation.unwrap_or(if paper {
                ActivationKind::ScaledTanh
            } else {
                ActivationKind::Relu
            }))
            .with_pooling(self.pooling.unwrap_or(if paper {
                PoolingKind::Trainable
            } else {
                PoolingKind::Max
            }))
            .with_output(self.output.unwrap_or(if paper {
                OutputKind::Rbf
            } else {
                OutputKind::Linear
            }))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataSection {
    /// MNIST or Fashion-MNIST.
    pub dataset: Dataset,
    /// Folder holding the four IDX files; `None` looks in `MNIST_DIR`, then the cache (MNIST),
    /// or in Debian's package folder (Fashion-MNIST).
    pub dir: Option<PathBuf>,
    /// Training digits held out for validation; 0 validates on the test set instead.
    pub validation_size: usize,
    /// Train on only the first N training digits (after the validation split).
    pub train_limit: Option<usize>,
    /// Evaluate on only the first N test digits.
    pub test_limit: Option<usize>,
}

impl Default for DataSection {
    fn default() -> Self {
        Self {
            dataset: Dataset::Mnist,
            dir: None,
            validation_size: 5_000,
            train_limit: None,
            test_limit: None,
        }
    }
}

/// The optimizer, tagged by `"type"`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum OptimizerConfig {
    Adam(AdamSection),
    Sgd(SgdSection),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdamSection {
    pub learning_rate: f64,
    pub beta_1: f32,
    pub beta_2: f32,
    /// Burn's default is 1e-5; PyTorch's (and ours) is 1e-8.
    pub epsilon: f32,
    /// L2 penalty added to the gradient (PyTorch's `weight_decay` for Adam).
    pub weight_decay: f32,
}

impl Default for AdamSection {
    fn default() -> Self {
        Self {
            learning_rate: 1e-3,
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-8,
            weight_decay: 0.0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SgdSection {
    pub learning_rate: f64,
    /// 0 disables momentum.
    pub momentum: f64,
    /// Burn's default is 0.1; PyTorch's (and ours) is 0.
    pub dampening: f64,
    pub nesterov: bool,
    pub weight_decay: f32,
}

impl Default for SgdSection {
    fn default() -> Self {
        Self {
            learning_rate: 0.01,
            momentum: 0.9,
            dampening: 0.0,
            nesterov: false,
            weight_decay: 0.0,
        }
    }
}

impl OptimizerConfig {
    pub fn learning_rate(&self) -> f64 {
        match self {
            OptimizerConfig::Adam(adam) => adam.learning_rate,
            OptimizerConfig::Sgd(sgd) => sgd.learning_rate,
        }
    }

    fn set_learning_rate(&mut self, lr: f64) {
        match self {
            OptimizerConfig::Adam(adam) => adam.learning_rate = lr,
            OptimizerConfig::Sgd(sgd) => sgd.learning_rate = lr,
        }
    }
}

/// How the learning rate changes over the run, tagged by `"type"`. Burn steps schedules per
/// batch; these are written per epoch and converted.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum LrSchedule {
    /// The optimizer's learning rate throughout.
    Constant,
    /// Multiply the learning rate by `gamma` every `step_epochs` epochs.
    Step(StepSection),
    /// Anneal from the optimizer's learning rate to `min_lr` over the run along a cosine.
    Cosine(CosineSection),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StepSection {
    pub step_epochs: usize,
    pub gamma: f64,
}

impl Default for StepSection {
    fn default() -> Self {
        Self {
            step_epochs: 5,
            gamma: 0.1,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CosineSection {
    pub min_lr: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Empty {}

impl<'de> Deserialize<'de> for OptimizerConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (kind, section) = tagged_section(deserializer, &["adam", "sgd"])?;
        Ok(match kind.as_str() {
            "adam" => OptimizerConfig::Adam(section_body(section)?),
            _ => OptimizerConfig::Sgd(section_body(section)?),
        })
    }
}

impl<'de> Deserialize<'de> for LrSchedule {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (kind, section) = tagged_section(deserializer, &["constant", "step", "cosine"])?;
        Ok(match kind.as_str() {
            "constant" => {
                let Empty {} = section_body(section)?;
                LrSchedule::Constant
            }
            "step" => LrSchedule::Step(section_body(section)?),
            _ => LrSchedule::Cosine(section_body(section)?),
        })
    }
}

/// Reads an object whose `"type"` key picks one of `kinds`; returns the kind and the other keys.
///
/// Written by hand rather than with `#[serde(tag)]`, whose buffering loses the key path: this
/// way an error inside the section still names its key.
fn tagged_section<'de, D: Deserializer<'de>>(
    deserializer: D,
    kinds: &[&str],
) -> Result<(String, Map<String, Value>), D::Error> {
    let mut section = Map::deserialize(deserializer)?;
    let expected = kinds.join(", ");
    let kind = match section.remove("type") {
        Some(Value::String(kind)) if kinds.contains(&kind.as_str()) => kind,
        Some(Value::String(kind)) => {
            return Err(de::Error::custom(format_args!(
                "type: unknown type \"{kind}\" (expected one of: {expected})"
            )));
        }
        Some(other) => {
            return Err(de::Error::custom(format_args!(
                "type: expected a string (one of: {expected}), found {other}"
            )));
        }
        None => {
            return Err(de::Error::custom(format_args!(
                "missing key \"type\" (one of: {expected})"
            )));
        }
    };
    Ok((kind, section))
}

fn section_body<T: DeserializeOwned, E: de::Error>(section: Map<String, Value>) -> Result<T, E> {
    serde_path_to_error::deserialize(Value::Object(section)).map_err(|err| {
        let path = err.path().to_string();
        if path == "." {
            E::custom(err.into_inner())
        } else {
            E::custom(format_args!("{path}: {}", err.into_inner()))
        }
    })
}

/// Values given on the command line, which replace the config file's.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub epochs: Option<usize>,
    pub batch_size: Option<usize>,
    pub learning_rate: Option<f64>,
    pub seed: Option<u64>,
    pub device: Option<Backend>,
    pub data_dir: Option<PathBuf>,
    pub artifact_dir: Option<PathBuf>,
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
        let mut json = serde_json::Deserializer::from_str(text);
        let config: Self = serde_path_to_error::deserialize(&mut json).map_err(|err| {
            let key = err.path().to_string();
            let inner = err.into_inner();
            if inner.is_syntax() || inner.is_eof() {
                ConfigError::Syntax {
                    path: path.to_path_buf(),
                    message: inner.to_string(),
                }
            } else {
                ConfigError::Key {
                    path: path.to_path_buf(),
                    key: join_key(&key, &inner.to_string()),
                    message: strip_subkey(&inner.to_string()),
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
        self.validate()
    }

    /// Checks every value that JSON types alone do not constrain.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(a) = &self.augmentation {
            for (key, value, max) in [
                ("augmentation.rotation_degrees", a.rotation_degrees, 90.0),
                ("augmentation.scale", a.scale, 1.0),
                ("augmentation.shear_degrees", a.shear_degrees, 60.0),
                ("augmentation.translation", a.translation, 14.0),
            ] {
                check(
                    (0.0..max).contains(&value),
                    key,
                    format!("must be in [0, {max}), got {value}"),
                )?;
            }
            if let Some(e) = &a.elastic {
                check(
                    e.sigma > 0.0 && e.sigma <= 10.0,
                    "augmentation.elastic.sigma",
                    format!("must be in (0, 10], got {}", e.sigma),
                )?;
                check(
                    (0.0..=100.0).contains(&e.alpha),
                    "augmentation.elastic.alpha",
                    format!("must be in [0, 100], got {}", e.alpha),
                )?;
            }
        }
        let lr = self.optimizer.learning_rate();
        check(
            lr.is_finite() && lr > 0.0,
            "optimizer.learning_rate",
            format!("must be a positive number, got {lr}"),
        )?;
        match &self.optimizer {
            OptimizerConfig::Adam(adam) => {
                for (key, beta) in [
                    ("optimizer.beta_1", adam.beta_1),
                    ("optimizer.beta_2", adam.beta_2),
                ] {
                    check(
                        (0.0..1.0).contains(&beta),
                        key,
                        format!("must be in [0, 1), got {beta}"),
                    )?;
                }
                check(
                    adam.epsilon.is_finite() && adam.epsilon > 0.0,
                    "optimizer.epsilon",
                    format!("must be a positive number, got {}", adam.epsilon),
                )?;
                check_weight_decay(adam.weight_decay)?;
            }
            OptimizerConfig::Sgd(sgd) => {
                check(
                    (0.0..1.0).contains(&sgd.momentum),
                    "optimizer.momentum",
                    format!("must be in [0, 1), got {}", sgd.momentum),
                )?;
                check(
                    (0.0..=1.0).contains(&sgd.dampening),
                    "optimizer.dampening",
                    format!("must be in [0, 1], got {}", sgd.dampening),
                )?;
                check(
                    !sgd.nesterov || (sgd.momentum > 0.0 && sgd.dampening == 0.0),
                    "optimizer.nesterov",
                    "needs momentum > 0 and dampening 0",
                )?;
                check_weight_decay(sgd.weight_decay)?;
            }
        }
        match &self.lr_schedule {
            LrSchedule::Constant => {}
            LrSchedule::Step(step) => {
                check(
                    step.step_epochs > 0,
                    "lr_schedule.step_epochs",
                    "must be at least 1",
                )?;
                check(
                    step.gamma > 0.0 && step.gamma < 1.0,
                    "lr_schedule.gamma",
                    format!("must be in (0, 1), got {}", step.gamma),
                )?;
            }
            LrSchedule::Cosine(cosine) => {
                // Burn's cosine schedule accepts initial rates up to 1 only.
                check(
                    lr <= 1.0,
                    "optimizer.learning_rate",
                    format!("must be at most 1 with a cosine schedule, got {lr}"),
                )?;
                check(
                    cosine.min_lr >= 0.0 && cosine.min_lr < lr,
                    "lr_schedule.min_lr",
                    format!(
                        "must be at least 0 and below optimizer.learning_rate ({lr}), got {}",
                        cosine.min_lr
                    ),
                )?;
            }
        }
        check(self.epochs > 0, "epochs", "must be at least 1")?;
        check(self.batch_size > 0, "batch_size", "must be at least 1")?;
        for (key, limit) in [
            ("data.train_limit", self.data.train_limit),
            ("data.test_limit", self.data.test_limit),
        ] {
            check(
                limit != Some(0),
                key,
                "must be at least 1 (leave it out to use every digit)",
            )?;
        }
        Ok(())
    }

    /// The run directory: `artifact_dir`, or `artifacts/<name>` where `name` is the config's.
    pub fn run_dir(&self, config_name: &str) -> PathBuf {
        self.artifact_dir
            .clone()
            .unwrap_or_else(|| Path::new("artifacts").join(config_name))
    }
}

fn check(ok: bool, key: &'static str, message: impl Into<String>) -> Result<(), ConfigError> {
    if ok {
        Ok(())
    } else {
        Err(ConfigError::value(key, message))
    }
}

fn check_weight_decay(weight_decay: f32) -> Result<(), ConfigError> {
    check(
        weight_decay.is_finite() && weight_decay >= 0.0,
        "optimizer.weight_decay",
        format!("must be 0 or more, got {weight_decay}"),
    )
}

/// A tagged section reports errors as `subkey: message`; fold the subkey into the key path.
fn join_key(key: &str, message: &str) -> String {
    match subkey(message) {
        Some(sub) if key == "." => sub.to_string(),
        Some(sub) => format!("{key}.{sub}"),
        None => key.to_string(),
    }
}

fn strip_subkey(message: &str) -> String {
    match subkey(message) {
        Some(sub) => message[sub.len() + 2..].to_string(),
        None => message.to_string(),
    }
}

/// The leading `key.path` of a `key.path: message` error, if the message has one.
fn subkey(message: &str) -> Option<&str> {
    let (head, _) = message.split_once(": ")?;
    let is_key = !head.is_empty()
        && head
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.');
    is_key.then_some(head)
}

/// The name a config is known by: its file name without extension (`configs/lenet.json` -> `lenet`).
pub fn config_name(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "run".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<TrainingConfig, ConfigError> {
        let config = TrainingConfig::parse(Path::new("test.json"), text)?;
        config
            .validate()
            .map_err(|e| e.in_file(Path::new("test.json")))?;
        Ok(config)
    }

    fn error(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn empty_object_gives_the_defaults() {
        assert_eq!(parse("{}").unwrap(), TrainingConfig::default());
    }

    #[test]
    fn resolved_config_round_trips() {
        let config = TrainingConfig {
            optimizer: OptimizerConfig::Sgd(SgdSection::default()),
            lr_schedule: LrSchedule::Step(StepSection::default()),
            device: Some(Backend::Flex),
            ..TrainingConfig::default()
        };
        let text = serde_json::to_string_pretty(&config).unwrap();
        assert_eq!(parse(&text).unwrap(), config);
    }

    #[test]
    fn sections_are_read() {
        let config = parse(
            r#"{"model": {"activation": "tanh", "pooling": "avg"},
                "optimizer": {"type": "sgd", "learning_rate": 0.05, "momentum": 0.5},
                "lr_schedule": {"type": "cosine", "min_lr": 0.001},
                "data": {"validation_size": 0, "train_limit": 100}}"#,
        )
        .unwrap();
        assert_eq!(config.model.activation, Some(ActivationKind::Tanh));
        assert_eq!(config.model.pooling, Some(PoolingKind::Avg));
        assert_eq!(config.optimizer.learning_rate(), 0.05);
        assert_eq!(
            config.lr_schedule,
            LrSchedule::Cosine(CosineSection { min_lr: 0.001 })
        );
        assert_eq!(config.data.validation_size, 0);
        assert_eq!(config.data.train_limit, Some(100));
    }

    #[test]
    fn syntax_errors_say_not_json() {
        assert!(
            error("{").contains("test.json: not valid JSON"),
            "{}",
            error("{")
        );
        assert!(error("").contains("not valid JSON"));
        assert!(error("{} {}").contains("not valid JSON"));
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            (r#"{"epoch": 3}"#, "test.json: epoch: unknown field `epoch`"),
            (
                r#"{"epochs": "3"}"#,
                "test.json: epochs: invalid type: string",
            ),
            (
                r#"{"batch_size": -1}"#,
                "test.json: batch_size: invalid value: integer `-1`",
            ),
            (
                r#"{"model": {"activation": "gelu"}}"#,
                "model.activation: unknown variant `gelu`",
            ),
            (
                r#"{"model": {"pooling": "min"}}"#,
                "model.pooling: unknown variant `min`",
            ),
            (
                r#"{"model": {"variant": "lecun89"}}"#,
                "model.variant: unknown variant `lecun89`",
            ),
            (
                r#"{"augmentation": {"rotation_degrees": 95}}"#,
                "test.json: augmentation.rotation_degrees: must be in [0, 90), got 95",
            ),
            (
                r#"{"augmentation": {"elastic": {"sigma": 0}}}"#,
                "test.json: augmentation.elastic.sigma: must be in (0, 10], got 0",
            ),
            (
                r#"{"augmentation": {"shift": 2}}"#,
                "augmentation.shift: unknown field `shift`",
            ),
            (
                r#"{"optimizer": {"type": "rmsprop"}}"#,
                "optimizer.type: unknown type \"rmsprop\"",
            ),
            (
                r#"{"optimizer": {"learning_rate": 1}}"#,
                "optimizer: missing key \"type\"",
            ),
            (
                r#"{"optimizer": {"type": "adam", "lr": 1}}"#,
                "optimizer.lr: unknown field `lr`",
            ),
            (
                r#"{"optimizer": {"type": "sgd", "beta_1": 0.9}}"#,
                "optimizer.beta_1: unknown field",
            ),
            (
                r#"{"optimizer": {"type": "adam", "learning_rate": "x"}}"#,
                "optimizer.learning_rate: invalid type: string \"x\"",
            ),
            (
                r#"{"lr_schedule": {"type": "constant", "gamma": 1}}"#,
                "lr_schedule.gamma: unknown field",
            ),
            (
                r#"{"lr_schedule": {"type": "linear"}}"#,
                "lr_schedule.type: unknown type",
            ),
            (
                r#"{"data": {"folder": "x"}}"#,
                "data.folder: unknown field `folder`",
            ),
            (r#"{"device": "cuda"}"#, "device: unknown variant `cuda`"),
            (r#"[]"#, "not valid JSON: the top level must be an object"),
        ];
        for (text, expected) in cases {
            let err = error(text);
            assert!(
                err.contains(expected),
                "{text}: got `{err}`, want `{expected}`"
            );
        }
    }

    #[test]
    fn out_of_range_values_name_the_key() {
        let cases = [
            (
                r#"{"optimizer": {"type": "adam", "learning_rate": 0}}"#,
                "optimizer.learning_rate: must be a positive",
            ),
            (
                r#"{"optimizer": {"type": "sgd", "learning_rate": -1}}"#,
                "optimizer.learning_rate: must be a positive",
            ),
            (
                r#"{"optimizer": {"type": "adam", "beta_1": 1.0}}"#,
                "optimizer.beta_1: must be in [0, 1)",
            ),
            (
                r#"{"optimizer": {"type": "adam", "beta_2": -0.1}}"#,
                "optimizer.beta_2: must be in [0, 1)",
            ),
            (
                r#"{"optimizer": {"type": "adam", "epsilon": 0}}"#,
                "optimizer.epsilon: must be a positive",
            ),
            (
                r#"{"optimizer": {"type": "adam", "weight_decay": -1}}"#,
                "optimizer.weight_decay: must be 0 or more",
            ),
            (
                r#"{"optimizer": {"type": "sgd", "momentum": 1.5}}"#,
                "optimizer.momentum: must be in [0, 1)",
            ),
            (
                r#"{"optimizer": {"type": "sgd", "dampening": 2}}"#,
                "optimizer.dampening: must be in [0, 1]",
            ),
            (
                r#"{"optimizer": {"type": "sgd", "momentum": 0, "nesterov": true}}"#,
                "optimizer.nesterov",
            ),
            (
                r#"{"lr_schedule": {"type": "step", "step_epochs": 0}}"#,
                "lr_schedule.step_epochs: must be at least 1",
            ),
            (
                r#"{"lr_schedule": {"type": "step", "gamma": 0}}"#,
                "lr_schedule.gamma: must be in (0, 1)",
            ),
            (
                r#"{"lr_schedule": {"type": "step", "gamma": 1}}"#,
                "lr_schedule.gamma: must be in (0, 1)",
            ),
            (
                r#"{"optimizer": {"type": "sgd", "learning_rate": 2}, "lr_schedule": {"type": "cosine"}}"#,
                "optimizer.learning_rate: must be at most 1",
            ),
            (
                r#"{"lr_schedule": {"type": "cosine", "min_lr": 1}}"#,
                "lr_schedule.min_lr: must be at least 0 and below",
            ),
            (r#"{"epochs": 0}"#, "test.json: epochs: must be at least 1"),
            (
                r#"{"batch_size": 0}"#,
                "test.json: batch_size: must be at least 1",
            ),
            (
                r#"{"data": {"train_limit": 0}}"#,
                "data.train_limit: must be at least 1",
            ),
            (
                r#"{"data": {"test_limit": 0}}"#,
                "data.test_limit: must be at least 1",
            ),
        ];
        for (text, expected) in cases {
            let err = error(text);
            assert!(
                err.contains(expected),
                "{text}: got `{err}`, want `{expected}`"
            );
        }
    }

    #[test]
    fn overrides_replace_values_and_are_checked() {
        let mut config = TrainingConfig::default();
        config
            .apply(&Overrides {
                epochs: Some(2),
                batch_size: Some(8),
                learning_rate: Some(0.5),
                seed: Some(9),
                device: Some(Backend::Flex),
                data_dir: Some("d".into()),
                artifact_dir: Some("a".into()),
            })
            .unwrap();
        assert_eq!((config.epochs, config.batch_size, config.seed), (2, 8, 9));
        assert_eq!(config.optimizer.learning_rate(), 0.5);
        assert_eq!(config.data.dir, Some(PathBuf::from("d")));
        assert_eq!(config.run_dir("lenet"), PathBuf::from("a"));

        let err = config
            .apply(&Overrides {
                batch_size: Some(0),
                ..Overrides::default()
            })
            .unwrap_err();
        assert!(err.to_string().contains("batch_size"), "{err}");
    }

    #[test]
    fn missing_file_is_reported_by_name() {
        let err = TrainingConfig::load(Path::new("no/such/config.json")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("no/such/config.json: cannot read config"),
            "{err}"
        );
    }

    #[test]
    fn run_dir_defaults_to_the_config_name() {
        assert_eq!(config_name(Path::new("configs/smoke.json")), "smoke");
        assert_eq!(
            TrainingConfig::default().run_dir("smoke"),
            PathBuf::from("artifacts/smoke")
        );
    }
}
