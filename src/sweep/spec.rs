//! The sweep file, in the form of W&B's sweep configuration, which users know: `name`, `base`
//! (a lenet config file, or a config object inline), `method`, `trials`, `seed`, `metric`,
//! `parameters` (dotted config keys, each `{"value"}`, `{"values"}` or `{"min", "max",
//! "distribution"}`) and `early_terminate`. Read as configs are: an unknown key is refused, and
//! every value a parameter can take is checked against its config key before anything runs.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::error::SweepError;
use crate::config::{ConfigError, TrainingConfig, config_name};
use crate::run::RunSummary;
use crate::run::history::EpochMetrics;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Every combination of the parameters' values.
    #[default]
    Grid,
    /// `trials` draws, each parameter from its values or its distribution, seeded.
    Random,
}

/// What a sweep ranks its trials by: a figure every run records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricName {
    TrainLoss,
    TrainAccuracy,
    ValidLoss,
    ValidAccuracy,
    TestLoss,
    TestAccuracy,
}

impl MetricName {
    pub fn as_str(self) -> &'static str {
        match self {
            MetricName::TrainLoss => "train_loss",
            MetricName::TrainAccuracy => "train_accuracy",
            MetricName::ValidLoss => "valid_loss",
            MetricName::ValidAccuracy => "valid_accuracy",
            MetricName::TestLoss => "test_loss",
            MetricName::TestAccuracy => "test_accuracy",
        }
    }

    /// Whether every epoch records it (the test figures come once, at the end).
    pub fn per_epoch(self) -> bool {
        !matches!(self, MetricName::TestLoss | MetricName::TestAccuracy)
    }

    pub fn is_accuracy(self) -> bool {
        matches!(
            self,
            MetricName::TrainAccuracy | MetricName::ValidAccuracy | MetricName::TestAccuracy
        )
    }

    /// The metric of one epoch, when the epoch records it.
    pub fn of_epoch(self, epoch: &EpochMetrics) -> Option<f64> {
        match self {
            MetricName::TrainLoss => epoch.train_loss,
            MetricName::TrainAccuracy => epoch.train_accuracy,
            MetricName::ValidLoss => epoch.valid_loss,
            MetricName::ValidAccuracy => epoch.valid_accuracy,
            MetricName::TestLoss | MetricName::TestAccuracy => None,
        }
    }

    /// The metric of a finished run, as its summary has it: the test figures, or the last
    /// epoch's value (what W&B's run summary holds).
    pub fn of_summary(self, summary: &RunSummary) -> Option<f64> {
        match self {
            MetricName::TestLoss => Some(summary.test_loss),
            MetricName::TestAccuracy => Some(summary.test_accuracy),
            _ => summary.history.last().and_then(|e| self.of_epoch(e)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Goal {
    Maximize,
    Minimize,
}

impl Goal {
    pub fn as_str(self) -> &'static str {
        match self {
            Goal::Maximize => "maximize",
            Goal::Minimize => "minimize",
        }
    }
}

/// The sweep's metric and which way is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metric {
    pub name: MetricName,
    pub goal: Goal,
}

impl Metric {
    /// `a` and `b` ordered best first; a value that is not a number comes last.
    pub fn best_first(self, a: f64, b: f64) -> std::cmp::Ordering {
        let order = a.total_cmp(&b);
        match (a.is_nan(), b.is_nan(), self.goal) {
            (true, false, _) => std::cmp::Ordering::Greater,
            (false, true, _) => std::cmp::Ordering::Less,
            (_, _, Goal::Maximize) => order.reverse(),
            (_, _, Goal::Minimize) => order,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TerminateKind {
    Hyperband,
}

/// W&B's `early_terminate`: hyperband's successive halving, whose rungs are at `min_iter`,
/// `min_iter * eta`, `min_iter * eta^2`, ... epochs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EarlyTerminate {
    #[serde(rename = "type")]
    pub kind: TerminateKind,
    pub min_iter: usize,
    #[serde(default = "default_eta")]
    pub eta: usize,
}

fn default_eta() -> usize {
    3
}

/// How a parameter's values are drawn from a range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Distribution {
    Uniform,
    /// Uniform in the logarithm, between `min` and `max` themselves (W&B's
    /// `log_uniform_values`; its older `log_uniform` took the logarithms instead).
    LogUniform,
    IntUniform,
}

/// One parameter of the sweep: the values its config key takes.
#[derive(Debug, Clone, PartialEq)]
pub enum Parameter {
    /// The same value in every trial.
    Value(Value),
    /// One of these values: all of them in a grid, one drawn per trial in a random sweep.
    Values(Vec<Value>),
    /// Drawn from `min..=max`, in a random sweep.
    Range {
        min: f64,
        max: f64,
        distribution: Distribution,
    },
}

impl Parameter {
    /// Whether trials can differ in it.
    pub fn varies(&self) -> bool {
        match self {
            Parameter::Value(_) => false,
            Parameter::Values(values) => values.iter().any(|v| v != &values[0]),
            Parameter::Range { .. } => true,
        }
    }
}

/// The sweep file, read and checked.
#[derive(Debug, Clone)]
pub struct SweepSpec {
    /// The file, as given.
    pub path: PathBuf,
    /// The sweep's name: its folder's, under the artifacts folder.
    pub name: String,
    /// The config every trial starts from, as JSON (the base file's, or the inline object).
    pub base: Map<String, Value>,
    /// The base config with every section filled in: where a parameter's section comes from
    /// when the base leaves it to its default (`optimizer` for `optimizer.learning_rate`).
    pub defaults: Map<String, Value>,
    pub method: Method,
    pub trials: Option<usize>,
    pub seed: u64,
    pub metric: Metric,
    pub parameters: BTreeMap<String, Parameter>,
    pub early_terminate: Option<EarlyTerminate>,
    pub threads_per_trial: Option<usize>,
}

/// The file's top level, before its parameters and base are read.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SweepFile {
    name: Option<String>,
    /// Free text for people, as in W&B's files; not used.
    #[serde(rename = "description")]
    _description: Option<String>,
    base: Option<Value>,
    #[serde(default)]
    method: Method,
    trials: Option<usize>,
    #[serde(default)]
    seed: u64,
    metric: Option<MetricSection>,
    #[serde(default)]
    parameters: BTreeMap<String, Value>,
    early_terminate: Option<EarlyTerminate>,
    threads_per_trial: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MetricSection {
    name: MetricName,
    goal: Option<Goal>,
}

/// More trials than this in one grid is a mistake in the file rather than a plan.
pub const MAX_TRIALS: usize = 10_000;

impl SweepSpec {
    /// Reads and checks the sweep file at `path`: its keys, its base config, and every value of
    /// every parameter against the base config.
    pub fn load(path: &Path) -> Result<Self, SweepError> {
        let text = fs::read_to_string(path).map_err(|source| SweepError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Reads sweep file text; `path` names it in errors and places a relative base file.
    pub fn parse(path: &Path, text: &str) -> Result<Self, SweepError> {
        let file_error = |message: String| SweepError::File {
            path: path.to_path_buf(),
            message,
        };
        if !text.trim_start().starts_with('{') {
            return Err(file_error(
                "not a sweep file: the top level must be an object, { ... }".to_string(),
            ));
        }
        if let Ok(Value::Object(top)) = serde_json::from_str::<Value>(text)
            && !top.contains_key("base")
            && ["model", "optimizer", "epochs", "batch_size", "data"]
                .iter()
                .any(|key| top.contains_key(*key))
        {
            return Err(file_error(
                "a training config, not a sweep file: train it with `lenet --config FILE`, or \
                 sweep over it from a sweep file whose \"base\" names it (docs/sweeps.md)"
                    .to_string(),
            ));
        }
        let mut json = serde_json::Deserializer::from_str(text);
        let file: SweepFile = serde_path_to_error::deserialize(&mut json).map_err(|err| {
            let key = err.path().to_string();
            let message = crate::config::error::printable(&err.into_inner().to_string());
            file_error(if key == "." {
                message
            } else {
                format!("{key}: {message}")
            })
        })?;
        json.end()
            .map_err(|e| file_error(format!("not valid JSON: {e}")))?;

        let name = match file.name {
            Some(name) => name,
            None => config_name(path),
        };
        check_name(&name).map_err(|why| file_error(format!("name: {why}")))?;
        let (base, defaults) = read_base(path, file.base)?;
        let metric = match file.metric {
            Some(MetricSection { name, goal }) => Metric {
                name,
                goal: goal.unwrap_or(default_goal(name)),
            },
            None => Metric {
                name: MetricName::ValidAccuracy,
                goal: Goal::Maximize,
            },
        };
        match (file.method, file.trials) {
            (Method::Random, None) => {
                return Err(file_error(
                    "trials: a random sweep needs the number of trials to draw, e.g. \"trials\": 8"
                        .to_string(),
                ));
            }
            (_, Some(0)) => return Err(file_error("trials: must be at least 1".to_string())),
            (Method::Random, Some(n)) if n > MAX_TRIALS => {
                return Err(file_error(format!("trials: {n} is over {MAX_TRIALS}")));
            }
            (Method::Grid, Some(_)) => {
                return Err(file_error(
                    "trials: a grid runs every combination of the values; trials is for \
                     \"method\": \"random\""
                        .to_string(),
                ));
            }
            _ => {}
        }
        if file.threads_per_trial == Some(0) {
            return Err(file_error(
                "threads_per_trial: must be at least 1".to_string(),
            ));
        }
        if let Some(rule) = &file.early_terminate {
            check_early_terminate(rule, metric).map_err(file_error)?;
        }

        let mut parameters = BTreeMap::new();
        for (key, value) in file.parameters {
            let parameter_error = |message: String| SweepError::Parameter {
                path: path.to_path_buf(),
                key: crate::config::error::printable(&key),
                message,
            };
            check_key(&key).map_err(parameter_error)?;
            let parameter = read_parameter(&value).map_err(parameter_error)?;
            if file.method == Method::Grid && matches!(parameter, Parameter::Range { .. }) {
                return Err(parameter_error(
                    "a range is drawn from, so it needs \"method\": \"random\"; a grid takes \
                     {\"values\": [...]}"
                        .to_string(),
                ));
            }
            check_parameter(path, &base, &defaults, &key, &parameter).map_err(parameter_error)?;
            parameters.insert(key, parameter);
        }
        if file.method == Method::Grid {
            let count = parameters.values().try_fold(1usize, |count, p| match p {
                Parameter::Values(values) => count.checked_mul(values.len()),
                _ => Some(count),
            });
            if count.is_none_or(|n| n > MAX_TRIALS) {
                return Err(file_error(format!(
                    "parameters: the grid has more than {MAX_TRIALS} combinations"
                )));
            }
        }
        Ok(Self {
            path: path.to_path_buf(),
            name,
            base,
            defaults,
            method: file.method,
            trials: file.trials,
            seed: file.seed,
            metric,
            parameters,
            early_terminate: file.early_terminate,
            threads_per_trial: file.threads_per_trial,
        })
    }
}

fn default_goal(name: MetricName) -> Goal {
    if name.is_accuracy() {
        Goal::Maximize
    } else {
        Goal::Minimize
    }
}

/// A sweep's name names its folder: one plain folder name.
pub fn check_name(name: &str) -> Result<(), String> {
    let plain = !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if plain {
        Ok(())
    } else {
        Err(format!(
            "{name:?} cannot name a folder; use letters, digits, '-', '_' and '.' (at most 100)"
        ))
    }
}

/// The base config as JSON: the file `base` names (relative to the sweep file's folder), or
/// the object itself; checked as a config is. Also the same with every section filled in.
type Base = (Map<String, Value>, Map<String, Value>);

fn read_base(path: &Path, base: Option<Value>) -> Result<Base, SweepError> {
    let file_error = |message: String| SweepError::File {
        path: path.to_path_buf(),
        message,
    };
    let (source, text) = match base {
        None => {
            return Err(file_error(
                "base: missing: name the config every trial starts from (\"base\": \
                 \"lenet.json\", relative to the sweep file) or give it inline (\"base\": {...})"
                    .to_string(),
            ));
        }
        Some(Value::String(file)) => {
            let file = path.parent().unwrap_or(Path::new("")).join(file);
            let text = fs::read_to_string(&file).map_err(|source| SweepError::Base {
                path: path.to_path_buf(),
                source: ConfigError::Read {
                    path: file.clone(),
                    source,
                },
            })?;
            (file, text)
        }
        Some(Value::Object(map)) => (
            path.to_path_buf(),
            serde_json::to_string(&map).expect("JSON serialises"),
        ),
        Some(other) => {
            return Err(file_error(format!(
                "base: expected a config file's path or a config object, found {other}"
            )));
        }
    };
    let base_error = |source| SweepError::Base {
        path: path.to_path_buf(),
        source,
    };
    let config = TrainingConfig::parse(&source, &text).map_err(base_error)?;
    config
        .validate()
        .map_err(|e| base_error(e.in_file(&source)))?;
    let defaults = match serde_json::to_value(&config) {
        Ok(Value::Object(map)) => map,
        _ => unreachable!("a config serialises to an object"),
    };
    match serde_json::from_str(&text) {
        Ok(Value::Object(map)) => Ok((map, defaults)),
        _ => unreachable!("a config that parses is a JSON object"),
    }
}

fn check_early_terminate(rule: &EarlyTerminate, metric: Metric) -> Result<(), String> {
    if rule.min_iter == 0 {
        return Err("early_terminate.min_iter: must be at least 1 (an epoch)".to_string());
    }
    if rule.eta < 2 {
        return Err(format!(
            "early_terminate.eta: must be at least 2 (keep the best 1/eta at each rung), got {}",
            rule.eta
        ));
    }
    if !metric.name.per_epoch() {
        return Err(format!(
            "early_terminate: hyperband compares trials at epoch ends, and {} is measured once, \
             at the end; rank by a metric of every epoch (valid_accuracy, valid_loss, ...)",
            metric.name.as_str()
        ));
    }
    Ok(())
}

/// A parameter's key is a dotted config key (`optimizer.learning_rate`).
fn check_key(key: &str) -> Result<(), String> {
    let well_formed = key.split('.').all(|part| {
        !part.is_empty()
            && part
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    });
    if !well_formed {
        return Err(
            "not a config key; write keys in dotted form, e.g. \"optimizer.learning_rate\""
                .to_string(),
        );
    }
    if key == "artifact_dir" {
        return Err(
            "the sweep decides where each trial goes (<artifact dir>/<sweep>/<trial>); use \
             --artifact-dir for the folder above"
                .to_string(),
        );
    }
    Ok(())
}

/// A parameter's spec, in one of W&B's forms.
fn read_parameter(spec: &Value) -> Result<Parameter, String> {
    const FORMS: &str = "expected {\"value\": x}, {\"values\": [x, y, ...]} or {\"min\": a, \
                         \"max\": b, \"distribution\": \"uniform\" | \"log_uniform\" | \
                         \"int_uniform\"}";
    let Value::Object(spec) = spec else {
        return Err(format!("{FORMS}, found {spec}"));
    };
    if let Some(key) = spec
        .keys()
        .find(|k| !["value", "values", "min", "max", "distribution"].contains(&k.as_str()))
    {
        return Err(format!("unknown key {key:?}: {FORMS}"));
    }
    let has = |key: &str| spec.contains_key(key);
    match (has("value"), has("values"), has("min") || has("max")) {
        (true, false, false) if !has("distribution") => Ok(Parameter::Value(spec["value"].clone())),
        (false, true, false) => {
            if let Some(d) = spec.get("distribution").filter(|d| *d != "categorical") {
                return Err(format!(
                    "values are chosen from as they are; distribution {d} is for min and max"
                ));
            }
            match &spec["values"] {
                Value::Array(values) if values.is_empty() => {
                    Err("values is empty: give at least one".to_string())
                }
                Value::Array(values) => Ok(Parameter::Values(values.clone())),
                other => Err(format!("values: expected a list, found {other}")),
            }
        }
        (false, false, true) => read_range(spec),
        _ => Err(FORMS.to_string()),
    }
}

fn read_range(spec: &Map<String, Value>) -> Result<Parameter, String> {
    let number = |key: &str| match spec.get(key) {
        Some(Value::Number(n)) => n
            .as_f64()
            .filter(|x| x.is_finite())
            .ok_or(format!("{key}: not a finite number")),
        Some(other) => Err(format!("{key}: expected a number, found {other}")),
        None => Err(format!("{key}: missing; a range needs both min and max",)),
    };
    let (min, max) = (number("min")?, number("max")?);
    let whole = |key: &str| spec[key].is_i64() || spec[key].is_u64();
    let distribution = match spec.get("distribution") {
        None if whole("min") && whole("max") => Distribution::IntUniform,
        None => Distribution::Uniform,
        Some(Value::String(name)) => match name.as_str() {
            "uniform" => Distribution::Uniform,
            "log_uniform" | "log_uniform_values" => Distribution::LogUniform,
            "int_uniform" => Distribution::IntUniform,
            other => {
                return Err(format!(
                    "distribution: unknown {other:?} (expected uniform, log_uniform or \
                     int_uniform)"
                ));
            }
        },
        Some(other) => return Err(format!("distribution: expected a name, found {other}")),
    };
    if min >= max {
        return Err(format!(
            "min {min} is not below max {max}; for one value write {{\"value\": {min}}}"
        ));
    }
    if distribution == Distribution::LogUniform && min <= 0.0 {
        return Err(format!(
            "log_uniform draws between min and max themselves (as W&B's log_uniform_values \
             does), so min must be above 0, got {min}"
        ));
    }
    if distribution == Distribution::IntUniform && !(whole("min") && whole("max")) {
        return Err("int_uniform needs whole numbers for min and max".to_string());
    }
    Ok(Parameter::Range {
        min,
        max,
        distribution,
    })
}

/// Checks that every value `parameter` can give is one its key takes in the base config: each
/// of its values, or both ends of its range.
fn check_parameter(
    path: &Path,
    base: &Map<String, Value>,
    defaults: &Map<String, Value>,
    key: &str,
    parameter: &Parameter,
) -> Result<(), String> {
    let values: Vec<Value> = match parameter {
        Parameter::Value(value) => vec![value.clone()],
        Parameter::Values(values) => values.clone(),
        Parameter::Range {
            min,
            max,
            distribution,
        } => [*min, *max]
            .iter()
            .map(|x| range_value(*x, *distribution))
            .collect(),
    };
    for value in values {
        let mut config = base.clone();
        set_key(&mut config, defaults, key, value.clone())?;
        config_from(path, &config).map_err(|problem| format!("{value}: {problem}"))?;
    }
    Ok(())
}

/// A number drawn from a range as the config will hold it: whole for `int_uniform`.
pub fn range_value(x: f64, distribution: Distribution) -> Value {
    match distribution {
        Distribution::IntUniform => Value::from(x.round() as i64),
        _ => Value::from(x),
    }
}

/// Sets the dotted `key` of a config object to `value`. A top-level section the config leaves
/// out is taken from `defaults` (so that a tagged section keeps its `"type"`); sections below
/// it are made empty.
pub fn set_key(
    config: &mut Map<String, Value>,
    defaults: &Map<String, Value>,
    key: &str,
    value: Value,
) -> Result<(), String> {
    let mut parts: Vec<&str> = key.split('.').collect();
    let last = parts.pop().expect("split gives at least one part");
    let mut section = config;
    for (depth, part) in parts.iter().enumerate() {
        let entry = section.entry(part.to_string()).or_insert_with(|| {
            defaults
                .get(*part)
                .filter(|_| depth == 0)
                .cloned()
                .unwrap_or(Value::Object(Map::new()))
        });
        if entry.is_null() {
            *entry = Value::Object(Map::new());
        }
        section = match entry {
            Value::Object(map) => map,
            other => {
                return Err(format!(
                    "{} holds {other}, not a section with keys",
                    parts[..=depth].join(".")
                ));
            }
        };
    }
    section.insert(last.to_string(), value);
    Ok(())
}

/// The config `config` makes, checked, or what is wrong with it in one line (the key and why).
pub fn config_from(path: &Path, config: &Map<String, Value>) -> Result<TrainingConfig, String> {
    let text = serde_json::to_string(config).expect("JSON serialises");
    // serde ends its messages with a place in the text it read, which here is lenet's own
    // one-line JSON of the trial's config, not the user's file: left out.
    let unplaced = |message: String| match message.rfind(" at line ") {
        Some(at) if message[at..].contains(" column ") => message[..at].to_string(),
        _ => message,
    };
    let problem = |error: ConfigError| match error {
        ConfigError::Key { key, message, .. } => format!("{key}: {}", unplaced(message)),
        ConfigError::Value { key, message } => format!("{key}: {message}"),
        ConfigError::Syntax { message, .. } => unplaced(message),
        ConfigError::Read { source, .. } => source.to_string(),
        error @ ConfigError::SweepFile { .. } => error.to_string(),
    };
    let config = TrainingConfig::parse(path, &text).map_err(problem)?;
    config.validate().map_err(problem)?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<SweepSpec, String> {
        SweepSpec::parse(Path::new("sweep.json"), text).map_err(|e| e.to_string())
    }

    #[test]
    fn a_grid_reads_with_defaults() {
        let spec = parse(
            r#"{"name": "lr", "base": {"epochs": 2},
                "parameters": {"optimizer.learning_rate": {"values": [0.001, 0.002]},
                               "batch_size": {"value": 32}}}"#,
        )
        .unwrap();
        assert_eq!(spec.method, Method::Grid);
        assert_eq!(spec.metric.name, MetricName::ValidAccuracy);
        assert_eq!(spec.metric.goal, Goal::Maximize);
        assert!(spec.parameters["optimizer.learning_rate"].varies());
        assert!(!spec.parameters["batch_size"].varies());
    }

    #[test]
    fn a_loss_is_minimised_unless_said_otherwise() {
        let spec = parse(r#"{"base": {}, "metric": {"name": "valid_loss"}}"#).unwrap();
        assert_eq!(spec.metric.goal, Goal::Minimize);
        assert_eq!(spec.name, "sweep", "named after the file");
    }

    #[test]
    fn each_problem_is_one_line_naming_its_key() {
        let cases = [
            (r#"[1]"#, "top level must be an object"),
            (
                r#"{"base": {}, "program": "train.py"}"#,
                "unknown field `program`",
            ),
            (r#"{"parameters": {}}"#, "base: missing"),
            (r#"{"base": 3}"#, "base: expected a config file's path"),
            (r#"{"base": {"epochs": 0}}"#, "epochs: must be at least 1"),
            (r#"{"base": {"epoch": 2}}"#, "unknown field `epoch`"),
            (
                r#"{"epochs": 2, "batch_size": 8}"#,
                "a training config, not a sweep file",
            ),
            (r#"{"base": {}, "name": "a/b"}"#, "cannot name a folder"),
            (
                r#"{"base": {}, "method": "bayes"}"#,
                "unknown variant `bayes`",
            ),
            (
                r#"{"base": {}, "method": "random"}"#,
                "needs the number of trials",
            ),
            (r#"{"base": {}, "trials": 3}"#, "trials is for"),
            (
                r#"{"base": {}, "metric": {"name": "accuracy"}}"#,
                "unknown variant `accuracy`",
            ),
            (
                r#"{"base": {}, "parameters": {"batch_size": {"values": []}}}"#,
                "parameters.batch_size: values is empty",
            ),
            (
                r#"{"base": {}, "parameters": {"batch_size": {"values": [32, 0]}}}"#,
                "parameters.batch_size: 0: batch_size: must be at least 1",
            ),
            (
                r#"{"base": {}, "parameters": {"optimizer.learnin_rate": {"value": 0.1}}}"#,
                "unknown field `learnin_rate`",
            ),
            (
                r#"{"base": {}, "parameters": {"Batch Size": {"value": 1}}}"#,
                "not a config key",
            ),
            (
                r#"{"base": {}, "parameters": {"batch\nsize": {"value": 1}}}"#,
                "parameters.batch\\nsize: not a config key",
            ),
            (
                r#"{"base": {}, "parameters": {"epochs.x": {"value": 1}}}"#,
                "epochs holds 10, not a section",
            ),
            (
                r#"{"base": {}, "parameters": {"batch_size": {"min": 8, "max": 64}}}"#,
                "needs \"method\": \"random\"",
            ),
            (
                r#"{"base": {}, "method": "random", "trials": 2,
                    "parameters": {"optimizer.learning_rate": {"min": 0.1, "max": 0.01}}}"#,
                "min 0.1 is not below max 0.01",
            ),
            (
                r#"{"base": {}, "method": "random", "trials": 2,
                    "parameters": {"optimizer.learning_rate":
                        {"min": -1, "max": 0.01, "distribution": "uniform"}}}"#,
                "-1.0: optimizer.learning_rate",
            ),
            (
                r#"{"base": {}, "method": "random", "trials": 2,
                    "parameters": {"optimizer.learning_rate":
                        {"min": 0, "max": 0.01, "distribution": "log_uniform"}}}"#,
                "min must be above 0",
            ),
            (
                r#"{"base": {}, "parameters": {"seed": {"values": [1], "min": 2}}}"#,
                "expected {\"value\": x}",
            ),
            (
                r#"{"base": {}, "early_terminate": {"type": "hyperband", "min_iter": 1, "eta": 1}}"#,
                "eta: must be at least 2",
            ),
            (
                r#"{"base": {}, "metric": {"name": "test_accuracy"},
                    "early_terminate": {"type": "hyperband", "min_iter": 1}}"#,
                "measured once",
            ),
            (
                r#"{"base": {}, "early_terminate": {"type": "median", "min_iter": 1}}"#,
                "unknown variant `median`",
            ),
        ];
        for (text, expected) in cases {
            let error = parse(text).expect_err(text);
            assert!(error.contains(expected), "{text}: {error}");
            assert!(!error.contains('\n'), "{text}: {error}");
            if error.contains("parameters.") {
                assert!(
                    !error.contains(" column "),
                    "no place in lenet's own text: {error}"
                );
            }
        }
    }

    #[test]
    fn a_base_file_is_found_beside_the_sweep_file() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("base.json"), r#"{"epochs": 3}"#).unwrap();
        let path = dir.path().join("s.json");
        let spec = SweepSpec::parse(&path, r#"{"base": "base.json"}"#).unwrap();
        assert_eq!(spec.base["epochs"], 3);
        let missing = SweepSpec::parse(&path, r#"{"base": "nope.json"}"#)
            .unwrap_err()
            .to_string();
        assert!(
            missing.contains("nope.json: cannot read config"),
            "{missing}"
        );
    }

    #[test]
    fn keys_are_set_through_sections_made_on_the_way() {
        let mut config = Map::new();
        let defaults = serde_json::json!({"optimizer": {"type": "adam", "learning_rate": 0.001}});
        let defaults = defaults.as_object().unwrap();
        set_key(
            &mut config,
            defaults,
            "augmentation.rotation_degrees",
            Value::from(10),
        )
        .unwrap();
        set_key(&mut config, defaults, "epochs", Value::from(2)).unwrap();
        set_key(
            &mut config,
            defaults,
            "optimizer.learning_rate",
            Value::from(0.1),
        )
        .unwrap();
        assert_eq!(
            Value::Object(config),
            serde_json::json!({"augmentation": {"rotation_degrees": 10}, "epochs": 2,
                               "optimizer": {"type": "adam", "learning_rate": 0.1}})
        );
    }

    #[test]
    fn the_best_comes_first_whichever_the_goal() {
        let up = Metric {
            name: MetricName::ValidAccuracy,
            goal: Goal::Maximize,
        };
        let down = Metric {
            name: MetricName::ValidLoss,
            goal: Goal::Minimize,
        };
        let mut values = [0.5, f64::NAN, 0.9, 0.1];
        values.sort_by(|a, b| up.best_first(*a, *b));
        assert_eq!(&values[..3], &[0.9, 0.5, 0.1]);
        assert!(values[3].is_nan());
        values.sort_by(|a, b| down.best_first(*a, *b));
        assert_eq!(&values[..3], &[0.1, 0.5, 0.9]);
    }
}
