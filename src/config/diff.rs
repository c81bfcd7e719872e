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
    /// the outputs are (which do not change what a run computes).
    pub fn differences(&self, other: &TrainingConfig) -> Vec<Difference> {
        let comparable = |config: &TrainingConfig| {
            let mut config = config.clone();
            config.data.dir = None;
            config.artifact_dir = None;
            serde_json::to_value(config).expect("config serialises")
        };
        let mut found = Vec::new();
        differences(&comparable(self), &comparable(other), "", &mut found);
        found
    }
}

fn differences(a: &Value, b: &Value, path: &str, found: &mut Vec<Difference>) {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
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
}
