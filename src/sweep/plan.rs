//! A sweep's trials, made from its file: every combination of a grid, or a random sweep's
//! draws from its seed; each trial named by the values it gives the parameters that vary, and
//! its config the base config with those values set.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::error::SweepError;
use super::record::{SweepRecord, Trial};
use super::spec::{Distribution, Method, Parameter, SweepSpec, config_from, range_value, set_key};
use crate::config::TrainingConfig;
use crate::data::SplitSize;
use crate::data::rng::Rng;

/// A sweep ready to run: its file read, its trials made, and where it goes.
#[derive(Debug, Clone)]
pub struct SweepPlan {
    pub spec: SweepSpec,
    /// The sweep's folder: `<artifact dir>/<name>`.
    pub dir: PathBuf,
    /// Where every trial's data is, when given on the command line.
    pub data_dir: Option<PathBuf>,
    /// The dotted keys whose values differ between trials, in key order.
    pub varied: Vec<String>,
    pub trials: Vec<Trial>,
}

impl SweepPlan {
    /// The sweep in `file`, its folder in `artifact_dir` (default `artifacts`), its trials' data
    /// in `data_dir` when given. Every trial's config is made and checked.
    pub fn load(
        file: &Path,
        artifact_dir: Option<&Path>,
        data_dir: Option<&Path>,
    ) -> Result<Self, SweepError> {
        let spec = SweepSpec::load(file)?;
        let dir = artifact_dir
            .unwrap_or(Path::new("artifacts"))
            .join(&spec.name);
        let varied = spec
            .parameters
            .iter()
            .filter(|(_, p)| p.varies())
            .map(|(key, _)| key.clone())
            .collect();
        let mut plan = Self {
            trials: Vec::new(),
            spec,
            dir,
            data_dir: data_dir.map(Path::to_path_buf),
            varied,
        };
        let values = match plan.spec.method {
            Method::Grid => grid(&plan.spec.parameters),
            Method::Random => random(
                &plan.spec.parameters,
                plan.spec.seed,
                plan.spec.trials.unwrap_or(1),
            ),
        };
        let width = values.len().to_string().len();
        // A random sweep grown past 9 (or 99) trials pads its numbers wider: the trials it had
        // keep the names their folders have.
        let recorded = SweepRecord::read(&plan.dir)
            .map(|r| r.trials)
            .unwrap_or_default();
        plan.trials = values
            .into_iter()
            .enumerate()
            .map(|(i, parameters)| Trial {
                number: i + 1,
                name: recorded
                    .get(i)
                    .filter(|r| r.parameters == parameters)
                    .map_or_else(
                        || trial_name(i + 1, width, &parameters, &plan.varied),
                        |r| r.name.clone(),
                    ),
                parameters,
            })
            .collect();
        for trial in &plan.trials {
            plan.config(trial)?;
        }
        Ok(plan)
    }

    /// What `sweep.json` records of the sweep.
    pub fn record(&self) -> SweepRecord {
        SweepRecord {
            name: self.spec.name.clone(),
            method: self.spec.method,
            seed: self.spec.seed,
            metric: self.spec.metric,
            early_terminate: self.spec.early_terminate,
            threads_per_trial: self.spec.threads_per_trial,
            varied: self.varied.clone(),
            log_scale: self.log_scale(),
            base: self.spec.base.clone(),
            trials: self.trials.clone(),
        }
    }

    /// The trial numbered `number`.
    pub fn trial(&self, number: usize) -> Result<&Trial, SweepError> {
        self.trials
            .get(number.wrapping_sub(1))
            .ok_or(SweepError::NoSuchTrial {
                number,
                count: self.trials.len(),
            })
    }

    /// The trial's run folder.
    pub fn trial_dir(&self, trial: &Trial) -> PathBuf {
        self.dir.join(&trial.name)
    }

    /// The trial's config: the base config with the trial's values set, its run folder, and the
    /// data folder given on the command line.
    pub fn config(&self, trial: &Trial) -> Result<TrainingConfig, SweepError> {
        let mut json = self.spec.base.clone();
        for (key, value) in &trial.parameters {
            set_key(&mut json, &self.spec.defaults, key, value.clone())
                .map_err(|message| self.problem(trial, message))?;
        }
        let mut config =
            config_from(&self.spec.path, &json).map_err(|message| self.problem(trial, message))?;
        config.artifact_dir = Some(self.trial_dir(trial));
        if let Some(dir) = &self.data_dir {
            config.data.dir = Some(dir.clone());
        }
        Ok(config)
    }

    /// A trial whose values together make a config that cannot run (each alone could).
    fn problem(&self, trial: &Trial, message: String) -> SweepError {
        SweepError::File {
            path: self.spec.path.clone(),
            message: format!("trial {} ({}): {message}", trial.number, trial.name),
        }
    }

