//! `tracking`: the trackers a run is also logged to. Not compared when a run resumes (see
//! [`super::diff`]): where a run is logged does not change what it computes.

use serde::{Deserialize, Serialize};

use super::error::{ConfigError, check};

/// Trackers a run is logged to besides its own folder.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrackingSection {
    /// TensorBoard event files in the run's `tensorboard/` folder.
    pub tensorboard: bool,
    /// An MLflow tracking server; none when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mlflow: Option<MlflowSection>,
}

impl TrackingSection {
    pub fn is_off(&self) -> bool {
        !self.tensorboard && self.mlflow.is_none()
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        match self.mlflow.as_ref().and_then(|m| m.uri.as_deref()) {
            Some(uri) => check_mlflow_uri(uri),
            None => Ok(()),
        }
    }
}

/// Where a run is logged in MLflow. What is left out comes from the variables MLflow's own
/// clients read: `MLFLOW_TRACKING_URI` and `MLFLOW_EXPERIMENT_NAME`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MlflowSection {
    /// The tracking server, `http://host:port`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// The experiment the run goes in, created if missing [default: `lenet`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub experiment: Option<String>,
}

/// The experiment runs go in when neither the config nor `MLFLOW_EXPERIMENT_NAME` names one.
pub const DEFAULT_MLFLOW_EXPERIMENT: &str = "lenet";

impl MlflowSection {
    /// The server and experiment, from this section, else from the environment as `env` reads
    /// it (the process's, except in tests).
    pub fn resolve(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<(String, String), ConfigError> {
        let uri = self
            .uri
            .clone()
            .or_else(|| env("MLFLOW_TRACKING_URI").filter(|v| !v.is_empty()))
            .ok_or_else(|| {
                ConfigError::value(
                    "tracking.mlflow.uri",
                    "no tracking server: set it, pass --mlflow URI, or set MLFLOW_TRACKING_URI",
                )
            })?;
        check_mlflow_uri(&uri)?;
        let experiment = self
            .experiment
            .clone()
            .or_else(|| env("MLFLOW_EXPERIMENT_NAME").filter(|v| !v.is_empty()))
            .unwrap_or_else(|| DEFAULT_MLFLOW_EXPERIMENT.to_string());
        Ok((uri, experiment))
    }
}

/// lenet speaks to MLflow over HTTP; MLflow's other URIs (a local `mlruns` folder, a database)
/// are for its Python client.
fn check_mlflow_uri(uri: &str) -> Result<(), ConfigError> {
    let rest = uri
        .strip_prefix("http://")
        .or_else(|| uri.strip_prefix("https://"));
    check(
        rest.is_some_and(|host| !host.is_empty() && !host.starts_with('/')),
        "tracking.mlflow.uri",
        format!(
            "must be the http:// or https:// address of an MLflow tracking server (`mlflow \
             server`), got {:?}",
            uri
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |key| vars.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    }

    #[test]
    fn the_config_names_the_server_else_mlflows_own_variables_do() {
        let given = MlflowSection {
            uri: Some("http://tracker:5000".into()),
            experiment: None,
        };
        let vars = env(&[
            ("MLFLOW_TRACKING_URI", "http://elsewhere:5000"),
            ("MLFLOW_EXPERIMENT_NAME", "digits"),
        ]);
        assert_eq!(
            given.resolve(&vars).unwrap(),
            ("http://tracker:5000".to_string(), "digits".to_string())
        );
        let from_env = MlflowSection::default().resolve(&vars).unwrap();
        assert_eq!(from_env.0, "http://elsewhere:5000");
        let defaults = MlflowSection {
            uri: Some("https://mlflow.example".into()),
            experiment: None,
        };
        assert_eq!(
            defaults.resolve(env(&[])).unwrap().1,
            DEFAULT_MLFLOW_EXPERIMENT
        );
    }

    #[test]
    fn a_missing_or_unusable_server_address_is_named() {
        let none = MlflowSection::default().resolve(env(&[])).unwrap_err();
        assert!(none.to_string().contains("MLFLOW_TRACKING_URI"), "{none}");
        for uri in [
            "file:///tmp/mlruns",
            "sqlite:///db",
            "http://",
            "localhost:5000",
        ] {
            let section = TrackingSection {
                tensorboard: false,
                mlflow: Some(MlflowSection {
                    uri: Some(uri.into()),
                    experiment: None,
                }),
            };
            let err = section.validate().unwrap_err().to_string();
            assert!(
                err.contains("tracking.mlflow.uri") && err.contains(uri),
                "{err}"
            );
        }
    }
}
