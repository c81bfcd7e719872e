//! Two configs compared key by key: what `lenet resume` checks before continuing a run.

use serde_json::Value;

use super::TrainingConfig;

/// One key whose value differs between two configs, with both values as JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// The key path, e.g. `optimizer.learning_rate`.
    pub key: String,
    pub was: String,
    pub now: String,
}

impl TrainingConfig {
    /// Every key at which `self` and `other` differ, in key order, ignoring where the data and
    /// the outputs are and where the run is logged (none of which changes what it computes).
    pub fn differences(&self, other: &TrainingConfig) -> Vec<Difference> {
        let mut found = Vec::new();
        differences(&self.comparable(), &other.comparable(), "", &mut found);
        found
    }

    /// Every key that says what a run computes, in dotted form (`optimizer.learning_rate`),
    /// with its value, in key order: what TensorBoard's HParams tab compares runs by. Lists
    /// are one value each.
    pub fn flattened(&self) -> Vec<(String, Value)> {
        flat(&self.comparable())
    }

    /// [`Self::flattened`] with where the data and the outputs are besides: every key of the
    /// run but where it is logged, as MLflow records a run's params.
    pub fn flattened_with_locations(&self) -> Vec<(String, Value)> {
        let mut config = self.clone();
        config.tracking = Default::default();
        flat(&serde_json::to_value(config).expect("config serialises"))
    }

    fn comparable(&self) -> Value {
        let mut config = self.clone();
        config.data.dir = None;
        config.artifact_dir = None;
        config.tracking = Default::default();
        serde_json::to_value(config).expect("config serialises")
    }
}

/// The leaves of `value`, each under its dotted path, in key order; nulls left out.
fn flat(value: &Value) -> Vec<(String, Value)> {
    fn walk(value: &Value, path: &str, found: &mut Vec<(String, Value)>) {
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    walk(child, &join(path, key), found);
                }
            }
            Value::Null => {}
            leaf => found.push((path.to_string(), leaf.clone())),
        }
    }
    let mut found = Vec::new();
    walk(value, "", &mut found);
    found
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn differences(a: &Value, b: &Value, path: &str, found: &mut Vec<Difference>) {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                let child = join(path, key);
                differences(
                    a.get(key).unwrap_or(&Value::Null),
                    b.get(key).unwrap_or(&Value::Null),
                    &child,
                    found,
                );
            }
        }
        _ if a != b => found.push(Difference {
            key: path.to_string(),
            was: a.to_string(),
            now: b.to_string(),
        }),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{LrSchedule, StepSection};

    #[test]
    fn differences_name_each_key_and_ignore_locations() {
        let a = TrainingConfig::default();
        let mut b = a.clone();
        b.epochs = 3;
        b.lr_schedule = LrSchedule::Step(StepSection::default());
        b.data.dir = Some("elsewhere".into());
        b.artifact_dir = Some("out".into());
        b.tracking.tensorboard = true;
        let found = a.differences(&b);
        let keys: Vec<&str> = found.iter().map(|d| d.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "epochs",
                "lr_schedule.gamma",
                "lr_schedule.step_epochs",
                "lr_schedule.type"
            ]
        );
        assert_eq!((found[0].was.as_str(), found[0].now.as_str()), ("10", "3"));
        assert!(a.differences(&a).is_empty());
    }

    #[test]
    fn flattened_keys_are_dotted_leaves_without_locations() {
        let mut config = TrainingConfig::default();
        config.data.dir = Some("elsewhere".into());
        config.tracking.tensorboard = true;
        config.optimizer.set_learning_rate(0.003);
        let flat = config.flattened();
        let keys: Vec<&str> = flat.iter().map(|(k, _)| k.as_str()).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted, "in key order");
        let value = |key: &str| flat.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
        assert_eq!(
            value("optimizer.learning_rate"),
            Some(serde_json::json!(0.003))
        );
        assert_eq!(value("epochs"), Some(serde_json::json!(10)));
        assert!(value("optimizer.type").is_some());
        assert!(
            !keys
                .iter()
                .any(|k| k.starts_with("tracking") || *k == "data.dir")
        );
        assert!(!keys.iter().any(|k| k.contains("..") || k.starts_with('.')));
        let with_locations = config.flattened_with_locations();
        assert!(with_locations.iter().any(|(k, _)| k == "data.dir"));
        assert!(
            !with_locations
                .iter()
                .any(|(k, _)| k.starts_with("tracking"))
        );
        assert_eq!(
            with_locations.len(),
            flat.len() + 1,
            "data.dir is the only location set"
        );
    }
}