    /// What about the sweep would mislead: trials ranked by a validation metric measured on
    /// the test set (`data.validation_size` 0), which makes the sweep choose by the test set.
    pub fn warnings(&self) -> Vec<String> {
        let metric = self.spec.metric.name;
        let on_test_set: Vec<usize> = self
            .trials
            .iter()
            .filter(|trial| {
                self.config(trial)
                    .is_ok_and(|c| c.data.validation_size == SplitSize::Count(0))
            })
            .map(|trial| trial.number)
            .collect();
        if metric.per_epoch() && !on_test_set.is_empty() && metric.as_str().starts_with("valid") {
            vec![format!(
                "{} of {} trials have data.validation_size 0, so their {} is measured on the \
                 test set, and the sweep would choose by the test set; give the base config a \
                 validation split, or \"data.validation_size\": {{\"value\": 5000}} among \
                 the parameters",
                on_test_set.len(),
                self.trials.len(),
                metric.as_str()
            )]
        } else {
            Vec::new()
        }
    }

    /// The values of the parameters that vary, in one trial.
    pub fn varied_values(&self, trial: &Trial) -> BTreeMap<String, Value> {
        self.varied
            .iter()
            .filter_map(|key| Some((key.clone(), trial.parameters.get(key)?.clone())))
            .collect()
    }

    /// The parameters drawn on a logarithmic scale, which charts show so.
    pub fn log_scale(&self) -> Vec<String> {
        self.spec
            .parameters
            .iter()
            .filter(|(_, p)| {
                matches!(
                    p,
                    Parameter::Range {
                        distribution: Distribution::LogUniform,
                        ..
                    }
                )
            })
            .map(|(key, _)| key.clone())
            .collect()
    }
}

/// Every combination of the parameters' values, the first key (in key order) changing slowest.
fn grid(parameters: &BTreeMap<String, Parameter>) -> Vec<BTreeMap<String, Value>> {
    let mut combinations = vec![BTreeMap::new()];
    for (key, parameter) in parameters {
        let values = match parameter {
            Parameter::Value(value) => vec![value.clone()],
            Parameter::Values(values) => values.clone(),
            Parameter::Range { .. } => unreachable!("a grid's ranges are refused when read"),
        };
        combinations = combinations
            .into_iter()
            .flat_map(|combination| {
                values.iter().map(move |value| {
                    let mut next = combination.clone();
                    next.insert(key.clone(), value.clone());
                    next
                })
            })
            .collect();
    }
    combinations
}

/// `trials` draws from one generator seeded with `seed`, trial after trial and key after key,
/// so that a seed gives the same trials anywhere, and more trials extend the same list.
fn random(
    parameters: &BTreeMap<String, Parameter>,
    seed: u64,
    trials: usize,
) -> Vec<BTreeMap<String, Value>> {
    let mut rng = Rng::new(seed);
    (0..trials)
        .map(|_| {
            parameters
                .iter()
                .map(|(key, parameter)| (key.clone(), draw(parameter, &mut rng)))
                .collect()
        })
        .collect()
}

fn draw(parameter: &Parameter, rng: &mut Rng) -> Value {
    // Uniform in [0, 1), from the top 53 bits.
    let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    match parameter {
        Parameter::Value(value) => value.clone(),
        Parameter::Values(values) => {
            values[((u * values.len() as f64) as usize).min(values.len() - 1)].clone()
        }
        Parameter::Range {
            min,
            max,
            distribution,
        } => {
            let x = match distribution {
                Distribution::Uniform => min + u * (max - min),
                Distribution::LogUniform => (min.ln() + u * (max.ln() - min.ln())).exp(),
                Distribution::IntUniform => (min + (u * (max - min + 1.0)).floor()).min(*max),
            };
            range_value(x, *distribution)
        }
    }
}

/// `03-batch_size=64,learning_rate=0.002`: the trial's number, padded so that folders sort in
/// order, and the values of the parameters that vary, each under the last part of its key (the
/// whole key where two share a last part).
fn trial_name(
    number: usize,
    width: usize,
    parameters: &BTreeMap<String, Value>,
    varied: &[String],
) -> String {
    let short = |key: &str| key.rsplit('.').next().unwrap_or(key).to_string();
    let shared = |key: &str| varied.iter().filter(|k| short(k) == short(key)).count() > 1;
    let values: Vec<String> = varied
        .iter()
        .filter_map(|key| {
            let label = if shared(key) { key.clone() } else { short(key) };
            Some(format!("{label}={}", brief(parameters.get(key)?)))
        })
        .collect();
    let name = if values.is_empty() {
        format!("{number:0width$}")
    } else {
        format!("{number:0width$}-{}", values.join(","))
    };
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-' | '=' | ',') {
                c
            } else {
                '_'
            }
        })
        .collect();
    safe.chars().take(120).collect()
}

/// A value as a folder name and the report's table show it: numbers drawn at random to 3
/// significant digits.
pub fn brief(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Number(n) if n.is_f64() => {
            let x = n.as_f64().unwrap_or_default();
            let text = format!("{x:.2e}");
            let rounded: f64 = text.parse().unwrap_or(x);
            // The shortest form that reads back as the rounded number: 0.00316, 3.16e-5, 250.
            let plain = rounded.to_string();
            if plain.len() <= text.len() {
                plain
            } else {
                text
            }
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn plan(text: &str) -> SweepPlan {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s.json");
        fs::write(&file, text).unwrap();
        SweepPlan::load(&file, Some(Path::new("out")), None).unwrap()
    }

    #[test]
    fn every_shipped_sweep_file_plans() {
        // A config key renamed or a base config moved breaks the sweep files in configs/sweeps,
        // which nothing else loads before a user does.
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/sweeps");
        let out = tempfile::tempdir().unwrap();
        let mut planned = 0;
        for entry in fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            let plan = SweepPlan::load(&path, Some(out.path()), None)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(!plan.trials.is_empty(), "{}", path.display());
            planned += 1;
        }
        assert!(planned >= 5, "{planned} sweep files");
    }

    #[test]
    fn a_grid_is_every_combination_named_by_what_varies() {
        let plan = plan(
            r#"{"name": "g", "base": {"epochs": 1},
                "parameters": {"optimizer.learning_rate": {"values": [0.001, 0.002]},
                               "batch_size": {"values": [32, 64, 128]},
                               "seed": {"value": 7}}}"#,
        );
        assert_eq!(plan.trials.len(), 6);
        assert_eq!(plan.varied, ["batch_size", "optimizer.learning_rate"]);
        let names: Vec<&str> = plan.trials.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names[0], "1-batch_size=32,learning_rate=0.001");
        assert_eq!(names[5], "6-batch_size=128,learning_rate=0.002");
        assert_eq!(
            plan.trial_dir(&plan.trials[0]),
            Path::new("out/g").join(names[0])
        );
        let config = plan.config(&plan.trials[3]).unwrap();
        assert_eq!(config.batch_size, 64);
        assert_eq!(config.optimizer.learning_rate(), 0.002);
        assert_eq!(config.seed, 7);
        assert_eq!(config.epochs, 1);
        assert!(matches!(
            plan.trial(7),
            Err(SweepError::NoSuchTrial {
                number: 7,
                count: 6
            })
        ));
        assert!(plan.trial(0).is_err());
    }

    #[test]
    fn a_random_sweep_is_its_seed_and_stays_in_its_ranges() {
        let text = |seed: u64, trials: usize| {
            format!(
                r#"{{"name": "r", "base": {{}}, "method": "random", "trials": {trials}, "seed": {seed},
                    "parameters": {{"optimizer.learning_rate": {{"min": 0.0001, "max": 0.01, "distribution": "log_uniform"}},
                                    "batch_size": {{"min": 16, "max": 128}},
                                    "model.activation": {{"values": ["relu", "tanh"]}}}}}}"#
            )
        };
        let first = plan(&text(5, 20));
        assert_eq!(first.trials, plan(&text(5, 20)).trials, "same seed");
        assert_ne!(first.trials, plan(&text(6, 20)).trials, "another seed");
        assert_eq!(
            &plan(&text(5, 25)).trials[..20],
            &first.trials[..],
            "more trials extend"
        );
        for trial in &first.trials {
            let lr = trial.parameters["optimizer.learning_rate"]
                .as_f64()
                .unwrap();
            assert!((0.0001..=0.01).contains(&lr), "{lr}");
            let batch = trial.parameters["batch_size"].as_u64().unwrap();
            assert!((16..=128).contains(&batch), "{batch}");
        }
        let activations: std::collections::BTreeSet<String> = first
            .trials
            .iter()
            .map(|t| t.parameters["model.activation"].to_string())
            .collect();
        assert_eq!(activations.len(), 2, "both values drawn in 20 trials");
        assert_eq!(first.log_scale(), ["optimizer.learning_rate"]);
        assert!(
            first.trials[0].name.starts_with("01-batch_size="),
            "{}",
            first.trials[0].name
        );
    }

    #[test]
    fn values_that_cannot_go_together_name_the_trial() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s.json");
        // Each value is fine with the base's other one; 0.0002 and 0.0005 together are not.
        fs::write(
            &file,
            r#"{"base": {"optimizer": {"type": "adam", "learning_rate": 0.001},
                         "lr_schedule": {"type": "onecycle", "initial_lr": 0.0001}},
                "parameters": {"optimizer.learning_rate": {"values": [0.001, 0.0002]},
                               "lr_schedule.initial_lr": {"values": [0.0001, 0.0005]}}}"#,
        )
        .unwrap();
        let error = SweepPlan::load(&file, None, None).unwrap_err().to_string();
        assert!(
            error.contains("trial 4 (4-initial_lr=0.0005,learning_rate=0.0002)"),
            "{error}"
        );
        assert!(error.contains("lr_schedule.initial_lr"), "{error}");
    }

    #[test]
    fn random_numbers_read_briefly_in_names() {
        assert_eq!(brief(&Value::from(0.003162277)), "0.00316");
        assert_eq!(brief(&Value::from(3.162277e-5)), "3.16e-5");
        assert_eq!(brief(&Value::from(250.0)), "250");
        assert_eq!(brief(&Value::from(64)), "64");
        assert_eq!(brief(&Value::from("relu")), "relu");
    }
}
